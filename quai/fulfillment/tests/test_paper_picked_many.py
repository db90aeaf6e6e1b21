"""``batches_paper_picked_many`` against ``batch_start`` then ``batch_confirm_picked`` one batch after another, on
two identical worlds: the same ledger, tasks, batches, orders, scans, audit rows and events (each aggregate's in
the same order), the usual day (one path for all) and the unusual ones (a stopped order, a busy picker)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent, StateTransition
from quai.fulfillment import services
from quai.fulfillment.models import BatchStatus, PickBatch, PickScan
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.fulfillment.tests.test_batch_confirm import ORDERS, PICK_AT, _snapshot
from quai.inventory.selectors import stock_drift
from quai.orders.models import Order
from quai.orders.services import order_hold
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

IDS = {"order_id", "batch_id", "task_id", "sku_id", "movement_id", "from_location_id", "to_location_id"}
IDS |= {"reservation_id", "document_id", "line_id", "merchant_id", "operator_id", "wave_id", "order_ids"}


def _world(code: str, totes: int = 2) -> tuple[Any, dict[str, Any], list[PickBatch]]:
    floor = floor_for(MerchantFactory(code=code), site_code=code)
    orders = {external_id: released_order(floor, external_id, lines) for external_id, lines in ORDERS}
    wave = wave_for(floor, totes=totes)
    return floor, orders, list(wave.batches.order_by("pk"))


def _written(floor: Any, batches: list[PickBatch], since: int) -> dict[str, Any]:
    """Everything the pickings wrote, by codes and places (ids differ between the worlds)."""
    index = {batch.pk: k for k, batch in enumerate(batches)}
    orders = {o.pk: o.external_id for o in Order.objects.filter(merchant=floor.merchant)}
    seen = {**{f"b{pk}": f"batch {k}" for pk, k in index.items()}, **{f"o{pk}": ext for pk, ext in orders.items()}}
    snapshot = {key: value for batch in batches for key, value in _snapshot(floor, batch, since).items()}
    del snapshot["payloads"]  # the orders' reasons name their batch ("Batch B4 started"): compared below, by place
    snapshot["tasks"] = [_snapshot(floor, batch, since)["tasks"] for batch in batches]
    snapshot["batches"] = [
        (b.status, b.started_at, b.done_at, b.operator.username if b.operator else None)
        for b in PickBatch.objects.filter(pk__in=index).order_by("pk").select_related("operator")
    ]
    snapshot["scans"] = [
        (index[s.batch_id], s.operator.username if s.operator else None, s.kind, s.value, s.quantity, s.accepted)
        for s in PickScan.objects.filter(batch_id__in=index).order_by("pk").select_related("operator")
    ]
    audits: dict[str, list[Any]] = defaultdict(list)
    for a in StateTransition.objects.filter(at__gte=PICK_AT).order_by("pk"):
        key = seen.get(("b" if a.aggregate == "pick_batch" else "o") + a.aggregate_id)
        if key is not None:
            audits[key].append((a.transition, a.from_status, a.to_status, a.actor_label, a.reason.split(" ")[0]))
    snapshot["audit"] = dict(audits)
    # each aggregate's events in order (the relay's promise); aggregates apart from each other
    sequences: dict[str, list[Any]] = defaultdict(list)
    for event in OutboxEvent.objects.filter(pk__gt=since).order_by("pk"):
        key = event.aggregate if event.aggregate in ("tote", "sku", "location") else ""
        if event.aggregate == "order":
            key = orders.get(int(event.aggregate_id), "")
        elif event.aggregate == "pick_batch":
            key = f"batch {index.get(int(event.aggregate_id))}"
        payload = tuple(sorted((k, re.sub(r"B\d+", "B?", str(v))) for k, v in event.payload.items() if k not in IDS))
        sequences[key or event.aggregate].append((event.name, payload))
    snapshot["sequences"] = dict(sequences)
    return snapshot


def _last_event() -> int:
    return OutboxEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _compare(prepare: Any = None) -> tuple[dict[str, Any], dict[str, Any], list[Any], list[Any]]:
    pickers = [StaffUserFactory(username="picker-1"), StaffUserFactory(username="picker-2")]
    supervisor = StaffUserFactory(username="chef", is_superuser=True)
    worlds = [_world("one"), _world("many")]
    for _floor, orders, batches in worlds:
        assert len(batches) >= 3
        if prepare is not None:
            prepare(orders, batches, pickers)
    (one_floor, _o, one_batches), (many_floor, _m, many_batches) = worlds

    clock.set_now(PICK_AT)
    since = _last_event()
    answers_one = []
    for k, batch in enumerate(one_batches):
        try:
            services.batch_start(batch_id=batch.pk, operator=pickers[k % 2])
            services.batch_confirm_picked(batch_id=batch.pk, operator=supervisor)
        except QuaiError as refusal:
            answers_one.append(refusal.code)
        else:
            answers_one.append(None)
    one = _written(one_floor, one_batches, since)

    clock.set_now(PICK_AT)
    since = _last_event()
    outcomes = services.batches_paper_picked_many(
        picks=[services.PaperPick(batch.pk, pickers[k % 2]) for k, batch in enumerate(many_batches)],
        supervisor=supervisor,
    )
    many = _written(many_floor, many_batches, since)
    assert [o.error.code if o.error else None for o in outcomes] == answers_one
    return one, many, answers_one, many_batches


def test_a_tick_of_paper_picked_batches_writes_what_one_batch_after_another_writes():
    one, many, answers, batches = _compare()
    for key in one:
        assert many[key] == one[key], key
    assert answers == [None] * len(batches)
    assert all(status == BatchStatus.DONE for status, *_rest in many["batches"])
    assert stock_drift() == []


def _usual_day_queries(code: str, totes: int) -> tuple[int, int]:
    supervisor = StaffUserFactory(username=f"chef-{code}", is_superuser=True)
    picker = StaffUserFactory(username=f"picker-{code}")
    _floor, _orders, batches = _world(code, totes=totes)
    clock.set_now(PICK_AT)
    with CaptureQueriesContext(connection) as queries:
        outcomes = services.batches_paper_picked_many(
            picks=[services.PaperPick(batch.pk, picker) for batch in batches], supervisor=supervisor
        )
    assert all(o.error is None for o in outcomes)
    return len(queries.captured_queries), len(batches)


def test_the_usual_day_costs_the_same_statements_for_many_batches_as_for_few():
    few, few_batches = _usual_day_queries("few", 4)
    many, many_batches = _usual_day_queries("many", 1)
    assert many_batches >= 2 * few_batches
    assert many == few, (few, many)


def test_a_held_order_drops_its_tasks_as_one_batch_after_another_does():
    def hold(orders: dict[str, Any], batches: list[Any], pickers: list[Any]) -> None:
        order_hold(order=orders["C-2"].pk, reason="fraud")

    one, many, _answers, _batches = _compare(hold)
    for key in one:
        assert many[key] == one[key], key
    assert ("C-2", "on_hold") in many["orders"]


def test_a_picker_busy_elsewhere_is_refused_as_one_batch_after_another_refuses_them():
    def busy(orders: dict[str, Any], batches: list[Any], pickers: list[Any]) -> None:
        other_floor = floor_for(MerchantFactory(), site_code=f"x{batches[0].pk}")
        released_order(other_floor, f"X-{batches[0].pk}", [(0, 1)])
        (elsewhere,) = wave_for(other_floor).batches.all()
        if not PickBatch.objects.filter(operator=pickers[1], status=BatchStatus.PICKING).exists():
            services.batch_start(batch_id=elsewhere.pk, operator=pickers[1])

    one, many, answers, _batches = _compare(busy)
    for key in one:
        assert many[key] == one[key], key
    assert answers[1] == "operator_busy"
