"""Cartonization: pure rule, property-tested (no database)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from quai.packing.cartonization import Box, Item, choose_box, pack, weight_within_tolerance

items_st = st.lists(
    st.builds(Item, st.integers(1, 300), st.integers(1, 300), st.integers(1, 300), st.integers(0, 3000)),
    min_size=1,
    max_size=6,
)
boxes_st = st.lists(
    st.builds(
        Box,
        st.text("ABCDEFGH", min_size=1, max_size=3),
        st.integers(1, 600),
        st.integers(1, 600),
        st.integers(1, 600),
        st.integers(1, 20000),
        st.integers(0, 500),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(items_st, boxes_st)
def test_a_suggested_box_holds_the_items_without_overlap_and_no_smaller_box_was_passed_over(items, boxes):  # type: ignore[no-untyped-def]
    suggestion = choose_box(items, boxes)
    if suggestion is None:
        for box in boxes:
            assert sum(i.weight_g for i in items) + box.tare_g > box.max_weight_g or pack(items, box) is None
        return
    box = suggestion.box
    assert suggestion.weight_g == sum(i.weight_g for i in items) + box.tare_g <= box.max_weight_g
    for item, p in zip(items, suggestion.placements, strict=True):
        assert sorted((p.length, p.width, p.height)) == sorted((item.length_mm, item.width_mm, item.height_mm))
        assert p.x >= 0 and p.x + p.length <= box.length_mm
        assert p.y >= 0 and p.y + p.width <= box.width_mm
        assert p.z >= 0 and p.z + p.height <= box.height_mm
    for i, a in enumerate(suggestion.placements):
        for b in suggestion.placements[i + 1 :]:
            assert not a.overlaps(b)
    for other in boxes:
        if (other.volume, other.tare_g, other.code) < (box.volume, box.tare_g, box.code):
            fits = sum(i.weight_g for i in items) + other.tare_g <= other.max_weight_g and pack(items, other)
            assert not fits


@given(st.builds(Item, st.integers(1, 400), st.integers(1, 400), st.integers(1, 400), st.integers(0, 100)))
def test_a_single_item_fits_any_box_whose_sorted_sides_dominate_its_own(item):  # type: ignore[no-untyped-def]
    sides = sorted((item.length_mm, item.width_mm, item.height_mm))
    box = Box("X", sides[2], sides[0], sides[1], 1000)  # the same sides, in another orientation
    assert pack([item], box) is not None


def test_the_smallest_box_that_fits_is_chosen():
    boxes = [Box("L", 500, 400, 300, 20000, 400), Box("S", 150, 120, 110, 2000, 80), Box("M", 320, 220, 120, 5000)]
    mug = Item(120, 100, 100, 400)
    assert choose_box([mug], boxes).box.code == "S"  # type: ignore[union-attr]
    assert choose_box([mug, mug], boxes).box.code == "M"  # type: ignore[union-attr]
    assert choose_box([Item(600, 10, 10, 1)], boxes) is None
    assert choose_box([Item(10, 10, 10, 25000)], boxes) is None


def test_the_weight_tolerance_is_the_larger_of_fifty_grams_and_five_percent():
    assert weight_within_tolerance(expected_g=400, measured_g=450)
    assert not weight_within_tolerance(expected_g=400, measured_g=451)
    assert weight_within_tolerance(expected_g=4000, measured_g=4200)
    assert not weight_within_tolerance(expected_g=4000, measured_g=4201)


@settings(max_examples=200, deadline=None)
@given(items_st, boxes_st)
def test_the_remembered_suggestion_is_the_one_the_packer_walks_to(items, boxes):  # type: ignore[no-untyped-def]
    from quai.packing import cartonization

    walked = cartonization._choose_box.__wrapped__(tuple(items), tuple(boxes))
    assert choose_box(items, boxes) == walked
    # Asked again (the cache's answer), and for equal values built anew: the same suggestion.
    assert choose_box([Item(i.length_mm, i.width_mm, i.height_mm, i.weight_g) for i in items], list(boxes)) == walked
