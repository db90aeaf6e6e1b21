"""Celery tasks of core: the outbox relay (nudged after a commit), its priority pass, its periodic sweep and its
daily purge of old relayed events.

They run in a Celery worker, never in the web request: on Redis in production, on kombu's filesystem transport in
the embedded default, where ``manage.py serve`` (``make run``) starts the worker and beat (see ``quai/celery.py``).
"""

from __future__ import annotations

from quai.celery import app
from quai.core import outbox, retention


@app.task(name="quai.core.tasks.outbox_relay", ignore_result=True)
def outbox_relay_task(batch: int = 100) -> int:
    # Relay until nothing is pending, not one batch: there is one nudge per transaction, and one transaction (a
    # group commit of 200 orders) records many more events than a batch; the rest would wait for beat's sweep.
    return outbox.outbox_relay_nudged(batch)


@app.task(name="quai.core.tasks.outbox_sweep", ignore_result=True)
def outbox_sweep(batch: int = 100) -> int:
    return outbox.outbox_sweep(batch)


@app.task(name="quai.core.tasks.outbox_relay_priority", ignore_result=True)
def outbox_relay_priority_task(batch: int = 200) -> int:
    # Nudged beside the relay by a commit that recorded events with a handler relayed first (outbox.relay_first), on
    # the queue that registration named, so it does not wait behind the relay's own runs.
    return outbox.outbox_relay_priority_nudged(batch)


@app.task(name="quai.core.tasks.outbox_purge", ignore_result=True)
def outbox_purge_task() -> int:
    # Daily (beat's "outbox-purge"): relayed events past QUAI_OUTBOX_RETENTION_DAYS and their handled rows, in chunks.
    return retention.outbox_purge().events
