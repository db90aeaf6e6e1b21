"""Pure layout rules: no database, milliseconds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time
from decimal import Decimal

import pytest

from quai.warehouse import domain
from quai.warehouse.domain import LayoutError

SVG = "{http://www.w3.org/2000/svg}"


def _full_rack() -> list[domain.PlannedLocation]:
    pattern = domain.rack_pattern_build(
        aisles="A-F", bays="1-30", levels="1-4", origin_x_m=10, origin_y_m=5, aisle_spacing_m=3, bay_width_m="1.2"
    )
    return domain.rack_pattern_expand(pattern)


def test_aisles_a_to_f_by_thirty_bays_by_four_levels_make_720_distinct_codes():
    planned = _full_rack()
    codes = [p.code for p in planned]
    assert len(codes) == 720
    assert len(set(codes)) == 720
    assert {p.aisle for p in planned} == set("ABCDEF")
    assert "A-01-01-01" in codes and "F-30-04-01" in codes


def test_codes_read_aisle_bay_level_position_with_two_digits():
    pattern = domain.rack_pattern_build(aisles="A", bays=[1], levels=[2], positions=[3])
    (only,) = domain.rack_pattern_expand(pattern)
    assert only.code == "A-01-02-03"
    assert (only.aisle, only.bay, only.level, only.position) == ("A", 1, 2, 3)


def test_odd_bays_stand_on_the_left_and_even_bays_on_the_right_facing_each_other():
    by_code = {p.code: p for p in _full_rack()}
    bay1, bay2, bay3 = by_code["A-01-01-01"], by_code["A-02-01-01"], by_code["A-03-01-01"]
    assert (bay1.side, bay2.side) == ("left", "right")
    assert bay1.y_m == bay2.y_m  # the pair faces each other across the walkway
    assert bay2.x_m - bay1.x_m == Decimal("2.00")  # the walkway: two thirds of the aisle spacing
    assert bay3.y_m - bay1.y_m == Decimal("1.20")  # next pair: one bay width further


def test_coordinates_start_at_the_origin_and_step_by_aisle_spacing_and_bay_width():
    by_code = {p.code: p for p in _full_rack()}
    first = by_code["A-01-01-01"]
    assert (first.x_m, first.y_m) == (Decimal("10.00"), Decimal("5.60"))  # centre of the first bay's slot
    assert by_code["B-01-01-01"].x_m == Decimal("13.00")
    assert by_code["F-01-01-01"].x_m == Decimal("25.00")
    assert by_code["F-30-01-01"].x_m == Decimal("27.00")
    assert by_code["A-29-01-01"].y_m == Decimal("5") + Decimal("14") * Decimal("1.2") + Decimal("0.6")
    # Levels share their slot's x/y.
    assert {(p.x_m, p.y_m) for p in _full_rack() if p.code.startswith("C-07-")} == {
        (by_code["C-07-01-01"].x_m, by_code["C-07-01-01"].y_m)
    }


def test_pick_sequence_walks_up_the_first_aisle_and_down_the_next():
    planned = _full_rack()
    assert [p.pick_sequence for p in planned] == list(range(1, 721))
    aisle_a = [p for p in planned if p.aisle == "A"]
    aisle_b = [p for p in planned if p.aisle == "B"]
    assert [p.y_m for p in aisle_a] == sorted(p.y_m for p in aisle_a)
    assert [p.y_m for p in aisle_b] == sorted((p.y_m for p in aisle_b), reverse=True)
    # The last stop of A and the first stop of B are at the same (far) end, so no walk back.
    assert aisle_a[-1].y_m == aisle_b[0].y_m
    # Inside one slot, the lowest level first.
    assert [p.code for p in planned[:4]] == ["A-01-01-01", "A-01-02-01", "A-01-03-01", "A-01-04-01"]


def test_the_serpentine_walks_less_than_returning_to_the_front_of_every_aisle():
    planned = _full_rack()

    def walk(points: list[tuple[Decimal, Decimal]]) -> Decimal:
        return sum((abs(b[0] - a[0]) + abs(b[1] - a[1]) for a, b in itertools.pairwise(points)), Decimal(0))

    serpentine = walk([(p.x_m, p.y_m) for p in planned])
    same_way = walk([(p.x_m, p.y_m) for p in sorted(planned, key=lambda p: (p.aisle, p.y_m, p.bay, p.level))])
    assert serpentine < same_way


def test_several_positions_split_a_bay_and_are_walked_in_the_aisles_direction():
    pattern = domain.rack_pattern_build(aisles="A,B", bays=1, levels=1, positions=2, bay_width_m=2)
    planned = domain.rack_pattern_expand(pattern, first_sequence=100)
    assert [(p.code, p.y_m, p.pick_sequence) for p in planned] == [
        ("A-01-01-01", Decimal("0.50"), 100),
        ("A-01-01-02", Decimal("1.50"), 101),
        ("B-01-01-02", Decimal("1.50"), 102),
        ("B-01-01-01", Decimal("0.50"), 103),
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("A-F", list("ABCDEF")),
        ("a, b ,C", ["A", "B", "C"]),
        ("A-C,F", ["A", "B", "C", "F"]),
        ("01-03", ["01", "02", "03"]),
    ],
)
def test_aisle_lists_are_read_as_people_type_them(spec, expected):
    assert domain.aisles_parse(spec) == expected


@pytest.mark.parametrize("spec", ["F-A", "A,,B", "A-B,B", "A-3", "??"])
def test_a_malformed_aisle_list_is_refused_with_the_rack_pattern_code(spec):
    with pytest.raises(LayoutError) as excinfo:
        domain.aisles_parse(spec)
    assert excinfo.value.code == "invalid_rack_pattern"


@pytest.mark.parametrize(
    ("spec", "expected"), [(3, [1, 2, 3]), ("1-3", [1, 2, 3]), ("1,3,5", [1, 3, 5]), ("2-3,7", [2, 3, 7])]
)
def test_bay_and_level_ranges_are_read_as_people_type_them(spec, expected):
    assert domain.numbers_parse(spec, what="bays") == expected


@pytest.mark.parametrize("spec", [0, "0-3", "5-1", "1,1", "x", ""])
def test_a_malformed_number_range_is_refused(spec):
    with pytest.raises(LayoutError):
        domain.numbers_parse(spec, what="bays")


def test_a_pattern_too_big_for_one_go_is_refused():
    with pytest.raises(LayoutError) as excinfo:
        domain.rack_pattern_build(aisles="A-Z", bays=999, levels=9)
    assert excinfo.value.code == "rack_pattern_too_large"


def test_a_rack_code_is_read_back_into_its_address():
    assert domain.rack_address_parse(" b-12-03-01 ") == domain.RackAddress("B", 12, 3, 1)
    assert domain.rack_address_parse("DOCK-1") is None


def test_location_codes_are_trimmed_upper_cased_and_checked():
    assert domain.location_code_clean(" a-01-02-03 ") == "A-01-02-03"
    with pytest.raises(LayoutError) as excinfo:
        domain.location_code_clean("A 01")
    assert excinfo.value.code == "invalid_location_code"


def test_a_validity_window_must_end_after_it_starts_and_is_half_open():
    start, end = datetime(2026, 12, 1, 8, tzinfo=UTC), datetime(2026, 12, 3, 20, tzinfo=UTC)
    domain.validity_window_check(start, end)
    domain.validity_window_check(None, end)
    with pytest.raises(LayoutError) as excinfo:
        domain.validity_window_check(end, start)
    assert excinfo.value.code == "invalid_validity_window"
    assert domain.window_contains(start, end, start)
    assert not domain.window_contains(start, end, end)


def test_site_hours_days_and_time_zone_are_checked():
    assert domain.opening_days_clean([5, 1, 1, 3]) == [1, 3, 5]
    for days in ([], [0], [8]):
        with pytest.raises(LayoutError):
            domain.opening_days_clean(days)
    with pytest.raises(LayoutError) as excinfo:
        domain.opening_hours_check(time(18), time(8))
    assert excinfo.value.code == "invalid_opening_hours"
    domain.time_zone_check("Europe/Paris")
    with pytest.raises(LayoutError) as excinfo:
        domain.time_zone_check("Mars/Olympus")
    assert excinfo.value.code == "invalid_time_zone"
