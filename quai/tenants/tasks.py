"""Celery tasks of tenants: the periodic purge of expired idempotency records."""

from __future__ import annotations

from quai.celery import app
from quai.tenants import services


@app.task(name="quai.tenants.tasks.idempotency_records_purge", ignore_result=True)
def idempotency_records_purge(batch: int = 1000) -> int:
    return services.idempotency_records_purge(batch=batch)
