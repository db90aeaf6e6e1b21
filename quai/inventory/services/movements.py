"""The ledger writes: stock received, moved, adjusted and counted at a place (docs/CONTRACTS.md).

Each movement locks its zone (shared key lock, so the zone cannot close meanwhile), then its quantity rows in
primary-key order, decrements the source with a guarded update, moves the SKU counter, writes the immutable
``StockMovement`` and its ``StockChanged`` event, all in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import InsufficientStock, NotFound, ValidationFailed
from quai.inventory import domain
from quai.inventory.models import MovementKind, StockLevel, StockMovement, StockQuantity, StockStatus
from quai.inventory.services._common import (
    _actor,
    _counts,
    _kind_check,
    _level_add,
    _lock_rows,
    _status_check,
    _stock_changed,
    _tracking,
)
from quai.warehouse.domain import window_contains


def zone_is_active(*, status: str, valid_from: datetime | None, valid_until: datetime | None, at: datetime) -> bool:
    """The rule of ``quai.warehouse.selectors.zone_active_q`` for one zone already in hand."""
    return status == "open" and window_contains(valid_from, valid_until, at)


@dataclass(frozen=True)
class _Place:
    location_id: int
    zone_id: int
    active: bool
    location_code: str  # read with the checks, so the movement's event names the place in merchants' terms


def _place(location: Any, *, sku: Any, incoming: bool, now: datetime) -> _Place:
    """Check a location for a write and take a shared lock on its zone, so the zone cannot close meanwhile.

    ``incoming``: stock goes *into* the location (refused when blocked, in a closed zone, or in a zone kept for
    another merchant). Stock going *out* is refused from a blocked location ("gives nothing out").
    """
    from quai.warehouse.models import Location, Zone

    loc = Location.objects.filter(pk=location.pk).values("pk", "code", "status", "zone_id", "site_id").first()
    if loc is None:
        raise NotFound(_("Location not found."), code="location_not_found", details={"location_id": location.pk})
    if connection.vendor == "postgresql":
        # FOR KEY SHARE: never waits on other stock writes, but waits for (and blocks) zone_close's FOR UPDATE.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {Zone._meta.db_table} WHERE id = %s FOR KEY SHARE", [loc["zone_id"]])
    zone = Zone.objects.filter(pk=loc["zone_id"]).values("status", "valid_from", "valid_until", "merchant_id").get()
    return _place_checked(loc, zone, sku=sku, incoming=incoming, now=now)


def _place_checked(
    loc: Mapping[str, Any], zone: Mapping[str, Any], *, sku: Any, incoming: bool, now: datetime
) -> _Place:
    """``_place``'s rule on a location and its zone already read (``values()`` rows): the one check of a place for
    a write, whether one location is read (``_place``) or many at once (``totes._places_of``)."""
    if loc["status"] == "blocked":
        raise ValidationFailed(
            _("Location %(code)s is blocked: it takes nothing in and gives nothing out.") % {"code": loc["code"]},
            code="location_blocked",
            details={"location_id": loc["pk"]},
        )
    if incoming:
        if zone["status"] != "open":
            raise ValidationFailed(
                _("Location %(code)s is in a closed zone.") % {"code": loc["code"]},
                code="zone_closed",
                details={"location_id": loc["pk"], "zone_id": loc["zone_id"]},
            )
        if zone["merchant_id"] is not None and zone["merchant_id"] != sku.merchant_id:
            raise ValidationFailed(
                _("Location %(code)s is in a zone kept for another merchant.") % {"code": loc["code"]},
                code="zone_of_another_merchant",
                details={"location_id": loc["pk"]},
            )
    active = zone_is_active(
        status=zone["status"], valid_from=zone["valid_from"], valid_until=zone["valid_until"], at=now
    )
    return _Place(location_id=loc["pk"], zone_id=loc["zone_id"], active=active, location_code=loc["code"])


def _key_filter(*, sku_id: int, location_id: int, lot: str, expiry: date | None, status: str) -> dict[str, Any]:
    return {"sku_id": sku_id, "location_id": location_id, "lot": lot, "status": status, "expiry": expiry}


def _row_ensure(*, sku: Any, place: _Place, lot: str, expiry: date | None, status: str, now: datetime) -> int:
    """The id of the quantity row for this key, created (empty, counted when its zone is active) if missing."""
    key = _key_filter(sku_id=sku.pk, location_id=place.location_id, lot=lot, expiry=expiry, status=status)
    found = StockQuantity.objects.filter(**key).values_list("pk", flat=True).first()
    if found is not None:
        return int(found)
    StockQuantity.objects.bulk_create(
        [StockQuantity(merchant_id=sku.merchant_id, counted=place.active, received_at=now, **key)],
        ignore_conflicts=True,
    )
    return int(StockQuantity.objects.filter(**key).values_list("pk", flat=True).get())


def _source_row(
    *, sku: Any, location_id: int, lot: str, expiry: date | None, status: str, quantity: int
) -> tuple[int, date | None]:
    """The quantity row stock leaves from (id, expiry); several expiries and none given is ambiguous."""
    rows = StockQuantity.objects.filter(sku_id=sku.pk, location_id=location_id, lot=lot, status=status)
    if expiry is not None:
        rows = rows.filter(expiry=expiry)
    candidates = list(
        rows.filter(on_hand__gt=0).order_by(F("expiry").asc(nulls_last=True), "pk").values_list("pk", "expiry")[:2]
    )
    if len(candidates) > 1 and expiry is None:
        raise ValidationFailed(
            _("This place holds several expiry dates of that SKU and lot: say which one."),
            code="expiry_ambiguous",
            details={"expiries": [c[1].isoformat() if c[1] else None for c in candidates]},
        )
    if not candidates:
        raise InsufficientStock(
            _("Insufficient stock: there is none of this SKU (lot '%(lot)s', %(status)s) at that place.")
            % {"lot": lot, "status": status},
            details={"sku_id": sku.pk, "location_id": location_id, "requested": quantity, "available": 0},
        )
    return int(candidates[0][0]), candidates[0][1]


def _write(
    *,
    sku: Any,
    kind: str,
    quantity: int,
    lot: str,
    expiry: date | None,
    serial: str,
    source: tuple[_Place, str] | None,
    target: tuple[_Place, str] | None,
    source_expiry_known: bool,
    actor: Any,
    reason: str,
    document_type: str,
    document_id: str,
    now: datetime,
) -> StockMovement:
    """Apply one movement: rows locked in id order, guarded decrement at the source, counter, ledger, event."""
    source_id = None
    if source is not None:
        source_id, expiry = _source_row(
            sku=sku,
            location_id=source[0].location_id,
            lot=lot,
            expiry=expiry if source_expiry_known else None,
            status=source[1],
            quantity=quantity,
        )
    target_id = None
    if target is not None:
        target_id = _row_ensure(sku=sku, place=target[0], lot=lot, expiry=expiry, status=target[1], now=now)
    rows = _lock_rows([i for i in (source_id, target_id) if i is not None])
    level_delta = 0
    for row_id in sorted(rows):
        row = rows[row_id]
        if row_id == source_id:
            updated = StockQuantity.objects.filter(pk=row_id, on_hand__gte=F("reserved") + quantity).update(
                on_hand=F("on_hand") - quantity
            )
            if not updated:
                raise InsufficientStock(
                    _("Insufficient stock: only %(free)d unreserved unit(s) at that place, %(asked)d asked.")
                    % {"free": row.on_hand - row.reserved, "asked": quantity},
                    details={
                        "sku_id": sku.pk,
                        "location_id": row.location_id,
                        "requested": quantity,
                        "available": row.on_hand - row.reserved,
                    },
                )
            if _counts(row):
                level_delta -= quantity
        if row_id == target_id:
            assert target is not None
            if row.on_hand == 0 and row.reserved == 0 and row.counted != target[0].active:
                # An empty row takes its zone's current state, so a reopened zone counts from the first unit.
                row.counted = target[0].active
                StockQuantity.objects.filter(pk=row_id).update(counted=row.counted)
            StockQuantity.objects.filter(pk=row_id).update(on_hand=F("on_hand") + quantity)
            if _counts(row):
                level_delta += quantity
    if level_delta == 0 and source is None:
        # Stock that does not count yet (quarantine, a zone before its window) still gives the SKU its counter row.
        StockLevel.objects.bulk_create([StockLevel(merchant_id=sku.merchant_id, sku_id=sku.pk)], ignore_conflicts=True)
    _level_add(sku=sku, on_hand=level_delta)
    movement = StockMovement.objects.create(
        merchant_id=sku.merchant_id,
        kind=kind,
        sku_id=sku.pk,
        lot=lot,
        expiry=expiry,
        serial=serial,
        from_location_id=source[0].location_id if source else None,
        from_status=source[1] if source else "",
        to_location_id=target[0].location_id if target else None,
        to_status=target[1] if target else "",
        quantity=quantity,
        actor=_actor(actor),
        reason=reason,
        document_type=document_type,
        document_id=str(document_id),
        occurred_at=now,
    )
    _stock_changed(
        movement,
        sku_code=sku.code,
        from_location_code=source[0].location_code if source else "",
        to_location_code=target[0].location_code if target else "",
    )
    return movement


# --- Movements (docs/CONTRACTS.md) -------------------------------------------------------------------------------


@transaction.atomic
def stock_receive(
    *,
    sku: Any,
    location: Any,
    quantity: int,
    lot: str = "",
    expiry: date | None = None,
    serial: str = "",
    status: str = StockStatus.SELLABLE,
    actor: Any = None,
    reason: str = "",
    document_type: str = "",
    document_id: str = "",
    kind: str = MovementKind.RECEIPT,
) -> StockMovement:
    """Stock enters the warehouse at ``location`` (receipt, return, …)."""
    domain.quantity_check(quantity)
    _status_check(status)
    _kind_check(kind)
    now = clock.now()
    domain.tracking_check(
        _tracking(sku),
        lot=lot,
        expiry=expiry,
        serial=serial,
        quantity=quantity,
        today=clock.today(),
        incoming=True,
    )
    place = _place(location, sku=sku, incoming=True, now=now)
    return _write(
        sku=sku,
        kind=kind,
        quantity=quantity,
        lot=lot,
        expiry=expiry,
        serial=serial,
        source=None,
        target=(place, status),
        source_expiry_known=True,
        actor=actor,
        reason=reason,
        document_type=document_type,
        document_id=document_id,
        now=now,
    )


@transaction.atomic
def stock_move(
    *,
    sku: Any,
    from_location: Any,
    to_location: Any,
    quantity: int,
    lot: str = "",
    status: str = StockStatus.SELLABLE,
    to_status: str | None = None,
    kind: str = MovementKind.MOVE,
    actor: Any = None,
    reason: str = "",
    document_type: str = "",
    document_id: str = "",
    expiry: date | None = None,
    serial: str = "",
) -> StockMovement:
    """Move unreserved stock between places and/or statuses (putaway, move, quarantine, …).

    Reserved units stay where they are: move the reservation first (``reservation_move``). Taking sellable stock
    out of availability (to quarantine, or into a zone that does not count) is refused when reservations rely on
    it.
    """
    domain.quantity_check(quantity)
    _status_check(status)
    target_status = _status_check(to_status or status, "to_status")
    _kind_check(kind)
    if from_location.pk == to_location.pk and status == target_status:
        raise ValidationFailed(
            _("Moving stock to the place and status it is already in changes nothing."), code="same_place"
        )
    domain.tracking_check(
        _tracking(sku),
        lot=lot,
        expiry=expiry,
        serial=serial,
        quantity=quantity,
        today=clock.today(),
        incoming=False,
    )
    now = clock.now()
    ordered = sorted([(from_location.pk, "from", from_location), (to_location.pk, "to", to_location)])
    places: dict[str, _Place] = {}
    for _pk, side, location in ordered:  # zone locks in location order too
        places[side] = _place(location, sku=sku, incoming=side == "to", now=now)
    return _write(
        sku=sku,
        kind=kind,
        quantity=quantity,
        lot=lot,
        expiry=expiry,
        serial=serial,
        source=(places["from"], status),
        target=(places["to"], target_status),
        source_expiry_known=expiry is not None,
        actor=actor,
        reason=reason,
        document_type=document_type,
        document_id=document_id,
        now=now,
    )


@transaction.atomic
def stock_adjust(
    *,
    sku: Any,
    location: Any,
    quantity_delta: int,
    lot: str = "",
    status: str = StockStatus.SELLABLE,
    kind: str = MovementKind.ADJUSTMENT,
    actor: Any = None,
    reason: str,
    document_type: str = "",
    document_id: str = "",
    expiry: date | None = None,
) -> StockMovement:
    """Correct what a place holds (adjustment, count, scrap): positive adds, negative removes unreserved units.

    A blocked location can be adjusted (that is how a count in progress ends).
    """
    if isinstance(quantity_delta, bool) or not isinstance(quantity_delta, int) or quantity_delta == 0:
        raise ValidationFailed(
            _("An adjustment changes the quantity by a whole number of units other than zero."),
            code="invalid_quantity",
            details={"field": "quantity_delta", "value": quantity_delta},
        )
    if not reason.strip():
        raise ValidationFailed(_("Say why the stock is adjusted."), code="reason_required")
    _status_check(status)
    _kind_check(kind)
    now = clock.now()
    quantity = abs(quantity_delta)
    tracking = _tracking(sku)
    if quantity_delta > 0 and tracking.expiry and expiry is None:
        known = (
            StockQuantity.objects.filter(sku_id=sku.pk, location_id=location.pk, lot=lot, status=status)
            .exclude(expiry=None)
            .order_by("expiry")
            .values_list("expiry", flat=True)
            .first()
        )
        expiry = known
    domain.tracking_check(
        tracking,
        lot=lot,
        expiry=expiry,
        serial="",
        quantity=quantity,
        today=clock.today(),
        incoming=quantity_delta > 0,
    )
    place = _adjust_place(location, sku=sku, incoming=quantity_delta > 0, now=now)
    return _write(
        sku=sku,
        kind=kind,
        quantity=quantity,
        lot=lot,
        expiry=expiry,
        serial="",
        source=(place, status) if quantity_delta < 0 else None,
        target=(place, status) if quantity_delta > 0 else None,
        source_expiry_known=expiry is not None,
        actor=actor,
        reason=reason,
        document_type=document_type,
        document_id=document_id,
        now=now,
    )


def _adjust_place(location: Any, *, sku: Any, incoming: bool, now: datetime) -> _Place:
    """Like ``_place`` but a blocked location may be adjusted (counts happen on blocked locations)."""
    try:
        return _place(location, sku=sku, incoming=incoming, now=now)
    except ValidationFailed as exc:
        if exc.code != "location_blocked":
            raise
    from quai.warehouse.models import Location, Zone

    loc = Location.objects.filter(pk=location.pk).values("zone_id", "code").get()
    zone = Zone.objects.filter(pk=loc["zone_id"]).values("status", "valid_from", "valid_until").get()
    if incoming and zone["status"] != "open":
        raise ValidationFailed(_("The location is in a closed zone."), code="zone_closed")
    return _Place(
        location_id=location.pk,
        zone_id=loc["zone_id"],
        active=zone_is_active(at=now, **zone),
        location_code=loc["code"],
    )


@transaction.atomic
def stock_count(
    *,
    sku: Any,
    location: Any,
    counted_quantity: int,
    lot: str = "",
    expiry: date | None = None,
    status: str = StockStatus.SELLABLE,
    actor: Any = None,
    reason: str = "",
    document_type: str = "",
    document_id: str = "",
) -> StockMovement | None:
    """Record a count: the difference with what the place holds becomes a ``count`` movement (None: it matched)."""
    if isinstance(counted_quantity, bool) or not isinstance(counted_quantity, int) or counted_quantity < 0:
        raise ValidationFailed(
            _("A count is a whole number of units, zero or more."),
            code="invalid_quantity",
            details={"field": "counted_quantity", "value": counted_quantity},
        )
    rows = StockQuantity.objects.filter(sku_id=sku.pk, location_id=location.pk, lot=lot, status=status)
    if expiry is not None:
        rows = rows.filter(expiry=expiry)
    current = rows.aggregate(total=Sum("on_hand"))["total"] or 0
    delta = counted_quantity - current
    if delta == 0:
        return None
    return stock_adjust(
        sku=sku,
        location=location,
        quantity_delta=delta,
        lot=lot,
        status=status,
        kind=MovementKind.COUNT,
        actor=actor,
        reason=reason
        or _("Counted %(counted)d, expected %(expected)d.") % {"counted": counted_quantity, "expected": current},
        document_type=document_type,
        document_id=document_id,
        expiry=expiry,
    )
