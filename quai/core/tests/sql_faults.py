"""A fault injected into the SQL a test runs: for tests of a batch form that must fall back when its write fails."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError, connection


@contextmanager
def fails_once(fragment: str, message: str) -> Iterator[list[str]]:
    """The first statement containing ``fragment`` raises ``IntegrityError(message)`` instead of running; the list
    yielded holds that statement once it failed (empty: nothing matched, so the test would prove nothing)."""
    failed: list[str] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if fragment in sql and not failed:
            failed.append(sql)
            raise IntegrityError(message)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield failed
