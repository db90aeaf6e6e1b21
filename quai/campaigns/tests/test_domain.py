from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quai.campaigns import domain
from quai.campaigns.domain import CurveError, CurvePoint
from quai.core.states import StateMachine

DAY = datetime(2030, 3, 5, tzinfo=UTC)


def _curve(orders_per_hour: float, hours: range) -> list[CurvePoint]:
    return [CurvePoint(DAY + timedelta(hours=h), orders_per_hour) for h in hours]


def test_orders_after_the_backlog_outgrows_the_cutoff_ship_tomorrow_by_hand():
    # 600 orders/h of 1 line from 9:00 to 12:00, 200 lines/h from 8:00, cut-off 15:00. In minute m after 9:00 the
    # backlog is 10·m − 3.33·m = 6.67·m lines; that order is done at 9:00 + m/60 h + (6.67·m + 1)/200 h
    # = 9:00 + m/20 h + 18 s ≤ 15:00 ⇔ m ≤ 119.9: the last same-day order arrives at 10:59.
    last = domain.last_same_day_arrival(
        _curve(600, range(9, 12)),
        lines_per_order=1,
        capacity_lines_per_hour=200,
        opens_at=DAY + timedelta(hours=8),
        cutoff=DAY + timedelta(hours=15),
    )
    assert last == DAY + timedelta(hours=10, minutes=59)
    # With a 17:30 cut-off: m ≤ 169.9 → 11:49.
    later = domain.last_same_day_arrival(
        _curve(600, range(9, 12)),
        lines_per_order=1,
        capacity_lines_per_hour=200,
        opens_at=DAY + timedelta(hours=8),
        cutoff=DAY + timedelta(hours=17, minutes=30),
    )
    assert later == DAY + timedelta(hours=11, minutes=49)


def test_a_day_the_site_keeps_up_with_ships_everything_the_same_day():
    assert (
        domain.last_same_day_arrival(
            _curve(100, range(9, 12)),
            lines_per_order=2,
            capacity_lines_per_hour=300,
            opens_at=DAY + timedelta(hours=8),
            cutoff=DAY + timedelta(hours=15),
        )
        is None
    )


def test_orders_arriving_after_the_cutoff_ship_tomorrow_whatever_the_capacity():
    last = domain.last_same_day_arrival(
        _curve(10, range(14, 16)),
        lines_per_order=1,
        capacity_lines_per_hour=10_000,
        opens_at=DAY + timedelta(hours=8),
        cutoff=DAY + timedelta(hours=15),
    )
    assert last is not None and last < DAY + timedelta(hours=15)


@pytest.mark.parametrize(
    ("curve", "code"),
    [
        ([CurvePoint(DAY + timedelta(hours=9), -1)], "negative_volume"),
        ([CurvePoint(DAY + timedelta(hours=9), 10**9)], "absurd_volume"),
        ([CurvePoint(DAY + timedelta(days=9), 1)], "hour_outside_campaign"),
        ([CurvePoint(DAY + timedelta(hours=9), 1)] * 2, "duplicate_hour"),
    ],
)
def test_bad_curves_are_refused(curve, code):
    with pytest.raises(CurveError) as caught:
        domain.curve_check(curve, starts_at=DAY, ends_at=DAY + timedelta(days=2))
    assert caught.value.code == code


def test_a_campaign_must_end_after_it_starts():
    with pytest.raises(CurveError, match="invalid_window"):
        domain.curve_check([], starts_at=DAY, ends_at=DAY)


@given(st.lists(st.sampled_from(list(domain.CAMPAIGN_TRANSITIONS)), max_size=12))
def test_the_campaign_machine_only_moves_forward_to_closed(path):
    machine = StateMachine.from_table("campaign", domain.CAMPAIGN_TRANSITIONS)
    status = domain.DRAFT
    for target in path:
        if machine.can(status, target):
            status = target
    assert machine.allowed_from(domain.CLOSED) == []
    assert status in domain.CAMPAIGN_TRANSITIONS
    # Open is reached only from planned: nothing opens without its plan and check.
    assert [s for s, targets in domain.CAMPAIGN_TRANSITIONS.items() if domain.OPEN in targets] == [domain.PLANNED]
