"""Paper picking: a batch confirmed in one action ends exactly as the same batch picked scan by scan.

Two identical worlds (two merchants, two sites, the same SKUs, stock and orders) are built; one batch is picked on
the handheld (``pick_scan`` × 3 per stop, ``pick_short`` for a short), the other confirmed by a supervisor
(``batch_confirm_picked``), and everything the ledger, the tasks, the batch, the orders and the outbox say is
compared once the database ids are replaced by codes.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent
from quai.fulfillment import services
from quai.fulfillment.models import BatchStatus, PickShortage, PickTask, TaskStatus
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.inventory.models import ReservationAllocation, StockMovement, StockQuantity
from quai.inventory.selectors import stock_drift
from quai.orders.models import Order, OrderLine
from quai.orders.services import order_cancel, order_hold
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = pytest.mark.django_db
PICK_AT = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)

# (external id, lines as (SKU index, quantity)): several orders sharing SKUs and places, one line split in two.
ORDERS = [
    ("C-1", [(0, 2), (3, 1)]),
    ("C-2", [(0, 1), (1, 2)]),
    ("C-3", [(2, 3)]),
    ("C-4", [(4, 1), (5, 2), (1, 1)]),
    ("C-5", [(3, 2)]),
]


def _world(merchant: Any, site_code: str) -> Any:
    floor = floor_for(merchant, site_code=site_code)
    orders = {external_id: released_order(floor, external_id, lines) for external_id, lines in ORDERS}
    wave = wave_for(floor, totes=8)
    (batch,) = wave.batches.all()
    return floor, orders, batch


def _stop_orders(orders: dict[str, Any], holds: tuple[str, ...], cancels: tuple[str, ...]) -> None:
    for external_id in holds:
        order_hold(order=orders[external_id].pk, reason="fraud")
    for external_id in cancels:
        order_cancel(order=orders[external_id].pk, reason="customer asked")


def _scan_all(batch: Any, picker: Any, shorts: dict[tuple[str, str], int]) -> None:
    """The handheld: every stop scanned in turn; a stopped order's refusal skipped as the picker does."""
    task = services.current_task(batch)
    while task is not None:
        try:
            services.pick_scan(batch_id=batch.pk, operator=picker, code=task.location.code)
            services.pick_scan(batch_id=batch.pk, operator=picker, code=task.sku.gtin)
            key = (Order.objects.get(pk=task.order_id).external_id, task.sku.code)
            if key in shorts:
                services.pick_short(
                    batch_id=batch.pk, operator=picker, found_quantity=shorts[key], resolution="backorder"
                )
            else:
                services.pick_scan(batch_id=batch.pk, operator=picker, code=task.tote.code)
        except QuaiError as refusal:
            assert refusal.code in ("order_on_hold", "order_cancelled"), refusal.code
        task = services.current_task(batch)


def _shorts_by_task(batch: Any, shorts: dict[tuple[str, str], int]) -> dict[int, int]:
    found = {}
    for task in batch.tasks.select_related("sku"):
        key = (Order.objects.get(pk=task.order_id).external_id, task.sku.code)
        if key in shorts:
            found[task.pk] = shorts[key]
    return found


def _snapshot(floor: Any, batch: Any, since: int, until: int | None = None) -> dict[str, Any]:
    """What the world says, by codes (ids differ between the two worlds)."""
    site = floor.site
    stock = {
        (row.location.code, row.sku.code, row.lot, row.status): (row.on_hand, row.reserved)
        for row in StockQuantity.objects.filter(location__site=site).select_related("location", "sku")
        if row.on_hand or row.reserved
    }
    orders = {o.pk: o.external_id for o in Order.objects.filter(merchant=floor.merchant)}
    lines = OrderLine.objects.filter(order__merchant=floor.merchant).select_related("sku")
    of_reservation = {line.reservation_id: (orders[line.order_id], line.sku.code) for line in lines}
    allocations: Counter[tuple[Any, ...]] = Counter()
    for a in ReservationAllocation.objects.filter(location__site=site, quantity__gt=0).select_related("location"):
        allocations[(*of_reservation[a.reservation_id], a.location.code, a.lot)] += a.quantity
    reservations = sorted(
        (orders.get(line.order_id), line.sku.code, line.reserved_quantity, line.backordered_quantity)
        for line in OrderLine.objects.filter(order__merchant=floor.merchant).select_related("sku")
    )
    tasks = sorted(
        (
            t.sequence,
            orders[t.order_id],
            t.sku.code,
            t.location.code,
            t.tote.code,
            t.quantity,
            t.picked_quantity,
            t.status,
            t.location_ok,
            t.item_ok,
            t.note,
            t.picked_at,
        )
        for t in PickTask.objects.filter(batch=batch).select_related("sku", "location", "tote")
    )
    batch.refresh_from_db()
    events = OutboxEvent.objects.filter(pk__gt=since)
    if until is not None:
        events = events.filter(pk__lte=until)
    ignored = {"order_id", "batch_id", "task_id", "sku_id", "movement_id", "from_location_id", "to_location_id"}
    ignored |= {"reservation_id", "document_id", "line_id", "merchant_id"}
    payloads = Counter(
        (e.name, tuple(sorted((k, str(v)) for k, v in e.payload.items() if k not in ignored and k != "order_ids")))
        for e in events
    )
    movements = Counter(
        (m.kind, m.sku.code, m.from_location.code if m.from_location else "", m.to_location.code, m.quantity, m.lot)
        for m in StockMovement.objects.filter(to_location__site=site, kind="pick").select_related(
            "sku", "from_location", "to_location"
        )
    )
    shortages = sorted(
        (orders[s.order_id], s.location.code, s.missing_quantity, s.status)
        for s in PickShortage.objects.filter(task__batch=batch).select_related("location")
    )
    return {
        "stock": stock,
        "allocations": dict(allocations),
        "lines": reservations,
        "orders": sorted((o.external_id, o.status) for o in Order.objects.filter(merchant=floor.merchant)),
        "tasks": tasks,
        "batch": (batch.status, batch.done_at),
        "events": Counter(e.name for e in events),
        "payloads": payloads,
        "movements": movements,
        "shortages": shortages,
    }


def _compare(
    *, holds: tuple[str, ...] = (), cancels: tuple[str, ...] = (), shorts: dict[tuple[str, str], int] | None = None
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    shorts = shorts or {}
    picker = StaffUserFactory(username="paper-picker")
    supervisor = StaffUserFactory(username="chef", is_superuser=True)
    scanned_floor, scanned_orders, scanned_batch = _world(MerchantFactory(code="scan"), "scan")
    paper_floor, paper_orders, paper_batch = _world(MerchantFactory(code="paper"), "paper")

    # The same frozen instant for both pickings: the tasks' ``picked_at`` and the batches' ``done_at`` compare.
    clock.set_now(PICK_AT)
    services.batch_start(batch_id=scanned_batch.pk, operator=picker)
    _stop_orders(scanned_orders, holds, cancels)
    before = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    _scan_all(scanned_batch, picker, shorts)
    after = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    scanned = _snapshot(scanned_floor, scanned_batch, before, after)

    clock.set_now(PICK_AT)
    services.batch_start(batch_id=paper_batch.pk, operator=picker)
    _stop_orders(paper_orders, holds, cancels)
    before = OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    services.batch_confirm_picked(
        batch_id=paper_batch.pk, operator=supervisor, shorts=_shorts_by_task(paper_batch, shorts)
    )
    paper = _snapshot(paper_floor, paper_batch, before)
    return scanned, paper, paper_batch


def _same(scanned: dict[str, Any], paper: dict[str, Any]) -> None:
    for key in scanned:  # the tote codes are each site's own (TOTE-0001…): the same in both worlds
        assert scanned[key] == paper[key], key


def test_a_batch_confirmed_at_once_ends_exactly_as_the_same_batch_picked_scan_by_scan():
    scanned, paper, _batch = _compare()
    _same(scanned, paper)
    assert paper["batch"][0] == BatchStatus.DONE
    assert paper["events"]["fulfilment.pick_confirmed"] == 9
    assert paper["events"]["fulfilment.tote_completed"] == 5
    assert paper["events"]["fulfilment.batch_status_changed"] == 1
    assert paper["events"]["inventory.stock_changed"] >= 9
    assert all(status == "picking" for _id, status in paper["orders"])
    assert stock_drift() == []


def test_a_held_and_a_cancelled_order_are_not_picked_and_the_rest_matches_the_handheld():
    scanned, paper, _batch = _compare(holds=("C-2",), cancels=("C-5",))
    _same(scanned, paper)
    held = [t for t in paper["tasks"] if t[1] in ("C-2", "C-5")]
    assert held and all(t[7] == TaskStatus.CANCELLED and t[6] == 0 for t in held)
    assert all("C-2" in t[10] for t in held if t[1] == "C-2"), held
    assert paper["batch"][0] == BatchStatus.DONE
    assert stock_drift() == []


def test_short_picks_are_backordered_as_pick_short_backorders_them():
    scanned, paper, _batch = _compare(shorts={("C-3", "FL-02"): 1, ("C-4", "FL-04"): 0})
    _same(scanned, paper)
    assert paper["events"]["fulfilment.pick_short"] == 2
    assert sorted(s[:3] for s in paper["shortages"]) == [
        ("C-3", paper["shortages"][0][1], 2),
        ("C-4", paper["shortages"][1][1], 1),
    ]
    lines = {(ext, sku): (reserved, backordered) for ext, sku, reserved, backordered in paper["lines"]}
    assert lines[("C-3", "FL-02")] == (1, 2) and lines[("C-4", "FL-04")] == (0, 1)
    assert stock_drift() == []


def test_stock_check_is_clean_after_a_confirmed_batch(capsys):
    _compare(holds=("C-1",), shorts={("C-3", "FL-02"): 2})
    call_command("stock_check")
    assert stock_drift() == []


def _confirm_queries(merchant: Any, site_code: str, count: int, supervisor: Any) -> tuple[int, int]:
    floor = floor_for(merchant, site_code=site_code, skus=6)
    for n in range(count):
        released_order(floor, f"{site_code}-{n}", [(n % 6, 1), ((n + 2) % 6, 2)])
    (batch,) = wave_for(floor, totes=count).batches.all()
    services.batch_start(batch_id=batch.pk, operator=supervisor)
    with CaptureQueriesContext(connection) as queries:
        services.batch_confirm_picked(batch_id=batch.pk, operator=supervisor)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
    return len(queries.captured_queries), batch.tasks.count()


def test_the_queries_of_a_confirmed_batch_do_not_grow_with_its_tasks(staff_user):
    small, small_tasks = _confirm_queries(MerchantFactory(code="small"), "small", 2, staff_user)
    services_user = StaffUserFactory(username="chef-2", is_superuser=True)
    large, large_tasks = _confirm_queries(MerchantFactory(code="large"), "large", 8, services_user)
    assert large_tasks >= 4 * small_tasks - 2
    assert large == small, (small, large)
    assert large <= 40


def test_only_a_supervisor_may_confirm_a_batch_and_refusals_change_nothing(merchant, staff_user):
    floor = floor_for(merchant)
    released_order(floor, "R-1", [(0, 2)])
    (batch,) = wave_for(floor).batches.all()
    picker = StaffUserFactory(username="picker")
    with pytest.raises(QuaiError) as not_started:
        services.batch_confirm_picked(batch_id=batch.pk, operator=staff_user)
    assert not_started.value.code == "pick_batch_not_picking"
    services.batch_start(batch_id=batch.pk, operator=picker)
    with pytest.raises(QuaiError) as refused:
        services.batch_confirm_picked(batch_id=batch.pk, operator=picker)
    assert refused.value.code == "supervisor_only" and refused.value.status == 403
    task = batch.tasks.get()
    with pytest.raises(QuaiError) as unknown:
        services.batch_confirm_picked(batch_id=batch.pk, operator=staff_user, shorts={task.pk + 1000: 0})
    assert unknown.value.code == "short_task_not_in_batch"
    with pytest.raises(QuaiError) as too_many:
        services.batch_confirm_picked(batch_id=batch.pk, operator=staff_user, shorts={task.pk: 2})
    assert too_many.value.code == "invalid_quantity"
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and task.picked_quantity == 0
    assert not StockMovement.objects.filter(kind="pick").exists()
    with pytest.raises(QuaiError) as missing:
        services.batch_confirm_picked(batch_id=999_999, operator=staff_user)
    assert missing.value.code == "pick_batch_not_found"


def test_a_supervisor_confirms_a_batch_through_the_api(merchant, staff_api, api):
    floor = floor_for(merchant)
    released_order(floor, "API-1", [(0, 2), (2, 1)])
    (batch,) = wave_for(floor).batches.all()
    started = staff_api.post(f"/api/v1/fulfilment/batches/{batch.pk}/start").json()
    short = next(t for t in started["tasks"] if t["quantity"] == 2)
    assert api.post(f"/api/v1/fulfilment/batches/{batch.pk}/confirm", {}).status_code == 403
    bad = staff_api.post(
        f"/api/v1/fulfilment/batches/{batch.pk}/confirm", {"shorts": [{"task_id": 0, "found_quantity": 0}]}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "short_task_not_in_batch"
    answer = staff_api.post(
        f"/api/v1/fulfilment/batches/{batch.pk}/confirm", {"shorts": [{"task_id": short["id"], "found_quantity": 1}]}
    )
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["status"] == "done"
    assert sorted((t["status"], t["picked_quantity"]) for t in body["tasks"]) == [("picked", 1), ("short", 1)]
    again = staff_api.post(f"/api/v1/fulfilment/batches/{batch.pk}/confirm", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "pick_batch_not_picking"
