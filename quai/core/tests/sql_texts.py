"""The texts of the statements a piece of code runs (placeholders, not values), for tests that check a statement's
text does not change with the number of its rows (psycopg prepares a text only after its 5th run: a text per list
length is parsed and planned by PostgreSQL at every call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection


def statement_texts(run: Callable[[], Any]) -> list[str]:
    """Each statement ``run()`` sends on the default connection, as its text with placeholders, in order."""
    seen: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        run()
    return seen


def texts_with(texts: list[str], marker: str) -> set[str]:
    """The distinct texts among ``texts`` that start with ``SELECT`` or ``UPDATE`` and hold ``marker``."""
    return {sql for sql in texts if sql.startswith(("SELECT", "UPDATE")) and marker in sql}
