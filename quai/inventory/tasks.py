"""Periodic stock work: bring availability in line with zones whose validity window opened or ended."""

from __future__ import annotations

from quai.celery import app
from quai.inventory.services import stock_counting_sync


@app.task(name="quai.inventory.tasks.stock_counting_sweep", ignore_result=True)
def stock_counting_sweep() -> dict[str, int]:
    report = stock_counting_sync()
    return {"added": report.added, "removed": report.removed, "held": report.held}
