"""Shipped orders told to their shop: ``shipment.shipped`` becomes one fulfilment call per shop order, with each
parcel's tracking and the shop's own line ids for the units that left."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from quai.core.events import Envelope
from quai.integrations import domain
from quai.integrations.connectors.base import Parcel, Shipment, ShipmentLine
from quai.integrations.models import ShopOrder
from quai.integrations.services.pushes import connection_push_fulfilment
from quai.packing.selectors import parcels_of_order
from quai.shipping.selectors import shipments_of_order
from quai.tenants.scope import Scope


def shipped_lines(snapshot: Mapping[str, Any], shipped: Mapping[str, int]) -> tuple[ShipmentLine, ...]:
    """The shop's lines for the units shipped, matched by SKU (case-insensitive). Several shop lines of one SKU
    are filled in their order, each up to its ordered quantity; units of a SKU the shop order does not hold (a
    gift the warehouse added) are not the shop's to hear about."""
    left = Counter({sku.lower(): quantity for sku, quantity in shipped.items() if quantity > 0})
    lines: list[ShipmentLine] = []
    for line in domain.order_from_json(snapshot).lines:
        sku = line.sku.lower()
        take = min(left[sku], line.quantity)
        if take > 0:
            lines.append(ShipmentLine(external_line_id=str(line.external_line_id), quantity=take))
            left[sku] -= take
    return tuple(lines)


def _units(parcels: Iterable[Any]) -> Counter[str]:
    units: Counter[str] = Counter()
    for parcel in parcels:
        for item in parcel.items.all():
            units[item.sku_code] += item.scanned
    return units


def on_shipment_shipped(event: Any, envelope: Envelope) -> None:
    """Outbox handler (``shipment.shipped``): push the fulfilment with its tracking to the shop(s) the order came
    from; nothing when it came from none. The key is the parcels shipped, so a redelivered event (or the same
    parcels told again) makes no second call."""
    if envelope.merchant_id is None or not event.parcel_ids:
        return
    shop_orders = list(ShopOrder.objects.filter(order_id=event.order_id).only("pk", "snapshot"))
    if not shop_orders:
        return
    scope = Scope.merchant(envelope.merchant_id)
    parcel_ids = {int(pk) for pk in event.parcel_ids}
    labelled = [s for s in shipments_of_order(scope=scope, order_id=event.order_id) if s.parcel_id in parcel_ids]
    packed = [p for p in parcels_of_order(scope=scope, order_id=event.order_id) if p.pk in parcel_ids]
    # The lines are the shop's own ids, which differ per shop order: with a single shop order (the usual case) they
    # are named; an order merged from several is told as fulfilled whole, each shop completing its own order.
    lines = shipped_lines(shop_orders[0].snapshot, _units(packed)) if len(shop_orders) == 1 else ()
    shipment = Shipment(
        lines=lines,
        parcels=tuple(
            Parcel(
                tracking_number=s.tracking_number,
                carrier_code=s.carrier.kind or event.carrier,
                tracking_url=s.tracking_url,
                weight_g=s.weight_g,
                sscc=s.sscc,
            )
            for s in labelled
        )
        or tuple(Parcel(tracking_number=number, carrier_code=event.carrier) for number in event.tracking_numbers),
        shipped_at=event.shipped_at,
    )
    connection_push_fulfilment(order=event.order_id, shipment=shipment, key=_key(parcel_ids))


def on_shipments_shipped(items: Sequence[tuple[Any, Envelope]]) -> None:
    """Batch form of ``on_shipment_shipped`` (``subscribe(..., batch=)``): which of the relay batch's orders came
    from a shop is read once; each of those is then told exactly as the single form tells it, in turn, and the
    others (most orders of a truck, usually) cost nothing more."""
    told = [(event, envelope) for event, envelope in items if envelope.merchant_id is not None and event.parcel_ids]
    if not told:
        return
    from_shops = set(
        ShopOrder.objects.filter(order_id__in={event.order_id for event, _ in told}).values_list("order_id", flat=True)
    )
    for event, envelope in told:
        if event.order_id in from_shops:
            on_shipment_shipped(event, envelope)


def _key(parcel_ids: set[int]) -> str:
    named = ",".join(str(pk) for pk in sorted(parcel_ids))
    # Keys are cut at 200 characters: a long list of parcels is digested rather than cut into another's prefix.
    return f"shipped:{named}" if len(named) <= 80 else "shipped#" + hashlib.sha256(named.encode()).hexdigest()[:32]
