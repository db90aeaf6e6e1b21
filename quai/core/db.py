"""Small database helpers for hot paths, portable between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import connection, models


@cache
def _insert_sql(table: str, columns: tuple[str, ...], vendor: str) -> str:
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    return f"INSERT INTO {quote(table)} ({names}) VALUES ({marks}) RETURNING {quote('id')}"


def insert_returning_id(model: type[models.Model], values: dict[str, Any]) -> int:
    """One ``INSERT … RETURNING id`` of a row, values prepared by each field exactly as the ORM would.

    For the hottest writes only (a reservation, its outbox event): it skips the ORM's per-call query compilation,
    not its field conversions, so what is stored is what ``Model.objects.create`` would store. Fields left out
    take their defaults.
    """
    opts = model._meta
    row: dict[str, Any] = {}
    for field in opts.concrete_fields:
        if field.primary_key:
            continue
        if field.name in values:
            value = values[field.name]
        elif field.attname in values:
            value = values[field.attname]
        else:
            value = field.get_default()  # the declared default, "" for text, None otherwise — as the ORM does
        row[str(field.column)] = field.get_db_prep_save(value, connection)
    columns = tuple(row)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(opts.db_table, columns, connection.vendor), list(row.values()))
        (pk,) = cursor.fetchone()
    return int(pk)


#: Rows per UPDATE statement: far below either database's limit of bound parameters for the widest update here.
UPDATE_CHUNK = 500


@cache
def _update_sql(table: str, pk: tuple[str, str], columns: tuple[tuple[str, str], ...], rows: int, vendor: str) -> str:
    quote = connection.ops.quote_name
    names = [name for name, _type in (pk, *columns)]
    if vendor == "postgresql":
        # Every value cast to its column's type: a parameter psycopg sends untyped (text, NULL) then takes it.
        types = [kind for _name, kind in (pk, *columns)]
        row = "(" + ", ".join(f"CAST(%s AS {kind})" for kind in types) + ")"
        alias = "v(" + ", ".join(quote(n) for n in names) + ")"
        sets = ", ".join(f"{quote(name)} = v.{quote(name)}" for name, _type in columns)
        return (
            f"UPDATE {quote(table)} AS t SET {sets} FROM (VALUES {', '.join([row] * rows)}) AS {alias} "
            f"WHERE t.{quote(pk[0])} = v.{quote(pk[0])}"
        )
    # SQLite names a VALUES list's columns column1, column2…; the updated table cannot be aliased.
    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    sets = ", ".join(f"{quote(name)} = v.column{n + 2}" for n, (name, _type) in enumerate(columns))
    return (
        f"UPDATE {quote(table)} SET {sets} FROM (VALUES {', '.join([row] * rows)}) AS v "
        f"WHERE {quote(table)}.{quote(pk[0])} = v.column1"
    )


def rows_update(objects: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write ``fields`` of model instances (one model, each row once) as they are in memory: what
    ``QuerySet.bulk_update(objects, fields)`` writes, in one ``UPDATE … FROM (VALUES …)`` per ``UPDATE_CHUNK`` rows.

    Why not ``bulk_update``: it builds a ``CASE WHEN pk = … THEN …`` per row and field and compiles them through the
    ORM's expressions, milliseconds of Python per call for a few hundred rows; here the statement's text is built
    once per (table, columns, rows) and each value is prepared by its field (``get_db_prep_save``), as the ORM
    prepares it. Returns the rows matched."""
    if not objects:
        return 0
    model = type(objects[0])
    if any(type(obj) is not model for obj in objects):
        raise TypeError("rows_update writes rows of one model at a time")
    if len({obj.pk for obj in objects}) != len(objects):
        raise ValueError("rows_update writes each row once: a row is given twice")
    opts = model._meta
    assert opts.pk is not None
    targets = [opts.get_field(name) for name in fields]
    columns = tuple((str(field.column), str(field.db_type(connection))) for field in targets)  # type: ignore[union-attr]
    key = (str(opts.pk.column), str(opts.pk.rel_db_type(connection)))
    matched = 0
    for start in range(0, len(objects), UPDATE_CHUNK):
        chunk = objects[start : start + UPDATE_CHUNK]
        params: list[Any] = []
        for obj in chunk:
            params.append(obj.pk)
            params.extend(
                field.get_db_prep_save(getattr(obj, field.attname), connection)  # type: ignore[union-attr]
                for field in targets
            )
        sql = _update_sql(opts.db_table, key, columns, len(chunk), connection.vendor)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            matched += int(cursor.rowcount)
    return matched
