"""Shop connections end to end against a fake WooCommerce store on loopback: orders in with their stock reserved,
stock out (coalesced, rate-limited, retried), fulfilment and refunds out, held orders, secrets encrypted."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection as db
from django.test import Client, override_settings

from conftest import merchant_api
from quai.catalog.tests.factories import SkuFactory
from quai.core import clock, crypto
from quai.core.outbox import outbox_relay
from quai.integrations import services
from quai.integrations.connectors.base import Parcel, Refund, Shipment
from quai.integrations.models import (
    CallStatus,
    Connection,
    ConnectorCall,
    InboundDelivery,
    InboundStatus,
    ShopOrder,
    StockSync,
    WebhookSubscription,
)
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.integrations.tests.fake_shops.woocommerce import CONSUMER_KEY, CONSUMER_SECRET, FakeWooCommerce
from quai.inventory import services as inventory
from quai.inventory.models import StockLevel
from quai.orders.models import Order
from quai.warehouse.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db

SECRET = "wh&amp;s3cret"


@pytest.fixture
def shop():
    fake = FakeWooCommerce(webhook_secret=SECRET)
    with fake.running():
        yield fake


@pytest.fixture
def location(db):  # type: ignore[no-untyped-def]
    return LocationFactory()


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


def stock(merchant, location, code, quantity):
    sku = SkuFactory(merchant=merchant, code=code)
    inventory.stock_receive(sku=sku, location=location, quantity=quantity, reason="test stock")
    return sku


def post_hook(connection, headers, body, topic="order.created"):
    return Client().post(
        f"/api/v1/shops/{connection.pk}/hooks/{topic}", data=body, content_type="application/json", headers=headers
    )


def relay(capture):
    with capture(execute=True):
        outbox_relay()


def test_an_order_made_on_the_shop_is_taken_in_with_its_stock_reserved_and_the_shop_is_told(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "MUG-1", 10)
    shop.add_product("MUG-1", 0)
    woo_order = shop.add_order([("MUG-1", 2)])
    headers, body = shop.delivery("order.created", woo_order)

    with django_capture_on_commit_callbacks(execute=True):
        answer = post_hook(shop_connection, headers, body)

    assert answer.status_code == 202
    order = Order.objects.get(merchant=merchant, channel="woocommerce", external_id=str(woo_order["id"]))
    assert order.status == "allocated"
    assert StockLevel.objects.get(sku__code="MUG-1").reserved == 2
    assert ShopOrder.objects.get(connection=shop_connection).order == order
    assert "warehouse" in shop.notes[woo_order["id"]][0]["note"]  # accepted: a private note on WooCommerce
    assert InboundDelivery.objects.get().status == InboundStatus.PROCESSED

    # The reservation reached the shop: 10 on hand − 2 reserved.
    relay(django_capture_on_commit_callbacks)
    (product,) = shop.products.values()
    assert product["stock_quantity"] == 8

    # A stock change reaches the shop.
    sku = order.lines.get().sku
    with django_capture_on_commit_callbacks(execute=True):
        inventory.stock_adjust(sku=sku, location=location, quantity_delta=5, reason="found")
    relay(django_capture_on_commit_callbacks)
    assert product["stock_quantity"] == 13
    connection = Connection.objects.get(pk=shop_connection.pk)
    assert connection.last_stock_push_at is not None and connection.lag_ms is not None

    # A fulfilment with tracking comes back to the shop.
    shipment = Shipment(lines=(), parcels=(Parcel("6A0001", "colissimo", "https://t.example/6A0001"),))
    with django_capture_on_commit_callbacks(execute=True):
        (call,) = services.connection_push_fulfilment(order=order, shipment=shipment)
    call.refresh_from_db()
    assert call.status == CallStatus.SUCCEEDED
    assert shop.orders[woo_order["id"]]["status"] == "completed"
    assert "6A0001" in shop.notes[woo_order["id"]][-1]["note"]


def test_a_burst_of_changes_is_pushed_as_the_latest_level(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    sku = stock(merchant, location, "MUG-1", 10)
    shop.add_product("MUG-1", 0)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            inventory.stock_adjust(sku=sku, location=location, quantity_delta=1, reason="burst")
    relay(django_capture_on_commit_callbacks)
    (product,) = shop.products.values()
    assert product["stock_quantity"] == 15
    assert len(shop.calls("POST", r"/products/batch$")) == 1  # six events, one push


def test_a_safety_buffer_holds_units_back_from_the_shop(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    Connection.objects.filter(pk=shop_connection.pk).update(safety_buffer=3)
    stock(merchant, location, "MUG-1", 2)
    shop.add_product("MUG-1", 9)
    relay(django_capture_on_commit_callbacks)
    assert next(iter(shop.products.values()))["stock_quantity"] == 0  # never below zero


def test_a_throttled_push_waits_for_retry_after_and_is_not_lost(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "MUG-1", 4)
    shop.add_product("MUG-1", 0)
    shop.fail_next(429, headers={"Retry-After": "30"}, path="/products")
    relay(django_capture_on_commit_callbacks)
    connection = Connection.objects.get(pk=shop_connection.pk)
    assert connection.status == "failing" and "throttled" in connection.last_error
    assert connection.next_retry_at >= clock.now() + timedelta(seconds=29)
    assert StockSync.objects.get().changed_at is not None  # still to push
    with django_capture_on_commit_callbacks(execute=True):
        services.connections_sweep_due()
    assert next(iter(shop.products.values()))["stock_quantity"] == 0  # not before Retry-After
    clock.advance(timedelta(seconds=31))
    with django_capture_on_commit_callbacks(execute=True):
        services.connections_sweep_due()
    assert next(iter(shop.products.values()))["stock_quantity"] == 4
    assert Connection.objects.get(pk=shop_connection.pk).status == "active"


def test_a_bad_or_missing_signature_is_401_and_nothing_is_stored(shop, shop_connection):
    order = shop.add_order([("MUG-1", 1)])
    headers, body = shop.delivery("order.created", order)
    for changed in (
        {**headers, "X-WC-Webhook-Signature": "AAAA"},
        {k: v for k, v in headers.items() if "Sig" not in k},
    ):
        answer = post_hook(shop_connection, changed, body)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "signature_invalid"
    assert post_hook(shop_connection, headers, body.replace(b"Lyon", b"Lyin")).status_code == 401
    assert not InboundDelivery.objects.exists()


def test_the_creation_ping_is_answered_and_stores_nothing(shop_connection):
    answer = Client().post(
        f"/api/v1/shops/{shop_connection.pk}/hooks/order.created",
        data=b"webhook_id=12",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert not InboundDelivery.objects.exists()


def test_a_replayed_delivery_is_stored_and_processed_once(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "MUG-1", 5)
    headers, body = shop.delivery("order.created", shop.add_order([("MUG-1", 1)]))
    with django_capture_on_commit_callbacks(execute=True):
        assert post_hook(shop_connection, headers, body).status_code == 202
        replay = post_hook(shop_connection, headers, body)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    assert InboundDelivery.objects.count() == 1 and Order.objects.count() == 1


def test_an_order_for_an_unknown_sku_is_held_with_its_reason_then_taken_when_the_sku_appears(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    headers, body = shop.delivery("order.created", shop.add_order([("NEW-1", 1)]))
    with django_capture_on_commit_callbacks(execute=True):
        post_hook(shop_connection, headers, body)
    delivery = InboundDelivery.objects.get()
    assert delivery.status == InboundStatus.HELD
    assert delivery.missing_skus == ["NEW-1"] and "NEW-1" in delivery.reason
    assert not Order.objects.exists()

    from quai.catalog.services import sku_create

    with django_capture_on_commit_callbacks(execute=True):
        sku_create(merchant=merchant, code="NEW-1", name="New")
    relay(django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == InboundStatus.PROCESSED
    assert Order.objects.get().status == "backordered"  # taken in, waiting for stock


def test_a_cancelled_shop_order_cancels_the_quai_order_and_gives_its_stock_back(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "MUG-1", 5)
    woo_order = shop.add_order([("MUG-1", 3)])
    with django_capture_on_commit_callbacks(execute=True):
        post_hook(shop_connection, *shop.delivery("order.created", woo_order))
        post_hook(
            shop_connection,
            *shop.delivery("order.updated", shop.set_status(woo_order["id"], "cancelled")),
            topic="order.updated",
        )
    assert Order.objects.get().status == "cancelled"
    assert StockLevel.objects.get(sku__code="MUG-1").reserved == 0


def test_the_poll_finds_orders_the_webhooks_missed(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "MUG-1", 5)
    shop.add_order([("MUG-1", 1)])
    shop.add_order([("MUG-1", 1)])
    with django_capture_on_commit_callbacks(execute=True):
        assert services.connection_poll(connection=shop_connection) == 2
        assert services.connection_poll(connection=Connection.objects.get(pk=shop_connection.pk)) == 0
    assert Order.objects.count() == 2


def test_a_shop_down_is_retried_with_backoff_and_a_refusal_is_final(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "MUG-1", 5)
    woo_order = shop.add_order([("MUG-1", 1)])
    shop.fail_next(500, path=r"/notes$")
    with django_capture_on_commit_callbacks(execute=True):
        post_hook(shop_connection, *shop.delivery("order.created", woo_order))
    call = ConnectorCall.objects.get(kind="accept")
    assert call.status == CallStatus.PENDING and call.attempts == 1 and call.next_attempt_at > clock.now()
    clock.advance(timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        services.connections_sweep_due()
    call.refresh_from_db()
    assert call.status == CallStatus.SUCCEEDED and len(shop.notes[woo_order["id"]]) == 1

    refund = Refund(lines=(), amount=Decimal("5.00"), currency="EUR", reason="damaged")
    shop.fail_next(401, path=r"/refunds$")
    with django_capture_on_commit_callbacks(execute=True):
        (refund_call,) = services.connection_push_refund(order=Order.objects.get(), refund=refund)
    refund_call.refresh_from_db()
    assert refund_call.status == CallStatus.FAILED and "shop_unauthorized" in refund_call.last_error


def test_the_reconcile_repairs_drift_and_reports_it(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "MUG-1", 6)
    stock(merchant, location, "TEA-1", 2)
    shop.add_product("MUG-1", 6)
    shop.add_product("TEA-1", 40)  # drifted
    report = services.connection_stock_reconcile(connection=shop_connection)
    assert [(line.sku, line.quai, line.shop, line.repaired) for line in report.drift] == [("TEA-1", 2, 40, True)]
    assert services.connection_stock_reconcile(connection=shop_connection).drift == ()
    assert Connection.objects.get(pk=shop_connection.pk).last_reconcile["checked"] == 2


def _raw(table: str, column: str, pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def test_secrets_are_encrypted_at_rest_and_keys_rotate(shop_connection):
    subscription = WebhookSubscriptionFactory()
    raw_credentials = _raw("integrations_connection", "credentials", shop_connection.pk)
    raw_secret = _raw("integrations_webhooksubscription", "secret", subscription.pk)
    assert crypto.is_token(raw_credentials) and SECRET not in raw_credentials
    assert crypto.is_token(raw_secret) and "whsec_" not in raw_secret
    assert WebhookSubscription.objects.get(pk=subscription.pk).secret.startswith("whsec_")

    old = list(crypto.configured_keys())
    new = Fernet.generate_key().decode()
    with override_settings(QUAI_ENCRYPTION_KEYS=[new, *[k.decode() for k in old]]):
        call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
        rotated = _raw("integrations_connection", "credentials", shop_connection.pk)
    assert json.loads(Fernet(new.encode()).decrypt(rotated.encode()))["webhook_secret"] == SECRET
    with override_settings(QUAI_ENCRYPTION_KEYS=[new]):
        assert (
            services.connection_config(Connection.objects.get(pk=shop_connection.pk)).credentials["consumer_key"]
            == CONSUMER_KEY
        )


def test_a_secret_written_in_clear_before_encryption_is_read_and_encrypted_on_the_next_save():
    subscription = WebhookSubscriptionFactory()
    with db.cursor() as cursor:
        cursor.execute(
            "UPDATE integrations_webhooksubscription SET secret = %s WHERE id = %s", ["whsec_old", subscription.pk]
        )
    assert WebhookSubscription.objects.get(pk=subscription.pk).secret == "whsec_old"
    crypto.reencrypt_all()
    assert crypto.is_token(_raw("integrations_webhooksubscription", "secret", subscription.pk))


def test_the_api_never_returns_credentials_and_shows_the_inbound_url(merchant, shop):
    api = merchant_api(merchant)
    created = api.post(
        "shops",
        {
            "name": "Boutique",
            "platform": "woocommerce",
            "base_url": shop.url,
            "credentials": {"consumer_key": "ck_1", "consumer_secret": "cs_1", "webhook_secret": "hush"},
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert "hush" not in created.content.decode() and "cs_1" not in created.content.decode()
    assert body["credential_keys"] == ["consumer_key", "consumer_secret", "webhook_secret"]
    assert body["inbound_url"].endswith(f"/api/v1/shops/{body['id']}/hooks")
    changed = api.patch(f"shops/{body['id']}", {"version": body["version"], "credentials": {"webhook_secret": ""}})
    assert changed.json()["credential_keys"] == ["consumer_key", "consumer_secret"]
    unknown = api.post("shops", {"name": "X", "platform": "magento", "base_url": shop.url})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "platform_unknown"


def test_the_back_office_sets_credentials_write_only_and_shows_the_inbound_url(
    merchant, shop, staff_user, django_capture_on_commit_callbacks
):
    client = Client()
    client.force_login(staff_user)
    added = client.post(
        "/admin/integrations/connection/add/",
        {
            "merchant": merchant.pk,
            "name": "Boutique",
            "platform": "woocommerce",
            "base_url": shop.url,
            "settings": "{}",
            "safety_buffer": 0,
            "push_stock": "on",
            "poll_orders": "on",
            "new_credentials": f"consumer_key={CONSUMER_KEY}\nconsumer_secret={CONSUMER_SECRET}\nwebhook_secret=hush",
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    connection = Connection.objects.get()
    assert services.connection_config(connection).credentials["webhook_secret"] == "hush"
    page = client.get(f"/admin/integrations/connection/{connection.pk}/change/").content.decode()
    assert f"/api/v1/shops/{connection.pk}/hooks" in page and "hush" not in page and CONSUMER_SECRET not in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/integrations/connection/",
            {"action": "health_check", "_selected_action": [connection.pk]},
        )
    connection.refresh_from_db()
    assert connection.last_health["checks"]["credentials"] is True
    assert client.get("/admin/integrations/inbounddelivery/").status_code == 200
    assert client.get("/admin/integrations/connectorcall/").status_code == 200


def test_an_address_changed_on_the_shop_changes_the_quai_order_until_a_label_exists(
    merchant, location, shop, shop_connection, django_capture_on_commit_callbacks
):
    stock(merchant, location, "MUG-1", 10)
    woo_order = shop.add_order([("MUG-1", 1)])
    headers, body = shop.delivery("order.created", woo_order)
    with django_capture_on_commit_callbacks(execute=True):
        post_hook(shop_connection, headers, body)
    order = Order.objects.get(external_id=str(woo_order["id"]))

    def change_on_shop(line1):
        with shop.lock:
            shop.orders[woo_order["id"]]["shipping"]["address_1"] = line1
        # The webhook's body is stale on purpose: the engine re-reads the order the shop holds now.
        headers, body = shop.delivery("order.updated", {**woo_order, "shipping": {**woo_order["shipping"]}})
        with django_capture_on_commit_callbacks(execute=True):
            assert post_hook(shop_connection, headers, body, topic="order.updated").status_code == 202
        return InboundDelivery.objects.latest("pk")

    delivery = change_on_shop("8 place Bellecour")
    assert delivery.status == InboundStatus.PROCESSED, delivery.reason
    order.refresh_from_db()
    assert order.address_line1 == "8 place Bellecour"
    assert Order.objects.count() == 1  # changed, not taken twice

    Order.objects.filter(pk=order.pk).update(status="packed")  # a label exists from packing on
    notes_before = len(shop.notes.get(woo_order["id"], []))
    delivery = change_on_shop("1 quai Perrache")
    assert delivery.status == InboundStatus.FAILED
    assert delivery.error_code == "order_labelled" and delivery.reason  # the orders service's sentence
    order.refresh_from_db()
    assert order.address_line1 == "8 place Bellecour"
    assert len(shop.notes[woo_order["id"]]) == notes_before + 1  # the shop is told, privately

    # The shop's next update (same refused address) is not refused again.
    headers, body = shop.delivery("order.updated", woo_order)
    with django_capture_on_commit_callbacks(execute=True):
        post_hook(shop_connection, headers, body, topic="order.updated")
    assert InboundDelivery.objects.latest("pk").status == InboundStatus.PROCESSED
