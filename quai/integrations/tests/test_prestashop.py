"""The PrestaShop adapter against a webservice speaking PrestaShop's protocol over real HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from quai.integrations.connectors.base import (
    ConnectionConfig,
    ConnectorError,
    NotSupported,
    Parcel,
    Refund,
    RefundLine,
    Shipment,
    ShipmentLine,
    SignatureInvalid,
    StockLevel,
    Throttled,
    adapter_for,
)
from quai.integrations.connectors.prestashop import PrestaShopAdapter
from quai.integrations.tests.fake_shops.prestashop import FakePrestaShop


@pytest.fixture
def shop() -> Iterator[FakePrestaShop]:
    fake = FakePrestaShop().start()
    yield fake
    fake.stop()


def make_adapter(shop: FakePrestaShop, **settings_: object) -> PrestaShopAdapter:
    config = ConnectionConfig(
        platform="prestashop", base_url=shop.url, credentials={"api_key": shop.api_key}, settings=settings_
    )
    adapter = adapter_for(config, httpx.Client(timeout=5))
    assert isinstance(adapter, PrestaShopAdapter)
    return adapter


def poll_all(adapter: PrestaShopAdapter, cursor: str | None = None) -> tuple[list[str], str | None]:
    ids: list[str] = []
    last = cursor
    for _ in range(50):
        page = adapter.fetch_orders(last)
        ids += [o.external_id for o in page.orders]
        if page.cursor is None:
            return ids, last
        last = page.cursor
    raise AssertionError("the poll never caught up")


def test_an_order_comes_in_with_its_address_customer_country_currency_and_lines(shop: FakePrestaShop) -> None:
    shop.add_order(5, lines=[("TASSE-01", 2), ("BOL/02", 1)])
    page = make_adapter(shop).fetch_orders(None)
    (order,) = page.orders
    assert order.external_id == "5" and order.external_number == "XKBKNABJ5"
    assert order.currency == "EUR" and order.paid and not order.cancelled
    assert order.ship_to.name == "Zoé Lefèvre"
    assert order.ship_to.city == "Saint-Étienne" and order.ship_to.line1 == "12 rue de l'Église"
    assert order.ship_to.line2 == "Bât. B 🏠" and order.ship_to.country == "FR"
    assert order.ship_to.phone == "0612345678" and order.customer_email == "zoe@example.fr"
    assert [(line.sku, line.quantity) for line in order.lines] == [("TASSE-01", 2), ("BOL/02", 1)]
    assert order.lines[0].name == "Tasse « TASSE-01 » ☕🎁" and order.lines[0].unit_price == Decimal("15.000000")
    assert order.carrier_hint == "Colissimo" and order.shipping_total == Decimal("4.90")
    # The body really was PHP-escaped (\/ and \u): the decoding above is the adapter's, not a lucky pass-through.
    assert b"BOL\\/02" in php_listing(shop)


def php_listing(shop: FakePrestaShop) -> bytes:
    response = httpx.get(
        f"{shop.url}/api/orders",
        params={"display": "full", "output_format": "JSON"},
        auth=(shop.api_key, ""),
    )
    assert b"\\u00ab" in response.content and b"\\ud83c\\udf81" in response.content  # « and 🎁
    return response.content


def test_the_poll_asks_the_webservice_as_documented(shop: FakePrestaShop) -> None:
    shop.add_order(1, lines=[("A", 1)])
    make_adapter(shop, poll_since="2025-06-01 00:00:00").fetch_orders(None)
    listing = next(r for r in shop.requests if r.path == "/api/orders")
    assert listing.query["date"] == "1" and listing.query["output_format"] == "JSON"
    assert listing.query["filter[date_upd]"] == "[2025-06-01 00:00:00,2999-12-31 23:59:59]"
    assert listing.query["sort"] == "[date_upd_ASC,id_ASC]" and listing.query["display"] == "full"
    assert listing.query["filter[current_state]"] == "[2|3|6|7]"  # paid, not shipped + cancelled/refunded
    assert listing.headers["authorization"].startswith("Basic ")


def test_pages_follow_each_other_and_no_order_of_a_shared_second_is_skipped(shop: FakePrestaShop) -> None:
    for order_id in range(1, 6):
        shop.add_order(order_id, lines=[("A", 1)], updated="2025-06-02 10:00:00")
    shop.add_order(6, lines=[("A", 1)], updated="2025-06-02 10:00:01")
    adapter = make_adapter(shop, page_size=2)
    ids, cursor = poll_all(adapter)
    assert ids == ["1", "2", "3", "4", "5", "6"]
    # An order written later in the very second of the mark, with a lower id than some already taken.
    shop.add_order(7, lines=[("A", 1)], updated="2025-06-02 10:00:01")
    # And an order already taken, updated again afterwards.
    shop.touch(2, "2025-06-02 10:00:05")
    more, _ = poll_all(adapter, cursor)
    assert sorted(more) == ["2", "7"]


def test_a_caught_up_poll_answers_no_cursor_and_the_empty_listing_is_read(shop: FakePrestaShop) -> None:
    page = make_adapter(shop).fetch_orders(None)
    assert page.orders == () and page.cursor is None


def test_unpaid_orders_wait_and_cancelled_ones_come_marked(shop: FakePrestaShop) -> None:
    shop.add_order(1, lines=[("A", 1)], state=10)  # awaiting bank wire
    shop.add_order(2, lines=[("A", 1)], state=6)
    ids, _ = poll_all(make_adapter(shop))
    assert ids == ["2"]
    assert make_adapter(shop).fetch_order("2").cancelled


def test_accepting_moves_the_order_to_preparation_once(shop: FakePrestaShop) -> None:
    shop.add_order(9, lines=[("A", 1)])
    adapter = make_adapter(shop)
    order = adapter.fetch_order("9")
    adapter.accept(order)
    adapter.accept(order)
    assert shop.order(9)["current_state"] == 3
    posts = [w for w in shop.writes if w[1] == "/api/order_histories"]
    assert len(posts) == 1 and b"<id_order_state>3</id_order_state>" in posts[0][2]
    assert shop.emails == []


def test_a_shipment_sets_the_tracking_number_then_the_shipped_state(shop: FakePrestaShop) -> None:
    shop.add_order(9, lines=[("A", 2)])
    adapter = make_adapter(shop)
    order = adapter.fetch_order("9")
    shipment = Shipment(lines=(ShipmentLine(order.lines[0].external_line_id, 2),), parcels=(Parcel("6A123456789"),))
    fulfilment_id = adapter.push_fulfilment(order, shipment, "shipment-1")
    assert fulfilment_id == str(shop.carrier_row_of(9)["id"])
    assert shop.carrier_row_of(9)["tracking_number"] == "6A123456789"
    assert shop.order(9)["current_state"] == 4
    # One mail, the in-transit one with the tracking link; the state change is silent.
    assert shop.emails == [("in_transit", 9)]
    put = next(w for w in shop.writes if w[0] == "PUT")
    assert b"<id_carrier>2</id_carrier>" in put[2] and b"<weight>0.5</weight>" in put[2]  # the whole document
    writes = len(shop.writes)
    adapter.push_fulfilment(order, shipment, "shipment-1")
    assert len(shop.writes) == writes  # a retried push writes nothing twice


def test_stock_levels_reach_products_and_combinations(shop: FakePrestaShop) -> None:
    shop.add_product(12, "TASSE-01", 3)
    shop.add_product(13, "", 0, attribute=40)
    shop.tables["combinations"][40]["reference"] = "TSHIRT-M"
    shop.add_product(14, "SAME", 7)
    report = make_adapter(shop).push_stock(
        [StockLevel("TASSE-01", 17), StockLevel("TSHIRT-M", 4), StockLevel("SAME", 7), StockLevel("NOPE", 1)],
        "snap-1",
    )
    assert report.updated == ("TASSE-01", "TSHIRT-M", "SAME") and report.unknown == ("NOPE",)
    assert shop.stock_of(12) == 17 and shop.stock_of(13, 40) == 4 and shop.stock_of(14) == 7
    puts = [w for w in shop.writes if w[0] == "PUT"]
    assert len(puts) == 2  # the unchanged level is not written
    assert all(b"<depends_on_stock>" in w[2] and b"<out_of_stock>" in w[2] for w in puts)


def test_the_reconcile_reads_what_the_shop_shows(shop: FakePrestaShop) -> None:
    shop.add_product(12, "TASSE-01", 3)
    shop.add_product(13, "", 0, attribute=40)
    shop.tables["combinations"][40]["reference"] = "TSHIRT-M"
    levels = make_adapter(shop).stock_levels(["TASSE-01", "TSHIRT-M", "NOPE"])
    assert levels == {"TASSE-01": 3, "TSHIRT-M": 0}


def test_a_negative_level_is_pushed_as_zero(shop: FakePrestaShop) -> None:
    shop.add_product(12, "TASSE-01", 3)
    make_adapter(shop).push_stock([StockLevel("TASSE-01", -2)], "snap")
    assert shop.stock_of(12) == 0


def test_a_full_refund_sets_the_refunded_state_and_a_partial_one_is_refused(shop: FakePrestaShop) -> None:
    shop.add_order(9, lines=[("A", 2), ("B", 1)])
    adapter = make_adapter(shop)
    order = adapter.fetch_order("9")
    partial = Refund(lines=(RefundLine(order.lines[0].external_line_id, 1),), amount=Decimal("15"), currency="EUR")
    with pytest.raises(NotSupported):
        adapter.push_refund(order, partial, "r1")
    assert shop.order(9)["current_state"] == 2
    whole = Refund(
        lines=tuple(RefundLine(line.external_line_id, line.quantity) for line in order.lines),
        amount=Decimal("45"),
        currency="EUR",
        reason="Colis retourné",
    )
    adapter.push_refund(order, whole, "r2")
    assert shop.order(9)["current_state"] == 7
    assert ("order_history", 9) in shop.emails
    assert any(row["message"] == "Refund: Colis retourné" for row in shop.tables["messages"].values())


def test_a_wrong_key_is_a_401_that_no_retry_will_fix(shop: FakePrestaShop) -> None:
    config = ConnectionConfig(platform="prestashop", base_url=shop.url, credentials={"api_key": "WRONG"})
    with pytest.raises(ConnectorError) as caught:
        adapter_for(config).fetch_orders(None)
    assert caught.value.code == "auth_failed" and not caught.value.retryable


def test_a_missing_order_is_not_found(shop: FakePrestaShop) -> None:
    with pytest.raises(ConnectorError) as caught:
        make_adapter(shop).fetch_order("404")
    assert caught.value.code == "not_found" and "Id(404) not exists" in str(caught.value)


def test_throttling_carries_retry_after_and_outages_are_retryable(shop: FakePrestaShop) -> None:
    adapter = make_adapter(shop)
    shop.fail_next.append((429, {"Retry-After": "30"}, b""))
    with pytest.raises(Throttled) as throttled:
        adapter.fetch_orders(None)
    assert throttled.value.retry_after == 30.0 and throttled.value.retryable
    shop.fail_next.append((503, {}, b"<html>maintenance</html>"))
    with pytest.raises(ConnectorError) as down:
        adapter.fetch_orders(None)
    assert down.value.retryable and down.value.code == "platform_unavailable"


def test_a_stock_push_interrupted_by_an_outage_raises_for_a_retry(shop: FakePrestaShop) -> None:
    shop.add_product(12, "TASSE-01", 3)
    adapter = make_adapter(shop)
    shop.fail_next.append((500, {}, b""))
    with pytest.raises(ConnectorError) as caught:
        adapter.push_stock([StockLevel("TASSE-01", 1)], "snap")
    assert caught.value.retryable


def test_prestashop_sends_no_webhooks_so_every_inbound_call_is_refused(shop: FakePrestaShop) -> None:
    with pytest.raises(SignatureInvalid):
        make_adapter(shop).verify({"X-Anything": "1"}, b"{}")


def test_health_checks_the_keys_permissions(shop: FakePrestaShop) -> None:
    report = make_adapter(shop).health()
    assert report.ok and report.checks["stock_availables"]
    bad = ConnectionConfig(platform="prestashop", base_url=shop.url, credentials={"api_key": "WRONG"})
    assert not adapter_for(bad).health().ok
