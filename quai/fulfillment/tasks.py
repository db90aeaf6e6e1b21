"""Periodic fulfilment work: waves released on a schedule (beat), beside the supervisors' own."""

from __future__ import annotations

from quai.celery import app
from quai.fulfillment.services import waves_release_scheduled


@app.task(name="quai.fulfillment.tasks.waves_release_sweep", ignore_result=True)
def waves_release_sweep() -> list[int]:
    """One wave per site of the next ``QUAI_FULFILMENT_SCHEDULED_WAVE_SIZE`` waiting orders (0: off)."""
    return waves_release_scheduled()
