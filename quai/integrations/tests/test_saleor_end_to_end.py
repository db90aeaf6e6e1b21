"""Saleor end to end through the connections engine: a signed ORDER_CREATED webhook from the fake Saleor puts the
order in Quai with its stock reserved, stock changes reach Saleor's warehouse stock, and a fulfilment comes back with
its tracking number."""

from __future__ import annotations

import pytest
from django.test import Client

from quai.catalog.tests.factories import SkuFactory
from quai.core.outbox import outbox_relay
from quai.integrations import services
from quai.integrations.connectors import saleor as saleor_module
from quai.integrations.connectors.base import Parcel, Shipment
from quai.integrations.models import CallStatus, InboundDelivery, ShopOrder
from quai.integrations.tests.fake_shops.saleor import FakeSaleor
from quai.inventory import services as inventory
from quai.inventory.models import StockLevel
from quai.orders.models import Order
from quai.warehouse.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    saleor_module.jwks_cache_clear()
    fake = FakeSaleor().start()
    yield fake
    fake.stop()


def test_a_saleor_order_comes_in_by_webhook_stock_flows_back_and_the_fulfilment_is_told(
    merchant, shop, django_capture_on_commit_callbacks
):
    location = LocationFactory()
    sku = SkuFactory(merchant=merchant, code="TASSE-01")
    inventory.stock_receive(sku=sku, location=location, quantity=10, reason="test stock")
    shop.add_variant("TASSE-01", quantity=10, allocated=2)  # Saleor allocated the order's 2 units
    saleor_order = shop.add_order("1042", [("TASSE-01", 2)])
    connection = services.connection_create(
        merchant=merchant,
        name="Boutique Saleor",
        platform="saleor",
        base_url=shop.api_url,
        credentials={"app_token": shop.token},
        settings={"warehouse_id": shop.warehouse_id, "stock_interval_ms": 0},
    )
    headers, body = shop.deliver("ORDER_CREATED", {"__typename": "OrderCreated", "order": saleor_order})

    with django_capture_on_commit_callbacks(execute=True):
        answer = Client().post(
            f"/api/v1/shops/{connection.pk}/hooks/order_created",
            data=body,
            content_type="application/json",
            headers=headers,
        )
    assert answer.status_code == 202, answer.content
    order = Order.objects.get(merchant=merchant, external_id=saleor_order["id"])
    assert order.status == "allocated"
    assert StockLevel.objects.get(sku=sku).reserved == 2
    assert ShopOrder.objects.get(connection=connection).order == order

    # A tampered body is refused before anything is stored.
    before = InboundDelivery.objects.count()
    forged = Client().post(
        f"/api/v1/shops/{connection.pk}/hooks/order_created",
        data=body.replace(b"1042", b"1043"),
        content_type="application/json",
        headers=headers,
    )
    assert forged.status_code == 401 and InboundDelivery.objects.count() == before

    # Stock out: Saleor sells quantity − its allocation, so it is given Quai's 8 sellable + the 2 it allocated.
    with django_capture_on_commit_callbacks(execute=True):
        outbox_relay()
    assert shop.stock("TASSE-01")["quantity"] == 10
    with django_capture_on_commit_callbacks(execute=True):
        inventory.stock_adjust(sku=sku, location=location, quantity_delta=5, reason="found")
    with django_capture_on_commit_callbacks(execute=True):
        outbox_relay()
    assert shop.stock("TASSE-01")["quantity"] == 15

    # The fulfilment with its tracking number comes back.
    shipment = Shipment(lines=(), parcels=(Parcel("6A0001", "colissimo"),))
    with django_capture_on_commit_callbacks(execute=True):
        (call,) = services.connection_push_fulfilment(order=order, shipment=shipment)
    call.refresh_from_db()
    assert call.status == CallStatus.SUCCEEDED, call.last_error
    assert saleor_order["fulfillments"][0]["trackingNumber"] == "6A0001"
    assert saleor_order["status"] == "FULFILLED"
