"""The merchant's release buffer in the promise: an order cannot be worked on before its buffer is over, so a cut-off
that falls inside the buffer is not promised (the flash-sale simulation's order promised for the same day whose
buffer still ran at the carrier's cut-off).

Pure cases first, hand-computed on ``test_domain``'s snapshot (Paris, ``colissimo`` cut-off 15:00 Monday–Friday,
mainland 80 % in 1 delivery day, 97 % in 2: a Monday ship day promises Tuesday–Wednesday); then the service reading
the merchant's policy, the recorded promise and the watch, on the database.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.outbox import outbox_relay
from quai.inventory.services import stock_receive
from quai.orders import services as order_services
from quai.orders.models import Order
from quai.orders.selectors import release_buffer_minutes_of
from quai.orders.tests.conftest import order_data
from quai.promise import domain, selectors, services
from quai.promise.domain import Capacity, CarrierService, OpenOrder, PromiseResult, Transit
from quai.promise.models import PromiseRecord
from quai.promise.tests.test_domain import CALENDAR, IN_STOCK, SNAPSHOT, _backlog, _zone
from quai.tenants.scope import Scope

MINUTES = timedelta(minutes=1)


def _colissimo(at: str, buffer_minutes: int, snapshot: domain.Snapshot = SNAPSHOT) -> domain.ServiceOption:
    result = domain.promise_compute(
        replace(snapshot, release_buffer=buffer_minutes * MINUTES),
        lines=IN_STOCK,
        zone=_zone("FR", "75011"),
        at=datetime.fromisoformat(at),
        services=["colissimo"],
    )
    assert isinstance(result, PromiseResult), result
    (option,) = result.options
    return option


# --- The pure rule ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "buffer", "ship", "earliest", "latest"),
    [
        # No buffer: the cart's own line (18 s to pick) must be done by the cut-off; at it is too late.
        ("2025-03-10T14:50+01:00", 0, "2025-03-10", "2025-03-11", "2025-03-12"),
        ("2025-03-10T14:59:40+01:00", 0, "2025-03-10", "2025-03-11", "2025-03-12"),
        ("2025-03-10T14:59:59+01:00", 0, "2025-03-11", "2025-03-12", "2025-03-13"),
        ("2025-03-10T15:00+01:00", 0, "2025-03-11", "2025-03-12", "2025-03-13"),
        # 15 minutes: released at 14:59 makes it; 10 minutes before the cut-off is released at 15:05 and waits for
        # Tuesday; released exactly at 15:00 misses it, as an order placed exactly at it does.
        ("2025-03-10T14:44+01:00", 15, "2025-03-10", "2025-03-11", "2025-03-12"),
        ("2025-03-10T14:45+01:00", 15, "2025-03-11", "2025-03-12", "2025-03-13"),
        ("2025-03-10T14:50+01:00", 15, "2025-03-11", "2025-03-12", "2025-03-13"),
        # 60 minutes: the same edge an hour earlier.
        ("2025-03-10T13:59+01:00", 60, "2025-03-10", "2025-03-11", "2025-03-12"),
        ("2025-03-10T14:00+01:00", 60, "2025-03-11", "2025-03-12", "2025-03-13"),
        ("2025-03-10T14:30+01:00", 60, "2025-03-11", "2025-03-12", "2025-03-13"),
        # Friday 10 minutes before the cut-off with 15 minutes: the next ship day is Monday (delivered Tue–Wed).
        ("2025-03-14T14:50+01:00", 15, "2025-03-17", "2025-03-18", "2025-03-19"),
        # A buffer running past the site's close (18:00): released at 18:50, ships at Tuesday's cut-off.
        ("2025-03-10T17:50+01:00", 60, "2025-03-11", "2025-03-12", "2025-03-13"),
        # The week the clocks go forward (Sunday 30 March): Monday 31 March is at +02:00.
        ("2025-03-31T14:44+02:00", 15, "2025-03-31", "2025-04-01", "2025-04-02"),
        ("2025-03-31T14:50+02:00", 15, "2025-04-01", "2025-04-02", "2025-04-03"),
        # The same instants sent with last week's offset: 13:44+01:00 is 14:44 in Paris, 13:50+01:00 is 14:50.
        ("2025-03-31T13:44+01:00", 15, "2025-03-31", "2025-04-01", "2025-04-02"),
        ("2025-03-31T13:50+01:00", 15, "2025-04-01", "2025-04-02", "2025-04-03"),
        # The week the clocks go back (Sunday 26 October): Monday 27 October is at +01:00 again.
        ("2025-10-27T13:59+01:00", 60, "2025-10-27", "2025-10-28", "2025-10-29"),
        ("2025-10-27T14:00+01:00", 60, "2025-10-28", "2025-10-29", "2025-10-30"),
        ("2025-10-27T13:00+00:00", 60, "2025-10-28", "2025-10-29", "2025-10-30"),  # 14:00 Paris in UTC
    ],
)
def test_the_release_buffer_moves_an_order_placed_too_close_to_the_cutoff(at, buffer, ship, earliest, latest):
    option = _colissimo(at, buffer)
    assert (option.ship_date, option.delivery_earliest, option.delivery_latest) == (
        date.fromisoformat(ship),
        date.fromisoformat(earliest),
        date.fromisoformat(latest),
    )


def test_an_order_ten_minutes_before_the_cutoff_with_a_fifteen_minute_buffer_ships_the_next_day():
    without = _colissimo("2025-03-10T14:50+01:00", 0)
    with_buffer = _colissimo("2025-03-10T14:50+01:00", 15)
    assert without.cutoff.isoformat() == "2025-03-10T15:00:00+01:00"
    assert with_buffer.cutoff.isoformat() == "2025-03-11T15:00:00+01:00"
    assert with_buffer.seconds_to_cutoff == 24 * 3600 + 600


def test_the_backlog_drains_during_the_buffer_so_the_later_of_the_two_decides():
    # pick 200 lines/h. At 14:40 with 15 minutes the cart starts at 14:55: 40 lines ahead are done at 14:52 (ships
    # Monday), 100 lines at 15:10 (Tuesday, which the backlog alone already said: the buffer adds nothing to it).
    assert _colissimo("2025-03-10T14:40+01:00", 15, _backlog(40)).ship_date == date(2025, 3, 10)
    assert _colissimo("2025-03-10T14:40+01:00", 15, _backlog(100)).ship_date == date(2025, 3, 11)
    assert _colissimo("2025-03-10T14:40+01:00", 0, _backlog(100)).ship_date == date(2025, 3, 11)
    # 20 lines ahead (done 14:46) and 15 minutes: released at 14:55, ships Monday; at 14:46 released at 15:01.
    assert _colissimo("2025-03-10T14:40+01:00", 15, _backlog(20)).ship_date == date(2025, 3, 10)
    assert _colissimo("2025-03-10T14:46+01:00", 15, _backlog(20)).ship_date == date(2025, 3, 11)


def test_the_buffer_and_stock_on_an_asn_do_not_add_up():
    # An ASN due Tuesday is put away by Wednesday 10:00: a 60-minute buffer is long over by then.
    lines = (domain.CartLine("TSHIRT-M", 2, on_hand=0, incoming=((date(2025, 3, 11), 5),)),)
    for buffer in (0, 60):
        result = domain.promise_compute(
            replace(SNAPSHOT, release_buffer=buffer * MINUTES),
            lines=lines,
            zone=_zone("FR", "75011"),
            at=datetime.fromisoformat("2025-03-10T14:50+01:00"),
            services=["colissimo"],
        )
        assert isinstance(result, PromiseResult)
        assert result.options[0].ship_date == date(2025, 3, 12)


def test_the_buffer_is_real_time_across_a_clock_change():
    # A night pick-up at 03:15 on Sundays, at a site that works Sundays and nights: at 01:30+01:00 on Sunday 30
    # March 2025, the clocks jump from 02:00 to 03:00. 30 minutes later is 03:00+02:00 (makes 03:15), 45 minutes is
    # 03:15 (misses it: not strictly before), 60 minutes is 03:30. Wall-clock arithmetic would say 02:30, a time that
    # never was.
    night = CarrierService(
        code="night",
        name="Night",
        cutoffs={7: time(3, 15)},
        delivery_weekdays=frozenset({1, 2, 3, 4, 5, 6}),
        transit={domain.MAINLAND: Transit(((1, 1.0),))},
    )
    every_day = replace(CALENDAR, opening_days=frozenset(range(1, 8)), opens_at=time(0), closes_at=time(23, 59))
    snapshot = replace(SNAPSHOT, calendar=every_day, services=(night,))
    at = datetime(2025, 3, 30, 1, 30, tzinfo=CALENDAR.zone)
    assert domain.release_starts_at(at, 60 * MINUTES).isoformat() == "2025-03-30T03:30:00+02:00"
    ships = {}
    for buffer in (0, 30, 45, 60):
        result = domain.promise_compute(
            replace(snapshot, release_buffer=buffer * MINUTES),
            lines=IN_STOCK,
            zone=_zone("FR", "75011"),
            at=at,
            services=["night"],
        )
        assert isinstance(result, PromiseResult)
        ships[buffer] = result.options[0].ship_date
    assert ships == {0: date(2025, 3, 30), 30: date(2025, 3, 30), 45: date(2025, 4, 6), 60: date(2025, 4, 6)}


def test_a_negative_buffer_counts_as_none():
    at = datetime.fromisoformat("2025-03-10T14:50+01:00")
    assert domain.release_starts_at(at, -15 * MINUTES) == at
    assert _colissimo("2025-03-10T14:50+01:00", -15).ship_date == date(2025, 3, 10)


def test_the_watch_flags_an_order_whose_buffer_runs_past_its_cutoff():
    now = datetime.fromisoformat("2025-03-10T14:50+01:00")
    cutoff = datetime.fromisoformat("2025-03-10T15:00+01:00")
    capacity = Capacity(lines_per_hour={"pick": 200, "pack": 300}, backlog_lines={})
    orders = [
        OpenOrder(1, 2, cutoff, release_at=now + 5 * MINUTES),  # released 14:55: makes it
        OpenOrder(2, 2, cutoff, release_at=now + 10 * MINUTES),  # released at 15:00: misses it
        OpenOrder(3, 2, cutoff, release_at=now + 15 * MINUTES),  # released 15:05: misses it
        OpenOrder(4, 2, cutoff, release_at=now - 60 * MINUTES),  # released long ago
        OpenOrder(5, 2, cutoff),  # no buffer known
    ]
    assert domain.orders_at_risk(CALENDAR, capacity, orders, now) == [2, 3]
    # The same with labour's hours (the watch's other path) says the same.
    staffed = replace(capacity, hourly={"pick": {now.astimezone(UTC).replace(minute=0): 200.0}})
    assert domain.orders_at_risk(CALENDAR, staffed, orders, now) == [2, 3]


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)).map(
    lambda d: d.replace(tzinfo=CALENDAR.zone)
)
buffers = st.integers(min_value=0, max_value=7 * 24 * 60).map(lambda minutes: minutes * MINUTES)


@settings(max_examples=150, deadline=None)
@given(at=instants, buffer=buffers, more=buffers)
def test_a_longer_buffer_never_brings_the_date_forward(at, buffer, more):
    results = [
        domain.promise_compute(
            replace(SNAPSHOT, release_buffer=b),
            lines=IN_STOCK,
            zone=_zone("FR", "75011"),
            at=at,
            services=["colissimo"],
        )
        for b in (buffer, buffer + more)
    ]
    assert isinstance(results[0], PromiseResult) and isinstance(results[1], PromiseResult)
    assert results[0].options[0].ship_date <= results[1].options[0].ship_date


@settings(max_examples=150, deadline=None)
@given(at=instants, buffer=buffers)
def test_the_watch_never_flags_at_placing_what_the_promise_just_promised(at, buffer):
    # One rule for both: an order promised at ``at`` and watched at once, nothing else waiting, is not at risk.
    result = domain.promise_compute(
        replace(SNAPSHOT, release_buffer=buffer),
        lines=IN_STOCK,
        zone=_zone("FR", "75011"),
        at=at,
        services=["colissimo"],
    )
    assert isinstance(result, PromiseResult)
    (option,) = result.options
    assert option.cutoff > domain.release_starts_at(at, buffer)
    order = OpenOrder(1, 0, option.cutoff, release_at=domain.release_starts_at(at, buffer))
    assert domain.orders_at_risk(CALENDAR, SNAPSHOT.capacity, [order], at) == []


# --- On the database ----------------------------------------------------------------------------------------------

MONDAY_1450 = datetime.fromisoformat("2025-03-10T14:50:00+01:00")
MONDAY_1440 = datetime.fromisoformat("2025-03-10T14:40:00+01:00")


def _ship_date(merchant, service="colissimo_home"):  # type: ignore[no-untyped-def]
    quote = services.promise_quote(merchant_id=merchant.pk, lines=[("SHIRT-M", 1)], country="FR", postcode="75011")
    return next(o.ship_date for o in quote.result.options if o.service == service)


@pytest.mark.django_db
def test_the_merchants_buffer_is_read_from_its_order_policy(merchant):
    assert release_buffer_minutes_of(scope=Scope.merchant(merchant), merchant_id=merchant.pk) == 15  # the default
    order_services.order_policy_set(merchant=merchant, release_buffer_minutes=60)
    assert release_buffer_minutes_of(scope=Scope.merchant(merchant), merchant_id=merchant.pk) == 60
    assert selectors.release_buffer_for(merchant.pk) == timedelta(minutes=60)


@pytest.mark.django_db
def test_a_quote_counts_the_merchants_buffer(merchant, configured, shirt):
    clock.set_now(MONDAY_1450)  # 10 minutes before colissimo_home's 15:00 cut-off
    assert _ship_date(merchant) == date(2025, 3, 11)  # the default 15 minutes
    order_services.order_policy_set(merchant=merchant, release_buffer_minutes=0)
    selectors.snapshot_invalidate()  # the policy is cached like the configuration (CONFIG_TTL)
    assert _ship_date(merchant) == date(2025, 3, 10)
    order_services.order_policy_set(merchant=merchant, release_buffer_minutes=60)
    selectors.snapshot_invalidate()
    clock.set_now(MONDAY_1450 - timedelta(minutes=30))  # 14:20 + 60 minutes is past 15:00
    assert _ship_date(merchant) == date(2025, 3, 11)


@pytest.mark.django_db
def test_each_merchant_quotes_with_its_own_buffer_and_a_warm_quote_makes_no_query(
    merchant, other_merchant, configured, shelf, shirt, django_assert_num_queries
):
    other_shirt = SkuFactory(merchant=other_merchant, code="SHIRT-M", name="T-shirt M")
    stock_receive(sku=other_shirt, location=shelf, quantity=5)
    order_services.order_policy_set(merchant=other_merchant, release_buffer_minutes=0)
    clock.set_now(MONDAY_1450)
    assert (_ship_date(merchant), _ship_date(other_merchant)) == (date(2025, 3, 11), date(2025, 3, 10))
    with django_assert_num_queries(0):
        assert (_ship_date(merchant), _ship_date(other_merchant)) == (date(2025, 3, 11), date(2025, 3, 10))


def _order(merchant, external_id="SHOP-1"):  # type: ignore[no-untyped-def]
    data = order_data(external_id, lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "19.90"}])
    order = order_services.order_create(merchant=merchant, data=data).order
    outbox_relay()
    return order


@pytest.mark.django_db
def test_the_promise_recorded_at_intake_counts_the_orders_own_release(merchant, configured, shirt):
    clock.set_now(MONDAY_1450)
    late = _order(merchant, "LATE")
    assert late.release_after == MONDAY_1450 + timedelta(minutes=15)
    clock.set_now(MONDAY_1440)
    early = _order(merchant, "EARLY")
    assert str(PromiseRecord.objects.get(order_id=late.pk).ship_date) == "2025-03-11"
    record = PromiseRecord.objects.get(order_id=early.pk)
    assert str(record.ship_date) == "2025-03-10"
    assert record.ship_by.isoformat().startswith("2025-03-10T14:00:00")  # 15:00 Paris


@pytest.mark.django_db
def test_the_watch_flags_a_promise_whose_order_is_released_after_its_cutoff(merchant, configured, shirt):
    clock.set_now(MONDAY_1440)
    order = _order(merchant)  # released at 14:55, promised for Monday 15:00
    clock.set_now(MONDAY_1440 + timedelta(minutes=1))
    assert services.promise_watch()["at_risk"] == 0
    # Its release now falls after the cut-off (the buffer restarted): the warehouse cannot start it in time.
    Order.objects.filter(pk=order.pk).update(release_after=MONDAY_1440 + timedelta(minutes=25))
    assert services.promise_watch()["at_risk"] == 1
    assert PromiseRecord.objects.get(order_id=order.pk).status == "at_risk"
