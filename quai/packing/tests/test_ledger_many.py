"""The pack line's and the truck's batch forms of the ledger and order steps end exactly as the one-by-one forms:
``parcels_stock_pack`` as ``parcel_stock_pack`` per parcel, ``parcels_stock_ship`` as ``parcel_stock_ship``,
``orders_pack_many`` / ``orders_ship_many`` as ``order_pack`` / ``order_ship`` — the same movements, quantity rows,
allocations, reservations, SKU counters, order steps, audit rows and outbox events (each aggregate's in the same
order); a parcel of the batch that one by one would refuse refuses the batch with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent, StateTransition
from quai.inventory.models import Reservation, ReservationAllocation, StockLevel, StockMovement, StockQuantity
from quai.inventory.selectors import stock_drift
from quai.inventory.services import reservation_allocate
from quai.inventory.services.parcels import (
    ParcelStock,
    parcel_stock_pack,
    parcel_stock_ship,
    parcels_stock_pack,
    parcels_stock_ship,
)
from quai.orders.models import Order, OrderLine
from quai.orders.services.floor_shipping import order_pack, order_ship, orders_pack_many, orders_ship_many
from quai.packing.tests.factories import floor_build, released_order
from quai.warehouse.models import ZoneKind
from quai.warehouse.tests.factories import LocationFactory, ZoneFactory

MOMENT = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
#: Ids of rows the writes create: on PostgreSQL they differ between two runs (sequences are not rolled back).
NEW_ROW_IDS = {"movement_id", "transition_id", "id"}


class _Undo(Exception):
    pass


@pytest.fixture
def floor(db):  # type: ignore[no-untyped-def]
    return floor_build()


def _orders(floor: Any) -> list[tuple[Order, list[int]]]:
    """Four released orders of one or two SKUs (two share the mug): each with its reservations."""
    made = [
        released_order(floor.merchant, "LED-1", [{"sku": "SHIRT-M", "quantity": 2}, {"sku": "MUG", "quantity": 1}]),
        released_order(floor.merchant, "LED-2", [{"sku": "MUG", "quantity": 3}]),
        released_order(floor.merchant, "LED-3", [{"sku": "SHIRT-M", "quantity": 1}]),
        released_order(floor.merchant, "LED-4", [{"sku": "MUG", "quantity": 2}, {"sku": "SHIRT-M", "quantity": 4}]),
    ]
    return [
        (
            order,
            sorted(
                OrderLine.objects.filter(order_id=order.pk, reservation_id__isnull=False).values_list(
                    "reservation_id", flat=True
                )
            ),
        )
        for order in made
    ]


def _per_aggregate(rows: Any) -> dict[tuple[str, str], list[Any]]:
    grouped: dict[tuple[str, str], list[Any]] = {}
    for aggregate, aggregate_id, *rest in rows:
        grouped.setdefault((aggregate, str(aggregate_id)), []).append(tuple(rest))
    return grouped


def _state(since_event: int, since_transition: int, since_movement: int) -> dict[str, Any]:
    return {
        "movements": list(
            StockMovement.objects.filter(pk__gt=since_movement)
            .order_by("pk")
            .values_list(
                "kind", "sku_id", "lot", "from_location_id", "to_location_id", "quantity", "reason", "document_type"
            )
        ),
        "document_ids": list(
            StockMovement.objects.filter(pk__gt=since_movement).order_by("pk").values_list("document_id", flat=True)
        ),
        "stock": sorted(StockQuantity.objects.values_list("location_id", "sku_id", "lot", "on_hand", "reserved")),
        "levels": sorted(StockLevel.objects.values_list("sku_id", "on_hand", "reserved")),
        "allocations": sorted(
            ReservationAllocation.objects.values_list(
                "reservation_id", "location_id", "lot", "quantity", "consumed_quantity"
            )
        ),
        "reservations": sorted(Reservation.objects.values_list("pk", "quantity", "consumed_quantity", "status")),
        "orders": sorted(Order.objects.values_list("external_id", "status")),
        "transitions": _per_aggregate(
            StateTransition.objects.filter(pk__gt=since_transition)
            .order_by("pk")
            .values_list("aggregate", "aggregate_id", "from_status", "to_status", "actor_label", "details")
        ),
        "events": _per_aggregate(
            (
                e.aggregate,
                e.aggregate_id,
                e.name,
                e.merchant_id,
                e.occurred_at,
                {k: v for k, v in e.payload.items() if k not in NEW_ROW_IDS},
            )
            for e in OutboxEvent.objects.filter(pk__gt=since_event).order_by("pk")
        ),
    }


def _last(model: Any) -> int:
    last = model.objects.order_by("-pk").first()
    return last.pk if last else 0


@pytest.mark.django_db
def test_packing_and_shipping_many_parcels_ends_exactly_as_one_by_one(floor):  # type: ignore[no-untyped-def]
    made = _orders(floor)
    jobs = [
        ParcelStock(parcel_id=f"P{n}", reservation_ids=ids, location=floor.station) for n, (_o, ids) in enumerate(made)
    ]
    since = (_last(OutboxEvent), _last(StateTransition), _last(StockMovement))
    with clock.frozen(MOMENT):
        with pytest.raises(_Undo), transaction.atomic():
            for job, (order, _ids) in zip(jobs, made, strict=True):
                parcel_stock_pack(
                    reservation_ids=job.reservation_ids, location=job.location, parcel_id=job.parcel_id, actor="line"
                )
                order_pack(order=order.pk, actor="line", parcel_id=7)
            packed_one_by_one = _state(*since)
            for job, (order, _ids) in zip(jobs, made, strict=True):
                parcel_stock_ship(
                    reservation_ids=job.reservation_ids, location=job.location, parcel_id=job.parcel_id, actor="dock"
                )
                order_ship(order=order.pk, actor="dock", parcel_ids=[7])
            shipped_one_by_one = _state(*since)
            raise _Undo
        assert _state(*since)["events"] == {}
        moved = parcels_stock_pack(parcels=jobs, actor="line")
        orders_pack_many(packed=[(order.pk, 7) for order, _ids in made], actor="line")
        packed_together = _state(*since)
        consumed = parcels_stock_ship(parcels=jobs, actor="dock")
        orders_ship_many(shipped=[(order.pk, [7]) for order, _ids in made], actor="dock")
        shipped_together = _state(*since)
    assert packed_together == packed_one_by_one
    assert shipped_together == shipped_one_by_one
    assert [len(m) for m in moved] == [2, 1, 1, 2]  # one movement per allocation, each parcel's own
    assert [sorted(r.pk for r in found) for found in consumed] == [ids for _o, ids in made]
    assert {status for _ref, status in shipped_together["orders"]} == {"shipped"}
    assert not StockQuantity.objects.filter(location=floor.station, on_hand__gt=0).exists()
    assert stock_drift() == []


@pytest.mark.django_db
def test_a_parcel_whose_units_are_not_at_its_station_refuses_the_truck_with_nothing_written(floor):  # type: ignore[no-untyped-def]
    made = _orders(floor)
    jobs = [
        ParcelStock(parcel_id=f"P{n}", reservation_ids=ids, location=floor.station) for n, (_o, ids) in enumerate(made)
    ]
    parcels_stock_pack(parcels=jobs[:2] + jobs[3:], actor="line")  # the third parcel was never packed:
    for pk in made[2][1]:
        reservation_allocate(reservation=pk)  # its units still on the shelf
    before = _state(_last(OutboxEvent), _last(StateTransition), _last(StockMovement))
    with pytest.raises(QuaiError) as refused:
        parcels_stock_ship(parcels=jobs, actor="dock")
    assert refused.value.code == "parcel_stock_elsewhere"
    assert refused.value.details["reservation_id"] == made[2][1][0]
    with pytest.raises(QuaiError) as alone:
        parcel_stock_ship(reservation_ids=jobs[2].reservation_ids, location=floor.station, parcel_id="P2", actor="dock")
    assert (alone.value.code, alone.value.details) == (refused.value.code, refused.value.details)
    after = _state(_last(OutboxEvent), _last(StateTransition), _last(StockMovement))
    assert {k: v for k, v in after.items() if k not in ("events", "transitions", "movements", "document_ids")} == {
        k: v for k, v in before.items() if k not in ("events", "transitions", "movements", "document_ids")
    }
    assert stock_drift() == []


@pytest.mark.django_db
def test_a_station_in_a_zone_that_does_not_count_refuses_the_pack_line_with_nothing_written(floor):  # type: ignore[no-untyped-def]
    made = _orders(floor)
    closed = ZoneFactory(site=floor.station.site, code="OLD", kind=ZoneKind.PACKING, status="closed")
    elsewhere = LocationFactory(zone=closed, site=floor.station.site, code="PACK-OLD")
    jobs = [
        ParcelStock(parcel_id=f"P{n}", reservation_ids=ids, location=floor.station) for n, (_o, ids) in enumerate(made)
    ]
    jobs[1] = ParcelStock(parcel_id="P1", reservation_ids=made[1][1], location=elsewhere)
    movements, events = StockMovement.objects.count(), OutboxEvent.objects.count()
    stock = sorted(StockQuantity.objects.values_list("location_id", "sku_id", "on_hand", "reserved"))
    with pytest.raises(QuaiError) as refused:
        parcels_stock_pack(parcels=jobs, actor="line")
    with pytest.raises(QuaiError) as alone:
        parcel_stock_pack(reservation_ids=made[1][1], location=elsewhere, parcel_id="P1", actor="line")
    assert refused.value.code == alone.value.code == "zone_closed"
    assert (StockMovement.objects.count(), OutboxEvent.objects.count()) == (movements, events)
    assert sorted(StockQuantity.objects.values_list("location_id", "sku_id", "on_hand", "reserved")) == stock
    # The same order twice in a batch refuses it as the second one-by-one step would: nothing written.
    with pytest.raises(QuaiError) as twice:
        orders_pack_many(packed=[(made[0][0].pk, 1), (made[0][0].pk, 2)], actor="line")
    assert twice.value.code == "invalid_transition"
    assert Order.objects.get(pk=made[0][0].pk).status == "released"
    assert not StateTransition.objects.filter(aggregate_id=str(made[0][0].pk), to_status="packed").exists()
