"""Intake through the group committer, on PostgreSQL with real parallel connections."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum

from quai.core.errors import QuaiError
from quai.inventory.models import StockLevel
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
