"""Outbox handlers of inbound: reactions to other apps' events, each idempotent."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import F

from quai.core.events import Envelope
from quai.core.rows import Among
from quai.inbound import services
from quai.inbound.models import PickFace
from quai.inventory.events import StockChanged


def _touched(event: StockChanged) -> list[tuple[int, int]]:
    """The (location, SKU) pairs a stock change may have taken below a pick face's min."""
    return [
        (location_id, event.sku_id)
        for location_id in (event.from_location_id, event.to_location_id)
        if location_id is not None
    ]


def replenishment_on_stock_changed(event: StockChanged, envelope: Envelope) -> None:
    """Stock moved out of (or into) a location: if it is a pick face that fell below its min, ask for more."""
    location_ids = [location_id for location_id, _sku_id in _touched(event)]
    if not location_ids:
        return
    services.replenishment_check(location_ids=location_ids, sku_ids=[event.sku_id])


def replenishment_on_stock_changed_many(items: Sequence[tuple[StockChanged, Envelope]]) -> None:
    """Batch form of ``replenishment_on_stock_changed``: one read of the pick faces the batch's changes touch
    (most stock moves touch none: then that read is all), then one check of those faces.

    One check is what the per-event form amounts to: a face's first event opens its task (later ones skip an open
    face) or finds it above its min, and nothing in between moves stock, so its later events find the same. A
    location is the pick face of one SKU at most, so checking the faces' locations and SKUs checks those faces
    only. The tasks are the per-event form's, created in face order rather than in the order of first touch.
    """
    pairs = {pair for event, _envelope in items for pair in _touched(event)}
    if not pairs:
        return
    faces = [
        (location_id, sku_id)
        for location_id, sku_id in PickFace.objects.filter(
            Among(F("location_id"), {loc for loc, _sku in pairs})  # one text for any number of places (issue 17)
        ).values_list("location_id", "sku_id")
        if (location_id, sku_id) in pairs
    ]
    if faces:
        services.replenishment_check(
            location_ids=sorted({loc for loc, _sku in faces}), sku_ids=sorted({sku for _loc, sku in faces})
        )
