"""Outbox handlers of inbound: reactions to other apps' events, each idempotent."""

from __future__ import annotations

from quai.core.events import Envelope
from quai.inbound import services
from quai.inventory.events import StockChanged


def replenishment_on_stock_changed(event: StockChanged, envelope: Envelope) -> None:
    """Stock moved out of (or into) a location: if it is a pick face that fell below its min, ask for more."""
    location_ids = [
        location_id for location_id in (event.from_location_id, event.to_location_id) if location_id is not None
    ]
    if not location_ids:
        return
    services.replenishment_check(location_ids=location_ids, sku_ids=[event.sku_id])
