"""The promise's caches give the quote an uncached read gives: the configuration and labour's roster are kept while
their rows' stamps stay the same and read again as soon as one moves (a relay batch checks them at its start, a
quote after its TTL), whoever changed them; the stock a relay batch warms serves the lines it covers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from quai.core import clock
from quai.inbound.tests.factories import AsnFactory, AsnLineFactory
from quai.labor import services as labor_services
from quai.labor.tests.factories import staff_member
from quai.orders import services as order_services
from quai.orders.tests.conftest import order_data
from quai.promise import selectors, services
from quai.promise.models import BacklogDelta, CarrierService, PromiseRecord, StageCapacity, TransitLane
from quai.promise.services import promise_config_load, promise_quote
from quai.promise.tests.conftest import demo_document

pytestmark = pytest.mark.django_db

MONDAY_10 = datetime.fromisoformat("2025-03-10T10:00:00+01:00")  # 09:00 UTC


@pytest.fixture
def still_monotonic(monkeypatch):  # type: ignore[no-untyped-def]
    """The caches' clock stands still: no TTL ever runs out, only the stamps can make a cache read again."""
    now = [1000.0]
    monkeypatch.setattr(selectors, "monotonic", SimpleNamespace(monotonic=lambda: now[0]))
    return now


@pytest.fixture
def standards(configured):  # type: ignore[no-untyped-def]
    labor_services.standard_set(site=configured, activity="pick", lines_per_hour=Decimal("100"))
    labor_services.standard_set(site=configured, activity="pack", lines_per_hour=Decimal("120"))
    labor_services.standard_set(site=configured, activity="ship", lines_per_hour=Decimal("300"))
    return configured


def _quote(merchant, quantity: int = 1) -> Any:  # type: ignore[no-untyped-def]
    return promise_quote(merchant_id=merchant.pk, lines=[("SHIRT-M", quantity)], country="FR", postcode="75011").result


def _cached_and_uncached(merchant, quantity: int = 1) -> tuple[Any, Any]:  # type: ignore[no-untyped-def]
    """The quote a relay batch gives (its caches checked against the stamps, as at a batch's start), then the one
    read from nothing."""
    selectors.caches_check()
    cached = _quote(merchant, quantity)
    selectors.snapshot_invalidate()
    uncached = _quote(merchant, quantity)
    return cached, uncached


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _ship(result: Any, service: str = "colissimo_home") -> date:
    return next(o.ship_date for o in result.options if o.service == service)


def test_a_cached_quote_equals_an_uncached_one_through_configuration_and_staffing_changes(
    merchant, standards, shirt, still_monotonic
):
    clock.set_now(MONDAY_10)
    BacklogDelta.objects.create(merchant=merchant, status="allocated", lines=300)
    cached, uncached = _cached_and_uncached(merchant)
    assert cached == uncached and _ship(cached) == date(2025, 3, 10)  # 300 lines at 200 an hour: done by 11:30

    # Another process cuts the pick rate to 40 (no invalidation reaches this one): done at 17:30, the next batch
    # sees it.
    StageCapacity.objects.filter(stage="pick").update(lines_per_hour=40)
    cached, uncached = _cached_and_uncached(merchant)
    assert cached == uncached and _ship(cached) == date(2025, 3, 11)

    # A configuration loaded elsewhere (its on-commit invalidation runs there, not here): a 20:00 cut-off.
    document = demo_document(standards.code)
    document["sites"][0]["capacity"] = {"pick": 40, "pack": 300}
    for service in document["sites"][0]["services"]:
        service["cutoffs"] = dict.fromkeys(service["cutoffs"], "20:00")
    promise_config_load(document=document)
    cached, uncached = _cached_and_uncached(merchant)
    assert cached == uncached and _ship(cached) == date(2025, 3, 10)
    assert next(o for o in cached.options if o.service == "colissimo_home").cutoff.hour == 20

    # A lane's outcomes (the delivery handler's write): its observed transit changes the latest date.
    lane = TransitLane.objects.get(service__code="colissimo_home", zone="FR-MAINLAND")
    TransitLane.objects.filter(pk=lane.pk).update(kept=30, observed={"4": 30})
    cached, uncached = _cached_and_uncached(merchant)
    assert cached == uncached
    assert next(o for o in cached.options if o.service == "colissimo_home").delivery_latest == date(2025, 3, 14)

    # A staffing plan: one picker an hour, 85 lines, from 08:00 to 17:00 UTC; then two pickers rostered.
    hours = [_utc("2025-03-10T08:00") + timedelta(hours=n) for n in range(9)]
    forecast = [labor_services.ForecastHour(hour=hour, orders=10) for hour in hours]
    labor_services.staffing_plan_create(site=standards, forecast=forecast, lines_per_order=2)
    cached, uncached = _cached_and_uncached(merchant)
    assert cached == uncached
    before = selectors.labour_capacity_for(selectors.site_config_for(merchant.pk))["pick"][_utc("2025-03-10T10:00")]
    for name in ("ana", "bob"):
        picker = staff_member(name, standards)
        labor_services.skill_add(staff=picker, activity="pick")
        labor_services.shift_create(
            staff=picker, activity="pick", starts_at=_utc("2025-03-10T10:00"), ends_at=_utc("2025-03-10T12:00")
        )
    selectors.caches_check()
    after = selectors.labour_capacity_for(selectors.site_config_for(merchant.pk))["pick"][_utc("2025-03-10T10:00")]
    assert (before, after) == (85, 170)  # the roster (two pickers), not the plan (one), says the hour now
    cached, uncached = _cached_and_uncached(merchant)
    assert cached == uncached


def test_rows_unchanged_are_not_read_again_and_a_quote_checks_them_after_its_ttl(
    merchant, configured, shirt, still_monotonic, django_assert_num_queries, monkeypatch
):
    clock.set_now(MONDAY_10)
    first = _quote(merchant)
    loads = []
    real_load = selectors._load_configs
    monkeypatch.setattr(selectors, "_load_configs", lambda: loads.append(1) or real_load())
    with django_assert_num_queries(1):  # the stamps
        selectors.caches_check()
    with django_assert_num_queries(0):  # the quote's hot path: nothing read while warm
        assert _quote(merchant) == first
    still_monotonic[0] += selectors.CONFIG_TTL + selectors.LABOUR_TTL
    selectors.site_configs()
    assert loads == []  # the TTL ran out, the stamp did not move: the configuration is kept
    StageCapacity.objects.filter(stage="pick").update(lines_per_hour=1)
    still_monotonic[0] += selectors.CONFIG_TTL
    selectors.site_configs()
    assert loads == [1]
    still_monotonic[0] += selectors.CONFIG_MAX_AGE
    selectors.site_configs()
    assert loads == [1, 1]  # and whatever the stamp says, after its longest age


def test_the_stock_a_batch_warms_serves_the_lines_it_covers_and_a_larger_one_reads_the_asns(
    merchant, configured, shirt, still_monotonic
):
    clock.set_now(MONDAY_10)
    asn = AsnFactory(merchant=merchant, site=configured, expected_at=date(2025, 3, 12))
    AsnLineFactory(asn=asn, sku=shirt, expected_quantity=40)
    for quantity in (1, 50, 70):
        selectors.stock_warm(merchant_id=merchant.pk, skus=[(shirt.pk, "SHIRT-M")])
        warm = _quote(merchant, quantity)
        selectors.snapshot_invalidate()
        assert warm == _quote(merchant, quantity)
        assert warm.stock.available_now is (quantity <= 50)
        selectors.snapshot_invalidate()


def test_the_relay_batch_records_what_an_uncached_read_computes_after_a_roster_change(
    merchant, standards, shirt, still_monotonic, settings
):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(MONDAY_10)
    BacklogDelta.objects.create(merchant=merchant, status="allocated", lines=700)

    def orders(prefix: str) -> list[int]:
        created = [
            order_services.order_create(
                merchant=merchant,
                data=order_data(f"{prefix}-{n}", lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "9.90"}]),
            ).order
            for n in range(3)
        ]
        return [order.pk for order in created]

    first = orders("A")
    services.promises_record_for_orders(orders=[(pk, merchant.pk) for pk in first])
    # A plan staffing the day thinly, written by labour (no invalidation reaches the promise), then a batch.
    hours = [_utc("2025-03-10T07:00") + timedelta(hours=n) for n in range(10)]
    forecast = [labor_services.ForecastHour(hour=hour, orders=10) for hour in hours]
    labor_services.staffing_plan_create(site=standards, forecast=forecast, lines_per_order=2)
    CarrierService.objects.update(updated_at=clock.now())  # nothing changes: a stamp that moves for nothing
    second = orders("B")
    services.promises_record_for_orders(orders=[(pk, merchant.pk) for pk in second])
    recorded = {r.order_id: (r.ship_date, r.delivery_by, r.ship_by) for r in PromiseRecord.objects.all()}
    selectors.snapshot_invalidate()
    found = selectors.orders_to_promise(scope=services.promises.Scope.system("test"), order_ids=second)
    for pk in second:
        values = services.promises._promise_values(merchant_id=merchant.pk, order=found[pk])
        assert values is not None
        assert recorded[pk] == (values["ship_date"], values["delivery_by"], values["ship_by"])
    # The thin plan moved the cart past Monday's cut-off; the first batch, before it, made it.
    assert {recorded[pk][0] for pk in first} == {date(2025, 3, 10)}
    assert {recorded[pk][0] for pk in second} == {date(2025, 3, 11)}
