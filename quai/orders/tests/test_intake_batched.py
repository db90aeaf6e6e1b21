"""Intake through the group committer, on PostgreSQL with real parallel connections."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import Sum

from quai.core.errors import QuaiError
from quai.inventory.models import Reservation, StockLevel
from quai.inventory.selectors import stock_drift
from quai.orders.models import Order, OrderLine
from quai.orders.services.intake_batched import intake_committer, order_intake, order_intake_many
from quai.orders.tests.conftest import order_data

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_and_a_fresh_committer():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel connections: PostgreSQL")
    yield
    intake_committer().close()


def _in_threads(count: int, call: Any) -> list[Any]:
    def one(index: int) -> Any:
        try:
            return call(index)
        except QuaiError as exc:
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_the_same_external_id_from_8_connections_makes_one_order(merchant, shirt, stock):
    stock(shirt, 100)
    outcomes = _in_threads(8, lambda _i: order_intake(merchant=merchant, data=order_data("SHOP-RACE")))
    assert Order.objects.filter(external_id="SHOP-RACE").count() == 1
    assert sum(1 for outcome in outcomes if outcome.created) == 1
    assert {outcome.order.pk for outcome in outcomes} == {Order.objects.get(external_id="SHOP-RACE").pk}
    assert StockLevel.objects.get(sku=shirt).reserved == 2


def test_a_hot_sku_never_oversells_when_many_orders_share_commits(merchant, shirt, mug, stock):
    stock(shirt, 25)
    stock(mug, 1000)

    def place(index: int) -> Any:
        lines = [{"sku": "SHIRT-M", "quantity": 1, "unit_price": "19.90"}]
        if index % 3 == 0:
            lines.append({"sku": "MUG", "quantity": 1, "unit_price": "9.90"})
        return order_intake(merchant=merchant, data=order_data(f"SHOP-{index}", lines=lines))

    outcomes = _in_threads(60, place)
    assert all(not isinstance(outcome, Exception) for outcome in outcomes)
    assert Order.objects.count() == 60
    level = StockLevel.objects.get(sku=shirt)
    assert level.reserved == 25 <= level.on_hand
    held = (
        OrderLine.objects.filter(sku=shirt).aggregate(total=Sum("quantity"))["total"]
        - (OrderLine.objects.filter(sku=shirt).aggregate(total=Sum("backordered_quantity"))["total"])
    )
    assert held == 25
    assert Order.objects.filter(status="allocated").count() <= 25
    assert intake_committer().stats.batches < 60


def test_a_batch_answers_each_order_its_own_outcome(merchant, shirt, stock):
    stock(shirt, 10)
    outcomes = order_intake_many(
        merchant=merchant,
        orders=[order_data("B-1"), order_data("B-2", lines=[{"sku": "NOPE", "quantity": 1}]), order_data("B-3")],
    )
    assert [type(outcome).__name__ for outcome in outcomes] == ["OrderCreated", "NotFound", "OrderCreated"]
    assert set(Order.objects.values_list("external_id", flat=True)) == {"B-1", "B-3"}


def _sell_in_a_child(merchant_id: int, prefix: str, count: int, results: Any) -> None:
    """A forked process with its own committer: ``count`` orders on the hot SKU from parallel request threads."""
    try:
        outcomes = _in_threads(
            count,
            lambda index: order_intake(
                merchant=merchant_id,
                data=order_data(
                    f"{prefix}-{index}",
                    lines=[
                        {"sku": "MUG", "quantity": 1, "unit_price": "9.90"},
                        {"sku": "SHIRT-M", "quantity": 1, "unit_price": "19.90"},
                    ],
                ),
            ),
        )
        stats = intake_committer().stats
        results.put(
            (prefix, sum(1 for o in outcomes if not isinstance(o, Exception)), stats.batches, stats.bulk_batches)
        )
    except BaseException as exc:  # the parent asserts on what it gets; never hang it
        results.put((prefix, repr(exc), 0, 0))
    finally:
        intake_committer().close()
        connections.close_all()


def test_two_processes_committers_on_one_hot_sku_never_oversell(merchant, shirt, mug, stock):
    stock(shirt, 25)
    stock(mug, 1000)
    # The children open their own connections: the parent's must not be shared across the fork.
    intake_committer().close()
    connections.close_all()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    children = [
        context.Process(target=_sell_in_a_child, args=(merchant.pk, prefix, 30, results)) for prefix in ("P1", "P2")
    ]
    for child in children:
        child.start()
    reports = [results.get(timeout=120) for _child in children]
    for child in children:
        child.join(30)
    assert sorted(report[:2] for report in reports) == [("P1", 30), ("P2", 30)], reports
    assert all(report[3] >= 1 for report in reports)  # both wrote through the bulk path
    assert Order.objects.count() == 60
    level = StockLevel.objects.get(sku=shirt)
    assert (level.on_hand, level.reserved) == (25, 25)
    lines = OrderLine.objects.filter(sku=shirt)
    assert lines.aggregate(total=Sum("reserved_quantity"))["total"] == 25
    assert Reservation.objects.filter(sku=shirt, status="open").aggregate(total=Sum("quantity"))["total"] == 25
    assert Order.objects.filter(status="allocated").count() == 25
    assert Order.objects.filter(status="backordered").count() == 35
    assert StockLevel.objects.get(sku=mug).reserved == 60
    assert stock_drift() == []
