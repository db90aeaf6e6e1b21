"""Celery tasks of outbound webhooks (send what is due, nudged after a commit, and beat's periodic sweep) and of shop
connections (process a shop's call, push stock, write to a shop, poll, reconcile, sweep).

Both run in a worker, never in a web request: the nudge only enqueues. The sweep catches everything a lost nudge,
a dead worker (its leases expire) or a backoff left for later.
"""

from __future__ import annotations

import logging

from quai.celery import app
from quai.integrations import retention, services
from quai.integrations.services import deliveries

logger = logging.getLogger(__name__)


@app.task(name="quai.integrations.tasks.webhook_deliveries_send", ignore_result=True)
def webhook_deliveries_send() -> int:
    return deliveries.webhook_deliveries_send_nudged()


@app.task(name="quai.integrations.tasks.webhook_deliveries_sweep", ignore_result=True)
def webhook_deliveries_sweep() -> int:
    return services.webhook_deliveries_send_due()


# --- Shop connections: every call to a shop runs here, never in a request or a transaction ------------------------


@app.task(name="quai.integrations.tasks.inbound_delivery_process", ignore_result=True)
def inbound_delivery_process(delivery_id: int) -> None:
    services.inbound_delivery_process(delivery_id=delivery_id)


@app.task(name="quai.integrations.tasks.connection_stock_push", ignore_result=True)
def connection_stock_push(connection_id: int, asked_at: float | None = None, lease: str | None = None) -> int:
    return services.connection_stock_push(connection_id=connection_id, asked_at=asked_at, lease=lease)


@app.task(name="quai.integrations.tasks.connector_call_run", ignore_result=True)
def connector_call_run(call_id: int) -> None:
    services.connector_call_run(call_id=call_id)


@app.task(name="quai.integrations.tasks.connections_sweep", ignore_result=True)
def connections_sweep() -> dict[str, int]:
    return services.connections_sweep_due()


@app.task(name="quai.integrations.tasks.connections_poll", ignore_result=True)
def connections_poll() -> int:
    """The safety net under webhooks: each active connection that polls, one after the other."""
    found = 0
    for connection in services.connections_pollable():
        found += services.connection_poll(connection=connection)
    return found


@app.task(name="quai.integrations.tasks.connections_reconcile", ignore_result=True)
def connections_reconcile() -> list[dict[str, object]]:
    reports = []
    for connection in services.connections_stock_pushing():
        report = services.connection_stock_reconcile(connection=connection)
        if report.drift or report.error:
            logger.warning("stock reconcile of shop connection %s: %s", connection.pk, report.as_dict())
        reports.append(report.as_dict())
    return reports


@app.task(name="quai.integrations.tasks.connection_health_check", ignore_result=True)
def connection_health_check(connection_id: int) -> None:
    connection = services.connections_get_any(connection_id)
    if connection is not None:
        services.connection_health(connection=connection)


@app.task(name="quai.integrations.tasks.connection_reconcile", ignore_result=True)
def connection_reconcile(connection_id: int) -> None:
    connection = services.connections_get_any(connection_id)
    if connection is not None:
        services.connection_stock_reconcile(connection=connection)


@app.task(name="quai.integrations.tasks.integration_logs_purge", ignore_result=True)
def integration_logs_purge() -> int:
    # Daily (beat's "integration-logs-purge", on the default queue: never holding a shop_push worker): finished
    # webhook deliveries, shop deliveries and calls past their retention, in chunks (quai.integrations.retention).
    result = retention.integration_logs_purge()
    return result.deliveries + result.inbound + result.calls
