"""Multi-row INSERTs of rows whose every value intake already knows: the group committer's per-batch writes.

Why not ``bulk_create``: on the committer's serial path each ORM insert cost ~0.3–0.6 ms of CPU per batch
whatever its rows (the statement compiled again, every value through the compiler's ``prepare_value``, and on
PostgreSQL Django 5.2's ``UNNEST`` form dumping one array per column), while the rows themselves are plain values.
Here the statement is built once per (table, number of rows) and each value is prepared as the ORM prepares it
(``Field.get_db_prep_save``), except text and whole numbers bound to text or integer columns, which the ORM passes
through unchanged anyway. Fields a row leaves out take their model default, as ``Model()`` would give them. So a row
written here is the row ``bulk_create`` (or ``Model.objects.create``) writes for the same values: the equivalence
tests (quai/orders/tests/test_intake_rows.py) compare them column by column on both databases.

Both databases return the inserted ids in VALUES order (PostgreSQL, and SQLite ≥ 3.35 with ``RETURNING``), which is
what Django's own ``bulk_create`` relies on to set primary keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from quai.core import clock
from quai.core.events import Event, aggregate_id_of, event_payload
from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_nudge
from quai.core.rows import INSERT_CHUNK, model_rows_insert, rows_insert

# The statement itself is core's (``quai.core.rows``, which the outbox's hot paths use too): re-exported here for
# intake's callers.
__all__ = ["INSERT_CHUNK", "events_insert", "model_rows_insert", "rows_insert"]


def events_insert(events: Sequence[tuple[Event, int | None]]) -> None:
    """``quai.core.outbox.events_record_many`` for a batch's own events, without an ``OutboxEvent`` per row: the same
    columns from the same helpers (``event_payload``, ``aggregate_id_of``, one ``occurred_at`` for the batch), one
    insert in the order given (ascending ids: the relay's order per aggregate), then the outbox's one relay nudge
    after the commit (``outbox_nudge``)."""
    if not events:
        return
    now = clock.now()
    rows = []
    for event, merchant_id in events:
        cls = type(event)
        if not isinstance(event, Event) or cls.__dict__.get("name") is None:
            raise TypeError(f"{cls.__name__} is not a registered event: derive it from quai.core.events.Event")
        rows.append(
            {
                "event_id": uuid.uuid4(),
                "name": cls.name,
                "schema_version": cls.schema_version,
                "merchant_id": merchant_id,
                "aggregate": cls.aggregate,
                "aggregate_id": aggregate_id_of(event),
                "payload": event_payload(event),
                "occurred_at": now,
            }
        )
    rows_insert(OutboxEvent, rows)
    outbox_nudge()
