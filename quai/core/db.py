"""Small database helpers for hot paths, portable between SQLite and PostgreSQL."""

from __future__ import annotations

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
