"""Polling (``connection_poll``, beat): ``fetch_orders(cursor)`` as a safety net under webhooks, and PrestaShop's
only way in. Each order found is stored as a delivery keyed by its id and modification time, so a webhook's order and
the poll's are one, then processed like any other (``processing``).
"""

from __future__ import annotations

import httpx
from django.db import transaction

from quai.core import clock
from quai.integrations.connectors.base import (
    ConnectorError,
)
from quai.integrations.models import (
    Connection,
    InboundDelivery,
    ShopOrder,
)
from quai.integrations.services.connections import (
    connection_adapter,
    connection_failure_record,
    connection_success_record,
)
from quai.integrations.services.processing import deliveries_process_after_commit


def connection_poll(*, connection: Connection, client: httpx.Client | None = None, max_pages: int = 20) -> int:
    """Orders ready on the shop since the cursor, stored as deliveries (one per order and modification time, so a
    webhook's order and the poll's are one); returns how many were new. Outside transactions.

    Pages are read while the cursor moves, up to ``max_pages`` a run (the next run goes on from the stored cursor):
    a page may hold no order for us and still move the cursor (Saleor's unpaid orders, Shopify's empty queue of
    fulfilment requests before its cancellation queue), so an empty page is not the end."""
    adapter = connection_adapter(connection, client)
    cursor = connection.cursor or None
    found = 0
    try:
        for _page in range(max_pages):
            page = adapter.fetch_orders(cursor)
            new_ids: list[int] = []
            now = clock.now()
            with transaction.atomic():
                for order in page.orders:
                    stamp = order.updated_at.isoformat() if order.updated_at else ""
                    key = f"poll:{order.external_id}:{stamp}"
                    if InboundDelivery.objects.filter(connection=connection, delivery_key=key).exists():
                        continue
                    if ShopOrder.objects.filter(
                        connection=connection, external_id=order.external_id, order__isnull=False
                    ).exists():
                        continue
                    delivery = InboundDelivery.objects.create(
                        merchant_id=connection.merchant_id,
                        connection=connection,
                        delivery_key=key,
                        topic="poll",
                        body=b"",
                        external_id=order.external_id[:100],
                        next_attempt_at=now,
                    )
                    new_ids.append(delivery.pk)
                if page.cursor:
                    Connection.objects.filter(pk=connection.pk).update(cursor=page.cursor)
                elif adapter.restart_after_pass:
                    Connection.objects.filter(pk=connection.pk).update(cursor="")
                deliveries_process_after_commit(new_ids)
            found += len(new_ids)
            if page.cursor is None or page.cursor == cursor:
                break
            cursor = page.cursor
    except ConnectorError as exc:
        connection_failure_record(connection.pk, exc, retry_after=exc.retry_after)
        return found
    connection_success_record(connection.pk, last_polled_at=clock.now(), last_sync_at=clock.now())
    return found
