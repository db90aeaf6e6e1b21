"""Capacity from the staffing plan: labour's lines per hour for the hours it knows (people rostered, else the plan),
the configured figure for the others — in the pure rule (hand-computed drains) and in the snapshot the service
gathers (a plan on the site moves the promise; no plan leaves the configured capacity)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from quai.core import clock
from quai.labor import selectors as labor_selectors
from quai.labor import services as labor_services
from quai.labor.tests.factories import staff_member
from quai.promise import selectors
from quai.promise.domain import Capacity, OpenOrder, SiteCalendar, add_working_time, backlog_done_at, orders_at_risk
from quai.promise.models import BacklogDelta
from quai.promise.services import promise_quote

PARIS = SiteCalendar(
    time_zone="Europe/Paris",
    opening_days=frozenset({1, 2, 3, 4, 5}),
    opens_at=time(8),
    closes_at=time(18),
    holiday_country="FR",
)
MONDAY_10 = datetime.fromisoformat("2025-03-10T10:00:00+01:00")  # 09:00 UTC


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- The pure rule --------------------------------------------------------------------------------------------------


def test_without_labour_hours_the_backlog_drains_at_the_configured_rate_as_before():
    capacity = Capacity(lines_per_hour={"pick": 100, "pack": 300}, backlog_lines={"pick": 300, "pack": 300})
    assert backlog_done_at(PARIS, capacity, MONDAY_10) == add_working_time(PARIS, MONDAY_10, 3.0)
    assert backlog_done_at(PARIS, capacity, MONDAY_10) == datetime.fromisoformat("2025-03-10T13:00:00+01:00")


def test_the_hours_labour_knows_run_at_its_figure_the_others_at_the_configured_one():
    # 300 pick lines from 10:00 local: 10–11 at labour's 200 (100 left), 11–12 at labour's 50 (50 left),
    # 12–13 unknown to labour, the configured 100: half an hour → 12:30.
    hourly = {"pick": {_utc("2025-03-10T09:00"): 200.0, _utc("2025-03-10T10:00"): 50.0}}
    capacity = Capacity(lines_per_hour={"pick": 100}, backlog_lines={"pick": 300}, hourly=hourly)
    assert backlog_done_at(PARIS, capacity, MONDAY_10) == datetime.fromisoformat("2025-03-10T12:30:00+01:00")


def test_an_hour_the_plan_leaves_unstaffed_does_no_work_and_nights_do_not_count():
    # 150 lines from 16:00 local (15:00 UTC): 16–17 nobody is planned (0), 17–18 at 100 (50 left), the night,
    # Tuesday 08:00 at the configured 100: half an hour → 08:30.
    hourly = {"pick": {_utc("2025-03-10T15:00"): 0.0, _utc("2025-03-10T16:00"): 100.0}}
    capacity = Capacity(lines_per_hour={"pick": 100}, backlog_lines={"pick": 150}, hourly=hourly)
    start = datetime.fromisoformat("2025-03-10T16:00:00+01:00")
    assert backlog_done_at(PARIS, capacity, start) == datetime.fromisoformat("2025-03-11T08:30:00+01:00")


def test_the_slowest_stage_says_when_and_a_stage_only_labour_knows_runs_its_other_hours_at_labours_mean():
    # Pack has no configured rate: labour's hours are 10–11 at 40 and 11–12 at 80 (mean 60). 200 lines: 40, then
    # 80 (80 left), then 60 an hour → 13:20. Pick (configured 100, 100 lines) is done at 11:00: pack says when.
    hourly = {"pack": {_utc("2025-03-10T09:00"): 40.0, _utc("2025-03-10T10:00"): 80.0}}
    capacity = Capacity(lines_per_hour={"pick": 100}, backlog_lines={"pick": 100, "pack": 200}, hourly=hourly)
    assert backlog_done_at(PARIS, capacity, MONDAY_10) == datetime.fromisoformat("2025-03-10T13:20:00+01:00")


def test_the_at_risk_watch_reads_labours_hours_too():
    # Three orders of 100 pick lines, each to ship by Monday 15:00, from 10:00. At the configured 100 an hour they
    # are done at 11:00, 12:00 and 13:00: none at risk. Labour staffs 10:00–15:00 for 40 an hour: the first is done
    # at 12:30, the second at 15:00 exactly (not after: kept), the third needs 100 more lines after 15:00, at the
    # configured 100 an hour: 16:00, at risk.
    ship_by = datetime.fromisoformat("2025-03-10T15:00:00+01:00")
    orders = [OpenOrder(order_id=n, lines=100, ship_by=ship_by) for n in (1, 2, 3)]
    configured = Capacity(lines_per_hour={"pick": 100}, backlog_lines={})
    assert orders_at_risk(PARIS, configured, orders, MONDAY_10) == []
    hourly = {"pick": {_utc("2025-03-10T09:00") + timedelta(hours=n): 40.0 for n in range(5)}}
    staffed = Capacity(lines_per_hour={"pick": 100}, backlog_lines={}, hourly=hourly)
    assert orders_at_risk(PARIS, staffed, orders, MONDAY_10) == [3]


# --- The snapshot the service gathers ---------------------------------------------------------------------------


@pytest.fixture
def standards(configured):  # type: ignore[no-untyped-def]
    labor_services.standard_set(site=configured, activity="pick", lines_per_hour=Decimal("100"))
    labor_services.standard_set(site=configured, activity="pack", lines_per_hour=Decimal("120"))
    labor_services.standard_set(site=configured, activity="ship", lines_per_hour=Decimal("300"))
    return configured


def _plan(site, hours, orders):  # type: ignore[no-untyped-def]
    """A staffing plan from a forecast of ``orders`` an hour (2 lines each) over ``hours`` (UTC hour starts)."""
    forecast = [labor_services.ForecastHour(hour=hour, orders=orders) for hour in hours]
    return labor_services.staffing_plan_create(site=site, forecast=forecast, lines_per_order=2)


def _ship_date(merchant):  # type: ignore[no-untyped-def]
    quote = promise_quote(merchant_id=merchant.pk, lines=[("SHIRT-M", 1)], country="FR", postcode="75011")
    return next(o.ship_date for o in quote.result.options if o.service == "colissimo_home")


@pytest.mark.django_db
def test_labours_capacity_per_hour_is_what_labour_answers_in_the_middle_of_each_hour(standards):
    site = standards
    hours = [_utc("2025-03-10T08:00") + timedelta(hours=n) for n in range(6)]
    _plan(site, hours, orders=170)
    ana = staff_member("ana", site)
    labor_services.skill_add(staff=ana, activity="pick")
    labor_services.shift_create(
        staff=ana, activity="pick", starts_at=_utc("2025-03-10T10:00"), ends_at=_utc("2025-03-10T11:30")
    )
    since = _utc("2025-03-10T07:20")
    for stage in ("pick", "pack"):
        found = selectors.labour_capacity_by_hour(site_id=site.pk, stage=stage, since=since, hours=9)
        expected = {}
        for n in range(9):
            hour = _utc("2025-03-10T07:00") + timedelta(hours=n)
            figure = labor_selectors.capacity_lines_per_hour(site=site, stage=stage, at=hour + timedelta(minutes=30))
            if figure is not None:
                expected[hour] = figure
        assert found == pytest.approx(expected)
    # The roster wins over the plan: one picker at 10:00 and 11:00, not the plan's.
    pick = selectors.labour_capacity_by_hour(site_id=site.pk, stage="pick", since=since, hours=9)
    assert pick[_utc("2025-03-10T10:00")] == pytest.approx(1 * 100 * 0.85)
    assert _utc("2025-03-10T07:00") not in pick  # before the plan, nobody rostered: labour knows nothing


@pytest.mark.django_db
@pytest.mark.parametrize(("waiting", "ships"), [(900, date(2025, 3, 10)), (1500, date(2025, 3, 11))])
def test_with_no_staffing_plan_the_configured_capacity_decides(merchant, standards, shirt, waiting, ships):
    clock.set_now(MONDAY_10)
    # At the configured 200 pick lines an hour (300 pack), 900 lines are done at 14:30, before the 15:00 cut-off;
    # 1,500 at 17:30, after it.
    BacklogDelta.objects.create(merchant=merchant, status="allocated", lines=waiting)
    assert selectors.labour_capacity_for(selectors.site_config_for(merchant.pk)) == {}
    assert _ship_date(merchant) == ships


@pytest.mark.django_db
def test_a_thin_staffing_plan_moves_the_promise_to_the_next_cutoff(merchant, standards, shirt):
    clock.set_now(MONDAY_10)
    BacklogDelta.objects.create(merchant=merchant, status="allocated", lines=900)
    # The plan staffs Monday 08:00–16:00 UTC for 20 lines an hour: one picker, 85 lines an hour, one packer, 102.
    _plan(standards, [_utc("2025-03-10T07:00") + timedelta(hours=n) for n in range(9)], orders=10)
    snapshot = selectors.snapshot_for(selectors.site_config_for(merchant.pk), merchant_id=merchant.pk)
    assert snapshot.capacity.hourly["pick"][_utc("2025-03-10T09:00")] == pytest.approx(85)
    # 900 lines at 85 an hour do not fit before 15:00: the cart waits for Tuesday's cut-off.
    assert _ship_date(merchant) == date(2025, 3, 11)


@pytest.mark.django_db
def test_a_generous_staffing_plan_lets_a_backlog_the_configured_capacity_misses_make_the_cutoff(
    merchant, standards, shirt
):
    clock.set_now(MONDAY_10)
    BacklogDelta.objects.create(merchant=merchant, status="allocated", lines=1500)  # configured: 7.5 h, too late
    _plan(standards, [_utc("2025-03-10T07:00") + timedelta(hours=n) for n in range(9)], orders=300)
    # Eight pickers (680 lines an hour) and six packers (612): done by 12:30, the cart makes Monday's cut-off.
    assert _ship_date(merchant) == date(2025, 3, 10)


@pytest.mark.django_db
def test_a_plan_whose_packing_counts_the_parcels_handling_is_read_in_order_lines(merchant, standards, shirt):
    """The plan staffs packers for 2 lines of pack work per order line (the line and its share of the parcel's
    open, box, weigh and close); the promise's backlog is in order lines, so each packer does 120 / 2 of them an
    hour: reading 120 would promise dates the rostered packers cannot keep."""
    clock.set_now(MONDAY_10)
    hours = [_utc("2025-03-10T07:00") + timedelta(hours=n) for n in range(9)]
    forecast = [labor_services.ForecastHour(hour=hour, orders=51) for hour in hours]
    plan = labor_services.staffing_plan_create(
        site=standards, forecast=forecast, lines_per_order=2, work_per_line={"pick": 1.0, "pack": 2.0}
    )
    packers = {cell.hour: cell.heads for cell in plan.cells.filter(activity="pack")}
    assert packers[_utc("2025-03-10T09:00")] == 2  # 102 lines × 2 of work at 120 × 0.85 = 102 an hour each
    snapshot = selectors.snapshot_for(selectors.site_config_for(merchant.pk), merchant_id=merchant.pk)
    assert snapshot.capacity.hourly["pack"][_utc("2025-03-10T09:00")] == pytest.approx(2 * 120 / 2 * 0.85)
    assert snapshot.capacity.hourly["pick"][_utc("2025-03-10T09:00")] == pytest.approx(2 * 100 * 0.85)
    assert labor_selectors.capacity_lines_per_hour(
        site=standards, stage="pack", at=_utc("2025-03-10T09:30")
    ) == pytest.approx(2 * 120 / 2 * 0.85)
    # 700 lines: the pickers (170 an hour) are done at 14:07, the packers (102 order lines an hour, not 204) at
    # 16:52, after the 15:00 cut-off: Tuesday's.
    BacklogDelta.objects.create(merchant=merchant, status="allocated", lines=700)
    selectors.snapshot_invalidate()
    assert _ship_date(merchant) == date(2025, 3, 11)
