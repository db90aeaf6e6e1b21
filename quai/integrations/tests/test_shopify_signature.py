"""Shopify's inbound calls: the X-Shopify-Hmac-Sha256 check on the raw bytes, and what a verified call means.

Bodies are bytes as Shopify sends them (compact JSON, UTF-8, "\\/" escapes, emoji); each case signs one exact byte
string and checks another, so nothing here goes through a JSON round trip by accident."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quai.core import clock
from quai.integrations.connectors import adapter_for
from quai.integrations.connectors.base import ConnectionConfig, SignatureInvalid
from quai.integrations.connectors.shopify import ShopifyAdapter

SECRET = "hush"
SHOP = "quai-test.myshopify.com"


def adapter(secret: str = SECRET, shop: str | None = SHOP) -> ShopifyAdapter:
    settings = {"shop_domain": shop} if shop else {}
    config = ConnectionConfig(
        platform="shopify", base_url="https://x", credentials={"client_secret": secret}, settings=settings
    )
    built = adapter_for(config)
    assert isinstance(built, ShopifyAdapter)
    return built


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def headers(signature: str, **extra: str) -> dict[str, str]:
    return {"X-Shopify-Hmac-Sha256": signature, "X-Shopify-Shop-Domain": SHOP, **extra}


def test_the_integrations_reference_vector_verifies():
    # ../shared/reference/INTEGRATIONS.md §6.4, computed there independently.
    body = b'{"id":1001,"kind":"FULFILLMENT_REQUEST"}'
    adapter().verify(headers("JByf698iwzRox4E68xWkHS9KVYcB3ySd1q3SU+2ITLA="), body)


def test_the_same_vector_in_hex_is_refused():
    body = b'{"id":1001,"kind":"FULFILLMENT_REQUEST"}'
    with pytest.raises(SignatureInvalid):
        adapter().verify(headers("241c9febdf22c33468c7813af315a41d2f4a558701df249dd6add253ed884cb0"), body)


@pytest.mark.parametrize(
    "body",
    [
        '{"kind":"FULFILLMENT_REQUEST","note":"Zoé Lefèvre, 12 rue de l\'Église"}'.encode(),
        b'{"kind":"FULFILLMENT_REQUEST","url":"https:\\/\\/shop.example\\/a\\/b"}',
        '{"kind":"FULFILLMENT_REQUEST","message":"Fragile 📦🇫🇷"}'.encode(),
        b'{"kind":"FULFILLMENT_REQUEST","message":"\\ud83d\\udce6 escaped emoji"}',
        b"",
    ],
    ids=["non-ascii", "escaped-slashes", "emoji", "escaped-surrogates", "empty"],
)
def test_a_body_signed_byte_for_byte_verifies(body):
    adapter().verify(headers(sign(body)), body)


@pytest.mark.parametrize(
    "body",
    [
        '{"message":"Zoé"}'.encode(),
        b'{"url":"https:\\/\\/shop.example\\/a"}',
        '{"message":"📦"}'.encode(),
    ],
)
def test_a_body_re_serialised_after_signing_is_refused(body):
    # What a receiver gets wrong when it verifies json.dumps(request.json) instead of the raw bytes: the escapes,
    # the separators and the encoding of non-ASCII characters change, so the HMAC must not match.
    reserialised = json.dumps(json.loads(body)).encode()
    assert reserialised != body
    with pytest.raises(SignatureInvalid):
        adapter().verify(headers(sign(body)), reserialised)


def test_a_one_byte_change_is_refused():
    body = b'{"kind":"FULFILLMENT_REQUEST"}'
    signature = sign(body)
    for index in range(len(body)):
        changed = bytearray(body)
        changed[index] ^= 0x01
        with pytest.raises(SignatureInvalid):
            adapter().verify(headers(signature), bytes(changed))


def test_a_missing_or_empty_signature_is_refused():
    body = b'{"kind":"FULFILLMENT_REQUEST"}'
    with pytest.raises(SignatureInvalid, match="missing"):
        adapter().verify({"X-Shopify-Shop-Domain": SHOP}, body)
    with pytest.raises(SignatureInvalid, match="missing"):
        adapter().verify(headers(""), body)


@pytest.mark.parametrize(
    "name", ["X-Shopify-Hmac-Sha256", "X-Shopify-Hmac-SHA256", "x-shopify-hmac-sha256", "X-SHOPIFY-HMAC-SHA256"]
)
def test_the_header_name_is_matched_whatever_its_case(name):
    body = b'{"kind":"CANCELLATION_REQUEST"}'
    adapter().verify({name: sign(body)}, body)


def test_a_signature_with_another_secret_is_refused():
    body = b'{"kind":"FULFILLMENT_REQUEST"}'
    with pytest.raises(SignatureInvalid):
        adapter().verify(headers(sign(body, "not-hush")), body)


def test_a_connection_without_a_secret_refuses_everything():
    body = b'{"kind":"FULFILLMENT_REQUEST"}'
    with pytest.raises(SignatureInvalid, match="no client secret"):
        adapter(secret="").verify(headers(sign(body, "")), body)


def test_a_call_signed_for_another_shop_of_the_same_app_is_refused():
    body = b'{"kind":"FULFILLMENT_REQUEST"}'
    with pytest.raises(SignatureInvalid, match="other-shop"):
        adapter().verify(
            {"X-Shopify-Hmac-Sha256": sign(body), "X-Shopify-Shop-Domain": "other-shop.myshopify.com"}, body
        )


def test_non_ascii_garbage_in_the_header_is_refused_not_crashed():
    body = b"{}"
    with pytest.raises(SignatureInvalid):
        adapter().verify(headers("é" * 44), body)


@settings(deadline=None)  # a loaded shared machine must not fail a pure check on time
@given(body=st.binary(max_size=300), other=st.binary(max_size=300))
def test_only_the_signed_bytes_verify(body, other):
    signature = sign(body)
    adapter().verify(headers(signature), body)
    if other != body:
        with pytest.raises(SignatureInvalid):
            adapter().verify(headers(signature), other)


# --- What a verified notification means ---------------------------------------------------------------------------


def test_a_fulfilment_request_notification_is_a_fulfilment_requested_event():
    events = adapter().parse(headers("-"), b'{"kind":"FULFILLMENT_REQUEST"}')
    assert [event.kind for event in events] == ["fulfilment_requested"]
    assert events[0].payload["shop_domain"] == SHOP


def test_a_cancellation_request_notification_is_a_cancellation_requested_event():
    events = adapter().parse(headers("-"), b'{"kind":"CANCELLATION_REQUEST"}')
    assert [event.kind for event in events] == ["cancellation_requested"]


@pytest.mark.parametrize("body", [b'{"kind":"SOMETHING_NEW"}', b"{}", b"", b"not json", b"[1,2]", b'{"kind":null}'])
def test_an_unknown_kind_looks_at_both_queues_rather_than_dropping_the_ping(body):
    events = adapter().parse(headers("-"), body)
    assert sorted(event.kind for event in events) == ["cancellation_requested", "fulfilment_requested"]


def test_a_webhook_is_de_duplicated_on_its_webhook_id():
    shopify = adapter()
    first = shopify.delivery_id(headers("-", **{"X-Shopify-Webhook-Id": "b54557e4"}), b"{}")
    again = shopify.delivery_id(headers("-", **{"x-shopify-webhook-id": "b54557e4"}), b'{"other":1}')
    assert first == again == "shopify:b54557e4"


def test_a_ping_without_id_collapses_within_the_minute_only():
    shopify = adapter()
    body = b'{"kind":"FULFILLMENT_REQUEST"}'
    moment = datetime(2026, 12, 3, 10, 15, 5, tzinfo=UTC)
    with clock.frozen(moment):
        first = shopify.delivery_id(headers("-"), body)
        other_kind = shopify.delivery_id(headers("-"), b'{"kind":"CANCELLATION_REQUEST"}')
    with clock.frozen(moment + timedelta(seconds=40)):
        retried = shopify.delivery_id(headers("-"), body)
    with clock.frozen(moment + timedelta(minutes=3)):
        later = shopify.delivery_id(headers("-"), body)
    assert first == retried
    assert other_kind != first
    assert later != first
