"""The wave release pins its orders' reservations through ``AllocationRun`` (the many form of
``reservation_allocate``): the same waves, batches, tasks, allocations, stock and events as the release it
replaced, which pinned each order's reservations one by one in a savepoint (kept below as the reference), and a
number of queries that grows with the batches, not with the orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext as _

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.errors import InsufficientStock, QuaiError
from quai.core.models import OutboxEvent
from quai.core.outbox import event_record
from quai.fulfillment import domain, services
from quai.fulfillment.events import WaveReleased
from quai.fulfillment.models import PickBatch, PickTask, Tote, Wave
from quai.fulfillment.selectors import release_rooms
from quai.fulfillment.tests.factories import Floor, floor_for, released_order
from quai.inventory.models import ReservationAllocation, StockQuantity
from quai.inventory.services import ALLOCATABLE_ZONE_KINDS, reservation_allocate, stock_policy_set, stock_receive
from quai.inventory.services.allocations import AllocationRun, Placement
from quai.orders.models import Order, OrderLine
from quai.promise.selectors import ship_by_for_orders
from quai.tenants.scope import Scope
from quai.warehouse.models import ZoneKind
from quai.warehouse.services import location_create, zone_create

pytestmark = pytest.mark.django_db


# --- The release as it was: each order's reservations pinned one by one, in a savepoint --------------------------


def _one_by_one_lines(order: Any, *, site: Any) -> list[domain.PickLine]:
    picks = []
    for line in OrderLine.objects.filter(order_id=order.pk, reserved_quantity__gt=0, reservation_id__isnull=False):
        reservation_allocate(reservation=line.reservation_id)
        for allocation in ReservationAllocation.objects.filter(
            reservation_id=line.reservation_id, quantity__gt=0
        ).values(
            "location_id",
            "location__zone_id",
            "location__site_id",
            "location__aisle",
            "location__x_m",
            "location__y_m",
            "location__zone__kind",
            "lot",
            "quantity",
        ):
            if allocation["location__site_id"] != site.pk or allocation["location__zone__kind"] not in (
                ALLOCATABLE_ZONE_KINDS
            ):
                raise InsufficientStock(
                    _("Some units of order %(order)s are not on the shelves of this site.")
                    % {"order": order.external_id}
                )
            picks.append(
                domain.PickLine(
                    line_id=line.pk,
                    reservation_id=line.reservation_id,
                    sku_id=line.sku_id,
                    location_id=allocation["location_id"],
                    zone_id=allocation["location__zone_id"],
                    aisle=allocation["location__aisle"],
                    x=float(allocation["location__x_m"]),
                    y=float(allocation["location__y_m"]),
                    lot=allocation["lot"],
                    quantity=allocation["quantity"],
                    unit_volume_cm3=services._unit_volume(line.sku),
                    unit_weight_g=int(line.sku.weight_g or 0),
                )
            )
    return picks


def _release_one_by_one(site: Any, criteria: domain.WaveCriteria, cart: domain.Cart) -> Wave:
    cutoffs, today = services._cutoffs(), clock.today()
    with transaction.atomic():
        waiting = services._waiting_orders()
        by_id = {order.pk: order for order in waiting}
        ship_by = ship_by_for_orders(scope=Scope.system("test"), order_ids=by_id)
        ranked = [
            floor.order_id
            for floor in domain.wave_rank(
                [services._floor_order(o, [], cutoffs, today, ship_by.get(o.pk)) for o in waiting], criteria
            )
        ]
        rooms = release_rooms(scope=Scope.system("test"), site_id=site.pk, at=clock.now())
        chosen, skipped = [], []
        for order_id in ranked:
            if len(chosen) >= criteria.capacity:
                break
            order = by_id[order_id]
            room = rooms.get(order.merchant_id)
            if room is not None and not room.fits(lines=1):
                room.held += 1
                continue
            try:
                with transaction.atomic():
                    lines = _one_by_one_lines(order, site=site)
            except QuaiError as error:
                skipped.append({"order_id": order.pk, "code": error.code, "message": str(error.message)})
                continue
            floor = services._floor_order(order, lines, cutoffs, today, ship_by.get(order.pk))
            if not lines or (criteria.zone_id is not None and criteria.zone_id not in floor.zone_ids):
                continue
            if room is not None:
                count = len({line.line_id for line in lines})
                if not room.fits(lines=count):
                    room.held += 1
                    continue
                room.take(lines=count)
            chosen.append(floor)
        wave = Wave.objects.create(
            site=site,
            criteria={"zone_id": criteria.zone_id, "totes": cart.totes},
            capacity=criteria.capacity,
            order_count=len(chosen),
            skipped=skipped,
            held=services._held_report(rooms),
        )
        batch_ids = []
        for planned in domain.batch_plan(chosen, cart):  # a layout and the free totes read per batch, as before
            totes = iter(services._free_totes(site, len(planned.totes)))
            layout = services.zone_layout(zone_id=planned.zone_id)
            batch_ids.append(services._batch_create(wave, planned, by_id, layout, totes).pk)
        event_record(
            WaveReleased(
                wave_id=wave.pk, site_id=site.pk, order_count=len(chosen), batch_ids=batch_ids, skipped=skipped
            )
        )
    return wave


# --- The floor ---------------------------------------------------------------------------------------------------


@pytest.fixture
def floor(merchant, other_merchant) -> Floor:  # type: ignore[no-untyped-def]
    """Orders that meet every path of a release: stock two orders want and only one gets; an order whose second
    line fails (its first line's units go to a later order); a SKU stocked at another site only; a reserve zone
    the zone criterion leaves out; a dated SKU whose short-dated lot is skipped; an order pinned before; a merchant
    held back by its release limit; more orders than the wave takes."""
    floor = floor_for(merchant, skus=6)
    elsewhere = floor_for(merchant, skus=0, site_code="elsewhere", prefix="EL")
    away = SkuFactory(merchant=merchant, code="AWAY", weight_g=100, length_mm=50, width_mm=50, height_mm=50)
    stock_receive(sku=away, location=elsewhere.zone.locations.first(), quantity=10)
    reserve = zone_create(site=floor.site, code="RES", name="Reserve", kind=ZoneKind.STORAGE)
    shelf = location_create(site=floor.site, zone=reserve, code="RES-01", x_m=30, y_m=2)
    bulky = SkuFactory(merchant=merchant, code="BULK", weight_g=900, length_mm=300, width_mm=200, height_mm=200)
    stock_receive(sku=bulky, location=shelf, quantity=10)
    stock_receive(sku=floor.skus[0], location=shelf, quantity=5)  # SKU 0 at two places: FIFO takes the first
    dock = zone_create(site=floor.site, code="RCV", name="Receiving", kind=ZoneKind.RECEIVING)
    dock_place = location_create(site=floor.site, zone=dock, code="RCV-01", x_m=1, y_m=1)
    for k in (1, 2, 3):  # sellable (reserved at intake) but not yet on a shelf: never allocated
        stock_receive(sku=floor.skus[k], location=dock_place, quantity=10)
    dated = SkuFactory(merchant=merchant, code="DATED", expiry_tracked=True, lot_tracked=True, weight_g=100)
    today = clock.today()
    stock_receive(sku=dated, location=floor.places["FL-05"], quantity=8, lot="SOON", expiry=today + timedelta(days=3))
    stock_receive(sku=dated, location=shelf, quantity=8, lot="LATER", expiry=today + timedelta(days=60))
    stock_receive(sku=dated, location=floor.places["FL-04"], quantity=8, lot="MID", expiry=today + timedelta(days=30))
    stock_policy_set(merchant=merchant, min_shelf_life_days=10)
    floor.skus += [away, bulky, dated]
    plans: list[tuple[str, list[tuple[int, int]]]] = [
        ("A", [(1, 15)]),
        ("B", [(1, 10)]),  # 5 of SKU 1 left on the shelf: skipped
        ("C", [(1, 5), (0, 12)]),
        ("D", [(2, 3), (3, 22)]),  # 20 of SKU 3 on the shelf: skipped, its 3 units of SKU 2 given back
        ("D2", [(3, 5)]),
        ("E", [(2, 20)]),  # every unit of SKU 2 on the shelf: only because D's were given back
        ("F", [(6, 2)]),  # at the other site only
        ("G", [(7, 2), (4, 1)]),  # reserve zone
        ("H", [(8, 10)]),  # dated: MID then LATER, never SOON
        ("I", [(0, 10)]),  # 13 left of SKU 0 between its two places
        ("J", [(5, 1)]),
        ("K", [(4, 2)]),
        ("L", [(8, 7)]),  # 6 dated units left with shelf life: skipped, short-dated counted
        ("M", [(5, 2)]),
    ]
    for external_id, lines in plans:
        released_order(floor, external_id, lines)
    pinned = released_order(floor, "P", [(4, 3)])
    reservation_allocate(reservation=OrderLine.objects.get(order=pinned).reservation_id)  # pinned before
    rival_skus = [SkuFactory(merchant=other_merchant, code=f"RV-{k}", weight_g=100) for k in range(2)]
    for sku in rival_skus:
        stock_receive(sku=sku, location=floor.places["FL-03"], quantity=20)
    rival = Floor(site=floor.site, zone=floor.zone, merchant=other_merchant, skus=rival_skus)
    for n in range(4):
        released_order(rival, f"R{n}", [(0, 1), (1, 1)])
    services.release_limit_set(merchant=other_merchant, site=floor.site, source="sale", lines_per_hour=5)
    for n in range(3):
        services.tote_ensure(site=floor.site, code=f"TOTE-{n + 1:04d}")
    OutboxEvent.objects.all().delete()
    return floor


def _state(wave: Wave) -> dict[str, Any]:
    batches = list(PickBatch.objects.filter(wave=wave).order_by("pk"))
    index = {batch.pk: k for k, batch in enumerate(batches)}
    return {
        "wave": (wave.order_count, wave.skipped, wave.held),
        "batches": [
            (b.zone_id, b.single_units, b.routing, b.route_m, b.s_shape_m, b.largest_gap_m, b.order_by_order_m, b.route)
            for b in batches
        ],
        "tasks": [
            (index[t.batch_id], t.sequence, t.order_id, t.line_id, t.reservation_id, t.location_id, *_what(t))
            for t in PickTask.objects.filter(batch__wave=wave).select_related("tote").order_by("batch_id", "sequence")
        ],
        "totes": sorted(
            (t.code, index.get(t.batch_id) if t.batch_id else None, t.slot) for t in Tote.objects.filter(site=wave.site)
        ),
        "allocations": [
            (a.reservation_id, a.stock_id, a.location_id, a.lot, a.expiry, a.quantity, a.created_at)
            for a in ReservationAllocation.objects.order_by("pk")
        ],
        "stock": list(StockQuantity.objects.order_by("pk").values_list("pk", "on_hand", "reserved")),
        "events": [
            (e.name, e.payload if e.name == "inventory.reservation_allocated" else e.payload.get("order_count"))
            for e in OutboxEvent.objects.order_by("pk")
        ],
    }


def _what(task: PickTask) -> tuple[Any, ...]:
    return (task.lot, task.quantity, task.tote.code, task.tote.slot)


class Undo(Exception):
    pass


@pytest.mark.parametrize("zone_criterion", [False, True])
@pytest.mark.parametrize("capacity", [6, 40])
def test_the_release_pins_and_batches_exactly_what_it_did_order_by_order(floor, capacity, zone_criterion):
    criteria = domain.WaveCriteria(capacity=capacity, zone_id=floor.zone.pk if zone_criterion else None)
    cart = domain.Cart(totes=3)
    now = clock.now()  # one instant for both runs: the allocations' times are compared too
    with pytest.raises(Undo), transaction.atomic(), clock.frozen(now):
        one_by_one = _state(_release_one_by_one(floor.site, criteria, cart))
        raise Undo
    assert not Wave.objects.exists() and len(_state_allocations()) == 1  # undone: only order P's pin
    with clock.frozen(now):
        wave = services.wave_release(site=floor.site, criteria=criteria, cart=cart)
    together = _state(wave)
    assert together == one_by_one
    codes = {entry["order_id"]: entry["code"] for entry in wave.skipped}
    assert sorted(codes.values()) == ["insufficient_stock"] * len(codes) and codes
    if capacity == 40:
        assert len(codes) == 4  # B, D (its second line), F (at the other site), L (short-dated)
        assert wave.held and wave.held[0]["orders"] >= 1  # the rival's limit stopped some of its orders


def _state_allocations() -> list[Any]:
    return list(ReservationAllocation.objects.values_list("pk", flat=True))


def test_the_release_s_queries_grow_with_its_batches_not_its_orders(merchant):
    floor = floor_for(merchant, skus=6)
    for n in range(40):
        services.tote_ensure(site=floor.site, code=f"TOTE-{n + 1:04d}")

    def release(count: int) -> tuple[int, int]:
        orders = [released_order(floor, f"Q{count}-{n}", [(n % 6, 1), ((n + 1) % 6, 1)]) for n in range(count)]
        with CaptureQueriesContext(connection) as context:
            wave = services.wave_release(
                site=floor.site, criteria=domain.WaveCriteria(capacity=count), cart=domain.Cart(totes=5)
            )
        assert wave.order_count == len(orders)  # the earlier wave's orders are in its batches: not waiting
        return len(context.captured_queries), wave.batches.count()

    few, few_batches = release(5)
    many, many_batches = release(20)
    # Per extra batch: the batch, its totes, its tasks; nothing per order (it was about 30 statements per order).
    assert many - few <= 3 * (many_batches - few_batches), (few, many)


def test_a_short_dated_lot_is_skipped_and_counted_in_the_refusal(floor):
    wave = services.wave_release(site=floor.site, criteria=domain.WaveCriteria(capacity=40), cart=domain.Cart())
    dated = floor.skus[8]
    taken = ReservationAllocation.objects.filter(reservation__sku=dated).values_list("lot", "quantity")
    assert sorted(taken) == [("LATER", 2), ("MID", 8)]
    order_l = Order.objects.get(merchant=floor.merchant, external_id="L")
    refusal = next(entry for entry in wave.skipped if entry["order_id"] == order_l.pk)
    missing = _("Insufficient stock to allocate: %(short)d unit(s) missing at pickable places.") % {"short": 1}
    assert refusal == {"order_id": order_l.pk, "code": "insufficient_stock", "message": missing}
    assert StockQuantity.objects.get(sku=dated, lot="SOON").reserved == 0


def _placements_walked(run: AllocationRun, reservation_id: int) -> list[Placement]:
    """A reservation's placements as ``AllocationRun`` found them before it kept its plans by reservation: every
    plan of the run walked for those of this reservation, in the order made."""
    made = [
        Placement(
            location_id=row.location_id,
            zone_id=row.place[2],
            site_id=row.place[3],
            zone_kind=row.place[4],
            aisle=row.place[5],
            x_m=float(row.place[6]),
            y_m=float(row.place[7]),
            lot=row.lot,
            quantity=quantity,
        )
        for planned in run._planned
        if planned.reservation.pk == reservation_id
        for row, quantity in planned.lines
    ]
    return [*run._existing[reservation_id], *made]


def test_a_reservation_s_placements_are_its_own_plans_as_a_walk_of_every_plan_finds_them(floor):
    """The run answers each reservation's placements from its own plans (walking every plan of the run for each
    reservation grew as the square of a wave's orders): the same placements, in the same order, at every step,
    after an order undone (its second line short) and once every order is tried."""
    lines = OrderLine.objects.filter(order__status="released", reservation_id__isnull=False, reserved_quantity__gt=0)
    by_order: dict[int, list[int]] = {}
    for order_id, reservation_id in lines.order_by("order_id", "position").values_list("order_id", "reservation_id"):
        by_order.setdefault(order_id, []).append(reservation_id)
    reservation_ids = [pk for its in by_order.values() for pk in its]
    run = AllocationRun()
    run.load(reservation_ids)
    undone = 0
    for its in by_order.values():
        try:
            with run.group():
                for reservation_id in its:
                    assert run.allocate(reservation_id) == _placements_walked(run, reservation_id)
        except QuaiError:
            undone += 1
        for reservation_id in reservation_ids:
            if not isinstance(run._reservations[reservation_id], QuaiError):
                assert run._placements(reservation_id) == _placements_walked(run, reservation_id)
    assert undone and len(run._planned) > 1


def test_the_kept_routes_give_the_batches_routes_and_tasks_planned_afresh(floor, monkeypatch):
    """A wave's routes come from ``routing.plan_route_kept`` (remembered across waves): the same batches, lengths,
    routes and task sequences as every route planned afresh, with the routes kept by an earlier wave on the same
    layout — and, once a place has moved, the new layout's routes, not the kept ones."""
    from quai.fulfillment import routing

    criteria, cart = domain.WaveCriteria(capacity=40), domain.Cart(totes=3)
    now = clock.now()

    def released(kept: bool) -> dict[str, Any]:
        with pytest.raises(Undo), transaction.atomic(), clock.frozen(now), monkeypatch.context() as patch:
            if not kept:
                patch.setattr(routing, "plan_route_kept", routing.plan_route)
            state = _state(services.wave_release(site=floor.site, criteria=criteria, cart=cart))
            raise Undo
        return state

    afresh = released(kept=False)
    assert afresh["batches"] and afresh["tasks"]
    routing._plan_route_kept.cache_clear()
    assert released(kept=True) == afresh  # the routes planned, then kept
    assert routing._plan_route_kept.cache_info().currsize
    assert released(kept=True) == afresh  # the routes answered from the kept ones
    hits = routing._plan_route_kept.cache_info().hits
    assert hits
    # A place moved (its aisle's centre line and ends move with it): another layout, whose routes are planned.
    place = floor.places["FL-03"]
    place.y_m += 7
    place.save()
    moved = released(kept=False)
    assert moved["batches"] != afresh["batches"]
    assert released(kept=True) == moved
