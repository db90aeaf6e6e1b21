"""A relay batch's promises are the ones each order gets alone: the carts' drains behind the backlog remembered for
the batch (``domain.CartDrains``) and the quote without its tokens give the same dates, confidence and source."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import transaction

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.models import OutboxEvent
from quai.inventory.services import stock_receive
from quai.labor import services as labor_services
from quai.promise import domain, selectors, services
from quai.promise.domain import Capacity, SiteCalendar
from quai.promise.models import BacklogDelta, PromiseRecord
from quai.promise.tests.test_relay_handlers import _order, _pending, _then_undone

CALENDAR = SiteCalendar(
    time_zone="Europe/Paris",
    opening_days=frozenset({1, 2, 3, 4, 5, 6}),
    opens_at=time(8),
    closes_at=time(18),
    holiday_country="FR",
    closures=frozenset({date(2025, 3, 12)}),
)
MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")


@pytest.fixture
def still(monkeypatch, settings):  # type: ignore[no-untyped-def]
    """The caches' clock stands still (a warm relay worker) and the relay is not nudged."""
    monkeypatch.setattr(selectors, "monotonic", SimpleNamespace(monotonic=lambda: 1000.0))
    settings.QUAI_OUTBOX_NUDGE = False


def _hourly(figure: float) -> dict[str, dict[datetime, float]]:
    first = datetime.fromisoformat("2025-03-10T09:00:00+00:00")
    return {"pick": {first + timedelta(hours=n): figure + n for n in range(30)}}


def test_the_remembered_drain_is_the_computed_one_and_forgets_when_the_capacity_changes():
    drains = domain.CartDrains()
    capacities = [
        Capacity(lines_per_hour={"pick": 200, "pack": 300}, backlog_lines={"pick": 400, "pack": 50}),
        Capacity(lines_per_hour={"pick": 100}, backlog_lines={"pick": 900}, hourly=_hourly(40)),
        Capacity(lines_per_hour={"pick": 100}, backlog_lines={"pick": 900}, hourly=_hourly(80)),  # equal keys
    ]
    instants = [MONDAY + timedelta(minutes=m) for m in (0, 0, 7, 7, 600, 2 * 24 * 60)]
    # Capacities in turn, each instant twice (remembered), release later or not, carts of one to three lines.
    for capacity, now, delay, lines in itertools.product(capacities * 2, instants, (0, 90), (1, 3)):
        starts_at = now + timedelta(minutes=delay)
        expected = domain.cart_done_at(CALENDAR, capacity, cart_lines=lines, now=now, starts_at=starts_at)
        assert drains.done_at(CALENDAR, capacity, cart_lines=lines, now=now, starts_at=starts_at) == expected


@pytest.mark.django_db
def test_a_batch_of_orders_at_a_few_instants_gets_each_order_s_own_promise_and_walks_once_per_instant(
    merchant, configured, shelf, shirt, still, monkeypatch
):
    """Orders at three instants, of one to three units, behind a backlog of 900 lines (four and a half hours of
    picking): the batch's records and events are the single form's, field by field; the batch walks the calendar
    once per instant (one SKU: every cart is one line), not once per order."""
    BacklogDelta.objects.create(merchant=merchant, status="released", lines=900)
    for n, minutes in enumerate([0] * 5 + [3] * 4 + [250] * 3):
        clock.set_now(MONDAY + timedelta(minutes=minutes))
        _order(merchant, f"A-{n}", lines=1 + n % 3)
    received = _pending("order.received")
    assert len(received) == 12
    walks: list[Any] = []
    computed = domain.cart_done_at

    def counted(*args: Any, **kwargs: Any) -> datetime:
        walks.append(kwargs["now"])
        return computed(*args, **kwargs)

    monkeypatch.setattr(domain, "cart_done_at", counted)

    def one_by_one() -> None:
        for event, envelope in received:
            services.on_order_received(event, envelope)

    single = _then_undone(one_by_one)
    alone = len(walks)
    walks.clear()
    batch = _then_undone(lambda: services.on_orders_received(received))
    assert batch == single
    assert len(batch[1]) == 12
    assert alone == 12
    assert len(walks) == 3


def _every_column() -> tuple[Any, ...]:
    """Every column of every record (but its id) and the payload of every ``promise.recorded``."""
    names = [f.attname for f in PromiseRecord._meta.concrete_fields if f.attname != "id"]
    records = sorted(PromiseRecord.objects.values_list(*names), key=lambda row: row[names.index("order_id")])
    recorded = sorted(
        (row.merchant_id, sorted(row.payload.items())) for row in OutboxEvent.objects.filter(name="promise.recorded")
    )
    return names, records, recorded


@pytest.mark.django_db
def test_the_batch_with_its_snapshot_made_once_records_every_column_the_single_form_records(
    merchant, other_merchant, configured, shelf, shirt, still
):
    """Two merchants' orders at instants of the site's local time, behind a backlog, with labour's plan and its
    standards (its hours, read at the batch's instant): the batch (one snapshot per site and release buffer, the
    orders read by a statement written once) records the very rows and events the single form records order by
    order, every column."""
    for activity, rate in (("pick", "100"), ("pack", "120"), ("ship", "300")):
        labor_services.standard_set(site=configured, activity=activity, lines_per_hour=Decimal(rate))
    hours = [datetime.fromisoformat("2025-03-10T07:00:00+00:00") + timedelta(hours=n) for n in range(12)]
    labor_services.staffing_plan_create(
        site=configured, forecast=[labor_services.ForecastHour(hour=h, orders=12) for h in hours], lines_per_order=2
    )
    stock_receive(sku=SkuFactory(merchant=other_merchant, code="SHIRT-M"), location=shelf, quantity=50)
    BacklogDelta.objects.create(merchant=merchant, status="allocated", lines=600)
    for n, minutes in enumerate([0] * 4 + [5] * 3 + [190] * 3):
        clock.set_now(MONDAY + timedelta(minutes=minutes))
        _order(merchant if n % 3 else other_merchant, f"E-{n}", lines=1 + n % 3)
    received = _pending("order.received")
    assert len(received) == 10

    def one_by_one() -> None:
        for event, envelope in received:
            services.on_order_received(event, envelope)

    single = _then_undone_with(one_by_one, _every_column)
    selectors.snapshot_invalidate()
    batch = _then_undone_with(lambda: services.on_orders_received(received), _every_column)
    assert batch == single
    assert len(batch[1]) == 10
    assert {row[batch[0].index("merchant_id")] for row in batch[1]} == {merchant.pk, other_merchant.pk}


def _then_undone_with(apply: Any, outcome: Any) -> tuple[Any, ...]:
    with transaction.atomic():
        apply()
        found = outcome()
        transaction.set_rollback(True)
    return found
