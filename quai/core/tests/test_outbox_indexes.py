"""The outbox's indexes are the ones its reads use (docs/OUTBOX.md, "The outbox's indexes, 5 December"): every index
costs each event's insert (and on PostgreSQL its relayed update) an entry, so one more needs a read that uses it."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def _indexed_columns(table: str) -> set[tuple[str, ...]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        tuple(spec["columns"])
        for spec in constraints.values()
        if (spec["index"] or spec["unique"]) and not spec["primary_key"]
    }


def test_the_outbox_indexes_its_key_merchant_time_and_pending_rows_not_its_event_id():
    # ("id",): the pending index (``WHERE relayed_at IS NULL``), beside the primary key.
    assert _indexed_columns("core_outboxevent") == {("id",), ("merchant_id",), ("occurred_at",)}
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "core_outboxevent")
    assert "outbox_pending_idx" in constraints


def test_a_handled_event_is_indexed_once_by_its_event_and_handler():
    assert _indexed_columns("core_handledevent") == {("event_id", "handler")}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plans; PostgreSQL's: docs/OUTBOX.md")
def test_the_relay_claim_reads_the_pending_index_and_the_handled_rows_by_event():
    from quai.core.outbox import _claim_sql

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + _claim_sql("sqlite"), {"lease": "x", "now": "x", "batch": 10})
        plan = " | ".join(row[3] for row in cursor.fetchall())
    assert "USING INDEX outbox_pending_idx" in plan
    assert "sqlite_autoindex_core_handledevent_1 (event_id=?)" in plan
