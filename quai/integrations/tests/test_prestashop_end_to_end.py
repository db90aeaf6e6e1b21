"""PrestaShop end to end through the connections engine: an order made on the fake webservice is polled into Quai with
its stock reserved, the shop is told (preparation state), stock changes reach its stock_availables, and a fulfilment
comes back with its tracking number and the shipped state."""

from __future__ import annotations

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core.outbox import outbox_relay
from quai.integrations import services
from quai.integrations.connectors.base import Parcel, Shipment
from quai.integrations.models import CallStatus, Connection, ShopOrder
from quai.integrations.tests.fake_shops.prestashop import FakePrestaShop
from quai.inventory import services as inventory
from quai.inventory.models import StockLevel
from quai.orders.models import Order
from quai.warehouse.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    fake = FakePrestaShop().start()
    yield fake
    fake.stop()


def test_an_order_polled_from_prestashop_is_reserved_stock_flows_back_and_the_shipment_is_told(
    merchant, shop, django_capture_on_commit_callbacks
):
    location = LocationFactory()
    sku = SkuFactory(merchant=merchant, code="TASSE-01")
    inventory.stock_receive(sku=sku, location=location, quantity=10, reason="test stock")
    shop.add_product(12, "TASSE-01", 0)
    shop.add_order(5, lines=[("TASSE-01", 2)])
    connection = services.connection_create(
        merchant=merchant,
        name="Boutique PrestaShop",
        platform="prestashop",
        base_url=shop.url,
        credentials={"api_key": shop.api_key},
        settings={"stock_interval_ms": 0},
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert services.connection_poll(connection=connection) == 1

    order = Order.objects.get(merchant=merchant, external_id="5")
    assert order.status == "allocated"
    assert StockLevel.objects.get(sku=sku).reserved == 2
    assert ShopOrder.objects.get(connection=connection).order == order
    assert shop.order(5)["current_state"] == 3  # accepted: "Processing in progress"

    # The reservation, then a stock change, reach the shop's stock_availables.
    with django_capture_on_commit_callbacks(execute=True):
        outbox_relay()
    assert shop.stock_of(12) == 8
    with django_capture_on_commit_callbacks(execute=True):
        inventory.stock_adjust(sku=sku, location=location, quantity_delta=5, reason="found")
    with django_capture_on_commit_callbacks(execute=True):
        outbox_relay()
    assert shop.stock_of(12) == 13

    # The fulfilment with its tracking number comes back.
    shipment = Shipment(lines=(), parcels=(Parcel("6A0001", "colissimo"),))
    with django_capture_on_commit_callbacks(execute=True):
        (call,) = services.connection_push_fulfilment(order=order, shipment=shipment)
    call.refresh_from_db()
    assert call.status == CallStatus.SUCCEEDED, call.last_error
    assert shop.carrier_row_of(5)["tracking_number"] == "6A0001"
    assert shop.order(5)["current_state"] == 4
    assert Connection.objects.get(pk=connection.pk).status == "active"
