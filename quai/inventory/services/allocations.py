"""``reservation_allocate`` for a wave's many reservations: read once, decided in memory in turn, written once.

A wave pins the reservations of its orders one order after the other, each order all or nothing: an order whose
units cannot all be placed keeps nothing, and the next order sees what the earlier ones took. ``AllocationRun``
does exactly that, in a fixed number of queries per chunk of orders instead of a dozen per reservation:

- ``load(reservation_ids)`` locks the reservations (then their SKUs' eligible quantity rows, in primary-key order,
  the order every stock write takes) and reads what the rule needs — allocations already made, each place's pick
  sequence, code and geometry, the merchants' shelf-life policy — for those not loaded yet;
- ``allocate(reservation_id)`` runs the same rule as ``reservation_allocate`` (``domain.allocation_plan`` over the
  eligible rows, FEFO/FIFO) on the in-memory free quantities and raises the same errors; inside
  ``with run.group():`` everything allocated is undone if the block raises, as a savepoint would undo it;
- ``write()`` applies what was kept: one guarded update of every quantity row touched, one insert of the
  allocations, one update of the reservations, one insert of their ``inventory.reservation_allocated`` events —
  the same rows and events, in the same order, as ``reservation_allocate`` called reservation by reservation.

Only the caller's transaction holds it together: call ``write()`` in the transaction that called ``load()``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import F
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, InsufficientStock, NotFound, QuaiError
from quai.core.outbox import events_record_many
from quai.core.rows import Among, model_rows_insert
from quai.inventory import domain, selectors
from quai.inventory.events import ReservationAllocated
from quai.inventory.models import Reservation, ReservationAllocation, ReservationStatus, StockQuantity, StockStatus
from quai.inventory.services._common import _reserved_add_guarded
from quai.inventory.services.reservations import ALLOCATABLE_ZONE_KINDS


@dataclass(frozen=True)
class Placement:
    """Units of a reservation pinned to a place, with what a pick route needs of the place."""

    location_id: int
    zone_id: int
    site_id: int
    zone_kind: str
    aisle: str
    x_m: float
    y_m: float
    lot: str
    quantity: int


@dataclass
class _Stock:
    stock_id: int
    sku_id: int
    location_id: int
    lot: str
    expiry: date | None
    received_at: datetime | None
    free: int
    place: tuple[Any, ...] = ()  # pick_sequence, code, zone_id, site_id, zone kind, aisle, x, y


@dataclass
class _Planned:
    reservation: Reservation
    lines: list[tuple[_Stock, int]] = field(default_factory=list)


class AllocationRun:
    def __init__(self) -> None:
        self.now = clock.now()
        self.today = clock.today()
        self._reservations: dict[int, Reservation | QuaiError] = {}
        self._allocated: dict[int, int] = {}
        self._existing: dict[int, list[Placement]] = {}
        self._stock: dict[int, list[_Stock]] = {}  # by SKU, in id order
        self._shelf_life: dict[int, int] = {}
        self._planned: list[_Planned] = []
        # The same plans by reservation, in the order made: a reservation's placements are read from its own
        # (walking every plan of the run for each reservation grew as the square of a wave's orders).
        self._planned_of: dict[int, list[_Planned]] = {}
        self._undo: list[_Planned] | None = None

    # --- reads ---------------------------------------------------------------------------------------------------

    def load(self, reservation_ids: Iterable[int]) -> None:
        """Lock and read the reservations not loaded yet, then their SKUs' eligible stock not loaded yet."""
        wanted = sorted({pk for pk in reservation_ids if pk not in self._reservations})
        if not wanted:
            return
        found = {
            row.pk: row
            for row in Reservation.objects.select_for_update()
            .select_related("sku")
            .filter(Among(F("pk"), wanted))
            .order_by("pk")
        }
        for pk in wanted:
            current = found.get(pk)
            if current is None:
                self._reservations[pk] = NotFound(_("Reservation not found."), code="reservation_not_found")
            elif current.status != ReservationStatus.OPEN:
                self._reservations[pk] = Conflict(
                    _("This reservation is already %(status)s.") % {"status": current.get_status_display()},
                    code="reservation_closed",
                    details={"reservation_id": current.pk, "status": current.status},
                )
            else:
                self._reservations[pk] = current
                self._allocated[pk] = 0
                self._existing[pk] = []
        open_ids = [pk for pk in wanted if pk in self._allocated]
        # Their allocations in one read: what they hold in all (the sum), and those holding units (by id).
        for row in (
            ReservationAllocation.objects.filter(Among(F("reservation_id"), open_ids))
            .order_by("pk")
            .values_list(
                "reservation_id",
                "location_id",
                "location__zone_id",
                "location__site_id",
                "location__zone__kind",
                "location__aisle",
                "location__x_m",
                "location__y_m",
                "lot",
                "quantity",
            )
        ):
            self._allocated[row[0]] += row[9]
            if row[9] > 0:
                self._existing[row[0]].append(
                    Placement(row[1], row[2], row[3], row[4], row[5], float(row[6]), float(row[7]), row[8], row[9])
                )
        self._stock_load({self._open(pk).sku_id for pk in open_ids})
        for pk in open_ids:
            current = self._open(pk)
            if current.sku.expiry_tracked and current.merchant_id not in self._shelf_life:
                self._shelf_life[current.merchant_id] = selectors.min_shelf_life_days(merchant_id=current.merchant_id)

    def _stock_load(self, sku_ids: set[int]) -> None:
        from quai.warehouse.selectors import zone_active_q

        new = sorted(sku_id for sku_id in sku_ids if sku_id not in self._stock)
        if not new:
            return
        eligible = (
            StockQuantity.objects.filter(
                Among(F("sku_id"), new), status=StockStatus.SELLABLE, counted=True, on_hand__gt=F("reserved")
            )
            .filter(location__status="active", location__zone__kind__in=ALLOCATABLE_ZONE_KINDS)
            .filter(zone_active_q(self.now, prefix="location__zone__"))
        )
        # The eligible rows locked (their own rows only: FOR UPDATE OF, in primary-key order, as ``_lock_rows``
        # locks them) and read with their places in one statement, as tuples (it was three: the ids, the lock,
        # the places).
        rows = (
            eligible.select_for_update(of=("self",))
            .order_by("pk")
            .values_list(
                "pk",
                "sku_id",
                "location_id",
                "lot",
                "expiry",
                "received_at",
                "on_hand",
                "reserved",
                "location__pick_sequence",
                "location__code",
                "location__zone_id",
                "location__site_id",
                "location__zone__kind",
                "location__aisle",
                "location__x_m",
                "location__y_m",
            )
        )
        for sku_id in new:
            self._stock[sku_id] = []
        for row in rows:
            self._stock[row[1]].append(
                _Stock(
                    stock_id=row[0],
                    sku_id=row[1],
                    location_id=row[2],
                    lot=row[3],
                    expiry=row[4],
                    received_at=row[5],
                    free=row[6] - row[7],
                    place=row[8:],
                )
            )

    def _open(self, pk: int) -> Reservation:
        current = self._reservations[pk]
        assert isinstance(current, Reservation)
        return current

    # --- the rule, in memory -------------------------------------------------------------------------------------

    @contextmanager
    def group(self) -> Iterator[None]:
        """All or nothing for what is allocated inside the block (one order's reservations), as a savepoint."""
        assert self._undo is None, "groups do not nest"
        self._undo = []
        try:
            yield
        except BaseException:
            for planned in reversed(self._undo):
                self._planned.remove(planned)
                self._planned_of[planned.reservation.pk].remove(planned)
                for row, quantity in planned.lines:
                    row.free += quantity
                self._allocated[planned.reservation.pk] -= sum(quantity for _row, quantity in planned.lines)
            raise
        finally:
            self._undo = None

    def allocate(self, reservation_id: int) -> list[Placement]:
        """What ``reservation_allocate`` does to the reservation (errors included), then its placements holding
        units (those made before first, as a read of its allocations by id returns them). ``load`` it first."""
        if reservation_id not in self._reservations:
            self.load([reservation_id])
        current = self._reservations[reservation_id]
        if isinstance(current, QuaiError):
            raise current
        need = current.quantity - self._allocated[reservation_id]
        if need <= 0:
            return self._placements(reservation_id)
        sku = current.sku
        stock = {row.stock_id: row for row in self._stock[sku.pk]}
        plan = domain.allocation_plan(
            quantity=need,
            candidates=[
                domain.Candidate(
                    stock_id=row.stock_id,
                    free=row.free,
                    expiry=row.expiry,
                    received_at=row.received_at,
                    pick_sequence=row.place[0],
                )
                for row in stock.values()
                if row.free > 0
            ],
            fefo=sku.expiry_tracked,
            today=self.today,
            min_shelf_life_days=self._shelf_life.get(current.merchant_id, 0) if sku.expiry_tracked else 0,
        )
        if not plan.complete:
            raise InsufficientStock(
                _("Insufficient stock to allocate: %(short)d unit(s) missing at pickable places.")
                % {"short": plan.shortfall},
                details={
                    "reservation_id": current.pk,
                    "requested": need,
                    "shortfall": plan.shortfall,
                    "short_dated": plan.skipped_short_dated,
                },
            )
        planned = _Planned(reservation=current)
        for stock_id, quantity in sorted(plan.lines):
            row = stock[stock_id]
            row.free -= quantity
            planned.lines.append((row, quantity))
        self._allocated[reservation_id] += need
        self._planned.append(planned)
        self._planned_of.setdefault(reservation_id, []).append(planned)
        if self._undo is not None:
            self._undo.append(planned)
        return self._placements(reservation_id)

    def _placements(self, reservation_id: int) -> list[Placement]:
        made = [
            Placement(
                location_id=row.location_id,
                zone_id=row.place[2],
                site_id=row.place[3],
                zone_kind=row.place[4],
                aisle=row.place[5],
                x_m=float(row.place[6]),
                y_m=float(row.place[7]),
                lot=row.lot,
                quantity=quantity,
            )
            for planned in self._planned_of.get(reservation_id, ())
            for row, quantity in planned.lines
        ]
        return [*self._existing[reservation_id], *made]

    # --- writes --------------------------------------------------------------------------------------------------

    def write(self, *, events: list[tuple[Any, int | None]] | None = None) -> int:
        """Apply every allocation kept, in the order made; returns how many allocation rows were written. With
        ``events`` (a list), their ``inventory.reservation_allocated`` events are appended to it, for the caller to
        record with its own in one insert (in that order), instead of recorded here."""
        if not self._planned:
            return 0
        totals: dict[int, int] = {}
        for planned in self._planned:
            for row, quantity in planned.lines:
                totals[row.stock_id] = totals.get(row.stock_id, 0) + quantity
        _reserved_add(totals)
        created = [
            ReservationAllocation(
                reservation=planned.reservation,
                stock_id=row.stock_id,
                location_id=row.location_id,
                lot=row.lot,
                expiry=row.expiry,
                quantity=quantity,
                created_at=self.now,
            )
            for planned in self._planned
            for row, quantity in planned.lines
        ]
        model_rows_insert(created)
        Reservation.objects.filter(Among(F("pk"), {planned.reservation.pk for planned in self._planned})).update(
            updated_at=self.now
        )
        made: list[tuple[Any, int | None]] = []
        for planned in self._planned:
            current = planned.reservation
            current.updated_at = self.now
            made.append(
                (
                    ReservationAllocated(
                        reservation_id=current.pk,
                        sku_id=current.sku_id,
                        allocations=[
                            {
                                "location_id": row.location_id,
                                "location_code": row.place[1],
                                "lot": row.lot,
                                "quantity": quantity,
                                "stock_id": row.stock_id,
                            }
                            for row, quantity in planned.lines
                        ],
                        sku_code=current.sku.code,
                        document_type=current.document_type,
                        document_id=current.document_id,
                    ),
                    current.merchant_id,
                )
            )
        if events is None:
            events_record_many(made)
        else:
            events.extend(made)
        self._planned = []
        self._planned_of = {}
        return len(created)


def _reserved_add(totals: dict[int, int]) -> None:
    """Add ``totals`` (units by quantity row) to the rows' ``reserved``, guarded as ``reservation_allocate``'s
    update is (never above on hand): a row that fails the guard cannot happen under the lock, and undoes all."""
    if _reserved_add_guarded(StockQuantity._meta.db_table, "id", totals) != len(totals):
        raise InsufficientStock(_("Insufficient stock: the place changed meanwhile."))
