"""Stock on its way out: from the shelf (or a tote) to the pack station's parcel, then to the carrier.

Goods are always somewhere (issue 15, item 10). Packing a parcel does not take stock out of the ledger: the
units an order's reservations hold move, still reserved, to the pack station's location (a ``pack`` movement
whose document is the parcel), and their allocations follow them. So an order stopped on the pack line, or a
parcel waiting for its label, is found by ``stock_drift`` and the location's contents like any other stock, and
availability does not change (the units stay on hand and reserved together). Only when the carrier takes the
parcel (``parcel_stock_ship``) do the units leave the ledger, by consuming the reservations with ``ship``
movements.

The pack station must count toward availability (an open, active packing zone): moving reserved units into a
place that does not count would lower the SKU's on-hand below what is reserved, so it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, InsufficientStock, ValidationFailed
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
from quai.inventory.services.reservations import reservation_allocate, reservation_consume

PARCEL_DOCUMENT = "parcel"


@transaction.atomic
def parcel_stock_pack(
    *, reservation_ids: Iterable[int], location: Any, parcel_id: int | str, actor: Any = None
) -> list[StockMovement]:
    """Move every unit the reservations hold to the pack station ``location``, still reserved (``pack`` movements).

    A reservation not yet pinned to places is allocated first. Units already there stay. Reservations are taken in
    id order and the quantity rows in id order within each (the package's lock order).
    """
    now = clock.now()
    movements: list[StockMovement] = []
    for reservation_id in sorted(set(reservation_ids)):
        reservation = Reservation.objects.select_for_update().select_related("sku").get(pk=reservation_id)
        if reservation.status != ReservationStatus.OPEN or reservation.quantity == 0:
            continue
        reservation_allocate(reservation=reservation.pk, actor=actor)
        sku = reservation.sku
        place = _place(location, sku=sku, incoming=True, now=now)
        if not place.active:
            raise ValidationFailed(
                _("Pack station %(code)s is in a zone that is not active: reserved units cannot wait there.")
                % {"code": place.location_code},
                code="pack_station_inactive",
                details={"location_id": place.location_id},
            )
        allocations = list(
            ReservationAllocation.objects.filter(reservation_id=reservation.pk, quantity__gt=0)
            .exclude(location_id=place.location_id)
            .select_related("stock", "location")
            .order_by("pk")
        )
        for allocation in allocations:
            source = allocation.stock
            target_id = _row_ensure(
                sku=sku, place=place, lot=source.lot, expiry=source.expiry, status=source.status, now=now
            )
            rows = _lock_rows([source.pk, target_id])
            take = allocation.quantity
            moved = StockQuantity.objects.filter(pk=source.pk, on_hand__gte=take, reserved__gte=take).update(
                on_hand=F("on_hand") - take, reserved=F("reserved") - take
            )
            if not moved:
                raise InsufficientStock(
                    _("Insufficient stock: the units reserved at %(code)s are no longer there.")
                    % {"code": allocation.location.code},
                    details={"sku_id": sku.pk, "location_id": allocation.location_id, "requested": take},
                )
            if _counts(rows[source.pk]) != _counts(rows[target_id]):
                raise ValidationFailed(
                    _("Pack station %(code)s does not count toward availability like the shelf it takes from.")
                    % {"code": place.location_code},
                    code="pack_station_inactive",
                    details={"location_id": place.location_id},
                )
            StockQuantity.objects.filter(pk=target_id).update(
                on_hand=F("on_hand") + take, reserved=F("reserved") + take
            )
            ReservationAllocation.objects.filter(pk=allocation.pk).update(
                stock_id=target_id, location_id=place.location_id
            )
            movement = StockMovement.objects.create(
                merchant_id=reservation.merchant_id,
                kind=MovementKind.PACK,
                sku_id=sku.pk,
                lot=source.lot,
                expiry=source.expiry,
                from_location_id=source.location_id,
                from_status=source.status,
                to_location_id=place.location_id,
                to_status=source.status,
                quantity=take,
                actor=_actor(actor),
                reason=_("Packed"),
                document_type=PARCEL_DOCUMENT,
                document_id=str(parcel_id),
                occurred_at=now,
            )
            _stock_changed(
                movement,
                sku_code=sku.code,
                from_location_code=allocation.location.code,
                to_location_code=place.location_code,
            )
            movements.append(movement)
    return movements


@transaction.atomic
def parcel_stock_ship(
    *, reservation_ids: Iterable[int], location: Any, parcel_id: int | str, actor: Any = None
) -> list[Reservation]:
    """The carrier took the parcel: the units waiting at ``location`` leave the ledger (``ship`` movements).

    Every open allocation of each reservation must be at the pack station (packed by ``parcel_stock_pack``);
    otherwise ``parcel_stock_elsewhere`` and nothing moves.
    """
    consumed: list[Reservation] = []
    ids = sorted(set(reservation_ids))
    for reservation_id in ids:
        Reservation.objects.select_for_update().filter(pk=reservation_id).first()
        elsewhere = (
            ReservationAllocation.objects.filter(reservation_id=reservation_id, quantity__gt=0)
            .exclude(location_id=location.pk)
            .exists()
        )
        if elsewhere:
            raise Conflict(
                _("Some units of parcel %(parcel)s are not at its pack station: pack them first.")
                % {"parcel": parcel_id},
                code="parcel_stock_elsewhere",
                details={"reservation_id": reservation_id, "location_id": location.pk},
            )
    for reservation_id in ids:
        status = Reservation.objects.filter(pk=reservation_id).values_list("status", flat=True).first()
        if status != ReservationStatus.OPEN:
            continue
        consumed.append(
            reservation_consume(
                reservation=reservation_id,
                actor=actor,
                kind=MovementKind.SHIP,
                reason=_("Handed to the carrier (parcel %(parcel)s)") % {"parcel": parcel_id},
            )
        )
    return consumed
