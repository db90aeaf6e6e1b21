"""The WooCommerce adapter against a fake store on loopback (real HTTP), and its signature on bodies byte for byte
as WooCommerce encodes them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quai.integrations.connectors.base import (
    ConnectionConfig,
    ConnectorError,
    Parcel,
    Refund,
    RefundLine,
    Shipment,
    SignatureInvalid,
    StockLevel,
    Throttled,
    adapter_for,
)
from quai.integrations.connectors.woocommerce import signature_for, wp_specialchars_decode
from quai.integrations.tests.fake_shops.woocommerce import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    FakeWooCommerce,
    woo_signature,
)


@pytest.fixture
def shop():
    fake = FakeWooCommerce()
    with fake.running():
        yield fake


def adapter(shop=None, *, secret="s3cret&amp;more", key=CONSUMER_KEY, **settings_):
    config = ConnectionConfig(
        platform="woocommerce",
        base_url=shop.url if shop else "https://shop.example",
        credentials={"consumer_key": key, "consumer_secret": CONSUMER_SECRET, "webhook_secret": secret},
        settings=settings_,
    )
    return adapter_for(config, httpx.Client(timeout=5))


# --- signatures ------------------------------------------------------------------------------------------------


def test_the_signature_matches_the_reference_vector():
    # ../shared/reference/INTEGRATIONS.md §6.4: computed with the same scheme, base64 HMAC-SHA256.
    assert signature_for("hush", b'{"id":1001,"kind":"FULFILLMENT_REQUEST"}') == (
        "JByf698iwzRox4E68xWkHS9KVYcB3ySd1q3SU+2ITLA="
    )


def test_the_secret_is_html_entity_decoded_as_wordpress_does():
    assert wp_specialchars_decode("a&amp;b&lt;c&gt;d&quot;e&#039;f") == "a&b<c>d\"e'f"
    assert wp_specialchars_decode("&#038;&#x26;&#X26;&#0038;&#34;&#x27;") == "&&&&\"'"
    # Only the five special characters: every other entity stays as typed.
    assert wp_specialchars_decode("caf&eacute;&nbsp;&#233;") == "caf&eacute;&nbsp;&#233;"
    body = b'{"id":1}'
    raw = base64.b64encode(hmac.new(b"a&b", body, hashlib.sha256).digest()).decode()
    adapter(secret="a&amp;b").verify({"X-WC-Webhook-Signature": raw}, body)
    with pytest.raises(SignatureInvalid):
        adapter(secret="a&b&amp;").verify({"X-WC-Webhook-Signature": raw}, body)


def test_a_body_with_escaped_slashes_non_ascii_and_emoji_verifies_only_as_sent():
    shop = FakeWooCommerce()
    order = shop.add_order([("MUG-1", 1)], customer_note="https://x.fr/été 🎉")
    headers, body = shop.delivery("order.created", order)
    assert b"https:\\/\\/x.fr\\/\\u00e9t\\u00e9 \\ud83c\\udf89" in body
    woo = adapter()
    woo.verify(headers, body)
    reserialised = json.dumps(json.loads(body), ensure_ascii=False).encode()
    with pytest.raises(SignatureInvalid):
        woo.verify(headers, reserialised)
    parsed = woo.parse(headers, body)
    assert parsed[0].kind == "order_ready"
    assert parsed[0].order.notes == "https://x.fr/été 🎉"
    assert parsed[0].order.lines[0].name == "MUG-1 🎁"


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "bm90IGl0",
        hmac.new(b"s3cret&more", b'{"id":1}', hashlib.sha256).hexdigest(),  # hex instead of base64
        woo_signature("another", b'{"id":1}'),
    ],
)
def test_a_missing_or_wrong_signature_is_refused(signature):
    headers = {} if signature is None else {"X-WC-Webhook-Signature": signature}
    with pytest.raises(SignatureInvalid):
        adapter().verify(headers, b'{"id":1}')


def test_the_unsigned_creation_ping_is_the_only_unsigned_call_let_through():
    woo = adapter()
    woo.verify({}, b"webhook_id=42")
    assert [e.kind for e in woo.parse({}, b"webhook_id=42")] == ["ping"]
    for body in (b"webhook_id=42&x=1", b"webhook_id=", b'{"webhook_id":42}'):
        with pytest.raises(SignatureInvalid):
            woo.verify({}, body)


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=200), flip=st.integers(min_value=0, max_value=199))
def test_only_the_signed_bytes_verify(body, flip):
    woo = adapter()
    signature = woo_signature("s3cret&amp;more", body)
    woo.verify({"X-WC-Webhook-Signature": signature}, body)
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        with pytest.raises(SignatureInvalid):
            woo.verify({"X-WC-Webhook-Signature": signature}, tampered)


def test_the_delivery_key_tells_two_deliveries_of_the_same_second_apart():
    woo = adapter()
    headers = {"X-WC-Webhook-ID": "7", "X-WC-Webhook-Delivery-ID": "same-second"}
    assert woo.delivery_id(headers, b'{"id":1}') == woo.delivery_id(dict(headers), b'{"id":1}')
    assert woo.delivery_id(headers, b'{"id":1}') != woo.delivery_id(headers, b'{"id":2}')


# --- REST against the fake store -----------------------------------------------------------------------------------


def test_stock_is_set_in_batches_for_products_and_variations(shop):
    mug = shop.add_product("MUG-1", 3)
    parent = shop.add_product("TEE", None)
    tee_m = shop.add_product("TEE-M", 1, parent_id=parent["id"])
    report = adapter(shop).push_stock([StockLevel("MUG-1", 7), StockLevel("TEE-M", 0), StockLevel("NOPE", 4)], "snap-1")
    assert set(report.updated) == {"MUG-1", "TEE-M"}
    assert report.unknown == ("NOPE",)
    assert shop.products[mug["id"]]["stock_quantity"] == 7
    assert shop.products[tee_m["id"]]["stock_quantity"] == 0
    assert shop.calls("POST", r"/products/batch$") and shop.calls("POST", rf"/products/{parent['id']}/variations/batch")


def test_more_than_a_hundred_skus_go_in_several_batches_and_pages(shop):
    for n in range(150):
        shop.add_product(f"S-{n:03d}", 0)
    report = adapter(shop).push_stock([StockLevel(f"S-{n:03d}", n) for n in range(150)], "snap")
    assert len(report.updated) == 150
    assert len(shop.calls("POST", r"/products/batch$")) == 2
    assert all(p["stock_quantity"] == int(p["sku"][2:]) for p in shop.products.values())


def test_orders_are_polled_page_by_page_with_a_cursor(shop):
    for _ in range(120):
        shop.add_order([("MUG-1", 1)])
    shop.add_order([("MUG-1", 1)], status="pending")
    woo = adapter(shop)
    seen, cursor = [], None
    for _ in range(5):
        page = woo.fetch_orders(cursor)
        seen += [o.external_id for o in page.orders]
        if page.cursor is None:  # caught up: the last cursor stays the place to start from
            break
        cursor = page.cursor
    assert len(seen) == len(set(seen)) == 120
    shop.add_order([("MUG-1", 2)])
    assert len(woo.fetch_orders(cursor).orders) == 1


def test_errors_are_told_apart_401_404_429_and_5xx(shop):
    with pytest.raises(ConnectorError) as refused:
        adapter(shop, key="wrong").fetch_order("1")
    assert refused.value.code == "shop_unauthorized" and not refused.value.retryable
    with pytest.raises(ConnectorError) as missing:
        adapter(shop).fetch_order("999999")
    assert missing.value.code == "shop_not_found" and not missing.value.retryable
    shop.fail_next(429, headers={"Retry-After": "7"})
    with pytest.raises(Throttled) as throttled:
        adapter(shop).fetch_orders(None)
    assert throttled.value.retry_after == 7 and throttled.value.retryable
    shop.fail_next(503)
    with pytest.raises(ConnectorError) as down:
        adapter(shop).fetch_orders(None)
    assert down.value.retryable


def test_a_fulfilment_completes_the_order_once_with_a_tracking_note(shop):
    order = shop.add_order([("MUG-1", 1)])
    woo = adapter(shop)
    external = woo.fetch_order(str(order["id"]))
    shipment = Shipment(lines=(), parcels=(Parcel("6A123456789", "colissimo", "https://t.example/6A1"),))
    woo.push_fulfilment(external, shipment, "ship-1")
    woo.push_fulfilment(external, shipment, "ship-1")  # a retry after a lost answer
    assert shop.orders[order["id"]]["status"] == "completed"
    notes = shop.notes[order["id"]]
    assert len(notes) == 1 and "6A123456789" in notes[0]["note"] and notes[0]["customer_note"] is True


def test_a_refund_is_recorded_once_without_calling_the_gateway(shop):
    order = shop.add_order([("MUG-1", 2)])
    woo = adapter(shop)
    external = woo.fetch_order(str(order["id"]))
    line_id = external.lines[0].external_line_id
    refund = Refund(
        lines=(RefundLine(line_id, 1, Decimal("12.50")),),
        amount=Decimal("12.50"),
        currency="EUR",
        reason="RMA-1",
        restock=True,
    )
    first = woo.push_refund(external, refund, "refund-1")
    assert woo.push_refund(external, refund, "refund-1") == first
    (stored,) = shop.refunds[order["id"]]
    assert stored["api_refund"] is False and stored["amount"] == "12.50"
    assert stored["line_items"] == [{"id": int(line_id), "quantity": 1, "refund_total": "12.50"}]


def test_subscriptions_are_registered_once_and_a_disabled_one_is_reactivated(shop):
    woo = adapter(shop)
    woo.ensure_subscriptions("https://quai.example/api/v1/shops/1/hooks")
    woo.ensure_subscriptions("https://quai.example/api/v1/shops/1/hooks")
    assert len(shop.webhooks) == 3
    hook = next(iter(shop.webhooks.values()))
    hook["status"] = "disabled"
    assert not woo.health().ok
    woo.ensure_subscriptions("https://quai.example/api/v1/shops/1/hooks")
    assert hook["status"] == "active" and woo.health().ok


def test_the_poll_misses_no_order_modified_in_the_marks_second_nor_one_pushed_back_between_pages(shop):
    woo = adapter(shop)
    first = [shop.add_order([("MUG-1", 1)]) for _ in range(150)]

    page1 = woo.fetch_orders(None)
    assert len(page1.orders) == 100
    shop.set_status(first[0]["id"], "processing")  # modified between two pages: it must not push another out of view
    page2 = woo.fetch_orders(page1.cursor)
    assert {o.external_id for o in page1.orders + page2.orders} == {str(o["id"]) for o in first}
    # The next pass sees the order modified meanwhile again (once), then is caught up.
    page3 = woo.fetch_orders(page2.cursor)
    assert [o.external_id for o in page3.orders] == [str(first[0]["id"])]
    assert woo.fetch_orders(page3.cursor).cursor is None

    # ``modified_after`` is strict at the second: an order modified in the mark's own second, after the pass, is
    # still found, and the ones taken at that second are not taken again.
    mark = json.loads(page3.cursor)["since"]
    late = shop.add_order([("MUG-1", 1)])
    with shop.lock:
        shop.orders[late["id"]]["date_modified_gmt"] = mark
    page4 = woo.fetch_orders(page3.cursor)
    assert [o.external_id for o in page4.orders] == [str(late["id"])]
    assert woo.fetch_orders(page4.cursor).cursor is None


def test_the_poll_sorts_only_by_what_the_api_documents(shop):
    shop.add_order([("MUG-1", 1)])
    adapter(shop).fetch_orders(None)
    (request,) = [r for r in shop.requests if r.path.endswith("/orders")]
    assert request.param("orderby") in ("date", "id")
