"""Periodic order work: hand allocated orders to the warehouse once their release buffer is over."""

from __future__ import annotations

from quai.celery import app
from quai.orders.services import orders_release_due


@app.task(name="quai.orders.tasks.orders_release_sweep", ignore_result=True)
def orders_release_sweep() -> int:
    """Release the allocated orders whose buffer ended (up to 500 a run; the next run takes the rest)."""
    return orders_release_due()
