"""Routes: the dynamic programme equals the exact optimum; the classic heuristics never beat it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quai.fulfillment import routing
from quai.fulfillment.routing import Block, Pick


@st.composite
def instances(draw):  # type: ignore[no-untyped-def]
    count = draw(st.integers(1, 6))
    xs = draw(st.lists(st.integers(0, 40), min_size=count, max_size=count, unique=True))
    length = draw(st.integers(1, 25))
    depot = draw(st.one_of(st.sampled_from(xs), st.integers(-5, 45)))
    ys = st.one_of(st.just(0), st.just(length), st.integers(0, length * 4).map(lambda v: v / 4))
    picks = draw(st.lists(st.builds(Pick, st.integers(0, count - 1), ys), max_size=9))
    return Block(aisles_x=tuple(float(x) for x in xs), length=float(length), depot_x=float(depot)), picks


@settings(max_examples=400, deadline=None)
@given(instances())
def test_the_dynamic_programme_finds_the_brute_force_optimum(instance):  # type: ignore[no-untyped-def]
    block, picks = instance
    route = routing.optimal_route(block, picks)
    exact = routing.brute_force_length(block, picks)
    assert routing.isclose(route.length, exact)
    assert sorted(route.order) == list(range(len(picks)))
    # The visiting order, walked leg by leg, is that tour; the polyline drawn is as long.
    assert routing.isclose(routing.route_length(block, picks, route.order), exact)
    drawn = sum(abs(p[0] - q[0]) + abs(p[1] - q[1]) for p, q in zip(route.path, route.path[1:], strict=False))
    assert routing.isclose(drawn, exact)
    assert route.path[0] == route.path[-1] == (block.depot_x, 0.0)
    for heuristic in (routing.s_shape_route, routing.largest_gap_route):
        other = heuristic(block, picks)
        assert other.length >= exact - 1e-6
        assert sorted(other.order) == list(range(len(picks)))


def test_a_classic_case_beats_s_shape_and_largest_gap():
    # Picks near the front of many aisles: S-shape walks every aisle end to end, the optimum dips in and out.
    block = Block(aisles_x=(0.0, 3.0, 6.0, 9.0), length=30.0, depot_x=0.0)
    picks = [Pick(a, 2.0) for a in range(4)]
    best = routing.optimal_route(block, picks)
    assert best.length == pytest.approx(2 * 9 + 4 * 4)
    assert routing.s_shape_route(block, picks).length == pytest.approx(2 * 9 + 4 * 30)
    assert routing.largest_gap_route(block, picks).length > best.length


def test_no_pick_is_an_empty_route_and_bad_picks_are_refused():
    block = Block(aisles_x=(0.0, 3.0), length=10.0, depot_x=1.0)
    assert routing.optimal_route(block, []).length == 0
    with pytest.raises(ValueError):
        routing.optimal_route(block, [Pick(5, 1.0)])
    with pytest.raises(ValueError):
        routing.optimal_route(block, [Pick(0, 11.0)])


def test_other_layouts_get_the_heuristic_and_a_single_block_the_optimum():
    uneven = routing.Layout(
        aisles=(routing.AisleSpan(1, 0, 10), routing.AisleSpan(4, 0, 10), routing.AisleSpan(7, 0, 6)), depot=(0, -2)
    )
    places = [routing.Place(4, 3, 1), routing.Place(7, 5, 2), routing.Place(1, 9, 0), routing.Place(12, 1)]
    plan = routing.plan_route(uneven, places)
    assert plan.routing == "heuristic" and sorted(plan.order) == [0, 1, 2, 3]
    legs = [routing.Place(*uneven.depot), *(places[i] for i in plan.order), routing.Place(*uneven.depot)]
    assert plan.length == pytest.approx(sum(routing.layout_distance(uneven, p, q) for p, q in itertools.pairwise(legs)))
    even = routing.Layout(aisles=(routing.AisleSpan(1, 0, 10), routing.AisleSpan(4, 0, 10)), depot=(0, -2))
    plan = routing.plan_route(even, [routing.Place(4, 3, 1), routing.Place(1, 9, 0)])
    assert plan.routing == "optimal"
    block = Block(aisles_x=(1, 4), length=10, depot_x=0)
    assert plan.length == pytest.approx(routing.brute_force_length(block, [Pick(1, 3), Pick(0, 9)]) + 4)


@st.composite
def layouts_and_places(draw):  # type: ignore[no-untyped-def]
    """A single block or aisles of different lengths, places on aisles or loose (both planners' paths)."""
    count = draw(st.integers(1, 5))
    xs = sorted(draw(st.lists(st.integers(0, 30), min_size=count, max_size=count, unique=True)))
    high = draw(st.integers(2, 12))
    highs = draw(st.one_of(st.just([high] * count), st.lists(st.integers(2, 12), min_size=count, max_size=count)))
    layout = routing.Layout(
        aisles=tuple(routing.AisleSpan(float(x), 0.0, float(h)) for x, h in zip(xs, highs, strict=True)),
        depot=(float(draw(st.integers(-3, 33))), float(draw(st.sampled_from([0, -2])))),
    )
    on_aisle = st.integers(0, count - 1).flatmap(
        lambda k: st.integers(0, highs[k] * 2).map(lambda v: routing.Place(float(xs[k]), v / 2, k))
    )
    loose = st.builds(routing.Place, st.integers(0, 30).map(float), st.integers(0, 12).map(float))
    places = draw(st.lists(st.one_of(on_aisle, loose) if draw(st.booleans()) else on_aisle, max_size=7))
    return layout, places


@settings(max_examples=300, deadline=None)
@given(layouts_and_places(), st.integers(0, 3))
def test_a_kept_route_is_the_route_planned_afresh(instance, shift):  # type: ignore[no-untyped-def]
    layout, places = instance
    assert routing.plan_route_kept(layout, places) == routing.plan_route(layout, places)
    assert routing.plan_route_kept(layout, list(places)) == routing.plan_route(layout, places)  # asked again: kept
    # The same places on a layout changed since (an aisle moved, a depot moved): planned on the new layout.
    moved = routing.Layout(
        aisles=(routing.AisleSpan(layout.aisles[0].x - shift, 0.0, layout.aisles[0].y_high), *layout.aisles[1:]),
        depot=(layout.depot[0] + shift, layout.depot[1]),
    )
    assert routing.plan_route_kept(moved, places) == routing.plan_route(moved, places)
