"""The truck (``manifest_scans_record``, ``manifest_close``) and the carrier's tracking files (``tracking_record_many``)
cost the same statements for five parcels as for two: each reads the columns it needs of every shipment and order
once (the orders' ``STEP_FIELDS``, the shipments without their labels), so no column is loaded afterwards, parcel by
parcel. And the release sweep costs one statement when nothing is due. Here, above shipping, because the parcels
are packed first, as on the floor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.orders.models import Order, OrderStatus
from quai.orders.services import orders_release_due
from quai.shipping import domain, services
from quai.shipping.carriers.base import TrackingEvent
from quai.shipping.models import Shipment, ShipmentStatus


def _statements(work: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        work()
    return len(captured)


def _labelled_parcels(count: int) -> list[Shipment]:
    """Parcels packed and labelled at a pack station, waiting for the sandbox carrier's truck."""
    from quai.packing import services as packing
    from quai.packing.tests.factories import floor_build, released_order

    floor = floor_build()
    for n in range(count):
        released_order(floor.merchant, f"HND-{n}", [{"sku": "MUG", "quantity": 1, "unit_price": "9.90"}])
        parcel = packing.parcel_open(code=f"HND-{n}", station=floor.station)
        packing.parcel_scans_record(parcel=parcel, codes=["03760000000031"])
        (boxed,) = packing.parcels_box_many(parcels=[parcel])
        assert boxed.parcel is not None and boxed.parcel.expected_weight_g is not None
        packing.parcels_weigh_many(weighings=[(parcel.pk, boxed.parcel.expected_weight_g)])
        packing.parcel_close(parcel=parcel.pk)
    return list(Shipment.objects.order_by("pk"))


def _truck(parcels: list[Shipment]) -> tuple[int, int]:
    """The statements of loading ``parcels`` onto the carrier's truck, then of closing it."""
    manifest = services.manifest_open(carrier=parcels[0].carrier)
    codes = [parcel.sscc for parcel in parcels]
    loading = _statements(lambda: services.manifest_scans_record(manifest=manifest, codes=codes))
    closing = _statements(lambda: services.manifest_close(manifest=manifest))
    return loading, closing


def _tracking(parcels: list[Shipment], status: str, code: str, at: Any) -> int:
    updates = [(parcel.pk, [TrackingEvent(at, code, code, status)]) for parcel in parcels]
    return _statements(lambda: services.tracking_record_many(updates=updates))


@pytest.mark.django_db
def test_a_truck_and_its_tracking_files_cost_the_same_statements_for_five_parcels_as_for_two() -> None:
    parcels = _labelled_parcels(7)
    first, then = parcels[:2], parcels[2:]
    # The first truck takes two parcels; the five others, not scanned, are left behind (detached), then the next
    # truck takes them: only that detaching statement may differ.
    small = _truck(first)
    large = _truck(then)
    assert large[0] == small[0]
    assert large[1] <= small[1]
    assert Shipment.objects.filter(status=ShipmentStatus.HANDED_OVER).count() == 7
    at = clock.now() + timedelta(hours=3)
    assert _tracking(then, domain.IN_TRANSIT, "SIM-TRANSIT", at) == _tracking(
        first, domain.IN_TRANSIT, "SIM-TRANSIT", at
    )
    later = at + timedelta(days=1)
    assert _tracking(then, domain.DELIVERED, "SIM-DELIVERED", later) == _tracking(
        first, domain.DELIVERED, "SIM-DELIVERED", later
    )
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 7


@pytest.mark.django_db
def test_the_release_sweep_costs_one_statement_when_nothing_is_due() -> None:
    assert _statements(lambda: orders_release_due(now=clock.now())) == 1
