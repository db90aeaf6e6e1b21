"""The Saleor adapter against a Saleor speaking its protocol over real HTTP on loopback: signed webhooks (detached
JWS RS256 against the JWKS, legacy hex HMAC), GraphQL queries and mutations, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from jwt import api_jws

from quai.integrations.connectors import saleor as saleor_module
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
from quai.integrations.connectors.saleor import SaleorAdapter
from quai.integrations.tests.fake_shops.saleor import FakeSaleor, new_key


@pytest.fixture
def shop() -> Iterator[FakeSaleor]:
    saleor_module.jwks_cache_clear()
    fake = FakeSaleor().start()
    yield fake
    fake.stop()


def make_adapter(shop: FakeSaleor, credentials: dict[str, str] | None = None, **settings: object) -> SaleorAdapter:
    config = ConnectionConfig(
        platform="saleor",
        base_url=shop.api_url,
        credentials=credentials or {"app_token": shop.token},
        settings={"warehouse_id": shop.warehouse_id, **settings},
    )
    adapter = adapter_for(config, httpx.Client(timeout=5))
    assert isinstance(adapter, SaleorAdapter)
    return adapter


# Bodies as Saleor may encode them: raw UTF-8 with emoji, \u escapes, escaped slashes.
BODIES = [
    '{"__typename":"OrderCreated","order":{"id":"T3JkZXI6MQ==","note":"Zoé 🎁 ☕ — «ok»"}}'.encode(),
    b'{"__typename":"OrderCreated","order":{"id":"T3JkZXI6MQ==","note":"Zo\\u00e9 \\ud83c\\udf81"}}',
    b'{"__typename":"OrderCreated","order":{"id":"T3JkZXI6MQ==","url":"https:\\/\\/shop.example\\/a"}}',
]


@pytest.mark.parametrize("body", BODIES)
def test_a_detached_jws_over_the_exact_bytes_is_accepted(shop: FakeSaleor, body: bytes) -> None:
    headers, raw = shop.deliver("ORDER_CREATED", None, raw=body)
    assert headers["Saleor-Signature"].split(".")[1] == ""  # detached: header..signature
    make_adapter(shop).verify(headers, raw)


@pytest.mark.parametrize("body", BODIES)
def test_a_changed_byte_or_a_reserialised_body_is_refused(shop: FakeSaleor, body: bytes) -> None:
    headers, raw = shop.deliver("ORDER_CREATED", None, raw=body)
    adapter = make_adapter(shop)
    with pytest.raises(SignatureInvalid):
        adapter.verify(headers, raw.replace(b"T3JkZXI6MQ", b"T3JkZXI6Mg"))
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert reserialised != raw
    with pytest.raises(SignatureInvalid):
        adapter.verify(headers, reserialised)


def test_a_missing_signature_is_refused(shop: FakeSaleor) -> None:
    headers, raw = shop.deliver("ORDER_CREATED", {"order": {"id": "1"}})
    del headers["Saleor-Signature"], headers["X-Saleor-Signature"]
    with pytest.raises(SignatureInvalid):
        make_adapter(shop).verify(headers, raw)


def test_the_jwks_is_cached_and_fetched_again_once_for_a_new_kid(shop: FakeSaleor) -> None:
    adapter = make_adapter(shop)
    for _ in range(3):
        adapter.verify(*shop.deliver("ORDER_CREATED", {"order": {"id": "1"}}))
    assert shop.jwks_fetches == 1
    shop.rotate_key("k2")  # Saleor rotated its key
    adapter.verify(*shop.deliver("ORDER_CREATED", {"order": {"id": "1"}}))
    assert shop.jwks_fetches == 2


def test_a_kid_the_shop_does_not_publish_is_refused_after_one_refetch(shop: FakeSaleor) -> None:
    adapter = make_adapter(shop)
    adapter.verify(*shop.deliver("ORDER_CREATED", {"order": {"id": "1"}}))
    body = b'{"order":{"id":"1"}}'
    forged = api_jws.encode(body, key=new_key(), algorithm="RS256", headers={"kid": "evil"}, is_payload_detached=True)
    for _ in range(3):
        with pytest.raises(SignatureInvalid):
            adapter.verify({"Saleor-Signature": forged, "Saleor-Event": "order_created"}, body)
    assert shop.jwks_fetches == 2  # one refetch, not one per forged call


def test_a_signature_by_another_key_with_the_shops_kid_is_refused(shop: FakeSaleor) -> None:
    body = b'{"order":{"id":"1"}}'
    forged = api_jws.encode(body, key=new_key(), algorithm="RS256", headers={"kid": shop.kid}, is_payload_detached=True)
    with pytest.raises(SignatureInvalid):
        make_adapter(shop).verify({"Saleor-Signature": forged}, body)


def test_a_wrong_alg_or_an_attached_payload_is_refused(shop: FakeSaleor) -> None:
    body = b'{"order":{"id":"1"}}'
    hs256 = api_jws.encode(body, key="secret-secret-secret-secret-32b!", algorithm="HS256", is_payload_detached=True)
    with pytest.raises(SignatureInvalid, match="RS256"):
        make_adapter(shop).verify({"Saleor-Signature": hs256}, body)
    attached = api_jws.encode(body, key=shop.key, algorithm="RS256", headers={"kid": shop.kid})
    with pytest.raises(SignatureInvalid, match="detached"):
        make_adapter(shop).verify({"Saleor-Signature": attached}, body)


def test_the_legacy_secret_key_signs_in_hex(shop: FakeSaleor) -> None:
    secret = "hush"
    body = b'{"id":1001,"kind":"FULFILLMENT_REQUEST"}'
    headers, raw = shop.deliver("ORDER_CREATED", None, secret=secret, raw=body)
    # INTEGRATIONS.md §6.4's vector: hex, not base64.
    assert headers["Saleor-Signature"] == "241c9febdf22c33468c7813af315a41d2f4a558701df249dd6add253ed884cb0"
    adapter = make_adapter(shop, {"app_token": shop.token, "webhook_secret": secret})
    adapter.verify(headers, raw)
    with pytest.raises(SignatureInvalid):
        adapter.verify({"Saleor-Signature": "JByf698iwzRox4E68xWkHS9KVYcB3ySd1q3SU+2ITLA="}, raw)  # base64 form
    with pytest.raises(SignatureInvalid):
        adapter.verify(headers, raw + b" ")


def test_a_paid_order_created_is_ready_with_its_address_and_lines(shop: FakeSaleor) -> None:
    order = shop.add_order("1042", [("TASSE-01", 2)])
    headers, raw = shop.deliver("ORDER_CREATED", {"__typename": "OrderCreated", "order": order})
    (event,) = make_adapter(shop).parse(headers, raw)
    assert event.kind == "order_ready" and event.order is not None
    parsed = event.order
    assert parsed.external_number == "1042" and parsed.currency == "EUR" and parsed.paid
    assert parsed.ship_to.name == "Zoé Lefèvre" and parsed.ship_to.line2 == "Bât. B/2"
    assert parsed.ship_to.country == "FR" and parsed.notes == "Sonnez deux fois 🔔"
    assert [(line.sku, line.quantity) for line in parsed.lines] == [("TASSE-01", 2)]
    assert parsed.lines[0].unit_price == Decimal("15.0")


def test_an_unpaid_order_waits_for_fully_paid_and_cancellation_is_told(shop: FakeSaleor) -> None:
    adapter = make_adapter(shop)
    order = shop.add_order("7", [("A", 1)], charge="NONE")
    assert adapter.parse(*shop.deliver("ORDER_CREATED", {"order": order})) == []
    order.update(chargeStatus="FULL", isPaid=True)
    assert adapter.parse(*shop.deliver("ORDER_FULLY_PAID", {"order": order}))[0].kind == "order_ready"
    cancelled = adapter.parse(*shop.deliver("ORDER_CANCELLED", {"order": {"id": order["id"]}}))
    assert cancelled[0].kind == "order_cancelled" and cancelled[0].external_id == order["id"]


def test_payloads_without_an_order_or_in_the_legacy_shape_are_refused_clearly(shop: FakeSaleor) -> None:
    adapter = make_adapter(shop)
    with pytest.raises(ConnectorError) as missing:
        adapter.parse(*shop.deliver("ORDER_CREATED", {"__typename": "OrderCreated"}))
    assert missing.value.code == "payload_invalid"
    with pytest.raises(ConnectorError) as legacy:
        adapter.parse(*shop.deliver("ORDER_CREATED", [{"id": "1"}]))
    assert legacy.value.code == "payload_unsupported"
    assert adapter.parse(*shop.deliver("PRODUCT_UPDATED", {"product": {"id": "x"}})) == []


def test_a_redelivery_has_the_same_delivery_id(shop: FakeSaleor) -> None:
    adapter = make_adapter(shop)
    headers, raw = shop.deliver("ORDER_CREATED", {"order": {"id": "1"}})
    assert adapter.delivery_id(headers, raw) == adapter.delivery_id(dict(headers), bytes(raw))
    other_headers, other = shop.deliver("ORDER_CONFIRMED", {"order": {"id": "1"}})
    assert adapter.delivery_id(other_headers, other) != adapter.delivery_id(headers, raw)


def test_the_poll_pages_by_last_modification_without_skipping_ties(shop: FakeSaleor) -> None:
    same = "2025-06-02T10:00:00.000000+00:00"
    for number in ("1", "2", "3"):
        shop.add_order(number, [("A", 1)], updated=same)
    unpaid = shop.add_order("4", [("A", 1)], status="UNCONFIRMED", charge="NONE")  # not ready: unpaid
    adapter = make_adapter(shop, page_size=1)
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = adapter.fetch_orders(cursor)
        seen += [o.external_number for o in page.orders]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == ["1", "2", "3"]
    shop.add_order("5", [("A", 1)], updated=unpaid["updatedAt"])  # written later in the mark's very instant
    assert [o.external_number for o in adapter.fetch_orders(cursor).orders] == ["5"]


def test_accept_confirms_an_unconfirmed_order_only(shop: FakeSaleor) -> None:
    order = shop.add_order("9", [("A", 1)], status="UNCONFIRMED")
    adapter = make_adapter(shop)
    adapter.accept(adapter.fetch_order(order["id"]))
    assert order["status"] == "UNFULFILLED"
    adapter.accept(adapter.fetch_order(order["id"]))  # no second orderConfirm (Saleor would refuse it)


def test_a_fulfilment_carries_the_tracking_number_once(shop: FakeSaleor) -> None:
    order = shop.add_order("9", [("A", 2)])
    adapter = make_adapter(shop)
    external = adapter.fetch_order(order["id"])
    shipment = Shipment(
        lines=(ShipmentLine(external.lines[0].external_line_id, 2),),
        parcels=(Parcel("6A123456789"), Parcel("6A123456790")),
    )
    fulfilment_id = adapter.push_fulfilment(external, shipment, "s1")
    assert order["fulfillments"][0]["trackingNumber"] == "6A123456789" and order["status"] == "FULFILLED"
    assert shop.notes == [(order["id"], "Other parcels of this shipment: 6A123456790")]
    assert adapter.push_fulfilment(external, shipment, "s1") == fulfilment_id  # retried: nothing new
    assert len(order["fulfillments"]) == 1
    adapter.update_tracking(external, fulfilment_id, [Parcel("8R000000001")])
    assert order["fulfillments"][0]["trackingNumber"] == "8R000000001"


def test_a_refused_mutation_is_a_clear_non_retryable_error(shop: FakeSaleor) -> None:
    order = shop.add_order("9", [("A", 1)])
    adapter = make_adapter(shop)
    external = adapter.fetch_order(order["id"])
    too_many = Shipment(lines=(ShipmentLine(external.lines[0].external_line_id, 5),), parcels=(Parcel("X1"),))
    with pytest.raises(ConnectorError) as caught:
        adapter.push_fulfilment(external, too_many, "s1")
    assert caught.value.code == "platform_refused" and "FULFILL_ORDER_LINE" in str(caught.value)
    assert not caught.value.retryable


def test_stock_is_set_through_the_bulk_mutation_plus_saleors_allocations(shop: FakeSaleor) -> None:
    shop.add_variant("TASSE-01", quantity=10, allocated=2)
    shop.add_variant("NEW-ROW", quantity=None)  # no stock row in our warehouse yet
    report = make_adapter(shop).push_stock(
        [StockLevel("TASSE-01", 5), StockLevel("NEW-ROW", 3), StockLevel("NOPE", 1)], "snap-1"
    )
    assert report.updated == ("TASSE-01", "NEW-ROW") and report.unknown == ("NOPE",) and not report.failed
    # Saleor subtracts its own allocations: 5 sellable + 2 allocated.
    assert shop.stock("TASSE-01")["quantity"] == 7 and shop.stock("NEW-ROW")["quantity"] == 3
    assert make_adapter(shop).stock_levels(["TASSE-01", "NEW-ROW", "NOPE"]) == {"TASSE-01": 5, "NEW-ROW": 3}


def test_a_refund_is_granted_then_requested_once(shop: FakeSaleor) -> None:
    order = shop.add_order("9", [("A", 2)])
    adapter = make_adapter(shop)
    external = adapter.fetch_order(order["id"])
    refund = Refund(
        lines=(RefundLine(external.lines[0].external_line_id, 1),),
        amount=Decimal("15.00"),
        currency="EUR",
        reason="Retour reçu",
    )
    granted = adapter.push_refund(external, refund, "rma-1")
    assert adapter.push_refund(external, refund, "rma-1") == granted
    assert len(order["grantedRefunds"]) == 1 and order["grantedRefunds"][0]["reason"] == "Retour reçu [quai:rma-1]"
    assert shop.refund_requests == [(order["transactions"][0]["id"], granted)]


def test_an_order_paid_without_transactions_cannot_be_refunded_here(shop: FakeSaleor) -> None:
    order = shop.add_order("9", [("A", 1)])
    order["transactions"] = []
    adapter = make_adapter(shop)
    with pytest.raises(NotSupported):
        adapter.push_refund(
            adapter.fetch_order(order["id"]), Refund(lines=(), amount=Decimal("1"), currency="EUR"), "k"
        )


def test_a_bad_token_is_permission_denied_and_not_retried(shop: FakeSaleor) -> None:
    adapter = make_adapter(shop, {"app_token": "wrong"})
    with pytest.raises(ConnectorError) as caught:
        adapter.fetch_orders(None)
    assert caught.value.code == "auth_failed" and not caught.value.retryable
    assert not adapter.health().ok


def test_http_errors_map_to_retries_or_refusals(shop: FakeSaleor) -> None:
    adapter = make_adapter(shop)
    shop.fail_next.append((429, {"Retry-After": "12"}, b""))
    with pytest.raises(Throttled) as throttled:
        adapter.fetch_orders(None)
    assert throttled.value.retry_after == 12.0
    shop.fail_next.append((502, {}, b"bad gateway"))
    with pytest.raises(ConnectorError) as down:
        adapter.fetch_orders(None)
    assert down.value.retryable
    shop.fail_next.append((401, {}, b""))
    with pytest.raises(ConnectorError) as refused:
        adapter.fetch_orders(None)
    assert refused.value.code == "auth_failed" and not refused.value.retryable
    with pytest.raises(ConnectorError) as missing:
        adapter.fetch_order("T3JkZXI6bm9uZQ==")
    assert missing.value.code == "not_found"


def test_subscriptions_are_registered_once_and_health_sees_them(shop: FakeSaleor) -> None:
    adapter = make_adapter(shop)
    assert not adapter.health().ok  # no webhook yet
    adapter.ensure_subscriptions("https://quai.example/api/v1/shops/3/hooks")
    adapter.ensure_subscriptions("https://quai.example/api/v1/shops/3/hooks")
    (webhook,) = shop.webhooks
    assert webhook["targetUrl"] == "https://quai.example/api/v1/shops/3/hooks/orders"
    assert webhook["asyncEvents"] == ["ORDER_CREATED", "ORDER_CONFIRMED", "ORDER_FULLY_PAID", "ORDER_CANCELLED"]
    assert "subscription" in webhook["query"] and "secretKey" not in webhook
    assert adapter.health().ok


def test_notes_go_through_order_note_add(shop: FakeSaleor) -> None:
    order = shop.add_order("9", [("A", 1)])
    adapter = make_adapter(shop)
    adapter.add_note(adapter.fetch_order(order["id"]), "Colis préparé ✅")
    assert shop.notes == [(order["id"], "Colis préparé ✅")]
