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

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from datetime import time as dt_time
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from psycopg.types.json import Json, Jsonb

from quai.core import clock
from quai.core.events import Event, aggregate_id_of, event_payload
from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_nudge

# Rows per statement: far below either database's limit of bound parameters (SQLite 32,766; PostgreSQL 65,535) for
# the widest table written here (orders, 37 columns).
INSERT_CHUNK = 400

# Columns whose ORM preparation returns a ``str`` or an ``int`` value unchanged (checked per value: anything else —
# None, Decimal, dates, UUIDs, JSON — goes through ``get_db_prep_save``).
_PASS_THROUGH_TYPES = frozenset(
    {
        "CharField",
        "TextField",
        "SlugField",
        "EmailField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
        "ForeignKey",
    }
)


@functools.cache
def _columns(model: type[models.Model]) -> tuple[tuple[str, models.Field[Any, Any], bool], ...]:
    """The model's inserted columns: (attname, field, whether a str/int value passes through unchanged)."""
    return tuple(
        (str(field.attname), field, field.get_internal_type() in _PASS_THROUGH_TYPES)
        for field in model._meta.concrete_fields
        if not field.primary_key
    )


@functools.lru_cache(maxsize=1024)
def _insert_sql(model: type[models.Model], vendor: str, count: int, returning: tuple[str, ...], skip: bool) -> str:
    """The statement for ``count`` rows: on PostgreSQL one text whatever the count (the rows come as one JSON
    document, ``json_to_recordset``), elsewhere a VALUES list of ``count`` rows."""
    quote = connection.ops.quote_name
    columns = _columns(model)
    names = ", ".join(quote(str(field.column)) for _name, field, _plain in columns)
    if vendor == "postgresql":
        typed = ", ".join(f"{quote(str(field.column))} {field.db_type(connection)}" for _name, field, _plain in columns)
        source = f"json_to_recordset(%s) AS r({typed})"
        sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) SELECT {names} FROM {source}"
    else:
        marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql = f"INSERT INTO {quote(model._meta.db_table)} ({names}) VALUES {', '.join([marks] * count)}"
    if skip:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(quote(name) for name in returning)
    return sql


def _prepared(model: type[models.Model], row: Mapping[str, Any], db: Any) -> list[Any]:
    """The row's values in column order, prepared for ``db`` (the connection itself: each attribute read through
    ``django.db.connection``'s proxy costs a thread-local look-up, hundreds per batch)."""
    values = []
    for name, field, plain in _columns(model):
        value = row[name] if name in row else field.get_default()
        kind = type(value)
        if not (plain and (kind is str or kind is int)):
            value = field.get_db_prep_save(value, db)
        values.append(value)
    return values


def _json_value(value: Any) -> Any:
    """A value ``get_db_prep_save`` prepared for psycopg, as the JSON that PostgreSQL reads back into the same
    column value: text and numbers as they are, decimals and UUIDs as their text, dates and times in ISO 8601 with
    their offset (microseconds kept), a JSON column's document as itself (dumped as psycopg would)."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (datetime, date, dt_time)):
        return value.isoformat()
    if isinstance(value, (Json, Jsonb)):
        dumps = value.dumps  # None: psycopg's default, json.dumps
        return value.obj if dumps is None or dumps is json.dumps else json.loads(dumps(value.obj))
    raise TypeError(f"no JSON form for a {type(value).__name__} column value")


def _pg_document(model: type[models.Model], rows: Sequence[Mapping[str, Any]], db: Any) -> str:
    columns = [str(field.column) for _name, field, _plain in _columns(model)]
    return json.dumps(
        [dict(zip(columns, map(_json_value, _prepared(model, row, db)), strict=True)) for row in rows],
        separators=(",", ":"),
    )


def rows_insert(
    model: type[models.Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: tuple[str, ...] = (),
    skip_conflicts: bool = False,
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (each a mapping of field attnames to values; the others take their defaults) in one
    statement per ``INSERT_CHUNK`` rows. ``returning``: columns read back, one tuple per inserted row.
    ``skip_conflicts``: ``ON CONFLICT DO NOTHING`` (a skipped row returns nothing).

    On PostgreSQL the rows travel as ONE parameter, a JSON document read by ``json_to_recordset`` into the columns'
    own types: the statement's text is the same for any number of rows, so psycopg parses it once (it re-parses
    any statement of more than 50 parameters on every call: most of a VALUES list's cost). SQLite: a VALUES list."""
    returned: list[tuple[Any, ...]] = []
    db = connections[DEFAULT_DB_ALIAS]
    postgres = db.vendor == "postgresql"
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        sql = _insert_sql(model, db.vendor, 1 if postgres else len(chunk), returning, skip_conflicts)
        if postgres:
            params: list[Any] = [_pg_document(model, chunk, db)]
        else:
            params = [value for row in chunk for value in _prepared(model, row, db)]
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            if returning:
                returned.extend(tuple(row) for row in cursor.fetchall())
    return returned


def model_rows_insert(objects: Sequence[models.Model]) -> None:
    """Insert model instances built in memory (one model) and set their primary keys, as ``bulk_create`` does."""
    if not objects:
        return
    model = type(objects[0])
    names = [name for name, _field, _plain in _columns(model)]
    pk = model._meta.pk
    assert pk is not None
    ids = rows_insert(
        model, [{name: getattr(obj, name) for name in names} for obj in objects], returning=(str(pk.column),)
    )
    if len(ids) != len(objects):
        raise RuntimeError(f"{len(ids)} ids returned for {len(objects)} {model.__name__} rows")
    for obj, (value,) in zip(objects, ids, strict=True):
        obj.pk = value
        obj._state.adding = False
        obj._state.db = connection.alias


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
