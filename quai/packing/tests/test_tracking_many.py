"""Tracking many shipments at once (``tracking_record_many``) ends exactly as ``tracking_record`` one by one: the
same records, statuses and events in the same order, the orders delivered. Here, above shipping, because the
parcels are packed and handed over first (orders shipped), as on the floor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from quai.core import clock
from quai.core.models import OutboxEvent
from quai.shipping import services
from quai.shipping.models import Shipment

MOMENT = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


class _Undo(Exception):
    pass


def _last_event_id() -> int:
    last = OutboxEvent.objects.order_by("-pk").first()
    return last.pk if last else 0


def _shipped_parcels(count: int) -> list[Shipment]:
    """Parcels packed at a pack station and handed to the sandbox carrier's truck (orders shipped)."""
    from quai.packing import services as packing
    from quai.packing.tests.factories import floor_build, released_order

    floor = floor_build()
    for n in range(count):
        released_order(floor.merchant, f"TRK-{n}", [{"sku": "MUG", "quantity": 1, "unit_price": "9.90"}])
        parcel = packing.parcel_open(code=f"TRK-{n}", station=floor.station)
        packing.parcel_scans_record(parcel=parcel, codes=["03760000000031"])
        (boxed,) = packing.parcels_box_many(parcels=[parcel])
        assert boxed.parcel is not None and boxed.parcel.expected_weight_g is not None
        packing.parcels_weigh_many(weighings=[(parcel.pk, boxed.parcel.expected_weight_g)])
        packing.parcel_close(parcel=parcel.pk)
    shipments = list(Shipment.objects.order_by("pk"))
    manifest = services.manifest_open(carrier=shipments[0].carrier)
    services.manifest_scans_record(manifest=manifest, codes=[s.sscc for s in shipments[:-1]])
    services.manifest_close(manifest=manifest)  # the last parcel stays behind, not handed over
    return list(Shipment.objects.order_by("pk"))


def _tracking_state(since: int) -> dict[str, Any]:
    from quai.orders.models import Order
    from quai.shipping.models import TrackingEventRecord

    return {
        "records": list(
            TrackingEventRecord.objects.order_by("shipment_id", "occurred_at", "pk").values_list(
                "shipment_id", "status", "carrier_code", "description", "occurred_at"
            )
        ),
        "shipments": list(
            Shipment.objects.order_by("pk").values_list("pk", "status", "delivered_at", "estimated_delivery")
        ),
        "orders": sorted(Order.objects.values_list("external_id", "status")),
        "events": [
            (e.name, e.merchant_id, e.aggregate, e.aggregate_id, e.occurred_at, e.payload)
            for e in OutboxEvent.objects.filter(pk__gt=since).order_by("pk")
        ],
    }


@pytest.mark.django_db
def test_tracking_many_shipments_at_once_ends_exactly_as_one_by_one() -> None:
    from datetime import timedelta

    from quai.shipping import domain
    from quai.shipping.carriers.base import TrackingEvent

    first, second, third, behind = _shipped_parcels(4)
    at = MOMENT + timedelta(hours=2)
    moved = TrackingEvent(at, "SIM-TRANSIT", "Parcel collected", domain.IN_TRANSIT, estimated_delivery="2026-11-30")
    delivered = TrackingEvent(at + timedelta(days=1), "SIM-DELIVERED", "Delivered", domain.DELIVERED)
    updates: list[tuple[Any, list[TrackingEvent]]] = [
        (first.pk, [delivered, moved]),  # out of order: applied by time
        (second.pk, [moved]),
        (behind.pk, [moved]),  # not handed over: an "in transit" is not true yet
        (first.pk, [delivered]),  # seen already: nothing new
        (third.pk, [TrackingEvent(at, "SIM-NOTE", "Note", None)]),  # a carrier code Quai does not map
    ]
    since = _last_event_id()
    with clock.frozen(MOMENT + timedelta(days=2)):
        with pytest.raises(_Undo), transaction.atomic():
            single = [len(services.tracking_record(shipment=pk, events=events)) for pk, events in updates]
            one_by_one = _tracking_state(since)
            raise _Undo
        many = [len(found) for found in services.tracking_record_many(updates=updates)]
    together = _tracking_state(since)
    assert single == many == [2, 1, 0, 0, 1]
    assert together == one_by_one
    statuses = {pk: status for pk, status, *_rest in together["shipments"]}
    assert (statuses[first.pk], statuses[second.pk], statuses[behind.pk]) == (
        "delivered",
        "in_transit",
        "label_created",
    )
    names = [e[0] for e in together["events"]]
    assert names.count("shipment.delivered") == 1 and "order.status_changed" in names
