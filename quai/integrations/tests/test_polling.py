"""The poll through the connections engine, against fake shops on loopback: a cursor holding the ids of a busy second
is stored whole, and the poll goes on while the cursor moves, even across pages that hold no order for Quai."""

from __future__ import annotations

import json

import pytest

from quai.integrations import services
from quai.integrations.models import Connection, InboundDelivery
from quai.integrations.tests.fake_shops.prestashop import FakePrestaShop
from quai.integrations.tests.fake_shops.saleor import FakeSaleor
from quai.integrations.tests.fake_shops.shopify import FakeShopify

pytestmark = pytest.mark.django_db

BUSY_SECOND = "2025-06-02 10:00:00"


@pytest.fixture
def prestashop():
    fake = FakePrestaShop().start()
    yield fake
    fake.stop()


@pytest.fixture
def saleor():
    fake = FakeSaleor().start()
    yield fake
    fake.stop()


@pytest.fixture
def shopify():
    fake = FakeShopify().start()
    yield fake
    fake.stop()


def polled_ids(connection: Connection) -> list[str]:
    return sorted(
        InboundDelivery.objects.filter(connection=connection, topic="poll").values_list("external_id", flat=True),
        key=int,
    )


def test_a_second_holding_200_orders_keeps_its_cursor_whole(merchant, prestashop):
    # Ids above 1,000 make the cursor's list of ids taken at the second about 1,000 characters: cut at 500, as the
    # column was, it would be unreadable JSON or forget ids, and the orders of that second come in twice.
    for order_id in range(1001, 1201):
        prestashop.add_order(order_id, lines=[("A", 1)], updated=BUSY_SECOND)
    connection = services.connection_create(
        merchant=merchant,
        name="Boutique PrestaShop",
        platform="prestashop",
        base_url=prestashop.url,
        credentials={"api_key": prestashop.api_key},
        settings={"page_size": 50},
    )

    assert services.connection_poll(connection=connection) == 200

    connection.refresh_from_db()
    stored = json.loads(connection.cursor)
    assert len(connection.cursor) > 1000
    assert stored == {"since": BUSY_SECOND, "seen": list(range(1001, 1201))}
    assert connection.last_error == ""
    # Read again from the stored cursor: nothing comes twice; one more order in that second comes once.
    assert services.connection_poll(connection=connection) == 0
    prestashop.add_order(1201, lines=[("A", 1)], updated=BUSY_SECOND)
    assert services.connection_poll(connection=Connection.objects.get(pk=connection.pk)) == 1
    assert polled_ids(connection) == [str(i) for i in range(1001, 1202)]


def test_the_poll_goes_on_across_pages_holding_no_order_ready(merchant, saleor):
    # Three unpaid orders changed first, then a paid one: with one order a page, the first three pages hold nothing
    # ready but move the cursor; the poll must not stop there.
    for number in ("1", "2", "3"):
        saleor.add_order(number, [("A", 1)], status="UNCONFIRMED", charge="NONE")
    paid = saleor.add_order("4", [("A", 1)])
    connection = services.connection_create(
        merchant=merchant,
        name="Boutique Saleor",
        platform="saleor",
        base_url=saleor.api_url,
        credentials={"app_token": saleor.token},
        settings={"warehouse_id": saleor.warehouse_id, "page_size": 1},
    )

    assert services.connection_poll(connection=connection) == 1

    assert list(InboundDelivery.objects.filter(connection=connection).values_list("external_id", flat=True)) == [
        paid["id"]
    ]


def test_the_poll_is_bounded_per_run_and_the_next_run_goes_on_from_the_cursor(merchant, saleor):
    for number in ("1", "2", "3", "4"):
        saleor.add_order(number, [("A", 1)], status="UNCONFIRMED", charge="NONE")
    paid = saleor.add_order("5", [("A", 1)])
    connection = services.connection_create(
        merchant=merchant,
        name="Boutique Saleor",
        platform="saleor",
        base_url=saleor.api_url,
        credentials={"app_token": saleor.token},
        settings={"warehouse_id": saleor.warehouse_id, "page_size": 1},
    )

    assert services.connection_poll(connection=connection, max_pages=2) == 0
    assert services.connection_poll(connection=Connection.objects.get(pk=connection.pk), max_pages=2) == 0
    assert services.connection_poll(connection=Connection.objects.get(pk=connection.pk), max_pages=2) == 1
    assert InboundDelivery.objects.get(connection=connection).external_id == paid["id"]


def test_an_empty_queue_of_fulfilment_requests_does_not_hide_the_cancellation_queue(merchant, shopify):
    service = shopify.add_service("Quai")
    location = service["location"]["id"]
    shopify.add_variant("MUG-01", location, 5)
    asked = shopify.request_fulfillment(location, [("MUG-01", 1)])
    shopify.request_cancellation(asked["id"])
    connection = services.connection_create(
        merchant=merchant,
        name="Boutique Shopify",
        platform="shopify",
        base_url=shopify.url,
        credentials={"access_token": shopify.access_token, "client_secret": shopify.client_secret},
        settings={"shop_domain": shopify.shop_domain, "location_id": location},
    )

    assert services.connection_poll(connection=connection) == 1

    assert InboundDelivery.objects.get(connection=connection).external_id == asked["id"]
    # A fulfilment request made after a full pass is found by the next poll.
    later = shopify.request_fulfillment(location, [("MUG-01", 1)])
    assert services.connection_poll(connection=Connection.objects.get(pk=connection.pk)) == 1
    assert InboundDelivery.objects.filter(connection=connection, external_id=later["id"]).exists()
