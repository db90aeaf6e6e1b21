"""Tracking many shipments at once (``tracking_record_many``) ends exactly as ``tracking_record`` one by one: the
same records, statuses and audit rows, each order's events in the same order, the orders delivered (together,
``orders_deliver_many``); an order that cannot be delivered refuses the file with the same error, nothing written.
Here, above shipping, because the parcels are packed and handed over first (orders shipped), as on the floor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from quai.core import clock
from quai.core.errors import Conflict
from quai.core.models import OutboxEvent, StateTransition
from quai.packing.tests.equivalence import events_per_aggregate, last_pk, transitions_per_aggregate
from quai.shipping import services
from quai.shipping.models import Shipment

MOMENT = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


class _Undo(Exception):
    pass


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


def _tracking_state(since: int, since_transition: int) -> dict[str, Any]:
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
        "orders": sorted(Order.objects.values_list("external_id", "status", "updated_at")),
        "events": events_per_aggregate(since, new_row_ids=set()),
        # Who delivered the orders, and when (the audit rows of each order, in its order).
        "transitions": transitions_per_aggregate(since_transition),
    }


def _one_by_one_then_together(updates: list[tuple[Any, list[Any]]]) -> tuple[list[int], list[int], Any, Any]:
    """The updates recorded one by one (then undone), then together, at the same moment: each form's new records
    per update and the state each left."""
    from datetime import timedelta

    since = (last_pk(OutboxEvent), last_pk(StateTransition))
    with clock.frozen(MOMENT + timedelta(days=2)):
        with pytest.raises(_Undo), transaction.atomic():
            single = [len(services.tracking_record(shipment=pk, events=events)) for pk, events in updates]
            one_by_one = _tracking_state(*since)
            raise _Undo
        many = [len(found) for found in services.tracking_record_many(updates=updates)]
    return single, many, one_by_one, _tracking_state(*since)


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
    single, many, one_by_one, together = _one_by_one_then_together(updates)
    assert single == many == [2, 1, 0, 0, 1]
    assert together == one_by_one
    statuses = {pk: status for pk, status, *_rest in together["shipments"]}
    assert (statuses[first.pk], statuses[second.pk], statuses[behind.pk]) == (
        "delivered",
        "in_transit",
        "label_created",
    )
    names = [row[0] for rows in together["events"].values() for row in rows]
    assert names.count("shipment.delivered") == 1 and "order.status_changed" in names


@pytest.mark.django_db
def test_many_deliveries_at_once_end_exactly_as_one_by_one() -> None:
    from datetime import timedelta

    from quai.shipping import domain
    from quai.shipping.carriers.base import TrackingEvent

    first, second, third, _behind = _shipped_parcels(4)
    at = MOMENT + timedelta(hours=2)

    def delivered(hours: int) -> TrackingEvent:
        return TrackingEvent(at + timedelta(hours=hours), f"SIM-DELIVERED-{hours}", "Delivered", domain.DELIVERED)

    moved = TrackingEvent(at, "SIM-TRANSIT", "Parcel collected", domain.IN_TRANSIT)
    late_note = TrackingEvent(at + timedelta(hours=30), "SIM-NOTE", "Left with a neighbour", domain.IN_TRANSIT)
    updates: list[tuple[Any, list[TrackingEvent]]] = [
        (second.pk, [moved]),
        (first.pk, [moved, delivered(20), late_note]),  # a scan after the delivery: told after it
        (third.pk, [delivered(22)]),
        (second.pk, [delivered(24)]),  # its "collected" earlier in the same file
    ]
    single, many, one_by_one, together = _one_by_one_then_together(updates)
    assert single == many == [1, 3, 1, 1]
    assert together == one_by_one
    assert [status for _ref, status, _at in together["orders"]].count("delivered") == 3
    delivered_steps = [t for steps in together["transitions"].values() for t in steps if t[1] == "delivered"]
    assert len(delivered_steps) == 3 and {t[2] for t in delivered_steps} == {"carrier tracking"}


@pytest.mark.django_db
def test_a_delivery_the_order_cannot_take_refuses_the_file_as_one_by_one_with_nothing_written() -> None:
    from datetime import timedelta

    from quai.orders.models import Order
    from quai.shipping import domain
    from quai.shipping.carriers.base import TrackingEvent

    first, second, _third, _behind = _shipped_parcels(4)
    Order.objects.filter(pk=second.order_id).update(status="delivered")  # told delivered by another parcel already
    at = MOMENT + timedelta(hours=20)
    updates: list[tuple[Any, list[TrackingEvent]]] = [
        (first.pk, [TrackingEvent(at, "SIM-DELIVERED", "Delivered", domain.DELIVERED)]),
        (second.pk, [TrackingEvent(at, "SIM-DELIVERED", "Delivered", domain.DELIVERED)]),
    ]
    since = (last_pk(OutboxEvent), last_pk(StateTransition))
    before = _tracking_state(*since)
    with clock.frozen(MOMENT + timedelta(days=2)):
        with pytest.raises(_Undo), transaction.atomic():
            services.tracking_record(shipment=updates[0][0], events=updates[0][1])
            with pytest.raises(Conflict) as single:
                services.tracking_record(shipment=updates[1][0], events=updates[1][1])
            raise _Undo
        with pytest.raises(Conflict) as many:
            services.tracking_record_many(updates=updates)
    assert single.value.code == many.value.code == "invalid_transition"
    assert single.value.details == many.value.details
    assert _tracking_state(*since) == before  # the file is refused whole: nothing of it written


@pytest.mark.django_db
def test_an_order_delivered_twice_in_one_batch_is_refused_as_its_second_delivery_one_by_one() -> None:
    from quai.orders.services.floor_shipping import order_deliver, orders_deliver_many

    first, second, _third, _behind = _shipped_parcels(4)
    with clock.frozen(MOMENT):
        with pytest.raises(_Undo), transaction.atomic():
            order_deliver(order=first.order_id, actor="carrier tracking")
            with pytest.raises(Conflict) as single:
                order_deliver(order=first.order_id, actor="carrier tracking")
            raise _Undo
        since = (last_pk(OutboxEvent), last_pk(StateTransition))
        before = _tracking_state(*since)
        with pytest.raises(Conflict) as many:
            orders_deliver_many(order_ids=[second.order_id, first.order_id, first.order_id], actor="carrier tracking")
    assert (single.value.code, single.value.details, str(single.value)) == (
        many.value.code,
        many.value.details,
        str(many.value),
    )
    assert _tracking_state(*since) == before  # nothing of the batch written, the other order's step included
