"""Stock rules that need no database: input checks, which lot to take (FEFO / FIFO), folding the ledger.

Everything here works on plain values, so it is tested in milliseconds (``tests/test_domain.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from quai.core.errors import ValidationFailed

# --- Input checks -----------------------------------------------------------------------------------------------


def quantity_check(quantity: int, *, field_name: str = "quantity") -> None:
    """Quantities are whole positive units."""
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValidationFailed(
            f"The {field_name} must be a whole number of units greater than zero (got {quantity!r}).",
            code="invalid_quantity",
            details={"field": field_name, "value": quantity},
        )


@dataclass(frozen=True)
class Tracking:
    """What a SKU tracks: lot, expiry date, serial number."""

    lot: bool = False
    expiry: bool = False
    serial: bool = False


def tracking_check(
    tracking: Tracking,
    *,
    lot: str,
    expiry: date | None,
    serial: str,
    quantity: int,
    today: date,
    incoming: bool,
) -> None:
    """Lot, expiry and serial must match what the SKU tracks; stock coming in may not be already expired.

    ``incoming`` is true for stock entering the warehouse (receipt, return, positive adjustment): only then are
    a missing lot or expiry and a past expiry date refused.
    """
    if lot and not tracking.lot:
        raise ValidationFailed(
            "This SKU is not tracked by lot: leave the lot empty.", code="lot_not_tracked", details={"lot": lot}
        )
    if incoming and tracking.lot and not lot:
        raise ValidationFailed("This SKU is tracked by lot: say which lot.", code="lot_required")
    if expiry is not None and not tracking.expiry:
        raise ValidationFailed(
            "This SKU has no expiry date: leave the expiry empty.",
            code="expiry_not_tracked",
            details={"expiry": expiry.isoformat()},
        )
    if incoming and tracking.expiry and expiry is None:
        raise ValidationFailed("This SKU is tracked by expiry date: give the expiry.", code="expiry_required")
    if incoming and expiry is not None and expiry < today:
        raise ValidationFailed(
            f"The expiry date {expiry.isoformat()} is in the past.",
            code="expiry_in_past",
            details={"expiry": expiry.isoformat(), "today": today.isoformat()},
        )
    if serial and not tracking.serial:
        raise ValidationFailed(
            "This SKU is not tracked by serial number: leave the serial empty.",
            code="serial_not_tracked",
            details={"serial": serial},
        )
    if serial and quantity != 1:
        raise ValidationFailed(
            "A serial number identifies one unit: the quantity must be 1.",
            code="serial_quantity_not_one",
            details={"quantity": quantity},
        )


# --- Allocation: which stock a reservation takes ----------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A place holding free stock of the SKU, as the allocation rule sees it."""

    stock_id: int
    free: int
    expiry: date | None = None
    received_at: datetime | None = None
    pick_sequence: int = 0


@dataclass(frozen=True)
class AllocationPlan:
    lines: list[tuple[int, int]] = field(default_factory=list)  # (stock_id, quantity)
    shortfall: int = 0
    skipped_short_dated: int = 0  # free units left out because they expire too soon

    @property
    def complete(self) -> bool:
        return self.shortfall == 0


def shelf_life_ok(expiry: date | None, *, today: date, min_shelf_life_days: int) -> bool:
    """Stock without expiry never runs out of shelf life; dated stock needs ``min_shelf_life_days`` left."""
    if expiry is None:
        return True
    return expiry >= today + timedelta(days=min_shelf_life_days) and expiry >= today


def allocation_order(candidates: Iterable[Candidate], *, fefo: bool) -> list[Candidate]:
    """FEFO (first expired, first out) for expiry-tracked SKUs, else FIFO (first received, first out).

    Ties go to the earlier place in the pick sequence, then the lower id, so the order is total and repeatable.
    """
    far = date.max
    epoch = datetime.min

    def fifo_key(c: Candidate) -> tuple[datetime, int, int]:
        received = c.received_at.replace(tzinfo=None) if c.received_at is not None else epoch
        return (received, c.pick_sequence, c.stock_id)

    if fefo:
        return sorted(candidates, key=lambda c: (c.expiry or far, *fifo_key(c)))
    return sorted(candidates, key=fifo_key)


def allocation_plan(
    *,
    quantity: int,
    candidates: Sequence[Candidate],
    fefo: bool,
    today: date,
    min_shelf_life_days: int = 0,
) -> AllocationPlan:
    """Take ``quantity`` units from the candidates in FEFO/FIFO order, skipping lots that expire too soon."""
    quantity_check(quantity)
    lines: list[tuple[int, int]] = []
    skipped = 0
    need = quantity
    for candidate in allocation_order(candidates, fefo=fefo):
        if candidate.free <= 0:
            continue
        if not shelf_life_ok(candidate.expiry, today=today, min_shelf_life_days=min_shelf_life_days):
            skipped += candidate.free
            continue
        if need == 0:
            continue
        take = min(need, candidate.free)
        lines.append((candidate.stock_id, take))
        need -= take
    return AllocationPlan(lines=lines, shortfall=need, skipped_short_dated=skipped)


# --- The ledger, folded -----------------------------------------------------------------------------------------

StockKey = tuple[int, int, str, date | None, str]  # (location_id, sku_id, lot, expiry, status)


@dataclass(frozen=True)
class LedgerLine:
    sku_id: int
    lot: str
    expiry: date | None
    from_location_id: int | None
    from_status: str
    to_location_id: int | None
    to_status: str
    quantity: int


def ledger_fold(lines: Iterable[LedgerLine]) -> dict[StockKey, int]:
    """On-hand per (location, SKU, lot, expiry, status) as the ledger says: the sum of what came in minus out."""
    totals: dict[StockKey, int] = {}
    for line in lines:
        if line.from_location_id is not None:
            key = (line.from_location_id, line.sku_id, line.lot, line.expiry, line.from_status)
            totals[key] = totals.get(key, 0) - line.quantity
        if line.to_location_id is not None:
            key = (line.to_location_id, line.sku_id, line.lot, line.expiry, line.to_status)
            totals[key] = totals.get(key, 0) + line.quantity
    return totals


def available_for_shops(*, on_hand: int, reserved: int, safety_buffer: int) -> int:
    """What the shops are told: available minus the units held back, never below zero."""
    return max(0, on_hand - reserved - safety_buffer)


# --- Cycle counts (inventaire tournant) -------------------------------------------------------------------------

# One transition table for count tasks: what each status may become. ``quai.inventory.services.counts`` builds the
# count task's ``StateMachine`` from it (this module stays free of Django); ``count_task_transition`` refuses the rest.
COUNT_TASK_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("counting", "submitted", "cancelled"),
    "counting": ("submitted", "cancelled"),
    "submitted": ("applied", "approved", "rejected"),
    "approved": ("applied",),
    "rejected": ("counting", "submitted", "cancelled"),
    "applied": (),
    "cancelled": (),
}
COUNT_TASK_ACTIVE = frozenset({"open", "counting", "submitted", "rejected", "approved"})
COUNT_TASK_COUNTABLE = frozenset({"open", "counting", "rejected"})


# Defaults when a merchant has set no count tolerance in its StockPolicy.
DEFAULT_COUNT_TOLERANCE_UNITS = 2
DEFAULT_COUNT_TOLERANCE_PERCENT = 5


@dataclass(frozen=True)
class CountTolerance:
    """How far a count may differ from the books before a supervisor must approve it.

    A variance is tolerated when it is within ``units`` units *or* within ``percent`` % of the expected quantity
    (so small absolute differences on small stocks and small relative ones on big stocks both pass). Zero for
    both means every difference needs approval.
    """

    units: int = DEFAULT_COUNT_TOLERANCE_UNITS
    percent: int = DEFAULT_COUNT_TOLERANCE_PERCENT


def count_variance(*, expected: int, counted: int) -> int:
    """Counted minus expected: positive when more was found than the books say."""
    if expected < 0 or counted < 0:
        raise ValidationFailed(
            "Expected and counted quantities are zero or more.",
            code="invalid_quantity",
            details={"expected": expected, "counted": counted},
        )
    return counted - expected


def count_needs_approval(*, expected: int, counted: int, tolerance: CountTolerance) -> bool:
    """Whether one counted line is beyond the tolerance (see ``CountTolerance``)."""
    variance = abs(count_variance(expected=expected, counted=counted))
    if variance == 0:
        return False
    if variance <= tolerance.units:
        return False
    return not (expected > 0 and variance * 100 <= tolerance.percent * expected)


@dataclass(frozen=True)
class CountedLine:
    """One line of a submitted count, as the approval rule sees it."""

    expected: int
    counted: int
    reserved: int = 0
    tolerance: CountTolerance = CountTolerance()


def count_review(lines: Sequence[CountedLine]) -> list[str]:
    """Why a submitted count must wait for a supervisor (empty: it may be applied at once).

    ``variance_above_threshold``: a line differs from the books beyond its tolerance;
    ``below_reserved``: fewer units were found than are reserved there, which only a supervisor can sort out
    (by moving or releasing the reservations first).
    """
    reasons: list[str] = []
    if any(count_needs_approval(expected=x.expected, counted=x.counted, tolerance=x.tolerance) for x in lines):
        reasons.append("variance_above_threshold")
    if any(x.counted < x.reserved for x in lines):
        reasons.append("below_reserved")
    return reasons
