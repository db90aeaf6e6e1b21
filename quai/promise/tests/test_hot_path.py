"""The hot path's reads: no query at all once warm, stock re-read after ``STOCK_TTL``, and the backlog kept as moves
appended by ``order.status_changed`` (never counted from the orders while quoting), repaired by the watch's recount."""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.outbox import outbox_relay
from quai.core.tests.sql_texts import statement_texts
from quai.inbound.tests.factories import AsnFactory, AsnLineFactory
from quai.inventory.services import stock_receive
from quai.orders import services as order_services
from quai.orders.models import Order
from quai.orders.tests.conftest import order_data
from quai.promise import selectors, services
from quai.promise.models import BacklogDelta
from quai.promise.services import promise_config_load, promise_quote
from quai.promise.tests.conftest import demo_document
from quai.tenants import key_cache
from quai.tenants.models import ApiKey, MerchantStatus
from quai.tenants.scope import Scope
from quai.tenants.services import api_key_revoke

pytestmark = pytest.mark.django_db

MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")
CART = [("SHIRT-M", 1)]


def _quote(merchant, lines=CART):  # type: ignore[no-untyped-def]
    return promise_quote(merchant_id=merchant.pk, lines=lines, country="FR", postcode="75011")


def _ship_date(quote, service="colissimo_home"):  # type: ignore[no-untyped-def]
    return next(o.ship_date for o in quote.result.options if o.service == service)


@pytest.fixture
def frozen_monotonic(monkeypatch):  # type: ignore[no-untyped-def]
    """The caches' clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(selectors, "monotonic", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_a_warm_quote_makes_no_query(merchant, configured, shirt, django_assert_num_queries):
    clock.set_now(MONDAY)
    _quote(merchant)
    with django_assert_num_queries(0):
        quote = _quote(merchant)
    assert _ship_date(quote) == date(2025, 3, 10)


BODY = {"lines": [{"sku": "SHIRT-M", "quantity": 1}], "destination": {"country": "FR", "postcode": "75011"}}


def test_a_warm_http_quote_makes_no_query(api, configured, shirt, django_assert_num_queries):
    # The key is remembered by the process (quai.tenants.key_cache) and the merchant is not read again: its
    # authentication checked it is active. On PostgreSQL no query also means no connection health check.
    clock.set_now(MONDAY)
    assert api.post("promise", BODY).status_code == 200
    with django_assert_num_queries(0):
        assert api.post("promise", BODY).status_code == 200


def test_a_key_revoked_or_a_merchant_suspended_stops_quoting(api, merchant, configured, shirt, settings, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: now[0])
    clock.set_now(MONDAY)
    assert api.post("promise", BODY).status_code == 200
    type(merchant).objects.filter(pk=merchant.pk).update(status=MerchantStatus.SUSPENDED)
    now[0] += settings.QUAI_API_KEY_CACHE_SECONDS + 0.1  # another process suspended it: seconds later here
    assert api.post("promise", BODY).json()["error"]["code"] == "merchant_suspended"
    type(merchant).objects.filter(pk=merchant.pk).update(status=MerchantStatus.ACTIVE)
    assert api.post("promise", BODY).status_code == 200
    api_key_revoke(api_key_id=ApiKey.objects.get(merchant=merchant).pk)  # in this process: at once
    assert api.post("promise", BODY).json()["error"]["code"] == "invalid_api_key"


def test_a_merchant_naming_another_merchant_is_answered_not_found(api, other_merchant, configured, shirt):
    clock.set_now(MONDAY)
    answer = api.post("promise", {**BODY, "merchant_id": other_merchant.pk})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "merchant_not_found"


def test_a_cold_quote_reads_the_stock_once_for_the_whole_cart(
    merchant, configured, shelf, shirt, django_assert_max_num_queries
):
    clock.set_now(MONDAY)
    for n in range(4):
        stock_receive(sku=SkuFactory(merchant=merchant, code=f"CAP-{n}"), location=shelf, quantity=5)
    _quote(merchant)  # the configuration and the backlog
    cart = [("SHIRT-M", 1)] + [(f"CAP-{n}", 1) for n in range(4)]
    # Inventory's availability selector once for the five SKUs: the SKUs with their levels, the two kinds of safety
    # buffer, the open ASNs. Five SKUs cost what one does.
    with django_assert_max_num_queries(4):
        _quote(merchant, cart)


def test_stock_is_read_again_once_its_ttl_has_passed(merchant, configured, shelf, frozen_monotonic):
    clock.set_now(MONDAY)
    sku = SkuFactory(merchant=merchant, code="SHIRT-M")
    asn = AsnFactory(merchant=merchant, site=configured, expected_at=date(2025, 3, 11))
    AsnLineFactory(asn=asn, sku=sku, expected_quantity=10)
    assert _quote(merchant).result.stock.available_from == date(2025, 3, 11)
    stock_receive(sku=sku, location=shelf, quantity=5)
    frozen_monotonic[0] += selectors.STOCK_TTL - 0.1
    assert _quote(merchant).result.stock.available_from == date(2025, 3, 11)  # seconds old, as documented
    frozen_monotonic[0] += 0.2
    assert _quote(merchant).result.stock.available_now is True


def _order(merchant, external_id, lines=2):  # type: ignore[no-untyped-def]
    data = order_data(
        external_id, lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "9.90"} for _ in range(lines)]
    )
    order = order_services.order_create(merchant=merchant, data=data).order
    outbox_relay()
    return order


def _tallies():  # type: ignore[no-untyped-def]
    return selectors.backlog_sums(scope=Scope.system("test"))


def test_the_backlog_tallies_follow_each_order_step(merchant, configured, shirt):
    clock.set_now(MONDAY)
    first, second = _order(merchant, "A", lines=2), _order(merchant, "B", lines=3)
    assert _tallies() == {(merchant.pk, "allocated"): 5}
    order_services.order_release(order=first, now=first.release_after)
    outbox_relay()
    assert _tallies() == {(merchant.pk, "allocated"): 3, (merchant.pk, "released"): 2}
    order_services.order_hold(order=second, reason="fraud")
    order_services.order_cancel(order=first)
    outbox_relay()
    assert _tallies() == {}
    order_services.order_release_hold(order=second)
    outbox_relay()
    assert _tallies() == {(merchant.pk, "allocated"): 3}
    counted = selectors.backlog_counted_from_orders(scope=Scope.system("test"))
    assert _tallies() == {key: lines for key, lines in counted.items() if lines}


def test_a_backlog_past_the_cutoff_moves_the_promise_and_the_recount_repairs_the_tallies(
    merchant, site, shirt, django_capture_on_commit_callbacks
):
    document = demo_document(site.code)
    document["sites"][0]["capacity"] = {"pick": 1, "pack": 300}  # 5 lines before Monday's 15:00 cut-off
    with django_capture_on_commit_callbacks(execute=True):
        promise_config_load(document=document)
    clock.set_now(MONDAY)
    assert _ship_date(_quote(merchant)) == date(2025, 3, 10)
    for n in range(3):
        _order(merchant, f"O-{n}", lines=2)
    selectors.backlog_invalidate()  # another process's cache, seconds later
    assert _ship_date(_quote(merchant)) == date(2025, 3, 11)
    # Orders written without their events (a bulk load) and a tally counted twice: the watch's recount repairs both.
    Order.objects.filter(external_id="O-0").update(status="picking")
    BacklogDelta.objects.create(merchant=merchant, status="allocated", lines=54)
    assert services.backlog_recount() == 2
    assert _tallies() == {(merchant.pk, "allocated"): 4, (merchant.pk, "picking"): 2}
    assert services.backlog_recount() == 0


def test_a_step_between_untracked_statuses_reads_nothing(merchant, django_assert_num_queries):
    with django_assert_num_queries(0):
        services.backlog_apply(steps=[services.BacklogStep(merchant.pk, 1, "received", "backordered")])


def test_ship_by_for_orders_reads_the_recorded_cutoffs_in_one_query(
    merchant, other_merchant, configured, shirt, django_assert_num_queries
):
    from quai.promise.models import PromiseRecord

    clock.set_now(MONDAY)
    first, second = _order(merchant, "S-1", lines=1), _order(merchant, "S-2", lines=1)
    PromiseRecord.objects.filter(order_id=second.pk).update(ship_by=None)
    expected = PromiseRecord.objects.get(order_id=first.pk).ship_by
    with django_assert_num_queries(1):
        found = selectors.ship_by_for_orders(scope=Scope.system("test"), order_ids=[first.pk, second.pk, 999_999])
    assert found == {first.pk: expected}
    assert selectors.ship_by_for_orders(scope=Scope.merchant(other_merchant.pk), order_ids=[first.pk]) == {}
    # The rows of the ``order_id__in`` form it replaced, and ONE text for one order as for three
    # (``quai.core.rows.Among``; 13 texts over 230 calls in a 1,000-order PostgreSQL day before).
    ids = [first.pk, second.pk, 999_999]
    rows = PromiseRecord.objects.filter(order_id__in=ids, ship_by__isnull=False).values_list("order_id", "ship_by")
    assert found == dict(rows)
    assert selectors.ship_by_for_orders(scope=Scope.system("test"), order_ids=[]) == {}
    system = Scope.system("test")
    one = statement_texts(lambda: selectors.ship_by_for_orders(scope=system, order_ids=ids[:1]))
    assert len(one) == 1 and one == statement_texts(lambda: selectors.ship_by_for_orders(scope=system, order_ids=ids))
