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
from quai.packing.tests.equivalence import events_per_aggregate, last_pk, transitions_per_aggregate
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
        "transitions": transitions_per_aggregate(since_transition),
        "events": events_per_aggregate(since_event, new_row_ids=NEW_ROW_IDS),
    }


@pytest.mark.django_db
def test_packing_and_shipping_many_parcels_ends_exactly_as_one_by_one(floor):  # type: ignore[no-untyped-def]
    made = _orders(floor)
    jobs = [
        ParcelStock(parcel_id=f"P{n}", reservation_ids=ids, location=floor.station) for n, (_o, ids) in enumerate(made)
    ]
    since = (last_pk(OutboxEvent), last_pk(StateTransition), last_pk(StockMovement))
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
    before = _state(last_pk(OutboxEvent), last_pk(StateTransition), last_pk(StockMovement))
    with pytest.raises(QuaiError) as refused:
        parcels_stock_ship(parcels=jobs, actor="dock")
    assert refused.value.code == "parcel_stock_elsewhere"
    assert refused.value.details["reservation_id"] == made[2][1][0]
    with pytest.raises(QuaiError) as alone:
        parcel_stock_ship(reservation_ids=jobs[2].reservation_ids, location=floor.station, parcel_id="P2", actor="dock")
    assert (alone.value.code, alone.value.details) == (refused.value.code, refused.value.details)
    after = _state(last_pk(OutboxEvent), last_pk(StateTransition), last_pk(StockMovement))
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


def _opened(since_event: int) -> dict[str, Any]:
    from quai.packing.models import Parcel, ParcelItem

    return {
        "parcels": list(
            Parcel.objects.order_by("pk").values_list(
                "order_id", "order_reference", "station_id", "tote_code", "status", "opened_by_id"
            )
        ),
        "items": list(
            ParcelItem.objects.order_by("pk").values_list(
                "parcel__order_id", "sku_id", "sku_code", "name", "lot", "expected", "scanned", "reservation_id"
            )
        ),
        "events": [
            (e.name, e.aggregate, {k: v for k, v in e.payload.items() if k != "parcel_id"})
            for e in OutboxEvent.objects.filter(pk__gt=since_event).order_by("pk")
        ],
    }


@pytest.mark.django_db
def test_opening_many_parcels_ends_exactly_as_opening_them_one_by_one(floor):  # type: ignore[no-untyped-def]
    from quai.orders import services as orders
    from quai.packing import services

    made = _orders(floor)
    services.parcel_open(code="LED-4", station=floor.station, actor="early")  # already open: resumed
    orders.order_hold(order=made[1][0].pk, reason="customer_service")
    second = LocationFactory(zone=floor.station.zone, site=floor.station.site, code="PACK-2")
    opens = [
        services.ParcelOpen(code="led-3", station=second, actor="anna"),  # the reference in any case
        services.ParcelOpen(code="LED-2", station=floor.station, actor="paul"),  # held: refused
        services.ParcelOpen(code="NOPE-9", station=floor.station, actor="paul"),  # unknown: refused
        services.ParcelOpen(code="LED-1", station=floor.station, actor="paul", tote_code="T-9"),
        services.ParcelOpen(code="LED-4", station=second, actor="anna"),  # resumed
        services.ParcelOpen(code="LED-1", station=second, actor="anna"),  # the one just opened, resumed
    ]
    since = last_pk(OutboxEvent)
    with clock.frozen(MOMENT):
        one_by_one: list[tuple[str, Any]] = []
        with pytest.raises(_Undo), transaction.atomic():
            for wanted in opens:
                try:
                    parcel = services.parcel_open(
                        code=wanted.code, station=wanted.station, actor=wanted.actor, tote_code=wanted.tote_code
                    )
                    one_by_one.append(("", parcel.order_id))
                except QuaiError as exc:
                    one_by_one.append((exc.code, None))
            expected = _opened(since)
            raise _Undo
        outcomes = services.parcels_open_many(opens=opens)
    assert [(o.error.code if o.error else "", o.parcel.order_id if o.parcel else None) for o in outcomes] == one_by_one
    assert [code for code, _order in one_by_one] == ["", "order_on_hold", "order_not_found", "", "", ""]
    assert outcomes[3].parcel is not None and outcomes[5].parcel is not None
    assert outcomes[3].parcel.pk == outcomes[5].parcel.pk
    assert _opened(since) == expected
    assert len(expected["events"]) == 2  # LED-3 and LED-1 opened; the refusals and the resumed ones write none


@pytest.mark.django_db
def test_many_scan_bursts_end_exactly_as_each_burst_recorded_one_by_one(floor):  # type: ignore[no-untyped-def]
    from quai.catalog.tests.factories import SkuFactory
    from quai.orders import services as orders
    from quai.packing import services
    from quai.packing.models import ParcelItem

    SkuFactory(merchant=floor.merchant, code="CAP", gtin="03760000000055")  # the merchant's, in no order
    shirt, mug, cap = "3760000000017", "03760000000031", "3760000000055"
    made = _orders(floor)
    parcels = [services.parcel_open(code=o.external_id, station=floor.station, actor="p") for o, _ids in made]
    orders.order_hold(order=made[2][0].pk, reason="fraud")  # stopped: every code refused, the refusal returned
    bursts = [
        services.ScanBurst(parcel=parcels[1], codes=[mug, mug], actor="anna"),
        services.ScanBurst(parcel=parcels[0], codes=[shirt, cap, shirt, "NOPE", mug, mug], actor="paul"),
        services.ScanBurst(parcel=parcels[2], codes=[shirt], actor="paul"),
        services.ScanBurst(
            parcel=parcels[1], codes=[mug, mug], actor="anna"
        ),  # the same parcel again: the third mug, then one too many
        services.ScanBurst(parcel=parcels[3].pk, codes=[], actor="anna"),
    ]
    since = last_pk(OutboxEvent)

    def state() -> dict[str, Any]:
        return {
            "items": list(ParcelItem.objects.order_by("pk").values_list("parcel_id", "sku_code", "scanned")),
            "weights": list(ParcelItem.objects.order_by("pk").values_list("parcel__weight_ok", "parcel__last_error")),
            "events": [
                (e.name, e.aggregate_id, e.payload) for e in OutboxEvent.objects.filter(pk__gt=since).order_by("pk")
            ],
        }

    with clock.frozen(MOMENT):
        one_by_one: list[tuple[list[tuple[str, str]], str]] = []
        with pytest.raises(_Undo), transaction.atomic():
            for burst in bursts:
                try:
                    found = services.parcel_scans_record(parcel=burst.parcel, codes=burst.codes, actor=burst.actor)
                    one_by_one.append(([(o.code, o.error.code if o.error else "") for o in found], ""))
                except QuaiError as exc:
                    one_by_one.append(([], exc.code))
            expected = state()
            raise _Undo
        answers = services.parcels_scans_record_many(bursts=bursts)
    together = [
        (
            [(o.code, o.error.code if o.error else "") for o in a.outcomes] if a.error is None else [],
            a.error.code if a.error else "",
        )
        for a in answers
    ]
    assert together == one_by_one
    assert [code for _outcomes, code in one_by_one] == ["", "", "order_on_hold", "", ""]
    assert one_by_one[1][0] == [
        (shirt, ""),
        (cap, "item_not_in_order"),
        (shirt, ""),
        ("NOPE", "unknown_code"),
        (mug, ""),
        (mug, "item_extra"),
    ]
    assert [e for _c, e in one_by_one[3][0]] == ["", "item_extra"]  # LED-2 takes three mugs
    assert [len(a.outcomes) for a in answers] == [2, 6, 1, 2, 0]  # the held burst's codes recorded refused
    assert state() == expected


@pytest.mark.django_db
def test_shipping_many_orders_splits_the_ones_waiting_for_stock_as_one_by_one(floor):  # type: ignore[no-untyped-def]
    made = _orders(floor)
    for order, _ids in made:
        order_pack(order=order.pk, actor="line", parcel_id=1)
    # The second order's line still waits for backordered units: its parcel leaves as a split shipment.
    OrderLine.objects.filter(order_id=made[1][0].pk).update(backordered_quantity=1)
    shipped = [(order.pk, [n]) for n, (order, _ids) in enumerate(made)]
    since = (last_pk(OutboxEvent), last_pk(StateTransition), last_pk(StockMovement))
    with clock.frozen(MOMENT):
        with pytest.raises(_Undo), transaction.atomic():
            for order_id, parcel_ids in shipped:
                order_ship(order=order_id, actor="dock", parcel_ids=parcel_ids)
            one_by_one = _state(*since)
            raise _Undo
        orders_ship_many(shipped=shipped, actor="dock")
    together = _state(*since)
    assert together == one_by_one
    statuses = dict(together["orders"])
    assert statuses == {"LED-1": "shipped", "LED-2": "partially_shipped", "LED-3": "shipped", "LED-4": "shipped"}


def _ledger_rows(since_event: int, since_movement: int) -> dict[str, Any]:
    """Every column of the rows a truck writes (the movements' own ids and the new rows' ids in events left out)."""
    return {
        "movements": list(
            StockMovement.objects.filter(pk__gt=since_movement).order_by("pk").values(*_columns(StockMovement))
        ),
        "reservations": list(Reservation.objects.order_by("pk").values()),
        "allocations": list(ReservationAllocation.objects.order_by("pk").values()),
        "stock": list(StockQuantity.objects.order_by("pk").values()),
        "levels": list(StockLevel.objects.order_by("pk").values()),
        "events": events_per_aggregate(since_event, new_row_ids=NEW_ROW_IDS),
    }


def _columns(model: Any) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields if not field.primary_key]


@pytest.mark.django_db
def test_a_truck_writes_every_column_as_its_parcels_shipped_one_by_one(floor):  # type: ignore[no-untyped-def]
    made = _orders(floor)
    jobs = [
        ParcelStock(parcel_id=f"P{n}", reservation_ids=ids, location=floor.station) for n, (_o, ids) in enumerate(made)
    ]
    parcels_stock_pack(parcels=jobs, actor="line")
    # A parcel scanned twice onto the truck: its reservations are consumed by the first, skipped by the second.
    truck = [*jobs, ParcelStock(parcel_id="P1-again", reservation_ids=made[1][1], location=floor.station)]
    since = (last_pk(OutboxEvent), last_pk(StockMovement))
    with clock.frozen(MOMENT):
        with pytest.raises(_Undo), transaction.atomic():
            one_by_one = [
                parcel_stock_ship(
                    reservation_ids=job.reservation_ids, location=job.location, parcel_id=job.parcel_id, actor="dock"
                )
                for job in truck
            ]
            expected = _ledger_rows(*since)
            raise _Undo
        together = parcels_stock_ship(parcels=truck, actor="dock")
    assert _ledger_rows(*since) == expected
    assert [[(r.pk, r.quantity, r.consumed_quantity, r.status) for r in found] for found in together] == [
        [(r.pk, r.quantity, r.consumed_quantity, r.status) for r in found] for found in one_by_one
    ]
    assert [len(found) for found in together] == [2, 1, 1, 2, 0]
    assert len(expected["movements"]) == 6 and {m["kind"] for m in expected["movements"]} == {"ship"}
