"""Beat's sweep of shop connections: whatever is due and was not nudged (a lost message, a retry after backoff, a
dead worker's lease run out)."""

from __future__ import annotations

from django.db.models import F, Q

from quai.core import clock
from quai.integrations.models import (
    CallStatus,
    ConnectorCall,
    InboundDelivery,
    InboundStatus,
    StockSync,
)


def connections_sweep_due() -> dict[str, int]:
    """Enqueue whatever is due: deliveries waiting (lost nudge, retry after backoff), calls to retry, stock pushes
    of shops with dirty SKUs whose retry time has come."""
    from quai.integrations.tasks import connection_stock_push, connector_call_run, inbound_delivery_process

    now = clock.now()
    deliveries = list(
        InboundDelivery.objects.filter(status=InboundStatus.RECEIVED, next_attempt_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for pk in deliveries:
        inbound_delivery_process.delay(pk)
    calls = list(
        ConnectorCall.objects.filter(status=CallStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for pk in calls:
        connector_call_run.delay(pk)
    shops = list(
        StockSync.objects.filter(generation__gt=F("pushed_generation"))
        .values_list("connection_id", flat=True)
        .distinct()
    )
    for pk in shops:
        connection_stock_push.delay(pk)
    return {"deliveries": len(deliveries), "calls": len(calls), "stock": len(shops)}
