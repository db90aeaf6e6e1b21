"""Shopify end to end through the connections engine, against the fake Shopify on loopback: a fulfilment request
notified and signed puts the order in Quai with its stock reserved (unit prices kept), the request is accepted, stock
changes reach the fulfilment service's location, the fulfilment with tracking comes back, and Shopify's signed GET
callbacks (``fetch_stock``, ``fetch_tracking_numbers``) are answered, unsigned or tampered ones refused."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from django.test import Client

from quai.catalog.tests.factories import SkuFactory
from quai.core.outbox import outbox_relay
from quai.integrations import services
from quai.integrations.connectors.base import Parcel, Shipment
from quai.integrations.models import CallStatus, InboundDelivery, InboundStatus, ShopOrder
from quai.integrations.tests.fake_shops.shopify import FakeShopify, sign
from quai.inventory import services as inventory
from quai.inventory.models import StockLevel
from quai.orders.models import Order
from quai.warehouse.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    fake = FakeShopify().start()
    yield fake
    fake.stop()


@pytest.fixture
def location(db):  # type: ignore[no-untyped-def]
    return LocationFactory()


@pytest.fixture
def service(shop):
    return shop.add_service("Quai")


@pytest.fixture
def connection(merchant, shop, service):
    return services.connection_create(
        merchant=merchant,
        name="Boutique Shopify",
        platform="shopify",
        base_url=shop.url,
        credentials={"access_token": shop.access_token, "client_secret": shop.client_secret},
        settings={"shop_domain": shop.shop_domain, "location_id": service["location"]["id"], "stock_interval_ms": 0},
    )


def stock(merchant, location, code, quantity):
    sku = SkuFactory(merchant=merchant, code=code)
    inventory.stock_receive(sku=sku, location=location, quantity=quantity, reason="test stock")
    return sku


def notify(shop, connection, kind="FULFILLMENT_REQUEST"):
    """Shopify's POST <callbackUrl>/fulfillment_order_notification, signed over its raw body."""
    body = json.dumps({"kind": kind}).encode()
    headers = {"X-Shopify-Hmac-Sha256": sign(shop.client_secret, body), "X-Shopify-Shop-Domain": shop.shop_domain}
    return Client().post(
        f"/api/v1/shops/{connection.pk}/hooks/fulfillment_order_notification",
        data=body,
        content_type="application/json",
        headers=headers,
    )


def callback(connection, path, headers):
    return Client().get(f"/api/v1/shops/{connection.pk}/hooks/{path}", headers=headers)


def test_a_shopify_fulfilment_request_is_taken_in_stock_flows_back_and_the_fulfilment_is_told(
    merchant, location, shop, service, connection, django_capture_on_commit_callbacks
):
    sku = stock(merchant, location, "TASSE-01", 10)
    location_id = service["location"]["id"]
    shop.add_variant("TASSE-01", location_id, 10)
    request = shop.request_fulfillment(location_id, [("TASSE-01", 2)], name="#1001", prices={"TASSE-01": "12.50"})

    with django_capture_on_commit_callbacks(execute=True):
        answer = notify(shop, connection)
    assert answer.status_code == 202, answer.content

    order = Order.objects.get(merchant=merchant, external_id=request["id"])
    assert order.status == "allocated"
    assert StockLevel.objects.get(sku=sku).reserved == 2
    assert order.lines.get().unit_price == Decimal("12.50")
    assert ShopOrder.objects.get(connection=connection).order == order
    assert shop.fulfillment_orders[request["id"]]["requestStatus"] == "ACCEPTED"
    assert InboundDelivery.objects.get().status == InboundStatus.PROCESSED

    # Stock out: the location's "available" is what Quai may sell (10 on hand − 2 reserved), then follows a change.
    with django_capture_on_commit_callbacks(execute=True):
        outbox_relay()
    assert shop.level("TASSE-01", location_id) == 8
    with django_capture_on_commit_callbacks(execute=True):
        inventory.stock_adjust(sku=sku, location=location, quantity_delta=5, reason="found")
    with django_capture_on_commit_callbacks(execute=True):
        outbox_relay()
    assert shop.level("TASSE-01", location_id) == 13

    # The fulfilment with its tracking number comes back, and Shopify's hourly fetch_tracking_numbers finds it.
    shipment = Shipment(lines=(), parcels=(Parcel("6A0001", "colissimo"),))
    with django_capture_on_commit_callbacks(execute=True):
        (call,) = services.connection_push_fulfilment(order=order, shipment=shipment)
    call.refresh_from_db()
    assert call.status == CallStatus.SUCCEEDED, call.last_error
    (fulfilment,) = shop.fulfillments[request["id"]]
    assert fulfilment["trackingInfo"][0]["number"] == "6A0001"
    path, headers = shop.callback("fetch_tracking_numbers", [("order_names[]", "#1001.1")])
    answer = callback(connection, path, headers)
    assert answer.status_code == 200, answer.content
    assert answer.json()["tracking_numbers"] == {"#1001.1": "6A0001"}


def test_fetch_stock_is_answered_only_when_signed_over_the_query_string_as_sent(
    merchant, location, shop, connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "TASSE-01", 10)
    stock(merchant, location, "BOL/02 été", 3)  # a SKU whose query value is percent-encoded

    path, headers = shop.callback("fetch_stock", [("sku", "BOL/02 été")])
    assert "BOL%2F02%20%C3%A9t%C3%A9" in path
    answer = callback(connection, path, headers)
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"BOL/02 été": 3}

    path, headers = shop.callback("fetch_stock")
    assert callback(connection, path, headers).json() == {"TASSE-01": 10, "BOL/02 été": 3}

    # Refused: no header, another SKU asked under the same signature, a signature over the decoded query, a body
    # signature (the webhook way), another shop, a replay of an old signed call.
    assert callback(connection, path, {}).status_code == 401
    tampered = path.replace("max_retries=3", "max_retries=4")
    assert callback(connection, tampered, headers).status_code == 401
    decoded, _h = shop.callback("fetch_stock", [("sku", "TASSE-01")])
    query = decoded.split("?", 1)[1].replace("%2F", "/")
    assert callback(connection, decoded, {"X-Shopify-Hmac-Sha256": sign(shop.client_secret, b"")}).status_code == 401
    assert (
        callback(connection, decoded, {"X-Shopify-Hmac-Sha256": sign(shop.client_secret, query.encode() + b"x")})
    ).status_code == 401
    other = FakeShopify(shop_domain="someone-else.myshopify.com", client_secret=shop.client_secret)
    path, headers = other.callback("fetch_stock")
    assert callback(connection, path, headers).status_code == 401
    path, headers = shop.callback("fetch_stock", timestamp=int(time.time()) - 2 * 3600)
    answer = callback(connection, path, headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "signature_invalid"


def test_one_held_order_does_not_block_the_others_of_a_fulfilment_request(
    merchant, location, shop, service, connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "TASSE-01", 10)
    location_id = service["location"]["id"]
    known = shop.request_fulfillment(location_id, [("TASSE-01", 1)], name="#2001")
    unknown = shop.request_fulfillment(location_id, [("NOUVEAU-9", 1)], name="#2002")
    also_known = shop.request_fulfillment(location_id, [("TASSE-01", 2)], name="#2003")

    with django_capture_on_commit_callbacks(execute=True):
        assert notify(shop, connection).status_code == 202

    taken = set(Order.objects.filter(merchant=merchant).values_list("external_id", flat=True))
    assert taken == {known["id"], also_known["id"]}
    assert shop.fulfillment_orders[known["id"]]["requestStatus"] == "ACCEPTED"
    assert shop.fulfillment_orders[also_known["id"]]["requestStatus"] == "ACCEPTED"
    assert shop.fulfillment_orders[unknown["id"]]["requestStatus"] == "SUBMITTED"  # neither accepted nor rejected
    delivery = InboundDelivery.objects.get()
    assert delivery.status == InboundStatus.HELD
    assert delivery.missing_skus == ["NOUVEAU-9"]
    assert "NOUVEAU-9" in delivery.reason

    # The SKU is created: the held request is taken again; what was in already is not taken twice.
    from quai.catalog.services import sku_create

    with django_capture_on_commit_callbacks(execute=True):
        created = sku_create(merchant=merchant, code="NOUVEAU-9", name="Nouveau")
        inventory.stock_receive(sku=created, location=location, quantity=4, reason="test stock")
    with django_capture_on_commit_callbacks(execute=True):
        outbox_relay()
    delivery.refresh_from_db()
    assert delivery.status == InboundStatus.PROCESSED, delivery.reason
    assert Order.objects.filter(merchant=merchant).count() == 3
    assert shop.fulfillment_orders[unknown["id"]]["requestStatus"] == "ACCEPTED"


def test_a_cancellation_request_naming_no_order_answers_every_one_waiting(
    merchant, location, shop, service, connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "TASSE-01", 10)
    location_id = service["location"]["id"]
    request = shop.request_fulfillment(location_id, [("TASSE-01", 1)], name="#3001")
    with django_capture_on_commit_callbacks(execute=True):
        notify(shop, connection)
    order = Order.objects.get(external_id=request["id"])

    shop.request_cancellation(request["id"])
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(shop, connection, kind="CANCELLATION_REQUEST").status_code == 202
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert shop.fulfillment_orders[request["id"]]["requestStatus"] == "CANCELLATION_ACCEPTED"
    assert InboundDelivery.objects.filter(status=InboundStatus.PROCESSED).count() == 2
