"""The orders API: intake (201, 200 on a replay, 409 on another body), reads, the lifecycle routes, bad input."""

from __future__ import annotations

import json

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.orders.models import Order
from quai.orders.tests.conftest import order_data
from quai.orders.tests.factories import order_for

pytestmark = pytest.mark.django_db


def test_an_order_is_accepted_with_201_and_answered_with_its_lines_and_timeline(api, merchant, shirt, stock):
    stock(shirt, 5)
    response = api.post("orders", order_data())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "allocated"
    assert body["shopper"]["phone"] == "+33612345678"
    assert body["total"] == "44.70"
    assert [(line["sku"], line["reserved_quantity"]) for line in body["lines"]] == [("SHIRT-M", 2)]
    assert [(step["from_status"], step["to_status"]) for step in body["timeline"]] == [("received", "allocated")]
    assert body["timeline"][0]["actor"].startswith("api key ")


def test_the_same_order_sent_again_answers_200_with_the_same_order(api, shirt, stock):
    stock(shirt, 5)
    first = api.post("orders", order_data())
    again = api.post("orders", order_data())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Order.objects.count() == 1


def test_another_body_under_the_same_external_id_answers_409_naming_the_order(api, shirt, stock):
    stock(shirt, 5)
    first = api.post("orders", order_data()).json()
    response = api.post("orders", order_data(lines=[{"sku": "SHIRT-M", "quantity": 1}]))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "order_external_id_reused"
    assert error["details"]["order_id"] == first["id"]


def test_malformed_json_is_refused_and_nothing_is_written(api, shirt):
    response = api.client.post("/api/v1/orders", data="{not json", content_type="application/json", headers=api.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"lines": [{"sku": "NOPE", "quantity": 1}]}, 404, "sku_not_found", "lines.0.sku"),
        ({"lines": [{"sku": "SHIRT-M", "quantity": 0}]}, 422, "invalid_quantity", "lines.0.quantity"),
        ({"lines": [{"sku": "SHIRT-M", "quantity": -3}]}, 422, "invalid_quantity", "lines.0.quantity"),
        ({"lines": [{"sku": "SHIRT-M", "quantity": "2"}]}, 422, "invalid_input", "lines.0.quantity"),
        ({"lines": []}, 422, "invalid_input", "lines"),
        (
            {"shipping_address": {"line1": "1 rue X", "postcode": "123", "city": "Paris", "country": "FR"}},
            422,
            "postcode_invalid",
            "shipping_address.postcode",
        ),
        (
            {"shipping_address": {"line1": "1 rue X", "postcode": "75011", "city": "Paris", "country": "ZZ"}},
            422,
            "country_invalid",
            "shipping_address.country",
        ),
        ({"shopper": {"name": "Camille", "phone": "06 12"}}, 422, "phone_invalid", "shopper.phone"),
        ({"currency": "EURO"}, 422, "invalid_input", "currency"),
    ],
)
def test_bad_input_gets_a_clear_error_and_writes_nothing(api, shirt, change, status, code, field):
    response = api.post("orders", order_data(**change))
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    fields = [f["field"] for f in error["details"].get("fields", [])] or [error["details"].get("field")]
    assert field in fields
    assert not Order.objects.exists()


def test_another_merchants_sku_is_not_found_for_this_merchant(api, other_merchant, shirt):
    SkuFactory(merchant=other_merchant, code="RIVAL-1")
    response = api.post("orders", order_data(lines=[{"sku": "RIVAL-1", "quantity": 1}]))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "sku_not_found"


def test_orders_are_listed_with_filters(api, merchant, shirt, stock):
    stock(shirt, 2)
    api.post("orders", order_data("A-1", carrier_service="dpd_predict"))
    api.post("orders", order_data("A-2", promise={"delivery_from": "2031-03-12", "delivery_by": "2031-03-14"}))
    everything = api.get("orders").json()
    assert everything["count"] == 2
    assert [o["external_id"] for o in api.get("orders", carrier_service="dpd_predict").json()["items"]] == ["A-1"]
    assert [o["external_id"] for o in api.get("orders", status="backordered").json()["items"]] == ["A-2"]
    assert [o["external_id"] for o in api.get("orders", promised_to="2031-03-15").json()["items"]] == ["A-2"]
    assert api.get("orders", q="a-1").json()["count"] == 1


def test_another_merchants_order_is_not_found(api, other_merchant):
    foreign = order_for(other_merchant)
    assert api.get(f"orders/{foreign.pk}").status_code == 404
    response = api.post(f"orders/{foreign.pk}/cancel", {})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"
    assert api.get("orders").json()["count"] == 0


def test_cancel_hold_release_hold_and_address_change_through_the_api(api, shirt, stock):
    stock(shirt, 5)
    order = api.post("orders", order_data()).json()
    held = api.post(f"orders/{order['id']}/hold", {"reason": "fraud", "note": "odd address"})
    assert held.status_code == 200
    assert (held.json()["status"], held.json()["hold_reason"]) == ("on_hold", "fraud")
    released = api.post(f"orders/{order['id']}/release-hold", {})
    assert released.json()["status"] == "allocated"
    moved = api.patch(
        f"orders/{order['id']}/address",
        {
            "line1": "3 quai Rambaud",
            "postcode": "69002",
            "city": "Lyon",
            "country": "FR",
            "version": released.json()["version"],
        },
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["shipping_address"]["city"] == "Lyon"
    cancelled = api.post(f"orders/{order['id']}/cancel", {"reason": "shopper asked"})
    assert cancelled.json()["status"] == "cancelled"
    steps = [(s["from_status"], s["to_status"]) for s in cancelled.json()["timeline"]]
    assert steps == [
        ("received", "allocated"),
        ("allocated", "on_hold"),
        ("on_hold", "allocated"),
        ("allocated", "cancelled"),
    ]


def test_a_hold_with_an_unknown_reason_is_invalid_input(api, shirt, stock):
    order = api.post("orders", order_data()).json()
    response = api.post(f"orders/{order['id']}/hold", {"reason": "bored"})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["field"] == "reason"


def test_an_idempotency_key_replays_the_first_answer(api, shirt, stock):
    stock(shirt, 5)
    headers = {**api.headers, "Idempotency-Key": "order-SHOP-1001"}
    first = api.client.post(
        "/api/v1/orders", data=json.dumps(order_data()), content_type="application/json", headers=headers
    )
    again = api.client.post(
        "/api/v1/orders", data=json.dumps(order_data()), content_type="application/json", headers=headers
    )
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    other = api.client.post(
        "/api/v1/orders", data=json.dumps(order_data("OTHER")), content_type="application/json", headers=headers
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
