"""Celery tasks of core: the outbox relay (nudged after a commit) and its periodic sweep.

In embedded mode (no REDIS_URL) Celery runs tasks eagerly in the caller's process, so a nudge relays at once.
"""

from __future__ import annotations

from quai.celery import app
from quai.core import outbox


@app.task(name="quai.core.tasks.outbox_relay", ignore_result=True)
def outbox_relay_task(batch: int = 100) -> int:
    return outbox.outbox_relay(batch)


@app.task(name="quai.core.tasks.outbox_sweep", ignore_result=True)
def outbox_sweep(batch: int = 100) -> int:
    return outbox.outbox_sweep(batch)
