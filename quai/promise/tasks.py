"""Periodic work of the promise: the at-risk and overdue watch."""

from __future__ import annotations

from quai.celery import app
from quai.promise import services


@app.task(name="quai.promise.tasks.promise_watch", ignore_result=True)
def promise_watch() -> dict[str, int]:
    """Flag the orders at risk of missing their ship-by cut-off and break the promises whose last day passed."""
    return services.promise_watch()
