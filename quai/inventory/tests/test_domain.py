"""The pure stock rules: no database, milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from quai.core.errors import ValidationFailed
from quai.inventory.domain import (
    Candidate,
    LedgerLine,
    Tracking,
    allocation_order,
    allocation_plan,
    available_for_shops,
    ledger_fold,
    quantity_check,
    shelf_life_ok,
    tracking_check,
)

TODAY = date(2030, 6, 1)


def _at(day: int) -> datetime:
    return datetime(2030, 5, day, tzinfo=UTC)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True, None])
def test_a_quantity_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValidationFailed) as excinfo:
        quantity_check(bad)
    assert excinfo.value.code == "invalid_quantity"


def test_a_lot_on_a_sku_without_lots_is_refused():
    with pytest.raises(ValidationFailed) as excinfo:
        tracking_check(Tracking(), lot="L1", expiry=None, serial="", quantity=1, today=TODAY, incoming=True)
    assert excinfo.value.code == "lot_not_tracked"


def test_incoming_stock_of_a_lot_tracked_sku_needs_its_lot_and_expiry():
    tracking = Tracking(lot=True, expiry=True)
    with pytest.raises(ValidationFailed) as excinfo:
        tracking_check(tracking, lot="", expiry=date(2031, 1, 1), serial="", quantity=1, today=TODAY, incoming=True)
    assert excinfo.value.code == "lot_required"
    with pytest.raises(ValidationFailed) as excinfo:
        tracking_check(tracking, lot="L1", expiry=None, serial="", quantity=1, today=TODAY, incoming=True)
    assert excinfo.value.code == "expiry_required"
    tracking_check(tracking, lot="L1", expiry=date(2031, 1, 1), serial="", quantity=1, today=TODAY, incoming=True)


def test_an_expiry_in_the_past_is_refused_on_the_way_in_only():
    tracking = Tracking(expiry=True)
    with pytest.raises(ValidationFailed) as excinfo:
        tracking_check(tracking, lot="", expiry=date(2030, 5, 31), serial="", quantity=1, today=TODAY, incoming=True)
    assert excinfo.value.code == "expiry_in_past"
    tracking_check(tracking, lot="", expiry=date(2030, 5, 31), serial="", quantity=1, today=TODAY, incoming=False)
    tracking_check(tracking, lot="", expiry=TODAY, serial="", quantity=1, today=TODAY, incoming=True)


def test_an_expiry_on_a_sku_without_expiry_and_serials_are_checked():
    with pytest.raises(ValidationFailed) as excinfo:
        tracking_check(Tracking(), lot="", expiry=TODAY, serial="", quantity=1, today=TODAY, incoming=True)
    assert excinfo.value.code == "expiry_not_tracked"
    with pytest.raises(ValidationFailed) as excinfo:
        tracking_check(Tracking(), lot="", expiry=None, serial="S1", quantity=1, today=TODAY, incoming=True)
    assert excinfo.value.code == "serial_not_tracked"
    with pytest.raises(ValidationFailed) as excinfo:
        tracking_check(Tracking(serial=True), lot="", expiry=None, serial="S1", quantity=2, today=TODAY, incoming=True)
    assert excinfo.value.code == "serial_quantity_not_one"


def test_fefo_takes_the_lot_that_expires_first_then_the_next():
    candidates = [
        Candidate(stock_id=1, free=5, expiry=date(2030, 9, 1), received_at=_at(1)),
        Candidate(stock_id=2, free=5, expiry=date(2030, 7, 1), received_at=_at(3)),
        Candidate(stock_id=3, free=5, expiry=date(2030, 8, 1), received_at=_at(2)),
    ]
    plan = allocation_plan(quantity=8, candidates=candidates, fefo=True, today=TODAY)
    assert plan.lines == [(2, 5), (3, 3)]
    assert plan.complete


def test_fifo_takes_what_was_received_first_when_the_sku_has_no_expiry():
    candidates = [
        Candidate(stock_id=1, free=4, received_at=_at(3)),
        Candidate(stock_id=2, free=4, received_at=_at(1)),
        Candidate(stock_id=3, free=4, received_at=_at(2)),
    ]
    assert allocation_plan(quantity=6, candidates=candidates, fefo=False, today=TODAY).lines == [(2, 4), (3, 2)]


def test_ties_go_to_the_pick_sequence_then_the_id():
    candidates = [
        Candidate(stock_id=9, free=1, received_at=_at(1), pick_sequence=5),
        Candidate(stock_id=4, free=1, received_at=_at(1), pick_sequence=2),
        Candidate(stock_id=3, free=1, received_at=_at(1), pick_sequence=2),
    ]
    assert [c.stock_id for c in allocation_order(candidates, fefo=False)] == [3, 4, 9]


def test_lots_with_too_little_shelf_life_left_are_skipped_and_reported():
    candidates = [
        Candidate(stock_id=1, free=5, expiry=date(2030, 6, 10), received_at=_at(1)),
        Candidate(stock_id=2, free=5, expiry=date(2030, 12, 1), received_at=_at(1)),
    ]
    plan = allocation_plan(quantity=8, candidates=candidates, fefo=True, today=TODAY, min_shelf_life_days=30)
    assert plan.lines == [(2, 5)]
    assert plan.shortfall == 3
    assert plan.skipped_short_dated == 5
    assert not plan.complete


def test_shelf_life_rule():
    assert shelf_life_ok(None, today=TODAY, min_shelf_life_days=100)
    assert shelf_life_ok(date(2030, 7, 1), today=TODAY, min_shelf_life_days=30)
    assert not shelf_life_ok(date(2030, 6, 30), today=TODAY, min_shelf_life_days=30)
    assert not shelf_life_ok(date(2030, 5, 31), today=TODAY, min_shelf_life_days=0)


def test_a_shortfall_allocates_what_there_is_and_says_how_much_is_missing():
    plan = allocation_plan(quantity=5, candidates=[Candidate(stock_id=1, free=2)], fefo=False, today=TODAY)
    assert plan.lines == [(1, 2)]
    assert plan.shortfall == 3


def test_the_ledger_folds_into_on_hand_per_place():
    lines = [
        LedgerLine(1, "", None, None, "", 10, "sellable", 7),
        LedgerLine(1, "", None, 10, "sellable", 11, "sellable", 3),
        LedgerLine(1, "", None, 10, "sellable", 10, "quarantine", 1),
        LedgerLine(1, "", None, 11, "sellable", None, "", 2),
    ]
    assert ledger_fold(lines) == {
        (10, 1, "", None, "sellable"): 3,
        (11, 1, "", None, "sellable"): 1,
        (10, 1, "", None, "quarantine"): 1,
    }


def test_the_shops_see_available_minus_the_buffer_never_below_zero():
    assert available_for_shops(on_hand=10, reserved=3, safety_buffer=2) == 5
    assert available_for_shops(on_hand=10, reserved=9, safety_buffer=2) == 0
