"""The Shopify adapter against a fake shop speaking the GraphQL Admin API over real HTTP on loopback."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quai.integrations.connectors import adapter_for
from quai.integrations.connectors.base import (
    ConnectionConfig,
    ConnectorError,
    Parcel,
    Shipment,
    ShipmentLine,
    SignatureInvalid,
    StockLevel,
    Throttled,
)
from quai.integrations.connectors.shopify import ShopifyAdapter, _Bucket
from quai.integrations.tests.fake_shops.shopify import FakeShopify


@pytest.fixture
def shop():
    fake = FakeShopify().start()
    yield fake
    fake.stop()


@pytest.fixture
def location(shop):
    return shop.add_service("Quai", "https://quai.example/api/v1/shops/7/hooks")["location"]["id"]


def make_adapter(shop: FakeShopify, **settings) -> ShopifyAdapter:
    config = ConnectionConfig(
        platform="shopify",
        base_url=shop.url,
        credentials={"access_token": shop.access_token, "client_secret": shop.client_secret},
        settings={"shop_domain": shop.shop_domain, "service_name": "Quai", **settings},
        connection_id=7,
    )
    adapter = adapter_for(config)
    assert isinstance(adapter, ShopifyAdapter)
    return adapter


def all_orders(adapter: ShopifyAdapter):
    orders, cursor, pages = [], None, 0
    while True:
        page = adapter.fetch_orders(cursor)
        orders.extend(page.orders)
        pages += 1
        cursor = page.cursor
        if cursor is None:
            return orders, pages


# --- Pull -------------------------------------------------------------------------------------------------------------


def test_a_requested_fulfilment_order_maps_to_an_external_order(shop, location):
    item = shop.add_variant("MUG-01", location, 5)
    requested = shop.request_fulfillment(location, [("MUG-01", 2), ("TEE-M", 1)], name="#1042")

    orders, _ = all_orders(make_adapter(shop))

    (order,) = orders
    assert order.external_id == requested["id"]
    assert order.external_number == "#1042"
    assert order.currency == "EUR"
    assert order.ship_to.name == "Zoé Lefèvre"
    assert (order.ship_to.line1, order.ship_to.postcode, order.ship_to.city) == ("12 rue de l'Église", "69007", "Lyon")
    assert order.ship_to.country == "FR"
    assert order.customer_email == "zoe@example.fr"
    assert [(line.sku, line.quantity) for line in order.lines] == [("MUG-01", 2), ("TEE-M", 1)]
    assert order.service_hint == "colissimo_home"
    assert "Fragile" in order.notes
    refs = order.platform_refs
    assert refs["fulfillment_order_id"] == requested["id"]
    assert refs["assignment_status"] == "FULFILLMENT_REQUESTED"
    line_ids = [line["id"] for line in requested["lineItems"]["nodes"]]
    assert list(refs["line_items"]) == line_ids == [line.external_line_id for line in order.lines]
    assert refs["line_items"][line_ids[0]]["inventory_item_id"] == item


def test_polling_walks_every_page_then_the_cancellation_queue_then_stops(shop, location):
    requested = [shop.request_fulfillment(location, [("MUG-01", 1)]) for _ in range(60)]
    cancelled = shop.request_fulfillment(location, [("MUG-01", 1)])
    shop.request_cancellation(cancelled["id"])

    orders, pages = all_orders(make_adapter(shop))

    assert [order.external_id for order in orders] == [node["id"] for node in requested] + [cancelled["id"]]
    assert orders[-1].platform_refs["assignment_status"] == "CANCELLATION_REQUESTED"
    assert pages == 4  # 25 + 25 + 10 requested, then the cancellation queue
    afters = [call.body["variables"].get("after") for call in shop.calls if call.root == "assignedFulfillmentOrders"]
    assert afters[0] is None and all(afters[1:3])  # cursors from pageInfo.endCursor, passed back as `after`


def test_an_unknown_cursor_is_refused(shop):
    with pytest.raises(ConnectorError) as refused:
        make_adapter(shop).fetch_orders("garbage:abc")
    assert refused.value.code == "cursor_invalid"


def test_fetch_order_rereads_one_fulfilment_order(shop, location):
    requested = shop.request_fulfillment(location, [("MUG-01", 3)])
    order = make_adapter(shop).fetch_order(requested["id"])
    assert order.lines[0].quantity == 3
    assert order.platform_refs["assignment_status"] == "FULFILLMENT_REQUESTED"
    with pytest.raises(ConnectorError) as missing:
        make_adapter(shop).fetch_order("gid://shopify/FulfillmentOrder/999999")
    assert missing.value.code == "order_not_found"


# --- Accept, reject, cancellations ------------------------------------------------------------------------------------


def test_accepting_moves_the_request_to_accepted_and_a_retry_is_a_success(shop, location):
    requested = shop.request_fulfillment(location, [("MUG-01", 1)])
    adapter = make_adapter(shop)
    order = adapter.fetch_order(requested["id"])

    adapter.accept(order, "Taken by the Lyon warehouse")
    adapter.accept(order, "Taken by the Lyon warehouse")  # the answer to the first was lost: same outcome

    assert requested["requestStatus"] == "ACCEPTED"
    assert requested["lastMessage"] == "Taken by the Lyon warehouse"
    assert all(o.external_id != requested["id"] for o in all_orders(adapter)[0])


def test_rejecting_sends_the_reason_and_the_lines_at_fault(shop, location):
    requested = shop.request_fulfillment(location, [("GHOST-SKU", 1)])
    adapter = make_adapter(shop)
    order = adapter.fetch_order(requested["id"])
    line_id = order.lines[0].external_line_id

    adapter.reject(order, "Unknown SKU", reason="INELIGIBLE_PRODUCT", lines={line_id: "GHOST-SKU is not stocked"})

    assert requested["requestStatus"] == "REJECTED"
    assert requested["rejection"] == {
        "reason": "INELIGIBLE_PRODUCT",
        "lineItems": [{"fulfillmentOrderLineItemId": line_id, "message": "GHOST-SKU is not stocked"}],
    }


def test_an_unlisted_rejection_reason_becomes_other(shop, location):
    requested = shop.request_fulfillment(location, [("MUG-01", 1)])
    adapter = make_adapter(shop)
    adapter.reject(adapter.fetch_order(requested["id"]), "no", reason="BECAUSE")
    assert requested["rejection"]["reason"] == "OTHER"


def test_accepting_a_request_that_was_rejected_is_a_refusal(shop, location):
    requested = shop.request_fulfillment(location, [("MUG-01", 1)])
    adapter = make_adapter(shop)
    order = adapter.fetch_order(requested["id"])
    adapter.reject(order, "no")
    with pytest.raises(ConnectorError) as refused:
        adapter.accept(order)
    assert refused.value.code == "platform_refused"
    assert not refused.value.retryable


@pytest.mark.parametrize(("accept", "status"), [(True, "CANCELLATION_ACCEPTED"), (False, "CANCELLATION_REJECTED")])
def test_a_cancellation_request_is_answered(shop, location, accept, status):
    requested = shop.request_fulfillment(location, [("MUG-01", 1)])
    adapter = make_adapter(shop)
    adapter.accept(adapter.fetch_order(requested["id"]))
    shop.request_cancellation(requested["id"])
    (order,) = [o for o in all_orders(adapter)[0] if o.external_id == requested["id"]]
    assert order.platform_refs["assignment_status"] == "CANCELLATION_REQUESTED"

    adapter.answer_cancellation(order, accept=accept, message="Already packed" if not accept else "")
    adapter.answer_cancellation(order, accept=accept)  # retried: still a success

    assert requested["requestStatus"] == status


# --- Fulfilment with tracking -----------------------------------------------------------------------------------------


def accepted_order(shop, location, lines):
    requested = shop.request_fulfillment(location, lines)
    adapter = make_adapter(shop)
    order = adapter.fetch_order(requested["id"])
    adapter.accept(order)
    return adapter, order, requested


def test_a_shipment_creates_a_fulfilment_with_its_tracking(shop, location):
    adapter, order, requested = accepted_order(shop, location, [("MUG-01", 2), ("TEE-M", 1)])
    first = order.lines[0]
    shipment = Shipment(
        lines=(ShipmentLine(first.external_line_id, 1),),
        parcels=(Parcel("6A12345678901", carrier_code="colissimo", tracking_url="https://laposte.fr/t/6A12345678901"),),
    )

    fulfillment_id = adapter.push_fulfilment(order, shipment, idempotency_key="shipment-1")

    (created,) = shop.fulfillments[requested["id"]]
    assert created["id"] == fulfillment_id
    assert created["trackingInfo"] == [
        {"company": "Colissimo", "number": "6A12345678901", "url": "https://laposte.fr/t/6A12345678901"}
    ]
    assert created["notifyCustomer"] is True
    assert [line["remainingQuantity"] for line in requested["lineItems"]["nodes"]] == [1, 1]  # partial
    sent = next(call for call in shop.calls if call.root == "fulfillmentCreate").body["variables"]["fulfillment"]
    assert sent["lineItemsByFulfillmentOrder"] == [
        {
            "fulfillmentOrderId": requested["id"],
            "fulfillmentOrderLineItems": [{"id": first.external_line_id, "quantity": 1}],
        }
    ]


def test_a_retried_shipment_returns_the_fulfilment_already_made(shop, location):
    adapter, order, requested = accepted_order(shop, location, [("MUG-01", 2)])
    shipment = Shipment(lines=(), parcels=(Parcel("AAA1", carrier_code="chronopost"), Parcel("AAA2")))

    first = adapter.push_fulfilment(order, shipment, idempotency_key="shipment-2")
    again = adapter.push_fulfilment(order, shipment, idempotency_key="shipment-2")

    assert first == again
    assert len(shop.fulfillments[requested["id"]]) == 1
    (created,) = shop.fulfillments[requested["id"]]
    assert [info["number"] for info in created["trackingInfo"]] == ["AAA1", "AAA2"]
    assert requested["status"] == "CLOSED"  # no lines given: the whole fulfilment order


def test_shipping_more_than_remains_is_a_refusal(shop, location):
    adapter, order, _ = accepted_order(shop, location, [("MUG-01", 1)])
    shipment = Shipment(lines=(ShipmentLine(order.lines[0].external_line_id, 5),), parcels=(Parcel("X1"),))
    with pytest.raises(ConnectorError) as refused:
        adapter.push_fulfilment(order, shipment, idempotency_key="k")
    assert refused.value.code == "platform_refused"


# --- Stock ------------------------------------------------------------------------------------------------------------


def test_stock_is_set_with_the_quantity_read_as_change_from_and_an_idempotency_key(shop, location):
    shop.add_variant("MUG-01", location, 3)
    shop.add_variant("TEE-M", location, 8)
    shop.add_variant("CAP", location, 4)

    report = make_adapter(shop).push_stock(
        [StockLevel("MUG-01", 10), StockLevel("TEE-M", -2), StockLevel("CAP", 4)], snapshot_id="snap/1"
    )

    assert sorted(report.updated) == ["CAP", "MUG-01", "TEE-M"]
    assert (shop.level("MUG-01", location), shop.level("TEE-M", location), shop.level("CAP", location)) == (10, 0, 4)
    (written,) = shop.inventory_writes
    assert written["name"] == "available" and written["reason"] == "correction"
    assert written["referenceDocumentUri"] == "gid://quai/StockSnapshot/snap%2F1"
    assert [(q["quantity"], q["changeFromQuantity"]) for q in written["quantities"]] == [
        (10, 3),
        (0, 8),
    ]  # CAP: no write
    call = next(call for call in shop.calls if call.root == "inventorySetQuantities")
    assert '@idempotent(key: "' in call.body["query"]


def test_a_resent_snapshot_reuses_its_key_and_shopify_answers_the_first_result(shop, location):
    shop.add_variant("MUG-01", location, 3)
    adapter = make_adapter(shop)
    adapter.push_stock([StockLevel("MUG-01", 10)], snapshot_id="snap-2")
    shop.levels[next(iter(shop.levels))] = 3  # someone set it back; our retry of the same write must not fight it
    keys = [c.body["query"].split('key: "')[1][:36] for c in shop.calls if c.root == "inventorySetQuantities"]
    report = adapter.push_stock([StockLevel("MUG-01", 10)], snapshot_id="snap-2")
    keys_after = [c.body["query"].split('key: "')[1][:36] for c in shop.calls if c.root == "inventorySetQuantities"]
    assert report.updated == ("MUG-01",)
    # The retry first writes on what this process set (10), which the shop refuses as stale (it has 3); re-read, the
    # write is the first one again: same snapshot, same variables, same key, and Shopify replays its first answer.
    assert keys_after[0] == keys[0] and keys_after[-1] == keys[0]
    assert len(shop.inventory_writes) == 1


def test_a_level_changed_between_read_and_write_is_reread_and_retried(shop, location):
    item = shop.add_variant("MUG-01", location, 3)
    shop.concurrent_change = {(item, location): 5}  # an order on the shop moved it right before our write

    report = make_adapter(shop).push_stock([StockLevel("MUG-01", 10)], snapshot_id="snap-3")

    assert report.updated == ("MUG-01",)
    assert shop.level("MUG-01", location) == 10
    assert [q["changeFromQuantity"] for q in shop.inventory_writes[0]["quantities"]] == [5]


def _roots(shop: FakeShopify, since: int) -> list[str]:
    return [call.root for call in shop.calls[since:]]


def test_a_push_to_skus_pushed_before_is_one_call_the_write_on_what_we_set(shop, location):
    shop.add_variant("MUG-01", location, 3)
    shop.add_variant("TEE-M", location, 8)
    adapter = make_adapter(shop)
    adapter.push_stock([StockLevel("MUG-01", 10), StockLevel("TEE-M", 8)], snapshot_id="a")
    since = len(shop.calls)
    again = make_adapter(shop, location_id=location)  # another push's adapter, in the same process
    report = again.push_stock([StockLevel("MUG-01", 9), StockLevel("TEE-M", 8)], snapshot_id="b")
    assert report.updated == ("MUG-01", "TEE-M") and not report.failed
    assert _roots(shop, since) == ["inventorySetQuantities"]  # no read
    assert [(q["quantity"], q["changeFromQuantity"]) for q in shop.inventory_writes[-1]["quantities"]] == [
        (9, 10),
        (8, 8),  # known, so written even though it shows the level: a change behind our back is repaired
    ]
    assert (shop.level("MUG-01", location), shop.level("TEE-M", location)) == (9, 8)


def test_a_level_changed_on_the_shop_since_we_set_it_is_reread_and_set(shop, location):
    shop.add_variant("MUG-01", location, 3)
    shop.add_variant("TEE-M", location, 5)
    adapter = make_adapter(shop)
    adapter.push_stock([StockLevel("MUG-01", 10), StockLevel("TEE-M", 6)], snapshot_id="a")
    mug = next(key for key in shop.levels if shop.levels[key] == 10)
    shop.levels[mug] = 4  # sold on the shop, or a shop admin's edit
    since = len(shop.calls)
    report = adapter.push_stock([StockLevel("MUG-01", 10), StockLevel("TEE-M", 7)], snapshot_id="b")
    assert report.updated == ("MUG-01", "TEE-M") and not report.failed
    # The refused call set nothing, TEE-M included: MUG-01 read again, both sent again, TEE-M on what we set.
    assert _roots(shop, since) == ["inventorySetQuantities", "productVariants", "inventorySetQuantities"]
    assert [q["changeFromQuantity"] for q in shop.inventory_writes[-1]["quantities"]] == [4, 6]
    assert (shop.level("MUG-01", location), shop.level("TEE-M", location)) == (10, 7)
    since = len(shop.calls)
    adapter.push_stock([StockLevel("MUG-01", 11)], snapshot_id="c")
    assert _roots(shop, since) == ["inventorySetQuantities"]  # known again


def test_the_level_quai_last_set_is_written_on_without_a_read_whichever_process_set_it(shop, location):
    shop.add_variant("MUG-01", location, 3)
    adapter = make_adapter(shop)
    adapter.push_stock([StockLevel("MUG-01", 10)], snapshot_id="a")  # this process learns the item's id
    mug = next(key for key in shop.levels if shop.levels[key] == 10)
    shop.levels[mug] = 6  # set by another worker process of ours, which Quai recorded as the level shown
    since = len(shop.calls)
    report = adapter.push_stock([StockLevel("MUG-01", 5, shown=6)], snapshot_id="b")
    assert report.updated == ("MUG-01",)
    assert _roots(shop, since) == ["inventorySetQuantities"]
    assert [(q["quantity"], q["changeFromQuantity"]) for q in shop.inventory_writes[-1]["quantities"]] == [(5, 6)]


def test_a_write_whose_answer_was_lost_is_read_again_before_the_next(shop, location):
    shop.add_variant("MUG-01", location, 3)
    adapter = make_adapter(shop)
    adapter.push_stock([StockLevel("MUG-01", 10)], snapshot_id="a")
    shop.fail_next = [(500, {}, b"")]
    with pytest.raises(ConnectorError):
        adapter.push_stock([StockLevel("MUG-01", 9)], snapshot_id="b")
    since = len(shop.calls)
    adapter.push_stock([StockLevel("MUG-01", 8)], snapshot_id="c")
    assert _roots(shop, since) == ["productVariants", "inventorySetQuantities"]  # not known any more: read first
    assert shop.level("MUG-01", location) == 8


def test_unknown_and_unstocked_skus_are_reported_not_lost(shop, location):
    shop.add_variant("MUG-01", location, 1)
    shop.add_variant("ELSEWHERE", None, None)

    report = make_adapter(shop).push_stock(
        [StockLevel("MUG-01", 2), StockLevel("NOPE", 1), StockLevel("ELSEWHERE", 4)], snapshot_id="s"
    )

    assert report.updated == ("MUG-01",)
    assert report.unknown == ("NOPE",)
    assert set(report.failed) == {"ELSEWHERE"}


def test_skus_with_quotes_and_spaces_are_searched_literally(shop, location):
    shop.add_variant('TEE "XL" bleu', location, 0)
    report = make_adapter(shop).push_stock([StockLevel('TEE "XL" bleu', 7)], snapshot_id="s")
    assert report.updated == ('TEE "XL" bleu',)
    assert shop.level('TEE "XL" bleu', location) == 7


def test_the_location_is_looked_up_once_from_the_service_name(shop, location):
    shop.add_variant("MUG-01", location, 1)
    adapter = make_adapter(shop)
    adapter.push_stock([StockLevel("MUG-01", 2)], snapshot_id="a")
    adapter.push_stock([StockLevel("MUG-01", 3)], snapshot_id="b")
    assert [call.root for call in shop.calls].count("shop") == 1


def test_stock_levels_read_what_the_shop_shows_at_our_location(shop, location):
    shop.add_variant("MUG-01", location, 4)
    shop.add_variant("ELSEWHERE", None, None)
    levels = make_adapter(shop).stock_levels(["MUG-01", "ELSEWHERE", "NOPE", "MUG-01"])
    assert levels == {"MUG-01": 4, "ELSEWHERE": None}


def test_stock_without_a_registered_service_is_a_clear_refusal(shop):
    with pytest.raises(ConnectorError) as refused:
        make_adapter(shop).push_stock([StockLevel("MUG-01", 1)], snapshot_id="s")
    assert refused.value.code == "fulfillment_service_missing"


# --- Transport: errors and throttling ---------------------------------------------------------------------------------


def test_a_bad_token_is_unauthorized_and_not_retried(shop):
    config = make_adapter(shop).config
    adapter = adapter_for(ConnectionConfig(**{**config.__dict__, "credentials": {"access_token": "wrong"}}))
    with pytest.raises(ConnectorError) as refused:
        adapter.fetch_orders(None)
    assert (refused.value.code, refused.value.retryable) == ("unauthorized", False)


def test_a_429_is_throttled_with_its_retry_after(shop):
    shop.fail_next.append((429, {"Retry-After": "2.0"}, b'{"errors":"Exceeded 2 calls per second"}'))
    with pytest.raises(Throttled) as throttled:
        make_adapter(shop).fetch_orders(None)
    assert throttled.value.retry_after == 2.0 and throttled.value.retryable


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_is_retryable(shop, status):
    shop.fail_next.append((status, {}, b"<html>oops</html>"))
    with pytest.raises(ConnectorError) as failed:
        make_adapter(shop).fetch_orders(None)
    assert (failed.value.code, failed.value.retryable) == ("platform_error", True)


def test_an_unpinned_version_is_not_found(shop):
    with pytest.raises(ConnectorError) as missing:
        make_adapter(shop, api_version="2019-04").fetch_orders(None)
    assert missing.value.code == "not_found"


def test_a_closed_port_is_unreachable_and_retryable():
    config = ConnectionConfig(platform="shopify", base_url="http://127.0.0.1:9", credentials={"access_token": "t"})
    with pytest.raises(ConnectorError) as failed:
        adapter_for(config).fetch_orders(None)
    assert failed.value.retryable


def test_a_throttled_answer_raises_throttled_with_the_time_to_refill(shop):
    shop.bucket_size, shop.restore_rate = 100.0, 50.0
    shop.costs["assignedFulfillmentOrders"] = 60.0
    shop._available = 20.0
    with pytest.raises(Throttled) as throttled:
        make_adapter(shop, max_throttle_wait=0.0).fetch_orders(None)
    assert shop.throttled == 1
    assert 0.7 <= throttled.value.retry_after <= 1.5  # (60 - ~20) / 50 s, at least 1 s


def test_the_adapter_paces_itself_on_the_bucket_instead_of_being_throttled(shop, location):
    # A small bucket: each poll costs 40 of 100 points and 200 points come back a second. Without pacing the third
    # call in a row would be THROTTLED; with it the adapter waits the ~0.1 s the bucket needs.
    shop.bucket_size, shop.restore_rate, shop._available = 100.0, 200.0, 100.0
    shop.costs["assignedFulfillmentOrders"] = 40.0
    adapter = make_adapter(shop, location_id=location)
    started = time.monotonic()
    for _ in range(8):
        adapter.fetch_orders(None)
    assert shop.throttled == 0
    assert time.monotonic() - started >= 0.5  # 8 × 40 = 320 points from a 100-point bucket at 200 points/s


@settings(deadline=None)  # a loaded shared machine must not fail a pure check on time
@given(
    maximum=st.floats(1, 2000),
    available=st.floats(0, 2000),
    rate=st.floats(0.5, 2000),
    cost=st.floats(0, 3000),
    elapsed=st.floats(0, 10),
)
def test_waiting_what_the_bucket_says_is_always_enough_and_never_too_much(maximum, available, rate, cost, elapsed):
    bucket = _Bucket(maximum=maximum, available=min(available, maximum), restore_rate=rate, read_at=0.0)
    wait = bucket.wait_for(cost, elapsed)
    assert wait >= 0
    assert bucket.available_now(elapsed + wait) >= min(cost, maximum) - 1e-6
    if wait > 1e-6:  # not a moment longer than needed
        assert bucket.available_now(elapsed + wait * 0.99) < min(cost, maximum)


def test_a_wait_longer_than_allowed_is_handed_back_as_throttled(shop, location):
    shop.bucket_size, shop.restore_rate, shop._available = 100.0, 1.0, 100.0
    shop.costs["assignedFulfillmentOrders"] = 60.0
    adapter = make_adapter(shop, location_id=location, max_throttle_wait=0.5)
    adapter.fetch_orders(None)
    with pytest.raises(Throttled) as throttled:
        adapter.fetch_orders(None)
    assert throttled.value.retry_after > 0.5
    assert shop.throttled == 0  # refused before sending


# --- Callbacks --------------------------------------------------------------------------------------------------------


def test_fetch_stock_answers_one_sku_or_all_never_negative(shop):
    adapter = make_adapter(shop)
    levels = {"MUG-01": 7, "TEE-M": -3}
    assert adapter.answer_stock_query(levels, {"sku": "MUG-01", "shop": shop.shop_domain}) == {"MUG-01": 7}
    assert adapter.answer_stock_query(levels, {"sku": ["TEE-M"], "shop": [shop.shop_domain]}) == {"TEE-M": 0}
    assert adapter.answer_stock_query(levels, {"sku": "UNKNOWN"}) == {"UNKNOWN": 0}
    assert adapter.answer_stock_query(levels, {"shop": shop.shop_domain}) == {"MUG-01": 7, "TEE-M": 0}


def test_fetch_tracking_numbers_answers_in_shopifys_shape(shop):
    adapter = make_adapter(shop)
    tracking = {"#1001": ["6A1", "6A2"], "#1002.2": ["XY9"], "#1003": []}
    query = {"order_names[]": ["#1001.1", "#1002.2", "#1003.1", "#9999.1"], "shop": shop.shop_domain}
    assert adapter.answer_tracking_query(tracking, query) == {
        "tracking_numbers": {"#1001.1": "6A1", "#1002.2": "XY9"},
        "message": "Successfully received the tracking numbers",
        "success": True,
    }


def test_callbacks_for_another_shop_are_refused(shop):
    adapter = make_adapter(shop)
    with pytest.raises(SignatureInvalid):
        adapter.answer_stock_query({}, {"shop": "someone-else.myshopify.com"})
    with pytest.raises(SignatureInvalid):
        adapter.answer_tracking_query({}, {"shop": "someone-else.myshopify.com", "order_names[]": ["#1.1"]})


# --- Set-up and health ------------------------------------------------------------------------------------------------


def test_ensure_subscriptions_creates_the_service_then_only_updates_what_changed(shop):
    adapter = make_adapter(shop)
    adapter.ensure_subscriptions("https://quai.example/api/v1/shops/7/hooks/")
    (service,) = shop.services
    assert service["serviceName"] == "Quai"
    assert service["callbackUrl"] == "https://quai.example/api/v1/shops/7/hooks"
    assert service["inventoryManagement"] is True and service["trackingSupport"] is True

    adapter.ensure_subscriptions("https://quai.example/api/v1/shops/7/hooks")
    assert [call.root for call in shop.calls].count("fulfillmentServiceUpdate") == 0

    adapter.ensure_subscriptions("https://new.example/api/v1/shops/7/hooks")
    assert len(shop.services) == 1
    assert shop.services[0]["callbackUrl"] == "https://new.example/api/v1/shops/7/hooks"
    assert adapter.location_id() == service["location"]["id"]


def test_health_reports_credentials_scopes_and_service(shop, location):
    assert make_adapter(shop).health().ok
    shop.scopes.discard("write_inventory")
    report = make_adapter(shop).health()
    assert not report.ok and report.checks["scopes"] is False and "write_inventory" in report.detail
    stale = make_adapter(shop)
    shop.access_token = "rotated"  # the merchant revoked our token
    report = stale.health()
    assert not report.ok and report.checks["credentials"] is False
