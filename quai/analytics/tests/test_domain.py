"""The board's rules without a database: whose orders a site shows, the curve rebuilt backwards, cut-off verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quai.analytics import domain

T = datetime(2030, 3, 5, 10, 0, tzinfo=UTC)


def test_a_site_shows_the_merchants_it_names_else_those_no_site_names():
    configs = [
        domain.SiteServing("LYS1", frozenset()),
        domain.SiteServing("PAR1", frozenset({7, 8})),
        domain.SiteServing("LIL1", frozenset()),
    ]
    assert domain.site_merchants("PAR1", configs) == domain.MerchantFilter(frozenset({7, 8}), frozenset())
    lyon = domain.site_merchants("LYS1", configs)  # the first that names none takes every merchant not named
    assert lyon.include is None and lyon.allows(3) and not lyon.allows(7)
    assert not domain.site_merchants("LIL1", configs).allows(3)  # Lyon takes them, as the promise does
    assert domain.site_merchants("ANY", []).allows(3)  # no promise configuration: every site shows everyone


def test_the_backlog_curve_is_rebuilt_backwards_from_the_counts_and_the_steps():
    hours = [T - timedelta(hours=2), T - timedelta(hours=1), T]
    steps = {
        (T - timedelta(hours=2), "received", "allocated"): 4,  # within received: no change
        (T - timedelta(hours=1), "allocated", "released"): 3,
        (T - timedelta(hours=1), "released", "picking"): 1,
        (T, "picking", "packed"): 1,
        (T, "packed", "shipped"): 1,  # leaves the flow
    }
    received = {T - timedelta(hours=2): 4, T: 2}
    current = {"received": 3, "released": 2, "picking": 0, "packed": 0}
    points = domain.backlog_curve(
        now=T + timedelta(minutes=30), hours=hours, current=current, steps_by_hour=steps, received_by_hour=received
    )
    assert [p.stages for p in points] == [
        {"received": 0, "released": 0, "picking": 0, "packed": 0},  # 08:00: nothing yet
        {"received": 4, "released": 0, "picking": 0, "packed": 0},  # 09:00: four in
        {"received": 1, "released": 2, "picking": 1, "packed": 0},  # 10:00
        {"received": 3, "released": 2, "picking": 0, "packed": 0},  # now
    ]


def _tally(minutes: int, due: int, packed: int, shipped: int = 0, service: str = "s") -> domain.CutoffTally:
    return domain.CutoffTally(service, service.upper(), T + timedelta(minutes=minutes), due, packed, shipped)


def test_cutoffs_are_worked_in_order_and_judged_at_the_current_rate():
    tallies = [_tally(120, due=30, packed=10, service="b"), _tally(60, due=20, packed=10, service="a")]
    first, second = domain.cutoff_outlook(tallies, now=T, packed_per_hour=12)
    assert (first.service, first.left, first.ahead, first.verdict) == ("a", 10, 10, domain.ON_TRACK)
    assert first.finish_at == T + timedelta(minutes=50)
    # b: 20 of its own after a's 10 → 30 orders at 12/h = 2.5 h > 2 h: 6 short.
    assert (second.left, second.ahead, second.verdict, second.short) == (20, 30, domain.AT_RISK, 6)


def test_passed_ready_stalled_and_empty_cutoffs():
    missed, made, ready, stalled, empty = domain.cutoff_outlook(
        [
            _tally(-60, due=5, packed=5, shipped=4, service="m"),
            _tally(-30, due=2, packed=2, shipped=2, service="n"),
            _tally(30, due=3, packed=3, service="r"),
            _tally(90, due=3, packed=1, service="s"),
            _tally(100, due=0, packed=0, service="t"),
        ],
        now=T,
        packed_per_hour=0,
    )
    assert (missed.verdict, missed.short) == (domain.MISSED, 1)
    assert made.verdict == domain.MADE and ready.verdict == domain.READY
    assert (stalled.verdict, stalled.short) == (domain.STALLED, 2)
    assert empty.verdict == domain.NONE


def test_the_curve_is_drawn_as_stacked_bands_inside_the_chart():
    points = [
        domain.CurvePoint(T, {"received": 2, "released": 1, "picking": 0, "packed": 1}),
        domain.CurvePoint(T + timedelta(hours=3), {"received": 0, "released": 2, "picking": 2, "packed": 0}),
    ]
    bands, top, ticks = domain.stacked_bands(points, width=100, height=60, pad=10)
    assert top == 4 and [b.stage for b in bands] == ["received", "released", "picking", "packed"]
    for band in bands:
        for pair in band.points.split():
            x, y = (float(v) for v in pair.split(","))
            assert 10 <= x <= 90 and 10 <= y <= 50
    assert bands[0].points.startswith("10.0,30.0 90.0,50.0")  # 2 of 4 at the start, none at the end
    assert ticks == [(10.0, "10h")]  # a short curve: every hour (the last point is now, not an hour)
