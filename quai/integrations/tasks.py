"""Celery tasks of outbound webhooks: send what is due (nudged after a commit) and beat's periodic sweep.

Both run in a worker, never in a web request: the nudge only enqueues. The sweep catches everything a lost nudge,
a dead worker (its leases expire) or a backoff left for later.
"""

from __future__ import annotations

from quai.celery import app
from quai.integrations import services


@app.task(name="quai.integrations.tasks.webhook_deliveries_send", ignore_result=True)
def webhook_deliveries_send() -> int:
    return services.webhook_deliveries_send_due()


@app.task(name="quai.integrations.tasks.webhook_deliveries_sweep", ignore_result=True)
def webhook_deliveries_sweep() -> int:
    return services.webhook_deliveries_send_due()
