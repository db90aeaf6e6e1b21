"""``reservation_pick_to_many`` against ``reservation_pick_to`` line by line, on the same situation: a reservation
split over two shelves, one whose units were already partly picked into the tote (its allocation on the tote's row
takes the new units: merged, not duplicated), two reservations into one tote, a line that empties an allocation.
The same movements, allocations, quantity rows and ``StockChanged`` events (each world built, read, undone; rows
compared by what they are, not their ids, which PostgreSQL's sequences do not give back on undo)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.errors import Conflict
from quai.core.models import OutboxEvent
from quai.inventory.models import ReservationAllocation, StockMovement, StockQuantity
from quai.inventory.selectors import stock_drift
from quai.inventory.services import reservation_create, reservation_pick_to, reservation_release, stock_receive, totes
from quai.inventory.services.totes import PickToLine, reservation_pick_to_many
from quai.warehouse.models import Location, ZoneKind
from quai.warehouse.services import location_create, rack_bulk_create, zone_create
from quai.warehouse.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


class Undo(Exception):
    pass


@pytest.fixture
def world(merchant) -> dict[str, Any]:
    site: Any = SiteFactory(code="pt")
    zone = zone_create(site=site, code="PCK", name="Picking", kind=ZoneKind.PICKING)
    rack_bulk_create(site=site, zone=zone, aisles="M", bays=4, levels=1)
    shelves = list(Location.objects.filter(zone=zone).order_by("pick_sequence"))
    totes = zone_create(site=site, code="TOT", name="Totes", kind=ZoneKind.PROCESSING)
    tote = location_create(site=site, zone=totes, code="TOTE-0001")
    red, blue = (SkuFactory(merchant=merchant, code=code) for code in ("RED", "BLUE"))
    stock_receive(sku=red, location=shelves[0], quantity=3)
    stock_receive(sku=red, location=shelves[1], quantity=10)
    stock_receive(sku=blue, location=shelves[2], quantity=5)
    first = reservation_create(merchant=merchant, sku=red, quantity=6, allocate=True)  # 3 on M-01, 3 on M-02
    second = reservation_create(merchant=merchant, sku=blue, quantity=4, allocate=True)
    reservation_pick_to(reservation=first.pk, from_location=shelves[0], to_location=tote, quantity=1)
    OutboxEvent.objects.all().delete()
    return {"shelves": shelves, "tote": tote, "first": first.pk, "second": second.pk}


def _lines(world: dict[str, Any]) -> list[PickToLine]:
    shelves, tote = world["shelves"], world["tote"].pk
    return [
        PickToLine(reservation=world["first"], from_location_id=shelves[0].pk, to_location_id=tote, quantity=2),
        PickToLine(reservation=world["second"], from_location_id=shelves[2].pk, to_location_id=tote, quantity=3),
        PickToLine(reservation=world["first"], from_location_id=shelves[1].pk, to_location_id=tote, quantity=2),
        PickToLine(reservation=world["second"], from_location_id=shelves[2].pk, to_location_id=tote, quantity=1),
    ]


def _state() -> dict[str, Any]:
    return {
        "allocations": list(
            ReservationAllocation.objects.order_by(
                "reservation_id", "stock__location_id", "stock__sku_id", "pk"
            ).values_list(
                "reservation_id",
                "stock__location_id",
                "stock__sku_id",
                "location_id",
                "lot",
                "expiry",
                "quantity",
                "consumed_quantity",
            )
        ),
        "stock": list(
            StockQuantity.objects.order_by("location_id", "sku_id").values_list(
                "location_id", "sku_id", "on_hand", "reserved", "counted"
            )
        ),
        "movements": list(
            StockMovement.objects.order_by("pk").values_list(
                "kind",
                "sku_id",
                "from_location_id",
                "to_location_id",
                "quantity",
                "reason",
                "document_type",
                "document_id",
            )
        ),
        "events": [
            {k: v for k, v in e.payload.items() if k != "movement_id"} | {"name": e.name}
            for e in OutboxEvent.objects.order_by("pk")
        ],
    }


def test_many_moves_what_line_by_line_moves(world):
    lines = _lines(world)
    places = {loc.pk: loc for loc in [*world["shelves"], world["tote"]]}
    now = clock.now()
    with pytest.raises(Undo), transaction.atomic(), clock.frozen(now):
        per_line = [
            len(
                reservation_pick_to(
                    reservation=line.reservation,
                    from_location=places[line.from_location_id],
                    to_location=places[line.to_location_id],
                    quantity=line.quantity,
                )
            )
            for line in lines
        ]
        expected = _state(), per_line
        raise Undo
    with clock.frozen(now):
        moved = reservation_pick_to_many(lines=lines)
    assert (_state(), [len(m) for m in moved]) == expected
    merged = ReservationAllocation.objects.filter(reservation_id=world["first"], location_id=world["tote"].pk)
    assert list(merged.values_list("quantity", flat=True)) == [5]  # 1 picked before + 2 + 2, one allocation
    assert stock_drift() == []


def _line_by_line(world: dict[str, Any], lines: list[PickToLine], now: Any) -> dict[str, Any]:
    places = {loc.pk: loc for loc in [*world["shelves"], world["tote"]]}
    with pytest.raises(Undo), transaction.atomic(), clock.frozen(now):
        for line in lines:
            reservation_pick_to(
                reservation=line.reservation,
                from_location=places[line.from_location_id],
                to_location=places[line.to_location_id],
                quantity=line.quantity,
            )
        expected = _state()
        raise Undo
    return expected


def test_a_tote_row_another_writer_creates_meanwhile_is_read_back(world, monkeypatch):
    """The tote's new quantity rows are inserted with their ids returned; one that a concurrent writer created
    between the read and the insert is skipped by the insert and read again: the same rows and moves."""
    lines = _lines(world)
    now = clock.now()
    expected = _line_by_line(world, lines, now)
    real_insert = totes.rows_insert
    raced: list[Any] = []

    def racing_insert(model: Any, rows: Any, **options: Any) -> Any:
        if model is StockQuantity:  # not the allocations' and movements' inserts
            raced.append(StockQuantity.objects.create(**rows[0]))  # the other writer's row, empty as ours would be
        return real_insert(model, rows, **options)

    monkeypatch.setattr(totes, "rows_insert", racing_insert)
    with clock.frozen(now):
        reservation_pick_to_many(lines=lines)
    assert raced  # the tote had no row for BLUE: one was inserted, and the race taken
    assert _state() == expected
    assert stock_drift() == []


def test_a_line_asking_more_than_allocated_is_refused_with_nothing_written(world):
    lines = _lines(world)
    too_many = PickToLine(
        reservation=world["second"],
        from_location_id=world["shelves"][2].pk,
        to_location_id=world["tote"].pk,
        quantity=1,
    )  # the second reservation holds 4 there: 3 + 1 + 1 asked
    before = _state()
    with pytest.raises(Conflict) as refused:
        reservation_pick_to_many(lines=[*lines, too_many])
    assert refused.value.code == "reservation_not_allocated"
    assert _state() == before


def test_a_closed_reservation_is_refused_as_line_by_line_refuses_it(world):
    lines = _lines(world)
    reservation_release(reservation=world["second"])
    OutboxEvent.objects.all().delete()
    before = _state()
    with pytest.raises(Conflict) as many:
        reservation_pick_to_many(lines=lines)
    with pytest.raises(Conflict) as one:
        reservation_pick_to(
            reservation=world["second"],
            from_location=world["shelves"][2],
            to_location=world["tote"],
            quantity=3,
        )
    assert (many.value.code, str(many.value.message)) == (one.value.code, str(one.value.message))
    assert many.value.code == "reservation_closed"
    assert _state() == before
