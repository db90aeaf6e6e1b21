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
