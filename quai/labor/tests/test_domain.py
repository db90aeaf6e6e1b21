"""Labour's pure rules, checked against figures worked out by hand and against published Erlang C examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quai.labor import domain
from quai.labor.domain import HourForecast, PlanError, Scan

T0 = datetime(2030, 3, 4, 8, tzinfo=UTC)


def test_heads_are_the_workload_over_the_rate_at_the_utilisation_target_rounded_up():
    # 1,000 orders × 2.5 lines = 2,500 lines; a picker keeps 100 lines/h at 85 % → 85 lines/h → 29.4 → 30.
    assert domain.heads_for(2500, lines_per_hour=100, utilisation=0.85) == 30
    # Exactly divisible: 1,700 lines at 100 × 0.85 = 20 heads, not 21 from a float's last bit.
    assert domain.heads_for(1700, lines_per_hour=100, utilisation=0.85) == 20
    assert domain.heads_for(0, lines_per_hour=100, utilisation=0.85) == 0


def test_a_plan_splits_hours_activities_and_zones_by_hand():
    standards = {("pick", "A"): 120.0, ("pick", "B"): 60.0, ("pack", ""): 150.0, ("ship", ""): 300.0}
    cells = domain.staffing_plan(
        [HourForecast(T0, 400), HourForecast(T0 + timedelta(hours=1), 0)],
        lines_per_order=3,
        standards=standards,
        utilisation=0.8,
        zone_shares={"A": 0.75, "B": 0.25},
    )
    by_key = {(c.hour, c.activity, c.zone): c for c in cells}
    # 400 × 3 = 1,200 lines; zone A 900 lines at 120 × 0.8 = 96/h → 9.375 → 10; zone B 300 at 48/h → 6.25 → 7.
    assert by_key[(T0, "pick", "A")].heads == 10
    assert by_key[(T0, "pick", "B")].heads == 7
    # Pack in zone A falls back to the site-wide 150/h: 900 / 120 = 7.5 → 8; B: 300 / 120 = 2.5 → 3.
    assert by_key[(T0, "pack", "A")].heads == 8
    assert by_key[(T0, "pack", "B")].lines_per_hour == 150
    assert by_key[(T0, "pack", "B")].heads == 3
    # Ship: one shipment per order, 400 orders × 0.75 = 300 at 240/h → 2 (1.25 rounded up); B: 100 → 1.
    assert by_key[(T0, "ship", "A")].workload_lines == pytest.approx(300)
    assert by_key[(T0, "ship", "A")].heads == 2
    assert by_key[(T0, "ship", "B")].heads == 1
    assert all(c.heads == 0 for c in cells if c.hour != T0)


def test_the_live_backlog_is_spread_over_the_catch_up_hours():
    standards = {("pick", ""): 100.0}
    cells = domain.staffing_plan(
        [HourForecast(T0 + timedelta(hours=h), 100) for h in range(3)],
        lines_per_order=1,
        standards=standards,
        utilisation=1.0,
        work_per_line={"pick": 1.0},
        backlog_lines={"pick": 400},
        catch_up_hours=2,
    )
    # Hours 1 and 2 carry 100 new lines + 200 of the backlog each: 3 heads; hour 3 only its own 100: 1 head.
    assert [c.heads for c in cells] == [3, 3, 1]


@pytest.mark.parametrize(
    ("orders", "code"),
    [(-1, "negative_volume"), (float("nan"), "negative_volume"), (domain.MAX_ORDERS_PER_HOUR + 1, "absurd_volume")],
)
def test_a_forecast_with_negative_or_absurd_volumes_is_refused(orders, code):
    with pytest.raises(PlanError) as caught:
        domain.staffing_plan(
            [HourForecast(T0, orders)], lines_per_order=2, standards={("pick", ""): 100.0}, utilisation=0.8
        )
    assert caught.value.code == code


def test_work_without_a_standard_is_refused_but_an_idle_activity_needs_none():
    with pytest.raises(PlanError) as caught:
        domain.staffing_plan([HourForecast(T0, 10)], lines_per_order=2, standards={}, utilisation=0.8)
    assert caught.value.code == "standard_missing"
    cells = domain.staffing_plan([HourForecast(T0, 0)], lines_per_order=2, standards={}, utilisation=0.8)
    assert all(c.heads == 0 for c in cells)


@pytest.mark.parametrize("utilisation", [0, -0.1, 1.01])
def test_a_utilisation_target_outside_0_1_is_refused(utilisation):
    with pytest.raises(PlanError, match="invalid_utilisation"):
        domain.staffing_plan(
            [HourForecast(T0, 1)], lines_per_order=1, standards={("pick", ""): 1.0}, utilisation=utilisation
        )


def test_a_naive_or_repeated_hour_is_refused():
    with pytest.raises(PlanError, match="invalid_instant"):
        domain.forecast_check([HourForecast(datetime(2030, 1, 1, 8), 1)], lines_per_order=1)
    with pytest.raises(PlanError, match="duplicate_hour"):
        domain.forecast_check([HourForecast(T0, 1), HourForecast(T0, 2)], lines_per_order=1)


@given(
    orders=st.floats(min_value=0, max_value=50_000, allow_nan=False),
    lines_per_order=st.floats(min_value=0.5, max_value=20),
    rate=st.floats(min_value=1, max_value=1000),
    utilisation=st.floats(min_value=0.05, max_value=1),
)
def test_planned_heads_always_cover_the_work_and_one_fewer_would_not(orders, lines_per_order, rate, utilisation):
    [cell] = domain.staffing_plan(
        [HourForecast(T0, orders)],
        lines_per_order=lines_per_order,
        standards={("pick", ""): rate},
        utilisation=utilisation,
        work_per_line={"pick": 1.0},
    )
    capacity = domain.capacity_of(cell.heads, lines_per_hour=rate, utilisation=utilisation)
    assert capacity >= cell.workload_lines * (1 - 1e-9)
    if cell.heads > 0:
        fewer = domain.capacity_of(cell.heads - 1, lines_per_hour=rate, utilisation=utilisation)
        assert fewer < cell.workload_lines * (1 + 1e-9)


def test_the_measured_rate_counts_work_between_scans_and_leaves_breaks_out():
    scans = [
        Scan("ana", T0),
        Scan("ana", T0 + timedelta(minutes=1)),
        Scan("ana", T0 + timedelta(minutes=2)),
        # A 30-minute break: neither the gap nor the scan that ends it counts.
        Scan("ana", T0 + timedelta(minutes=32)),
        Scan("ana", T0 + timedelta(minutes=33), lines=2),
        Scan("bob", T0),
        Scan("bob", T0 + timedelta(minutes=3)),
    ]
    rate = domain.measured_rate(scans)
    # ana: 1 + 1 + 2 lines in 3 minutes; bob: 1 line in 3 minutes → 5 lines in 6 minutes = 50 lines/h.
    assert rate.lines == 5
    assert rate.active_hours == pytest.approx(0.1)
    assert rate.lines_per_hour == pytest.approx(50)
    assert domain.measured_rate([]).lines_per_hour == 0


def test_erlang_c_matches_the_published_worked_example():
    # Call Centre Helper's worked example: 100 calls per half hour (200/h), AHT 180 s → 10 Erlangs. With 11 agents
    # the probability of waiting is 0.6821 and 39 % are answered within 20 s; the 80/20 target needs 14 agents
    # (88.8 %), 20 rostered after 30 % shrinkage.
    assert domain.erlang_c(10, 11) == pytest.approx(0.6821, abs=1e-4)
    assert domain.service_level(traffic=10, agents=11, aht_seconds=180, answer_within_seconds=20) == pytest.approx(
        0.3896, abs=1e-3
    )
    need = domain.agents_needed(contacts_per_hour=200, aht_seconds=180, shrinkage=0.3)
    assert (need.traffic, need.agents, need.rostered) == (10, 14, 20)
    assert need.service_level == pytest.approx(0.8884, abs=1e-3)


def test_erlang_c_for_100_calls_an_hour_of_180_seconds_at_80_20():
    # 100 × 180 / 3600 = 5 Erlangs. 7 agents answer 74.0 % within 20 s, 8 agents 88.0 %: 8 are needed.
    assert domain.service_level(traffic=5, agents=7, aht_seconds=180, answer_within_seconds=20) == pytest.approx(
        0.7404, abs=1e-3
    )
    need = domain.agents_needed(contacts_per_hour=100, aht_seconds=180)
    assert (need.agents, round(need.service_level, 3), need.occupancy) == (8, 0.880, 0.625)


def test_erlang_c_stays_finite_for_large_centres_and_refuses_absurd_inputs():
    need = domain.agents_needed(contacts_per_hour=20_000, aht_seconds=300)
    assert 1667 < need.agents < 1800
    with pytest.raises(PlanError, match="negative_volume"):
        domain.agents_needed(contacts_per_hour=-1, aht_seconds=180)
    with pytest.raises(PlanError, match="absurd_volume"):
        domain.agents_needed(contacts_per_hour=10**9, aht_seconds=180)
    with pytest.raises(PlanError, match="invalid_handle_time"):
        domain.agents_needed(contacts_per_hour=10, aht_seconds=0)
    assert domain.agents_needed(contacts_per_hour=0, aht_seconds=180).rostered == 0


@given(
    contacts=st.floats(min_value=1, max_value=2000),
    aht=st.floats(min_value=10, max_value=1200),
    target=st.floats(min_value=0.5, max_value=0.95),
)
def test_erlang_c_agents_are_the_fewest_that_meet_the_target(contacts, aht, target):
    need = domain.agents_needed(contacts_per_hour=contacts, aht_seconds=aht, target_service_level=target)
    assert need.service_level >= target - 1e-9
    fewer = domain.service_level(
        traffic=need.traffic, agents=need.agents - 1, aht_seconds=aht, answer_within_seconds=20
    )
    assert fewer < target or need.agents - 1 <= need.traffic
