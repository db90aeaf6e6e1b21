"""A batch of orders written together (``orders_write_many``): stock by priority then age under the batch's locks,
rows and events exactly those of one order written alone, a failed bulk attempt falling back to one order at a
time (each failing alone), and a batch's cost in statements that does not grow with its orders."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import Q, Sum
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.core.errors import ValidationFailed
from quai.core.models import OutboxEvent, StateTransition
from quai.inventory.models import Reservation, StockLevel
from quai.inventory.selectors import stock_drift
from quai.orders.models import Order, OrderLine
from quai.orders.services import intake_batched, order_create
from quai.orders.services.intake import intake_caches_clear
from quai.orders.services.intake_batched import order_intake, order_intake_many
from quai.orders.tests.conftest import order_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def hot(merchant: Any) -> Any:
    return SkuFactory(merchant=merchant, code="HOT-1")


@pytest.fixture
def mug(merchant: Any, stock: Any) -> Any:
    sku = SkuFactory(merchant=merchant, code="MUG-2")
    stock(sku, 1000)
    return sku


def _order(external_id: str, priority: str, quantity: int = 1) -> dict[str, Any]:
    return order_data(
        external_id,
        priority=priority,
        lines=[
            {"sku": "MUG-2", "quantity": 1, "unit_price": "9.90"},
            {"sku": "HOT-1", "quantity": quantity, "unit_price": "19.90"},
        ],
    )


def test_a_hot_sku_running_out_mid_batch_goes_to_priority_then_age_exactly_what_is_there(merchant, hot, mug, stock):
    stock(hot, 5)
    orders = [
        _order("S-0", "standard"),
        _order("E-1", "express"),
        _order("S-2", "standard"),
        _order("V-3", "vip"),
        _order("M-4", "marketplace", quantity=3),  # 2 left for it: it keeps them, the third unit backordered
        _order("E-5", "express"),
        _order("S-6", "standard"),
    ]
    outcomes = order_intake_many(merchant=merchant, orders=orders)
    got = {
        outcome.order.external_id: next(line.reserved_quantity for line in outcome.lines if line.sku_id == hot.pk)
        for outcome in outcomes
    }
    assert got == {"E-1": 1, "E-5": 1, "V-3": 1, "M-4": 2, "S-0": 0, "S-2": 0, "S-6": 0}
    statuses = dict(Order.objects.values_list("external_id", "status"))
    assert statuses == {
        "E-1": "allocated",
        "E-5": "allocated",
        "V-3": "allocated",
        "M-4": "backordered",
        "S-0": "backordered",
        "S-2": "backordered",
        "S-6": "backordered",
    }
    level = StockLevel.objects.get(sku=hot)
    assert (level.on_hand, level.reserved) == (5, 5)  # exactly what was there, never more
    held = OrderLine.objects.filter(sku=hot).aggregate(total=Sum("reserved_quantity"))["total"]
    assert held == 5 == Reservation.objects.filter(sku=hot, status="open").aggregate(total=Sum("quantity"))["total"]
    assert all(line.reserved_quantity == 1 for line in OrderLine.objects.filter(sku=mug))
    assert stock_drift() == []
    # Orders are numbered in arrival order, whoever got the stock.
    assert list(Order.objects.order_by("pk").values_list("external_id", flat=True)) == [
        o["external_id"] for o in orders
    ]


def _written(order: Order) -> dict[str, Any]:
    """What intake wrote for one order, without ids and times."""
    skip = {"id", "external_id", "fingerprint", "created_at", "updated_at", "release_after"}
    row = {key: value for key, value in Order.objects.filter(pk=order.pk).values().get().items() if key not in skip}
    lines = list(
        OrderLine.objects.filter(order=order)
        .order_by("position")
        .values("position", "sku_id", "quantity", "reserved_quantity", "backordered_quantity")
    )
    reservations = list(
        Reservation.objects.filter(document_id__startswith=f"{order.pk}/")
        .order_by("document_id")
        .values("sku_id", "quantity", "requested_quantity", "status", "document_type")
    )
    steps = list(
        StateTransition.objects.filter(aggregate="order", aggregate_id=str(order.pk)).values(
            "transition", "from_status", "to_status", "actor_label", "reason", "details", "merchant_id"
        )
    )
    reservation_ids = [
        str(pk)
        for pk in Reservation.objects.filter(document_id__startswith=f"{order.pk}/").values_list("pk", flat=True)
    ]
    mine = Q(aggregate="order", aggregate_id=str(order.pk)) | Q(
        aggregate="reservation", aggregate_id__in=reservation_ids
    )
    events = [
        (event.name, event.schema_version, event.merchant_id, sorted(event.payload))
        for event in OutboxEvent.objects.filter(mine).order_by("id")
    ]
    return {"order": row, "lines": lines, "reservations": reservations, "steps": steps, "events": events}


def test_a_batch_writes_for_each_order_exactly_what_one_order_written_alone_gets(merchant, hot, mug, stock):
    stock(hot, 4)
    alone = order_create(merchant=merchant, data=_order("ALONE", "vip", quantity=2), actor="shop")
    together = order_intake(merchant=merchant, data=_order("BATCHED", "vip", quantity=2), actor="shop")
    assert together.created and together.order.status == "allocated"
    assert _written(together.order) == _written(alone.order)
    short = order_intake(merchant=merchant, data=_order("SHORT", "vip", quantity=2), actor="shop")
    assert _written(short.order)["order"]["status"] == "backordered"
    assert [step.to_status for step in short.timeline] == ["backordered"]


def test_a_failed_bulk_attempt_leaves_nothing_and_each_order_is_written_alone_failing_alone(
    merchant, hot, mug, stock, monkeypatch
):
    stock(hot, 10)

    def broken(**_kwargs: Any) -> None:
        raise RuntimeError("a bulk statement failed")

    real_write = intake_batched.order_write

    def order_write(*, draft: Any, **kwargs: Any) -> Any:
        if draft.external_id == "FAILS":
            raise ValidationFailed("this one cannot be written", code="invalid_input")
        return real_write(draft=draft, **kwargs)

    monkeypatch.setattr(intake_batched, "reservations_create_many", broken)
    monkeypatch.setattr(intake_batched, "order_write", order_write)
    outcomes = order_intake_many(
        merchant=merchant, orders=[_order("OK-1", "standard"), _order("FAILS", "standard"), _order("OK-2", "express")]
    )
    assert isinstance(outcomes[1], ValidationFailed)
    assert [getattr(outcomes[i], "created", None) for i in (0, 2)] == [True, True]
    assert set(Order.objects.values_list("external_id", flat=True)) == {"OK-1", "OK-2"}
    assert StockLevel.objects.get(sku=hot).reserved == 2
    assert OutboxEvent.objects.filter(name="order.received").count() == 2  # nothing left of the bulk attempt
    assert stock_drift() == []


# A batch's writes, whatever its size: the savepoint (2), the SKU rows locked and read (1), the orders (1),
# order.received (1), the counters (1), the reservations (1) and their events (1), the lines (1), one status update
# per step kind (1 or 2), the audit rows (1), order.status_changed (1), order.allocated/backordered (1). Before
# (one order at a time in the batch): 18 per order on PostgreSQL. Outside them, in the request's thread: one read
# of the SKUs of all the request's orders and one of the release buffer.
BATCH_WRITES = {"postgresql": 15, "sqlite": 15}


def test_a_batch_of_k_orders_costs_a_handful_of_statements_not_k_times_as_many(merchant, hot, mug, stock):
    stock(hot, 1000)
    writes = {}
    for size in (5, 40):
        orders = [_order(f"K{size}-{index}", "standard") for index in range(size)]
        intake_caches_clear()  # each request reads its release buffer, SKU stamp and SKUs: the 3 reads taken off below
        with CaptureQueriesContext(connection) as context:
            outcomes = order_intake_many(merchant=merchant, orders=orders)
        assert all(outcome.created for outcome in outcomes)  # type: ignore[union-attr]
        writes[size] = len(context.captured_queries) - 3
    assert writes[5] == writes[40] <= BATCH_WRITES[connection.vendor]
