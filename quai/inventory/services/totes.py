"""Picking into a tote: reserved units move from their shelf to the tote, still reserved (issue 15, item 10).

A tote is a location (in an active zone of the site, so its stock counts toward availability like the shelf it
comes from). ``reservation_pick_to`` writes one ``pick`` movement per quantity row it takes from, re-pins the
allocations it takes to the tote's row, and leaves the reservation open: the units stay on hand and reserved, so
availability does not move, ``stock_check`` finds them in the tote, and only the carrier's hand-over consumes the
reservation (``parcel_stock_ship``). A cancelled order's reservation is released as usual: its units then wait,
free, in the tote until someone puts them away.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, InsufficientStock, NotFound, ValidationFailed
from quai.inventory import domain
from quai.inventory.models import (
    MovementKind,
    Reservation,
    ReservationAllocation,
    ReservationStatus,
    StockMovement,
    StockQuantity,
)
from quai.inventory.services._common import _actor, _counts, _lock_rows, _stock_changed
from quai.inventory.services.movements import _place, _row_ensure
from quai.inventory.services.reservations import _release_lines, _taken


@transaction.atomic
def reservation_pick_to(
    *,
    reservation: int,
    from_location: Any,
    to_location: Any,
    quantity: int,
    lot: str | None = None,
    actor: Any = None,
    document_type: str = "",
    document_id: str = "",
) -> list[StockMovement]:
    """Move ``quantity`` units of a reservation allocated at ``from_location`` to ``to_location`` (a tote).

    Refused, with nothing written: a reservation that is not open (``reservation_closed``), fewer units allocated
    there than asked (``reservation_not_allocated``), a blocked place or a tote in a closed zone, and a tote whose
    zone does not count toward availability while the shelf does (``tote_inactive``: the SKU's counter would fall
    under what is reserved). ``lot`` restricts the allocations taken to that lot (the one the picker scanned).
    """
    domain.quantity_check(quantity)
    current = Reservation.objects.select_for_update().select_related("sku").filter(pk=reservation).first()
    if current is None:
        raise NotFound(
            _("Reservation not found."), code="reservation_not_found", details={"reservation_id": reservation}
        )
    if current.status != ReservationStatus.OPEN:
        raise Conflict(
            _("This reservation is already %(status)s.") % {"status": current.get_status_display()},
            code="reservation_closed",
            details={"reservation_id": current.pk, "status": current.status},
        )
    sku = current.sku
    now = clock.now()
    chosen = _allocations_at(current, from_location, quantity, lot=lot)
    source_place = _place(from_location, sku=sku, incoming=False, now=now)
    target_place = _place(to_location, sku=sku, incoming=True, now=now)
    movements: list[StockMovement] = []
    need = quantity
    for allocation in chosen:
        if need == 0:
            break
        take = min(need, allocation.quantity)
        need -= take
        source = allocation.stock
        target_id = _row_ensure(
            sku=sku, place=target_place, lot=source.lot, expiry=source.expiry, status=source.status, now=now
        )
        rows = _lock_rows([source.pk, target_id])
        if _counts(rows[source.pk]) != _counts(rows[target_id]):
            raise ValidationFailed(
                _("Tote %(code)s does not count toward availability like the shelf it takes from.")
                % {"code": target_place.location_code},
                code="tote_inactive",
                details={"location_id": target_place.location_id},
            )
        for row_id in sorted(rows):
            if row_id == source.pk:
                moved = StockQuantity.objects.filter(pk=row_id, on_hand__gte=take, reserved__gte=take).update(
                    on_hand=F("on_hand") - take, reserved=F("reserved") - take
                )
                if not moved:
                    raise InsufficientStock(
                        _("Insufficient stock: the units reserved at %(code)s are no longer there.")
                        % {"code": source_place.location_code},
                        details={"sku_id": sku.pk, "location_id": source.location_id, "requested": take},
                    )
            else:
                StockQuantity.objects.filter(pk=row_id).update(
                    on_hand=F("on_hand") + take, reserved=F("reserved") + take
                )
        # The allocation follows its units: the part taken is pinned to the tote's row (merged with one there).
        ReservationAllocation.objects.filter(pk=allocation.pk).update(quantity=F("quantity") - take)
        there = ReservationAllocation.objects.filter(reservation_id=current.pk, stock_id=target_id).first()
        if there is not None:
            ReservationAllocation.objects.filter(pk=there.pk).update(quantity=F("quantity") + take)
        else:
            ReservationAllocation.objects.create(
                reservation=current,
                stock_id=target_id,
                location_id=target_place.location_id,
                lot=source.lot,
                expiry=source.expiry,
                quantity=take,
                created_at=now,
            )
        movement = StockMovement.objects.create(
            merchant_id=current.merchant_id,
            kind=MovementKind.PICK,
            sku_id=sku.pk,
            lot=source.lot,
            expiry=source.expiry,
            from_location_id=source.location_id,
            from_status=source.status,
            to_location_id=target_place.location_id,
            to_status=source.status,
            quantity=take,
            actor=_actor(actor),
            reason=_("Picked into tote %(code)s") % {"code": target_place.location_code},
            document_type=document_type or current.document_type or "reservation",
            document_id=document_id or current.document_id or str(current.pk),
            occurred_at=now,
        )
        _stock_changed(
            movement,
            sku_code=sku.code,
            from_location_code=source_place.location_code,
            to_location_code=target_place.location_code,
        )
        movements.append(movement)
    return movements


@transaction.atomic
def reservation_release_at(*, reservation: int, location: Any, quantity: int, actor: Any = None) -> Reservation:
    """Give back ``quantity`` units of a reservation allocated at ``location`` (a place found short on the floor),
    leaving its other allocations (units already in a tote) untouched. ``reservation_shrink`` would give back the
    latest allocations first, which after a pick are the tote's."""
    domain.quantity_check(quantity)
    current = Reservation.objects.select_for_update().select_related("sku").filter(pk=reservation).first()
    if current is None or current.status != ReservationStatus.OPEN:
        raise Conflict(
            _("This reservation is not open."), code="reservation_closed", details={"reservation_id": reservation}
        )
    return _release_lines(current, quantity, _taken(_allocations_at(current, location, quantity), quantity))


def _allocations_at(
    current: Reservation, location: Any, quantity: int, *, lot: str | None = None
) -> list[ReservationAllocation]:
    """The reservation's allocations holding units at ``location`` (of ``lot`` when given), oldest first, with
    their quantity rows; refused (``reservation_not_allocated``) when they hold fewer than ``quantity``."""
    allocations = ReservationAllocation.objects.filter(
        reservation_id=current.pk, location_id=location.pk, quantity__gt=0
    ).select_related("stock")
    if lot is not None:
        allocations = allocations.filter(lot=lot)
    chosen = list(allocations.order_by("pk"))
    held = sum(a.quantity for a in chosen)
    if held < quantity:
        raise Conflict(
            _("Only %(held)d unit(s) of this reservation are allocated at %(code)s; %(asked)d asked.")
            % {"held": held, "asked": quantity, "code": location.code},
            code="reservation_not_allocated",
            details={"reservation_id": current.pk, "allocated": held, "requested": quantity},
        )
    return chosen
