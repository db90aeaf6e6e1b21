"""Multi-row INSERTs for core's hot paths (the outbox's events, the relay's ``HandledEvent`` rows), portable
between SQLite and PostgreSQL.

The same statement as ``quai.orders.services.rows`` builds for intake's rows (whose docstring tells why not
``bulk_create``: the ORM compiles the statement again and prepares every value through its compiler on each call),
here because ``core`` imports no app: orders may import it from here. The statement is built once per (table,
number of rows) and each value is prepared as the ORM prepares it (``Field.get_db_prep_save``), text and whole
numbers bound to text or integer columns passed through unchanged as the ORM does; fields a row leaves out take
their model default. PostgreSQL reads the rows as ONE JSON parameter (``json_to_recordset``), so the statement's
text is the same for any number of rows; SQLite a VALUES list. Both return the inserted ids in VALUES order.
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
