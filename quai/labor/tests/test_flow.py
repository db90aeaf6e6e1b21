"""The staffing plan from the flow of work (``domain.Flow``): heads follow when the work can be done and when it is
due, not the hour the orders arrive in. Checked by hand on a flash-sale day and by properties: simulating the plan's
capacity against the forecast arrivals leaves no promised work undone at its cut-off."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from quai.labor import domain
from quai.labor.domain import Flow, FlowWork, HourForecast, PlanError

T0 = datetime(2030, 3, 4, 6, tzinfo=UTC)
STANDARDS = {("pick", ""): 120.0, ("pack", ""): 90.0, ("ship", ""): 600.0}
PER_LINE = {"pick": 1.0, "pack": 1.7, "ship": 0.7}
STEP_MINUTES = domain.FLOW_STEP / timedelta(minutes=1)


def _heads(cells: list[domain.PlanCell]) -> dict[tuple[datetime, str], int]:
    return {(cell.hour, cell.activity): cell.heads for cell in cells}


def _spike_day() -> list[HourForecast]:
    orders = [10, 12, 15, 17, 700, 18, 20, 20, 18, 17, 17, 18]  # 06:00 to 17:00, the sale opens at 10:00
    return [HourForecast(T0 + timedelta(hours=n), float(count)) for n, count in enumerate(orders)]


def _cumulative_capacity(cells: list[domain.PlanCell], activity: str, until: datetime) -> float:
    """Lines of ``activity`` the plan's heads can do from its first hour until ``until``."""
    total = 0.0
    for cell in cells:
        if cell.activity != activity or cell.heads == 0:
            continue
        hours = min(max((until - cell.hour) / timedelta(hours=1), 0.0), 1.0)
        total += domain.capacity_of(cell.heads, lines_per_hour=cell.lines_per_hour, utilisation=0.85) * hours
    return total


def test_the_spike_is_staffed_after_it_arrives_and_spread_up_to_its_cut_off():
    forecast = _spike_day()
    cutoffs = (T0 + timedelta(hours=8), T0 + timedelta(hours=9), T0 + timedelta(hours=11, minutes=30))
    flow = Flow(release_delay=timedelta(minutes=15), handoff=timedelta(minutes=10), cutoffs=cutoffs)
    per_hour = _heads(domain.staffing_plan(forecast, lines_per_order=1.5, standards=STANDARDS, utilisation=0.85))
    flowing = domain.staffing_plan(
        forecast, lines_per_order=1.5, standards=STANDARDS, utilisation=0.85, work_per_line=PER_LINE, flow=flow
    )
    heads = _heads(flowing)
    spike, after = T0 + timedelta(hours=4), T0 + timedelta(hours=5)
    # The arrival-hour plan puts the whole spike in its hour and one person in the next.
    assert per_hour[(after, "pack")] == 1
    # The flow keeps packers on after the spike: its last orders are released, then picked, in the next hour.
    assert heads[(after, "pack")] > 1
    # ... and levels them: fewer at the peak than in the arrival hour's plan of the same work.
    arrival_plan = _heads(
        domain.staffing_plan(
            forecast, lines_per_order=1.5, standards=STANDARDS, utilisation=0.85, work_per_line=PER_LINE
        )
    )
    assert max(heads[(h, "pack")] for h in (spike, after)) < arrival_plan[(spike, "pack")]
    # Before the spike nobody is planned for work that is not there yet.
    assert heads[(T0 + timedelta(hours=3), "pick")] == 1
    # Every line released before the first cut-off, less the time its stages need, is packed by it.
    first_cutoff = cutoffs[0]
    workable_before = sum(
        entry.orders * 1.5 * PER_LINE["pack"] * min(1.0, max(0.0, (first_cutoff - entry.hour) / timedelta(hours=1)))
        for entry in forecast
        if entry.hour + timedelta(hours=1, minutes=15) <= first_cutoff - timedelta(minutes=30)
    )
    assert _cumulative_capacity(flowing, "pack", first_cutoff) >= workable_before


def test_the_plan_runs_past_the_forecast_while_work_is_left():
    forecast = [HourForecast(T0, 200.0)]
    cells = domain.staffing_plan(
        forecast,
        lines_per_order=2,
        standards=STANDARDS,
        utilisation=0.85,
        work_per_line={"pick": 1.0},
        flow=Flow(release_delay=timedelta(minutes=30), max_wait=timedelta(hours=2)),
    )
    hours = sorted({cell.hour for cell in cells})
    assert hours[0] == T0 and hours[-1] > T0
    assert all(cell.heads >= 0 for cell in cells)
    assert sum(_cumulative_capacity(cells, "pick", hours[-1] + timedelta(hours=1)) for _ in [0]) >= 400 - 1e-6


def test_the_flow_refuses_negative_delays_and_a_wait_out_of_range():
    forecast = [HourForecast(T0, 10.0)]
    for flow, code in (
        (Flow(release_delay=timedelta(minutes=-1)), "invalid_flow_delay"),
        (Flow(handoff=timedelta(minutes=-5)), "invalid_flow_delay"),
        (Flow(max_wait=timedelta(minutes=1)), "invalid_max_wait"),
        (Flow(max_wait=timedelta(days=8)), "invalid_max_wait"),
        (Flow(cutoffs=(datetime(2030, 3, 4, 14),)), "invalid_instant"),
    ):
        with pytest.raises(PlanError, match=code):
            domain.staffing_plan(forecast, lines_per_order=1, standards=STANDARDS, utilisation=0.85, flow=flow)


def test_zero_work_is_zero_heads_in_every_hour():
    forecast = [HourForecast(T0 + timedelta(hours=n), 0.0) for n in range(4)]
    cells = domain.staffing_plan(
        forecast, lines_per_order=2, standards={}, utilisation=0.85, flow=Flow(cutoffs=(T0 + timedelta(hours=3),))
    )
    assert cells and all(cell.heads == 0 and cell.workload_lines == 0 for cell in cells)


def test_the_simulation_works_the_earliest_due_first():
    works = [FlowWork(release=0, due=6, lines=10.0), FlowWork(release=0, due=2, lines=10.0)]
    assert domain.flow_simulate(works, [10.0] * 6) == [2, 1]
    # Not enough capacity in the steps given: "never" is one past them.
    assert domain.flow_simulate([FlowWork(0, 1, 100.0)], [10.0, 10.0]) == [3]


@settings(max_examples=60, deadline=None)
@given(
    orders=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=8),
    lines_per_order=st.floats(min_value=1, max_value=4),
    release_minutes=st.integers(min_value=0, max_value=40),
    handoff_minutes=st.integers(min_value=0, max_value=20),
    wait_hours=st.integers(min_value=1, max_value=5),
    cutoff_hours=st.lists(st.integers(min_value=1, max_value=10), max_size=3, unique=True),
    utilisation=st.floats(min_value=0.5, max_value=1),
)
@example(  # a handoff of 16 minutes is 4 steps: the plan cannot promise this order the first hour's cut-off
    orders=[1],
    lines_per_order=1.0,
    release_minutes=1,
    handoff_minutes=16,
    wait_hours=1,
    cutoff_hours=[1],
    utilisation=1.0,
)
def test_simulating_the_plan_against_the_forecast_leaves_no_promised_work_undone_at_its_cut_off(
    orders, lines_per_order, release_minutes, handoff_minutes, wait_hours, cutoff_hours, utilisation
):
    forecast = [HourForecast(T0 + timedelta(hours=n), float(count)) for n, count in enumerate(orders)]
    cutoffs = tuple(T0 + timedelta(hours=h) for h in cutoff_hours)
    flow = Flow(
        release_delay=timedelta(minutes=release_minutes),
        handoff=timedelta(minutes=handoff_minutes),
        cutoffs=cutoffs,
        max_wait=timedelta(hours=wait_hours),
    )
    cells = domain.staffing_plan(
        forecast,
        lines_per_order=lines_per_order,
        standards=STANDARDS,
        utilisation=utilisation,
        work_per_line=PER_LINE,
        flow=flow,
    )
    assert all(cell.heads >= 0 for cell in cells)
    assert all(cell.heads == 0 for cell in cells if cell.workload_lines == 0 and sum(orders) == 0)
    # Each order's last stage (shipping) is due at the first cut-off it can make, else within the longest wait:
    # whatever arrived early enough for a cut-off is shipped by it. The plan's own schedule, replayed step by step
    # with its heads, meets every due step.
    for cutoff in cutoffs:
        # Orders arriving in a step are workable at its end plus the release delay, and need a step and a handoff
        # per stage (in whole steps, rounded up as the plan rounds them): those that can make this cut-off are due
        # by it at the latest.
        steps = math.ceil(release_minutes / STEP_MINUTES) + 1 + 3 * (1 + math.ceil(handoff_minutes / STEP_MINUTES))
        shortest = timedelta(minutes=steps * STEP_MINUTES)
        due_lines = sum(
            entry.orders * lines_per_order * PER_LINE["ship"] * _share_before(entry.hour, cutoff - shortest)
            for entry in forecast
        )
        assert _cumulative_capacity_at(cells, "ship", cutoff, utilisation) >= due_lines - 1e-6
    # Heads are whole people and never negative; nothing is planned once the work is done.
    last_work = max((cell.hour for cell in cells if cell.workload_lines > 1e-9), default=None)
    if last_work is not None:
        assert all(cell.heads == 0 for cell in cells if cell.hour > last_work + timedelta(hours=1))


def _share_before(hour: datetime, limit: datetime) -> float:
    """The share of an hour's evenly spread arrivals that arrive before ``limit``."""
    return min(1.0, max(0.0, (limit - hour) / timedelta(hours=1)))


def _cumulative_capacity_at(cells: list[domain.PlanCell], activity: str, until: datetime, utilisation: float) -> float:
    total = 0.0
    for cell in cells:
        if cell.activity == activity and cell.heads:
            hours = min(max((until - cell.hour) / timedelta(hours=1), 0.0), 1.0)
            total += domain.capacity_of(cell.heads, lines_per_hour=cell.lines_per_hour, utilisation=utilisation) * hours
    return total


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(
        st.tuples(st.integers(0, 30), st.integers(1, 24), st.floats(min_value=0, max_value=500)),
        min_size=1,
        max_size=12,
    ),
    rate=st.floats(min_value=10, max_value=300),
    utilisation=st.floats(min_value=0.3, max_value=1),
)
def test_the_heads_meet_every_due_step_and_none_is_negative(lines, rate, utilisation):
    works = [FlowWork(release=r, due=r + span, lines=amount) for r, span, amount in lines]
    hours = math.ceil(max(w.due for w in works) / 12) + 1
    heads, done = domain.flow_heads(works, hours=hours, lines_per_hour=rate, utilisation=utilisation)
    assert all(h >= 0 for h in heads)
    assert all(done[i] <= work.due for i, work in enumerate(works) if work.lines > 0)
    if all(w.lines == 0 for w in works):
        assert heads == [0] * hours
    # Replayed independently: the same heads do the same works by their due steps.
    per_step = [
        heads[step // 12] * domain.capacity_of(1, lines_per_hour=rate, utilisation=utilisation) / 12
        for step in range(hours * 12)
    ]
    replay = domain.flow_simulate(works, per_step)
    assert all(replay[i] <= work.due for i, work in enumerate(works) if work.lines > 0)
