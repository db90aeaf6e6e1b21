"""Stock services on the database: movements, bad input (refused, ledger unchanged), reservations, zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from quai.core import clock
from quai.core.errors import Conflict, InsufficientStock, NotFound, QuaiError
from quai.core.models import OutboxEvent
from quai.inventory import selectors, services
from quai.inventory.models import (
    MovementKind,
    MoveTask,
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockQuantity,
    StockStatus,
)
from quai.inventory.tests.factories import LocationFactory, SkuFactory, ZoneFactory, stocked_sku
from quai.tenants.scope import Scope
from quai.warehouse.models import ZoneStatus

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.set_now(NOW)


def _snapshot():
    return (
        list(StockMovement.objects.order_by("pk").values_list("pk", flat=True)),
        list(StockQuantity.objects.order_by("pk").values_list("pk", "on_hand", "reserved", "counted")),
        list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "reserved")),
        list(Reservation.objects.order_by("pk").values_list("pk", "quantity", "status")),
        OutboxEvent.objects.count(),
    )


def _refused(code: str, call, *args, **kwargs) -> QuaiError:
    before = _snapshot()
    with pytest.raises(QuaiError) as excinfo:
        call(*args, **kwargs)
    assert excinfo.value.code == code, excinfo.value
    assert _snapshot() == before, "a refused call changed something"
    return excinfo.value


def _level(sku) -> tuple[int, int]:
    level = StockLevel.objects.get(sku=sku)
    return level.on_hand, level.reserved


# --- Movements ------------------------------------------------------------------------------------------------


def test_a_receipt_writes_the_ledger_the_quantity_the_counter_and_an_event(merchant):
    sku = SkuFactory(merchant=merchant)
    location = LocationFactory()
    movement = services.stock_receive(
        sku=sku, location=location, quantity=12, reason="ASN 1", document_type="asn", document_id="1"
    )
    assert (movement.kind, movement.quantity, movement.to_location_id, movement.occurred_at) == (
        MovementKind.RECEIPT,
        12,
        location.pk,
        NOW,
    )
    assert StockQuantity.objects.get(sku=sku).on_hand == 12
    assert _level(sku) == (12, 0)
    event = OutboxEvent.objects.get(name="inventory.stock_changed")
    assert event.payload["sellable_on_hand"] == 12
    assert event.merchant_id == merchant.pk


def test_quarantined_stock_is_on_hand_but_not_available(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=5, status=StockStatus.QUARANTINE)
    assert StockQuantity.objects.get(sku=sku).on_hand == 5
    assert selectors.availability_get(scope=Scope.merchant(merchant), sku_id=sku.pk).available == 0


def test_a_move_between_places_keeps_availability_and_a_status_change_moves_it(merchant):
    sku, here = stocked_sku(merchant=merchant, quantity=10)
    there = LocationFactory(zone=here.zone)
    services.stock_move(sku=sku, from_location=here, to_location=there, quantity=4, kind=MovementKind.PUTAWAY)
    assert _level(sku) == (10, 0)
    services.stock_move(sku=sku, from_location=there, to_location=there, quantity=1, to_status=StockStatus.DAMAGED)
    assert _level(sku) == (9, 0)
    contents = {(q.location_id, q.status): q.on_hand for q in selectors.location_contents(location=there)}
    assert contents == {(there.pk, "sellable"): 3, (there.pk, "damaged"): 1}
    assert selectors.stock_drift() == []


def test_an_adjustment_and_a_count_leave_count_movements(merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    services.stock_adjust(sku=sku, location=location, quantity_delta=-2, reason="broken")
    movement = services.stock_count(sku=sku, location=location, counted_quantity=11)
    assert movement is not None and movement.kind == MovementKind.COUNT and movement.to_location_id == location.pk
    assert services.stock_count(sku=sku, location=location, counted_quantity=11) is None
    assert _level(sku) == (11, 0)
    assert selectors.stock_drift() == []


# --- Bad input: refused with a clear error, nothing written -----------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -3])
def test_zero_or_negative_quantities_are_refused(merchant, quantity):
    sku, location = stocked_sku(merchant=merchant, quantity=5)
    other = LocationFactory(zone=location.zone)
    _refused("invalid_quantity", services.stock_receive, sku=sku, location=location, quantity=quantity)
    _refused(
        "invalid_quantity", services.stock_move, sku=sku, from_location=location, to_location=other, quantity=quantity
    )
    _refused("invalid_quantity", services.reservation_create, merchant=merchant, sku=sku, quantity=quantity)
    _refused("invalid_quantity", services.stock_adjust, sku=sku, location=location, quantity_delta=0, reason="x")


def test_a_lot_on_a_sku_without_lots_is_refused(merchant):
    sku = SkuFactory(merchant=merchant, lot_tracked=False)
    _refused("lot_not_tracked", services.stock_receive, sku=sku, location=LocationFactory(), quantity=1, lot="L1")


def test_an_expiry_date_in_the_past_is_refused(merchant):
    sku = SkuFactory(merchant=merchant, lot_tracked=True, expiry_tracked=True)
    _refused(
        "expiry_in_past",
        services.stock_receive,
        sku=sku,
        location=LocationFactory(),
        quantity=1,
        lot="L1",
        expiry=date(2030, 5, 31),
    )


def test_moving_more_than_is_there_is_refused(merchant):
    sku, here = stocked_sku(merchant=merchant, quantity=5)
    there = LocationFactory(zone=here.zone)
    error = _refused(
        "insufficient_stock", services.stock_move, sku=sku, from_location=here, to_location=there, quantity=6
    )
    assert error.details["available"] == 5
    _refused("insufficient_stock", services.stock_move, sku=sku, from_location=there, to_location=here, quantity=1)
    _refused("insufficient_stock", services.stock_adjust, sku=sku, location=here, quantity_delta=-6, reason="lost")


def test_putaway_to_a_blocked_location_is_refused(merchant):
    sku, here = stocked_sku(merchant=merchant, quantity=5)
    blocked = LocationFactory(zone=here.zone, status="blocked")
    _refused(
        "location_blocked",
        services.stock_move,
        sku=sku,
        from_location=here,
        to_location=blocked,
        quantity=1,
        kind=MovementKind.PUTAWAY,
    )
    _refused("location_blocked", services.stock_receive, sku=sku, location=blocked, quantity=1)


def test_stock_cannot_enter_a_closed_zone(merchant):
    closed = LocationFactory(zone=ZoneFactory(status=ZoneStatus.CLOSED))
    _refused("zone_closed", services.stock_receive, sku=SkuFactory(merchant=merchant), location=closed, quantity=1)


def test_a_reservation_for_another_merchants_sku_is_refused(merchant, other_merchant):
    foreign_sku, _location = stocked_sku(merchant=other_merchant, quantity=5)
    error = _refused("sku_not_found", services.reservation_create, merchant=merchant, sku=foreign_sku, quantity=1)
    assert isinstance(error, NotFound)


def test_the_ledger_is_append_only(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=5)
    movement = StockMovement.objects.get(sku=sku)
    movement.quantity = 50
    with pytest.raises(Conflict):
        movement.save()
    with pytest.raises(Conflict):
        movement.delete()
    with pytest.raises(Conflict):
        StockMovement.objects.filter(sku=sku).update(quantity=50)
    with pytest.raises(Conflict):
        StockMovement.objects.filter(sku=sku).delete()
    assert StockMovement.objects.get(sku=sku).quantity == 5


# --- Reservations -----------------------------------------------------------------------------------------------


def test_reservations_never_take_more_than_is_available(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=5)
    services.reservation_create(merchant=merchant, sku=sku, quantity=3)
    with translation.override("en"):
        error = _refused("insufficient_stock", services.reservation_create, merchant=merchant, sku=sku, quantity=3)
    assert isinstance(error, InsufficientStock)
    assert "Insufficient stock" in error.message
    services.reservation_create(merchant=merchant, sku=sku, quantity=2)
    assert _level(sku) == (5, 5)
    assert OutboxEvent.objects.filter(name="inventory.reservation_made").count() == 2


def test_refusals_speak_french_to_french_users(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=1)
    with translation.override("fr"), pytest.raises(InsufficientStock) as excinfo:
        services.reservation_create(merchant=merchant, sku=sku, quantity=2)
    assert excinfo.value.message.startswith("Stock insuffisant")


def test_a_sku_never_received_cannot_be_reserved(merchant):
    _refused(
        "insufficient_stock",
        services.reservation_create,
        merchant=merchant,
        sku=SkuFactory(merchant=merchant),
        quantity=1,
    )


def test_promised_stock_cannot_be_quarantined_or_adjusted_away(merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=5)
    services.reservation_create(merchant=merchant, sku=sku, quantity=4)
    _refused(
        "insufficient_stock",
        services.stock_move,
        sku=sku,
        from_location=location,
        to_location=location,
        quantity=2,
        to_status=StockStatus.QUARANTINE,
    )
    _refused("insufficient_stock", services.stock_adjust, sku=sku, location=location, quantity_delta=-2, reason="x")
    services.stock_adjust(sku=sku, location=location, quantity_delta=-1, reason="one broken")
    assert _level(sku) == (4, 4)


def test_the_two_stage_life_cycle_reserve_allocate_consume(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=6, document_id="SO-1/1")
    services.reservation_allocate(reservation=reservation)
    row = StockQuantity.objects.get(sku=sku)
    assert (row.on_hand, row.reserved) == (10, 6)
    services.reservation_consume(reservation=reservation, quantity=4)
    reservation.refresh_from_db()
    assert (reservation.quantity, reservation.consumed_quantity, reservation.status) == (2, 4, "open")
    services.reservation_consume(reservation=reservation)
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONSUMED
    assert _level(sku) == (4, 0)
    picks = StockMovement.objects.filter(sku=sku, kind=MovementKind.PICK)
    assert sorted(p.quantity for p in picks) == [2, 4]
    assert {p.document_id for p in picks} == {"SO-1/1"}
    assert selectors.stock_drift() == []


def test_consuming_more_than_is_allocated_is_refused(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=3)
    _refused("reservation_not_allocated", services.reservation_consume, reservation=reservation)
    services.reservation_allocate(reservation=reservation)
    _refused("reservation_not_allocated", services.reservation_consume, reservation=reservation, quantity=4)


def test_allocation_is_fefo_and_skips_lots_short_of_the_merchants_shelf_life(merchant):
    sku = SkuFactory(merchant=merchant, lot_tracked=True, expiry_tracked=True)
    soon, later, latest = LocationFactory(), LocationFactory(), LocationFactory()
    services.stock_receive(sku=sku, location=latest, quantity=5, lot="C", expiry=date(2031, 1, 1))
    services.stock_receive(sku=sku, location=soon, quantity=5, lot="A", expiry=date(2030, 6, 20))
    services.stock_receive(sku=sku, location=later, quantity=5, lot="B", expiry=date(2030, 9, 1))
    services.stock_policy_set(merchant=merchant, min_shelf_life_days=30)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=7)
    services.reservation_allocate(reservation=reservation)
    allocations = sorted((a.lot, a.quantity) for a in reservation.allocations.all())
    assert allocations == [("B", 5), ("C", 2)]
    too_much = services.reservation_create(merchant=merchant, sku=sku, quantity=5)
    error = _refused("insufficient_stock", services.reservation_allocate, reservation=too_much)
    assert error.details["short_dated"] == 5


def test_stock_at_the_receiving_dock_is_available_but_allocated_only_once_put_away(merchant):
    from quai.warehouse.models import ZoneKind

    dock = LocationFactory(zone=ZoneFactory(kind=ZoneKind.RECEIVING))
    sku, _dock = stocked_sku(merchant=merchant, quantity=4, location=dock)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=3)
    _refused("insufficient_stock", services.reservation_allocate, reservation=reservation)
    shelf = LocationFactory(zone=ZoneFactory(site=dock.site))
    services.stock_move(sku=sku, from_location=dock, to_location=shelf, quantity=4, kind=MovementKind.PUTAWAY)
    services.reservation_allocate(reservation=reservation)
    assert reservation.allocations.get().location_id == shelf.pk


def test_allocation_is_fifo_without_expiry(merchant):
    sku = SkuFactory(merchant=merchant)
    first, second = LocationFactory(), LocationFactory()
    services.stock_receive(sku=sku, location=first, quantity=3)
    clock.advance(timedelta(hours=1))
    services.stock_receive(sku=sku, location=second, quantity=3)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=4)
    services.reservation_allocate(reservation=reservation)
    assert sorted((a.location_id, a.quantity) for a in reservation.allocations.all()) == [
        (first.pk, 3),
        (second.pk, 1),
    ]


def test_release_and_shrink_give_units_back(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=6)
    services.reservation_allocate(reservation=reservation)
    services.reservation_shrink(reservation=reservation, quantity=2)
    assert _level(sku) == (10, 4)
    assert StockQuantity.objects.get(sku=sku).reserved == 4
    _refused("shrink_too_large", services.reservation_shrink, reservation=reservation, quantity=5)
    services.reservation_release(reservation=reservation)
    reservation.refresh_from_db()
    assert (reservation.status, reservation.released_quantity) == (ReservationStatus.RELEASED, 6)
    assert _level(sku) == (10, 0)
    assert StockQuantity.objects.get(sku=sku).reserved == 0
    _refused("reservation_closed", services.reservation_release, reservation=reservation)
    assert selectors.stock_drift() == []


def test_a_reservation_moves_to_another_place(merchant):
    sku, here = stocked_sku(merchant=merchant, quantity=5)
    there = LocationFactory(zone=here.zone)
    services.stock_receive(sku=sku, location=there, quantity=5)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=3)
    services.reservation_allocate(reservation=reservation)
    allocation = reservation.allocations.get()
    assert allocation.location_id == here.pk
    services.reservation_move(reservation=reservation, allocation=allocation, to_location=there, quantity=2)
    reserved = dict(StockQuantity.objects.filter(sku=sku).values_list("location_id", "reserved"))
    assert reserved == {here.pk: 1, there.pk: 2}
    _refused(
        "insufficient_stock",
        services.reservation_move,
        reservation=reservation,
        allocation=allocation,
        to_location=LocationFactory(),
    )
    assert selectors.stock_drift() == []


# --- Temporary zones, availability, zone closing ---------------------------------------------------------------


def test_stock_in_a_temporary_zone_counts_only_inside_its_window(merchant):
    zone = ZoneFactory(valid_from=NOW + timedelta(days=1), valid_until=NOW + timedelta(days=3))
    sku, _location = stocked_sku(merchant=merchant, quantity=8, location=LocationFactory(zone=zone))
    assert _level(sku) == (0, 0)  # pre-staged before the sale: not available yet

    clock.set_now(NOW + timedelta(days=1))
    assert services.stock_counting_sync() == services.CountingSyncReport(added=1, removed=0, held=0)
    assert _level(sku) == (8, 0)
    services.reservation_create(merchant=merchant, sku=sku, quantity=5)

    clock.set_now(NOW + timedelta(days=3))
    report = services.stock_counting_sync()
    assert report.held == 1  # the window ended but 5 units are promised: the stock keeps covering them
    assert _level(sku) == (8, 5)
    services.reservation_release(reservation=Reservation.objects.get(sku=sku))
    assert services.stock_counting_sync().removed == 1
    assert _level(sku) == (0, 0)
    assert selectors.stock_drift() == []


def test_availability_shows_the_buffer_and_incoming_stock(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    services.reservation_create(merchant=merchant, sku=sku, quantity=3)
    services.stock_policy_set(merchant=merchant, safety_buffer=1)
    services.stock_policy_set(merchant=merchant, sku=sku, safety_buffer=2)

    def asns(merchant_id, sku_ids):
        return {sku.pk: [(date(2030, 6, 5), 20), (None, 4)]} if sku.pk in sku_ids else {}

    services.register_incoming_source(asns)
    try:
        row = selectors.availability_get(scope=Scope.merchant(merchant), sku_id=sku.pk)
    finally:
        services.unregister_incoming_source(asns)
    assert (row.on_hand, row.reserved, row.available, row.safety_buffer, row.available_to_sell) == (10, 3, 7, 2, 5)
    assert [(i.expected_date, i.quantity) for i in row.incoming] == [(date(2030, 6, 5), 20), (None, 4)]
    assert row.incoming_quantity == 24


def test_location_load_sums_volume_and_weight(merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=3)
    load = selectors.location_load(location=location)
    assert load.sku_ids == {sku.pk}
    assert load.volume_mm3 == 3 * sku.volume_mm3
    assert load.weight_g == 3 * sku.weight_g
    zones = list(selectors.stock_by_zone(scope=Scope.merchant(merchant)))
    assert [(z["zone_id_value"], z["on_hand"]) for z in zones] == [(location.zone_id, 3)]


def test_a_zone_with_stock_refuses_to_close_and_move_tasks_empty_it(merchant):
    from quai.warehouse.services import zone_close

    storage = LocationFactory()
    closing = ZoneFactory(site=storage.site)
    sku, inside = stocked_sku(merchant=merchant, quantity=6, location=LocationFactory(zone=closing))
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=2)
    services.reservation_allocate(reservation=reservation)

    with pytest.raises(Conflict) as excinfo:
        zone_close(zone=closing)
    assert excinfo.value.code == "zone_not_empty"
    kinds = {b["kind"] for b in excinfo.value.details["blockers"]}
    assert kinds == {"stock", "reservations"}

    tasks = services.zone_empty_tasks(zone=closing)
    assert [(t.from_location_id, t.to_location_id, t.quantity) for t in tasks] == [(inside.pk, storage.pk, 6)]
    assert services.zone_empty_tasks(zone=closing) == []  # the open task is not duplicated
    services.move_task_complete(task=tasks[0])
    assert MoveTask.objects.get().status == "done"
    allocation = reservation.allocations.get()
    assert allocation.location_id == storage.pk
    assert StockQuantity.objects.get(location=storage, sku=sku).reserved == 2
    zone_close(zone=closing)
    assert selectors.stock_drift() == []


def test_stock_check_reports_drift_and_exits_non_zero(merchant, capsys):
    sku, _location = stocked_sku(merchant=merchant, quantity=4)
    call_command("stock_check", "--no-progress")
    assert "No drift" in capsys.readouterr().out
    StockQuantity.objects.filter(sku=sku).update(on_hand=5)  # what a bug bypassing the services would do
    with pytest.raises(CommandError):
        call_command("stock_check", "--no-progress")
    assert "ledger says 4" in capsys.readouterr().out


def test_overcommitment_is_nil_and_the_database_refuses_a_level_reserved_beyond_on_hand(merchant):
    from django.db import IntegrityError, transaction

    sku, _location = stocked_sku(merchant=merchant, quantity=4)
    services.reservation_create(merchant=merchant, sku=sku, quantity=3, document_type="order", document_id="SO-1")
    assert selectors.stock_overcommitment() == selectors.Overcommitment(oversold_units=0, negative_places=0)
    # The report's count is the second line: the first is the table's own check, which a bug bypassing the
    # reservation guard runs into.
    with pytest.raises(IntegrityError), transaction.atomic():
        StockLevel.objects.filter(sku=sku).update(on_hand=1)
    assert selectors.stock_overcommitment().oversold_units == 0


def test_a_reservation_records_the_same_event_on_every_database(merchant):
    from quai.core.outbox import event_payload
    from quai.inventory.events import ReservationMade

    sku, _location = stocked_sku(merchant=merchant, quantity=5)
    reservation = services.reservation_create(
        merchant=merchant, sku=sku, quantity=2, document_type="order", document_id="SO-7"
    )
    stored = Reservation.objects.get(pk=reservation.pk)
    assert (stored.quantity, stored.requested_quantity, stored.status, stored.created_at) == (2, 2, "open", NOW)
    event = OutboxEvent.objects.get(name="inventory.reservation_made")
    expected = ReservationMade(
        reservation_id=reservation.pk,
        sku_id=sku.pk,
        quantity=2,
        document_type="order",
        document_id="SO-7",
        sku_code=sku.code,
    )
    assert event.payload == event_payload(expected)
    assert (event.aggregate, event.aggregate_id, event.merchant_id, event.occurred_at) == (
        "reservation",
        str(reservation.pk),
        merchant.pk,
        NOW,
    )
    assert event.relayed_at is None and event.attempts == 0 and event.last_error == ""


# --- Idempotent reservations (issue 11, item 7) ------------------------------------------------------------------


def test_a_retried_reservation_of_a_document_line_is_refused_with_the_existing_id_and_holds_stock_once(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    first = services.reservation_create(
        merchant=merchant, sku=sku, quantity=3, document_type="order", document_id="SO-42"
    )
    error = _refused(
        "reservation_exists",
        services.reservation_create,
        merchant=merchant,
        sku=sku,
        quantity=3,
        document_type="order",
        document_id="SO-42",
    )
    assert error.details["reservation_id"] == first.pk
    assert (error.details["document_id"], error.details["quantity"]) == ("SO-42", 3)
    assert _level(sku) == (10, 3)
    assert Reservation.objects.filter(sku=sku).count() == 1
    assert selectors.stock_drift() == []


def test_the_same_document_may_reserve_other_skus_other_document_types_and_lines_without_document(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    other_sku, _other_location = stocked_sku(merchant=merchant, quantity=10)
    services.reservation_create(merchant=merchant, sku=sku, quantity=1, document_type="order", document_id="SO-1")
    services.reservation_create(merchant=merchant, sku=other_sku, quantity=1, document_type="order", document_id="SO-1")
    services.reservation_create(merchant=merchant, sku=sku, quantity=1, document_type="transfer", document_id="SO-1")
    services.reservation_create(merchant=merchant, sku=sku, quantity=1)
    services.reservation_create(merchant=merchant, sku=sku, quantity=1)
    assert _level(sku) == (10, 4)
    assert _level(other_sku) == (10, 1)


def test_a_document_line_whose_reservation_was_released_may_reserve_again(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    first = services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_id="SO-5")
    services.reservation_release(reservation=first)
    again = services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_id="SO-5")
    assert again.pk != first.pk
    assert _level(sku) == (10, 2)


def _blind_first_look(monkeypatch) -> None:
    """Make the look-up that precedes the insert miss the open reservation, as when two first attempts run at
    once (each sees none); the re-read after the index fires still sees it."""
    from django.db import connection

    if connection.vendor == "postgresql":  # the look-up is part of the one statement there
        monkeypatch.setattr(
            "quai.inventory.services.reservations._RESERVE_PG_DOCUMENT_SQL",
            services.reservations._RESERVE_PG_DOCUMENT_SQL.replace("AND status = 'open'", "AND status = 'nothing'"),
        )
        return
    real = selectors.reservation_open_for_document
    calls: list[int] = []

    def blind_first_time(**kwargs):
        calls.append(1)
        return None if len(calls) == 1 else real(**kwargs)

    monkeypatch.setattr(selectors, "reservation_open_for_document", blind_first_time)


def test_a_duplicate_that_slips_past_the_first_look_is_stopped_by_the_unique_index(merchant, monkeypatch):
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    first = services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_id="SO-6")
    _blind_first_look(monkeypatch)
    error = _refused(
        "reservation_exists", services.reservation_create, merchant=merchant, sku=sku, quantity=2, document_id="SO-6"
    )
    assert error.details["reservation_id"] == first.pk
    assert _level(sku) == (10, 2)


def test_a_duplicate_stopped_by_the_index_inside_a_transaction_leaves_the_transaction_usable(merchant, monkeypatch):
    from django.db import transaction

    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    first = services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_id="SO-8")
    _blind_first_look(monkeypatch)
    with transaction.atomic():
        with pytest.raises(Conflict) as excinfo:
            services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_id="SO-8")
        later = services.reservation_create(merchant=merchant, sku=sku, quantity=1, document_id="SO-9")
    assert (excinfo.value.code, excinfo.value.details["reservation_id"]) == ("reservation_exists", first.pk)
    assert Reservation.objects.filter(pk__in=[first.pk, later.pk]).count() == 2
    assert _level(sku) == (10, 3)


# --- Reserve and allocate in one service (STYLE.md: no handler chains two services in its own transaction) -------


def test_a_reservation_created_with_allocate_is_pinned_to_places_at_once(merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=5)
    reservation = services.reservation_create(
        merchant=merchant, sku=sku, quantity=2, document_id="SO-20", allocate=True
    )
    assert [(a.location_id, a.quantity) for a in reservation.allocations.all()] == [(location.pk, 2)]
    assert StockQuantity.objects.get(sku=sku).reserved == 2
    assert _level(sku) == (5, 2)
    assert [e.name for e in OutboxEvent.objects.filter(name__startswith="inventory.reservation_")] == [
        "inventory.reservation_made",
        "inventory.reservation_allocated",
    ]


def test_a_reservation_that_cannot_be_allocated_is_not_made_either(merchant):
    zone = ZoneFactory(kind="receiving")  # on hand and available, but not yet at a pickable place
    sku, _location = stocked_sku(merchant=merchant, quantity=5, location=LocationFactory(zone=zone))
    _refused(
        "insufficient_stock",
        services.reservation_create,
        merchant=merchant,
        sku=sku,
        quantity=2,
        document_id="SO-21",
        allocate=True,
    )
    assert _level(sku) == (5, 0)
    assert services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_id="SO-21").quantity == 2
