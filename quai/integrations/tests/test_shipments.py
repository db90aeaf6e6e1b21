"""``shipment.shipped`` told to the shop the order came from: a WooCommerce order taken in through its webhook,
packed into a parcel and labelled, then shipped -> the fake shop's order is completed with the tracking, once."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from django.test import Client

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.events import Envelope
from quai.core.outbox import event_record, outbox_relay
from quai.integrations import domain, services
from quai.integrations.connectors.base import Address, ExternalLine, ExternalOrder, ShipmentLine
from quai.integrations.models import CallKind, CallStatus, ConnectorCall
from quai.integrations.services.shipments import shipped_lines
from quai.integrations.tests.fake_shops.woocommerce import CONSUMER_KEY, CONSUMER_SECRET, FakeWooCommerce
from quai.inventory import services as inventory
from quai.orders.models import Order
from quai.orders.tests.factories import order_for
from quai.packing.models import Parcel, ParcelItem
from quai.shipping import services as shipping
from quai.shipping.events import ShipmentShipped
from quai.shipping.models import Shipment
from quai.warehouse.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db

SECRET = "wh-s3cret"


@pytest.fixture
def shop():
    fake = FakeWooCommerce(webhook_secret=SECRET)
    with fake.running():
        yield fake


@pytest.fixture
def shop_connection(merchant, shop):
    return services.connection_create(
        merchant=merchant,
        name="Boutique",
        platform="woocommerce",
        base_url=shop.url,
        credentials={"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET, "webhook_secret": SECRET},
        settings={"stock_interval_ms": 0},
    )


def relay(capture):
    with capture(execute=True):
        outbox_relay()


def packed_and_labelled(order, units: dict[str, int], *, tracking: str) -> int:
    """A closed parcel of ``order`` holding ``units`` (SKU code -> quantity scanned) and its carrier label."""
    parcel = Parcel.objects.create(
        merchant_id=order.merchant_id,
        order_id=order.pk,
        order_reference=order.external_id,
        station=LocationFactory(),
        status="closed",
    )
    for line in order.lines.all():
        if line.sku_code in units:
            ParcelItem.objects.create(
                parcel=parcel,
                sku_id=line.sku_id,
                sku_code=line.sku_code,
                name=line.sku_code,
                expected=units[line.sku_code],
                scanned=units[line.sku_code],
            )
    Shipment.objects.create(
        merchant_id=order.merchant_id,
        order_id=order.pk,
        order_reference=order.external_id,
        parcel_id=parcel.pk,
        carrier=shipping.sandbox_carrier_ensure(),
        sscc=shipping.sscc_next(),
        tracking_number=tracking,
        tracking_url=f"https://track.example/{tracking}",
        label=b"%PDF-1.4",
        weight_g=900,
        stock_location_id=LocationFactory().pk,
    )
    return int(parcel.pk)


def shipped(order, parcel_ids: list[int], tracking: list[str]) -> None:
    event_record(
        ShipmentShipped(
            order_id=order.pk, shipped_at=clock.now(), parcel_ids=parcel_ids, tracking_numbers=tracking, carrier="sbx"
        ),
        merchant_id=order.merchant_id,
    )


def test_a_shipped_shop_order_is_completed_on_the_shop_with_its_tracking_once(
    merchant, shop, shop_connection, django_capture_on_commit_callbacks
):
    location = LocationFactory()
    for code in ("MUG-1", "TEE-1"):
        inventory.stock_receive(sku=SkuFactory(merchant=merchant, code=code), location=location, quantity=10)
    woo_order = shop.add_order([("MUG-1", 2), ("TEE-1", 1)])
    headers, body = shop.delivery("order.created", woo_order)
    with django_capture_on_commit_callbacks(execute=True):
        answer = Client().post(
            f"/api/v1/shops/{shop_connection.pk}/hooks/order.created",
            data=body,
            content_type="application/json",
            headers=headers,
        )
    assert answer.status_code == 202
    order = Order.objects.get(merchant=merchant, external_id=str(woo_order["id"]))
    relay(django_capture_on_commit_callbacks)  # what intake told (stock pushes) is out of the way
    parcel_id = packed_and_labelled(order, {"MUG-1": 2, "TEE-1": 1}, tracking="6A0042")

    with django_capture_on_commit_callbacks(execute=True):
        shipped(order, [parcel_id], ["6A0042"])
    relay(django_capture_on_commit_callbacks)

    (call,) = ConnectorCall.objects.filter(kind=CallKind.FULFILMENT)
    assert call.status == CallStatus.SUCCEEDED
    assert shop.orders[woo_order["id"]]["status"] == "completed"
    assert "6A0042" in shop.notes[woo_order["id"]][-1]["note"]
    assert "https://track.example/6A0042" in shop.notes[woo_order["id"]][-1]["note"]
    sent = domain.shipment_from_json(call.payload["shipment"])
    line_ids = {str(line["sku"]): str(line["id"]) for line in woo_order["line_items"]}
    assert set(sent.lines) == {
        ShipmentLine(external_line_id=line_ids["MUG-1"], quantity=2),
        ShipmentLine(external_line_id=line_ids["TEE-1"], quantity=1),
    }
    (parcel,) = sent.parcels
    assert (parcel.tracking_number, parcel.carrier_code, parcel.weight_g) == ("6A0042", "sandbox", 900)

    # The same event redelivered, then the same parcels told again as a new event: no second call, no second PUT.
    envelope = Envelope(
        event_id=uuid4(),
        name="shipment.shipped",
        schema_version=1,
        occurred_at=clock.now(),
        merchant_id=merchant.pk,
        aggregate="order",
        aggregate_id=str(order.pk),
    )
    event = ShipmentShipped(
        order_id=order.pk, shipped_at=clock.now(), parcel_ids=[parcel_id], tracking_numbers=["6A0042"], carrier="sbx"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.on_shipment_shipped(event, envelope)
        services.on_shipment_shipped(event, envelope)
        shipped(order, [parcel_id], ["6A0042"])
    relay(django_capture_on_commit_callbacks)
    assert ConnectorCall.objects.filter(kind=CallKind.FULFILMENT).count() == 1
    assert len(shop.calls("PUT", rf"/orders/{woo_order['id']}$")) == 1


def test_an_order_from_no_shop_ships_without_a_call(merchant, django_capture_on_commit_callbacks):
    order = order_for(merchant, external_id="DIRECT-1")
    line = order.lines.get()
    parcel_id = packed_and_labelled(order, {line.sku_code: line.quantity}, tracking="6A0099")
    with django_capture_on_commit_callbacks(execute=True):
        shipped(order, [parcel_id], ["6A0099"])
    relay(django_capture_on_commit_callbacks)
    assert not ConnectorCall.objects.exists()


def _snapshot(*lines: tuple[str, str, int]) -> dict[str, object]:
    order = ExternalOrder(
        external_id="1",
        external_number="1",
        currency="EUR",
        ship_to=Address(),
        lines=tuple(ExternalLine(external_line_id=i, sku=s, quantity=q, unit_price=Decimal("1")) for i, s, q in lines),
    )
    return domain.order_to_json(order)


def test_shipped_units_fill_the_shops_lines_of_their_sku_in_order_and_never_beyond_what_was_ordered():
    snapshot = _snapshot(("10", "MUG-1", 2), ("11", "mug-1", 3), ("12", "TEE", 1))
    assert shipped_lines(snapshot, {"MUG-1": 4}) == (ShipmentLine("10", 2), ShipmentLine("11", 2))
    assert shipped_lines(snapshot, {"MUG-1": 9, "TEE": 1, "GIFT": 1}) == (
        ShipmentLine("10", 2),
        ShipmentLine("11", 3),
        ShipmentLine("12", 1),
    )
    assert shipped_lines(snapshot, {"GIFT": 1, "TEE": 0}) == ()
