"""POST /api/v1/orders/batch (each order its own result) and the bench-only ceiling route (off by default)."""

from __future__ import annotations

import pytest

from quai.orders.models import Order
from quai.orders.tests.conftest import order_data

pytestmark = pytest.mark.django_db


def test_a_batch_answers_each_order_its_own_result_in_the_request_order(api, shirt, stock):
    stock(shirt, 10)
    assert api.post("orders", order_data("SHOP-1")).status_code == 201
    orders = [
        order_data("SHOP-1"),  # the same order again
        order_data("SHOP-2"),
        order_data("SHOP-3", lines=[{"sku": "NOPE", "quantity": 1, "unit_price": "1.00"}]),
        order_data("SHOP-4"),
    ]
    response = api.post("orders/batch", {"orders": orders})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [(0, 200), (1, 201), (2, 404), (3, 201)]
    assert results[2]["error"]["code"] == "sku_not_found"
    assert results[2]["order"] is None
    assert results[1]["order"]["external_id"] == "SHOP-2"
    assert results[1]["order"]["status"] == "allocated"
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["SHOP-1", "SHOP-2", "SHOP-4"]


def test_a_batch_of_more_than_500_orders_is_refused_whole(api, shirt, stock):
    stock(shirt, 10)
    response = api.post("orders/batch", {"orders": [order_data(f"SHOP-{i}") for i in range(501)]})
    assert response.status_code == 422
    assert Order.objects.count() == 0


def test_a_merchant_key_naming_another_merchant_in_a_batch_is_answered_merchant_not_found(
    api, other_merchant, shirt, stock
):
    stock(shirt, 10)
    response = api.post("orders/batch", {"merchant_id": other_merchant.pk, "orders": [order_data()]})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "merchant_not_found"
    assert Order.objects.count() == 0


def test_the_bench_ceiling_route_is_not_mounted_by_default(api, shirt):
    response = api.post("orders/bench/bare", order_data())
    assert response.status_code in (404, 405)
