"""Outbox handlers of inbound: reactions to other apps' events, each idempotent."""

from __future__ import annotations

from quai.core.models import OutboxEvent
from quai.inbound import services


def replenishment_on_stock_changed(event: OutboxEvent) -> None:
    """Stock moved out of (or into) a location: if it is a pick face that fell below its min, ask for more."""
    payload = event.payload
    location_ids = [
        location_id
        for location_id in (payload.get("from_location_id"), payload.get("to_location_id"))
        if location_id is not None
    ]
    sku_id = payload.get("sku_id")
    if not location_ids or sku_id is None:
        return
    services.replenishment_check(location_ids=location_ids, sku_ids=[sku_id])
