"""Pure inbound rules: no database."""

from __future__ import annotations

from quai.inbound import domain
from quai.inbound.domain import (
    CountedLine,
    LocationSnapshot,
    PickFaceSnapshot,
    PutawayItem,
    discrepancies,
    putaway_suggest,
    replenishment_need,
)


def loc(location_id: int, x: float, y: float = 0.0, **kwargs: object) -> LocationSnapshot:
    return LocationSnapshot(location_id=location_id, code=f"L{location_id:02d}", x=x, y=y, **kwargs)  # type: ignore[arg-type]


def test_the_asn_table_goes_forward_only_and_ends_closed_or_cancelled():
    table = domain.ASN_TRANSITIONS
    assert table["announced"] == ("receiving", "cancelled")
    assert table["receiving"] == ("closed",)
    assert table["closed"] == () and table["cancelled"] == ()
    assert set(domain.ASN_TRANSITION_NAMES) <= {(source, target) for source in table for target in table[source]}


def test_an_sscc_is_18_digits_with_a_gs1_check_digit():
    assert domain.sscc_normalize("376123450000000016") == "376123450000000016"
    assert domain.sscc_normalize("(00)376123450000000016") == "376123450000000016"
    assert domain.sscc_normalize("00376123450000000016") == "376123450000000016"
    assert domain.sscc_normalize("376123450000000013") is None
    assert domain.sscc_normalize("3761234500000000") is None
    assert domain.sscc_normalize("ASN-1") is None


def test_the_pick_face_comes_first_when_it_has_room_for_the_whole_quantity():
    face = PickFaceSnapshot(location=loc(1, 40), sku_id=7, max_quantity=20, on_hand=5)
    suggestion = putaway_suggest(
        PutawayItem(sku_id=7, quantity=15), pick_faces=[face], storage=[loc(2, 1)], origin=(0, 0)
    )
    assert suggestion is not None and suggestion.location_id == 1 and suggestion.reason == "pick_face"


def test_a_pick_face_without_room_sends_the_goods_to_the_nearest_storage_location_that_fits():
    face = PickFaceSnapshot(location=loc(1, 40), sku_id=7, max_quantity=20, on_hand=6)
    storage = [loc(2, 30), loc(3, 5), loc(4, 10)]
    suggestion = putaway_suggest(PutawayItem(sku_id=7, quantity=15), pick_faces=[face], storage=storage, origin=(0, 0))
    assert suggestion is not None and (suggestion.location_id, suggestion.reason) == (3, "storage_nearest")


def test_the_pick_face_of_another_sku_is_never_suggested():
    face = PickFaceSnapshot(location=loc(1, 1), sku_id=8, max_quantity=100, on_hand=0)
    suggestion = putaway_suggest(
        PutawayItem(sku_id=7, quantity=1), pick_faces=[face], storage=[loc(2, 9)], origin=(0, 0)
    )
    assert suggestion is not None and suggestion.location_id == 2


def test_a_location_too_small_or_too_weak_or_blocked_is_skipped():
    item = PutawayItem(sku_id=7, quantity=10, unit_volume_mm3=1_000_000, unit_weight_g=2_000)
    storage = [
        loc(1, 1, max_volume_mm3=5_000_000),  # 10 L do not fit in 5 L
        loc(2, 2, max_weight_g=10_000),  # 20 kg on a 10 kg shelf
        loc(3, 3, active=False),
        loc(4, 4, max_volume_mm3=20_000_000, used_volume_mm3=5_000_000, max_weight_g=25_000),
    ]
    suggestion = putaway_suggest(item, pick_faces=[], storage=storage, origin=(0, 0))
    assert suggestion is not None and suggestion.location_id == 4


def test_a_single_sku_location_holding_another_sku_is_not_free():
    storage = [loc(1, 1, mixed_sku=False, sku_ids=frozenset({9})), loc(2, 5, mixed_sku=False, sku_ids=frozenset({7}))]
    suggestion = putaway_suggest(PutawayItem(sku_id=7, quantity=1), pick_faces=[], storage=storage, origin=(0, 0))
    assert suggestion is not None and suggestion.location_id == 2


def test_fast_movers_go_nearest_the_packing_zone_slow_movers_nearest_where_they_stand():
    storage = [loc(1, 2), loc(2, 48)]
    slow = putaway_suggest(
        PutawayItem(sku_id=7, quantity=1), pick_faces=[], storage=storage, origin=(0, 0), packing_point=(50, 0)
    )
    fast = putaway_suggest(
        PutawayItem(sku_id=7, quantity=1, fast_mover=True),
        pick_faces=[],
        storage=storage,
        origin=(0, 0),
        packing_point=(50, 0),
    )
    assert slow is not None and slow.location_id == 1
    assert fast is not None and (fast.location_id, fast.reason) == (2, "storage_near_packing")


def test_nothing_is_suggested_when_nothing_fits():
    storage = [loc(1, 1, max_weight_g=10)]
    item = PutawayItem(sku_id=7, quantity=1, unit_weight_g=500)
    assert putaway_suggest(item, pick_faces=[], storage=storage, origin=(0, 0)) is None


def test_distance_ties_go_to_the_lower_code():
    storage = [loc(5, 3, 4), loc(2, 4, 3)]
    suggestion = putaway_suggest(PutawayItem(sku_id=1, quantity=1), pick_faces=[], storage=storage, origin=(0, 0))
    assert suggestion is not None and suggestion.code == "L02"


def test_discrepancies_name_over_short_unexpected_and_damaged_per_sku():
    found = discrepancies(
        [
            CountedLine(sku_id=1, expected=10, received=12),
            CountedLine(sku_id=2, expected=10, received=7, damaged=2),
            CountedLine(sku_id=3, expected=0, received=4, unexpected=True),
            CountedLine(sku_id=4, expected=5, received=5),
        ]
    )
    assert [(d.sku_id, d.kind, d.difference) for d in found] == [
        (1, "over", 2),
        (2, "short", -3),
        (2, "damaged", 2),
        (3, "unexpected", 4),
    ]


def test_lots_of_one_sku_are_added_up_before_comparing():
    found = discrepancies(
        [
            CountedLine(sku_id=1, expected=6, received=10),
            CountedLine(sku_id=1, expected=4, received=0),
        ]
    )
    assert found == []


def test_an_unexpected_line_of_an_announced_sku_counts_as_over_not_unexpected():
    found = discrepancies(
        [CountedLine(sku_id=1, expected=5, received=5), CountedLine(sku_id=1, expected=0, received=2, unexpected=True)]
    )
    assert [(d.kind, d.difference) for d in found] == [("over", 2)]


def test_replenishment_fills_up_to_max_only_below_min():
    assert replenishment_need(on_hand=5, min_quantity=5, max_quantity=20) == 0
    assert replenishment_need(on_hand=4, min_quantity=5, max_quantity=20) == 16
    assert replenishment_need(on_hand=0, min_quantity=1, max_quantity=8) == 8
    assert replenishment_need(on_hand=-2, min_quantity=1, max_quantity=8) == 8


def test_an_sscc_read_with_its_symbology_prefix_is_understood():
    body = "03761234500000011"
    sscc = body + str(domain.gs1_check_digit(body))
    for scanned in (f"]C100{sscc}", f"]d200{sscc}", f"]Q300{sscc}", f"]C1\x1d00{sscc}", f" ]C1(00){sscc}\r\n"):
        assert domain.sscc_normalize(scanned) == sscc, scanned
    # an identifier does not make a wrong check digit right, nor a GTIN an SSCC
    assert domain.sscc_normalize(f"]C100{body}{(int(sscc[-1]) + 1) % 10}") is None
    assert domain.sscc_normalize("]E03760000000017") is None


def test_a_lot_other_than_the_announced_one_is_a_lot_discrepancy_even_when_the_totals_match():
    found = discrepancies(
        [
            CountedLine(sku_id=1, expected=24, received=0, lot="LOT42"),
            CountedLine(sku_id=1, expected=0, received=24, lot="LOT99", unexpected=True),
        ]
    )
    assert [(d.kind, d.lot, d.expected, d.received, d.difference) for d in found] == [
        ("lot", "LOT42", 24, 0, -24),
        ("lot", "LOT99", 0, 24, 24),
    ]


def test_a_short_announced_lot_is_only_short_when_no_other_lot_came():
    found = discrepancies([CountedLine(sku_id=1, expected=24, received=20, lot="LOT42")])
    assert [(d.kind, d.difference) for d in found] == [("short", -4)]
