"""Every write to stock: movements (the ledger), quantities, the SKU-level counter, reservations.

Concurrency rules (the same on SQLite and PostgreSQL):

- every quantity changes by a guarded single-statement update (``UPDATE … SET x = x ± n WHERE … AND guard``);
  zero rows updated means "not enough" and becomes ``InsufficientStock`` (code ``insufficient_stock``), and the
  check constraints of ``models.py`` back the guards up;
- rows are always taken in one global order, so two transactions never wait on each other in a circle:
  zone (shared key lock) → reservation → stock quantities (primary-key order) → stock level;
- a reservation is one guarded update of the merchant-SKU ``StockLevel`` row, issued *last* in its transaction
  so the hot row is held only for that statement and the commit;
- SQLite ignores ``SELECT … FOR UPDATE``; its transactions open ``IMMEDIATE`` (settings), so writers queue up.

Every service records its events in the outbox in the same transaction as the change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.db import insert_returning_id
from quai.core.errors import Conflict, Forbidden, InsufficientStock, NotFound, ValidationFailed
from quai.core.models import OutboxEvent
from quai.core.outbox import event_record, outbox_nudge
from quai.inventory import domain
from quai.inventory.events import (
    CountTaskChanged,
    ReservationAllocated,
    ReservationConsumed,
    ReservationMade,
    ReservationMoved,
    ReservationReleased,
    StockChanged,
    StockCountingChanged,
)
from quai.inventory.models import (
    CountLine,
    CountTask,
    CountTaskStatus,
    CountTaskTransition,
    MovementKind,
    MoveTask,
    MoveTaskStatus,
    Reservation,
    ReservationAllocation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockPolicy,
    StockQuantity,
    StockStatus,
)
from quai.tenants.access import user_has_staff_role
from quai.warehouse.domain import window_contains

# --- Incoming stock (filled by inbound) --------------------------------------------------------------------------

IncomingSource = Callable[[int, list[int]], dict[int, list[tuple[date | None, int]]]]
_incoming_sources: list[IncomingSource] = []


def register_incoming_source(fn: IncomingSource) -> None:
    """Let an app above inventory (inbound: open ASNs) say what is coming: ``fn(merchant_id, sku_ids)`` answers
    ``{sku_id: [(expected_date, quantity), …]}``. Registering the same function twice keeps one."""
    if fn not in _incoming_sources:
        _incoming_sources.append(fn)


def unregister_incoming_source(fn: IncomingSource) -> None:
    if fn in _incoming_sources:
        _incoming_sources.remove(fn)


def incoming_sources() -> list[IncomingSource]:
    return list(_incoming_sources)


# --- Helpers ----------------------------------------------------------------------------------------------------


def _tracking(sku: Any) -> domain.Tracking:
    return domain.Tracking(lot=sku.lot_tracked, expiry=sku.expiry_tracked, serial=sku.serial_tracked)


def _status_check(status: str, field_name: str = "status") -> str:
    if status not in StockStatus.values:
        raise ValidationFailed(
            _("Unknown stock status '%(status)s'.") % {"status": status},
            code="invalid_status",
            details={"field": field_name, "value": status, "allowed": list(StockStatus.values)},
        )
    return status


def _kind_check(kind: str) -> str:
    if kind not in MovementKind.values:
        raise ValidationFailed(
            _("Unknown movement kind '%(kind)s'.") % {"kind": kind},
            code="invalid_kind",
            details={"value": kind, "allowed": list(MovementKind.values)},
        )
    return kind


def _actor(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None else None


def zone_is_active(*, status: str, valid_from: datetime | None, valid_until: datetime | None, at: datetime) -> bool:
    """The rule of ``quai.warehouse.selectors.zone_active_q`` for one zone already in hand."""
    return status == "open" and window_contains(valid_from, valid_until, at)


@dataclass(frozen=True)
class _Place:
    location_id: int
    zone_id: int
    active: bool


def _place(location: Any, *, sku: Any, incoming: bool, now: datetime) -> _Place:
    """Check a location for a write and take a shared lock on its zone, so the zone cannot close meanwhile.

    ``incoming``: stock goes *into* the location (refused when blocked, in a closed zone, or in a zone kept for
    another merchant). Stock going *out* is refused from a blocked location ("gives nothing out").
    """
    from quai.warehouse.models import Location, Zone

    loc = Location.objects.filter(pk=location.pk).values("pk", "code", "status", "zone_id", "site_id").first()
    if loc is None:
        raise NotFound(_("Location not found."), code="unknown_location", details={"location_id": location.pk})
    if connection.vendor == "postgresql":
        # FOR KEY SHARE: never waits on other stock writes, but waits for (and blocks) zone_close's FOR UPDATE.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {Zone._meta.db_table} WHERE id = %s FOR KEY SHARE", [loc["zone_id"]])
    zone = Zone.objects.filter(pk=loc["zone_id"]).values("status", "valid_from", "valid_until", "merchant_id").get()
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
    return _Place(location_id=loc["pk"], zone_id=loc["zone_id"], active=active)


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


def _lock_rows(ids: Iterable[int]) -> dict[int, StockQuantity]:
    """Lock quantity rows in primary-key order (the deterministic order every multi-row write uses)."""
    wanted = sorted(set(ids))
    rows = StockQuantity.objects.select_for_update().filter(pk__in=wanted).order_by("pk")
    return {row.pk: row for row in rows}


def _level_add(*, sku: Any, on_hand: int = 0, reserved: int = 0) -> None:
    """Change the SKU's counter; decreases of free stock are guarded (never below what is reserved)."""
    if on_hand == 0 and reserved == 0:
        return
    rows = StockLevel.objects.filter(sku_id=sku.pk)
    free_delta = on_hand - reserved
    if free_delta < 0:
        rows = rows.filter(on_hand__gte=F("reserved") - free_delta)
    updated = rows.update(on_hand=F("on_hand") + on_hand, reserved=F("reserved") + reserved)
    if updated:
        return
    if free_delta < 0 or on_hand < 0 or reserved < 0:
        level: Any = StockLevel.objects.filter(sku_id=sku.pk).values("on_hand", "reserved").first() or {}
        raise InsufficientStock(
            _("Insufficient stock: that stock is promised to reservations (available %(available)d).")
            % {"available": level.get("on_hand", 0) - level.get("reserved", 0)},
            details={"sku_id": sku.pk, "requested": -free_delta, **level},
        )
    StockLevel.objects.bulk_create([StockLevel(merchant_id=sku.merchant_id, sku_id=sku.pk)], ignore_conflicts=True)
    StockLevel.objects.filter(sku_id=sku.pk).update(on_hand=F("on_hand") + on_hand, reserved=F("reserved") + reserved)


def _counts(row: StockQuantity) -> bool:
    return row.status == StockStatus.SELLABLE and row.counted


def _stock_changed(movement: StockMovement) -> None:
    level: Any = StockLevel.objects.filter(sku_id=movement.sku_id).values("on_hand", "reserved").first() or {}
    event_record(
        StockChanged(
            movement_id=movement.pk,
            kind=movement.kind,
            sku_id=movement.sku_id,
            quantity=movement.quantity,
            lot=movement.lot,
            from_location_id=movement.from_location_id,
            to_location_id=movement.to_location_id,
            from_status=movement.from_status,
            to_status=movement.to_status,
            sellable_on_hand=level.get("on_hand", 0),
            reserved=level.get("reserved", 0),
        ),
        merchant_id=movement.merchant_id,
    )


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
    _stock_changed(movement)
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

    loc = Location.objects.filter(pk=location.pk).values("zone_id").get()
    zone = Zone.objects.filter(pk=loc["zone_id"]).values("status", "valid_from", "valid_until").get()
    if incoming and zone["status"] != "open":
        raise ValidationFailed(_("The location is in a closed zone."), code="zone_closed")
    return _Place(location_id=location.pk, zone_id=loc["zone_id"], active=zone_is_active(at=now, **zone))


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


# --- Reservations: reserve → (allocate) → consume or release ----------------------------------------------------


def _reservation_locked(reservation: Reservation | int) -> Reservation:
    pk = reservation if isinstance(reservation, int) else reservation.pk
    try:
        current = Reservation.objects.select_for_update().select_related("sku").get(pk=pk)
    except Reservation.DoesNotExist:
        raise NotFound(_("Reservation not found."), code="unknown_reservation") from None
    if current.status != ReservationStatus.OPEN:
        raise Conflict(
            _("This reservation is already %(status)s.") % {"status": current.get_status_display()},
            code="reservation_closed",
            details={"reservation_id": current.pk, "status": current.status},
        )
    return current


# The one hot statement of a reservation, as STYLE.md writes it; the check constraint backs it up.
_RESERVE_SQL = (
    f"UPDATE {StockLevel._meta.db_table} SET reserved = reserved + %(quantity)s "
    "WHERE sku_id = %(sku_id)s AND on_hand - reserved >= %(quantity)s"
)

# On PostgreSQL the whole reservation is that guarded update and the two inserts that depend on it, in ONE
# statement: a reservation row and its outbox event exist only if the update took a row, and when the caller is
# not inside a transaction the statement commits on its own — one round trip, and the hot row is held only while
# the server runs it (never while Python runs between statements). The event row is exactly what
# ``event_record(ReservationMade(...))`` writes (a test compares them).
_RESERVE_PG_SQL = f"""
WITH level AS (
    {_RESERVE_SQL} RETURNING sku_id
), reservation AS (
    INSERT INTO {Reservation._meta.db_table} (merchant_id, sku_id, quantity, requested_quantity, consumed_quantity,
        released_quantity, status, document_type, document_id, created_at, updated_at)
    SELECT %(merchant_id)s, level.sku_id, %(quantity)s, %(quantity)s, 0, 0, 'open', %(document_type)s,
        %(document_id)s, %(now)s, %(now)s
    FROM level
    RETURNING id
), event AS (
    INSERT INTO {OutboxEvent._meta.db_table} (event_id, name, merchant_id, aggregate, aggregate_id, payload,
        occurred_at, relayed_at, attempts, last_error, next_attempt_at)
    SELECT %(event_id)s, %(event_name)s, %(merchant_id)s, %(aggregate)s, reservation.id::text,
        jsonb_build_object('reservation_id', reservation.id, 'sku_id', %(sku_id)s::bigint,
            'quantity', %(quantity)s::integer, 'document_type', %(document_type)s::text,
            'document_id', %(document_id)s::text),
        %(now)s, NULL, 0, '', NULL
    FROM reservation
    RETURNING id
)
SELECT reservation.id FROM reservation, event
"""


def reservation_create(
    *,
    merchant: Any,
    sku: Any,
    quantity: int,
    document_type: str = "",
    document_id: str = "",
    actor: Any = None,
) -> Reservation:
    """Reserve ``quantity`` units of a SKU for an order line (first stage: SKU level, no place yet).

    The hot path costs the same whatever the ledger holds: the guarded
    ``UPDATE stock_level SET reserved = reserved + n WHERE sku_id = … AND on_hand - reserved >= n``, the
    reservation row and its ``ReservationMade`` event, all or nothing. On PostgreSQL that is one statement (see
    ``_RESERVE_PG_SQL``); elsewhere (SQLite) three statements in one transaction, the update last so the hot row is
    held only for that statement and the commit. Zero rows updated: ``InsufficientStock``, nothing written.
    """
    domain.quantity_check(quantity)
    merchant_id = merchant if isinstance(merchant, int) else merchant.pk
    if sku.merchant_id != merchant_id:
        raise NotFound(_("SKU not found."), code="unknown_sku", details={"sku_id": sku.pk})
    now = clock.now()
    values = {
        "merchant_id": merchant_id,
        "sku_id": sku.pk,
        "quantity": quantity,
        "requested_quantity": quantity,
        "document_type": document_type,
        "document_id": str(document_id),
        "created_at": now,
        "updated_at": now,
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                _RESERVE_PG_SQL,
                {
                    **values,
                    "quantity": quantity,
                    "now": now,
                    "event_id": uuid.uuid4(),
                    "event_name": ReservationMade.name,
                    "aggregate": ReservationMade.aggregate,
                },
            )
            row = cursor.fetchone()
        if row is None:
            raise _not_enough_to_reserve(sku=sku, quantity=quantity)
        outbox_nudge()
        reservation = Reservation(id=row[0], **values)
        reservation._state.adding = False
        return reservation
    with transaction.atomic():
        reservation = Reservation(id=insert_returning_id(Reservation, values), **values)
        reservation._state.adding = False
        event_record(
            ReservationMade(
                reservation_id=reservation.pk,
                sku_id=sku.pk,
                quantity=quantity,
                document_type=document_type,
                document_id=str(document_id),
            ),
            merchant_id=merchant_id,
        )
        with connection.cursor() as cursor:
            cursor.execute(_RESERVE_SQL, {"quantity": quantity, "sku_id": sku.pk})
            updated = cursor.rowcount
        if not updated:
            raise _not_enough_to_reserve(sku=sku, quantity=quantity)
    return reservation


def _not_enough_to_reserve(*, sku: Any, quantity: int) -> InsufficientStock:
    return InsufficientStock(
        _("Insufficient stock: %(quantity)d unit(s) of %(sku)s cannot be reserved.")
        % {"quantity": quantity, "sku": sku.code},
        details={"sku_id": sku.pk, "requested": quantity},
    )


# Work is released against stock that is put away: receiving docks, pack and ship areas are never picked from.
ALLOCATABLE_ZONE_KINDS = ("storage", "picking")


def _min_shelf_life_days(merchant_id: int) -> int:
    value = (
        StockPolicy.objects.filter(merchant_id=merchant_id, sku=None)
        .values_list("min_shelf_life_days", flat=True)
        .first()
    )
    return int(value or 0)


@transaction.atomic
def reservation_allocate(*, reservation: Reservation | int, actor: Any = None) -> Reservation:
    """Second stage: pin the unallocated part of a reservation to places and lots, FEFO or FIFO.

    All or nothing: if the eligible stock (sellable, counted, in an active storage or picking zone, in an active
    location, with enough shelf life left) cannot cover the whole remainder, nothing is allocated and
    ``InsufficientStock`` says why. Stock still at the receiving dock counts toward availability (the SKU-level
    reservation may take it) but is allocated only once put away.
    """
    from quai.warehouse.selectors import zone_active_q

    current = _reservation_locked(reservation)
    allocated = current.allocations.aggregate(total=Sum("quantity"))["total"] or 0
    need = current.quantity - allocated
    if need <= 0:
        return current
    sku = current.sku
    now = clock.now()
    today = clock.today()
    eligible = (
        StockQuantity.objects.filter(
            sku_id=sku.pk, status=StockStatus.SELLABLE, counted=True, on_hand__gt=F("reserved")
        )
        .filter(location__status="active", location__zone__kind__in=ALLOCATABLE_ZONE_KINDS)
        .filter(zone_active_q(now, prefix="location__zone__"))
    )
    ids = list(eligible.values_list("pk", flat=True))
    rows = _lock_rows(ids)
    sequences = dict(StockQuantity.objects.filter(pk__in=list(rows)).values_list("pk", "location__pick_sequence"))
    candidates = [
        domain.Candidate(
            stock_id=row.pk,
            free=row.on_hand - row.reserved,
            expiry=row.expiry,
            received_at=row.received_at,
            pick_sequence=sequences.get(row.pk, 0),
        )
        for row in rows.values()
    ]
    plan = domain.allocation_plan(
        quantity=need,
        candidates=candidates,
        fefo=sku.expiry_tracked,
        today=today,
        min_shelf_life_days=_min_shelf_life_days(current.merchant_id) if sku.expiry_tracked else 0,
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
    created = []
    for stock_id, quantity in sorted(plan.lines):
        updated = StockQuantity.objects.filter(pk=stock_id, on_hand__gte=F("reserved") + quantity).update(
            reserved=F("reserved") + quantity
        )
        if not updated:  # cannot happen under the row lock; kept as the guard the rule asks for
            raise InsufficientStock(_("Insufficient stock: the place changed meanwhile."))
        row = rows[stock_id]
        created.append(
            ReservationAllocation(
                reservation=current,
                stock_id=stock_id,
                location_id=row.location_id,
                lot=row.lot,
                expiry=row.expiry,
                quantity=quantity,
                created_at=now,
            )
        )
    ReservationAllocation.objects.bulk_create(created)
    current.updated_at = now
    current.save(update_fields=["updated_at"])
    event_record(
        ReservationAllocated(
            reservation_id=current.pk,
            sku_id=sku.pk,
            allocations=[
                {"location_id": a.location_id, "lot": a.lot, "quantity": a.quantity, "stock_id": a.stock_id}
                for a in created
            ],
        ),
        merchant_id=current.merchant_id,
    )
    return current


def _open_allocations(reservation: Reservation) -> list[ReservationAllocation]:
    return list(reservation.allocations.filter(quantity__gt=0).order_by("pk"))


@transaction.atomic
def reservation_consume(
    *,
    reservation: Reservation | int,
    quantity: int | None = None,
    actor: Any = None,
    kind: str = MovementKind.PICK,
    reason: str = "",
) -> Reservation:
    """Pick: allocated units leave their places (a ``pick`` movement each) and the reservation shrinks by them.

    ``quantity`` defaults to everything allocated. Consuming more than is allocated is refused: allocate first.
    """
    _kind_check(kind)
    current = _reservation_locked(reservation)
    allocations = _open_allocations(current)
    allocated = sum(a.quantity for a in allocations)
    if quantity is None:
        quantity = allocated
        if quantity == 0:
            raise Conflict(
                _("Nothing of this reservation is allocated to a place yet: allocate it first."),
                code="reservation_not_allocated",
                details={"reservation_id": current.pk},
            )
    domain.quantity_check(quantity)
    if quantity > allocated:
        raise Conflict(
            _("Only %(allocated)d unit(s) are allocated to places; %(asked)d asked: allocate first.")
            % {"allocated": allocated, "asked": quantity},
            code="reservation_not_allocated",
            details={"reservation_id": current.pk, "allocated": allocated, "requested": quantity},
        )
    lines: list[tuple[ReservationAllocation, int]] = []
    need = quantity
    for allocation in allocations:
        if need == 0:
            break
        take = min(need, allocation.quantity)
        lines.append((allocation, take))
        need -= take
    rows = _lock_rows(a.stock_id for a, _q in lines)
    now = clock.now()
    counted_out = 0
    movements = []
    for allocation, take in sorted(lines, key=lambda line: line[0].stock_id):
        row = rows[allocation.stock_id]
        updated = StockQuantity.objects.filter(pk=row.pk, reserved__gte=take, on_hand__gte=take).update(
            on_hand=F("on_hand") - take, reserved=F("reserved") - take
        )
        if not updated:
            raise InsufficientStock(_("Insufficient stock: the allocated units are no longer there."))
        if _counts(row):
            counted_out += take
        allocation.quantity -= take
        allocation.consumed_quantity += take
        allocation.save(update_fields=["quantity", "consumed_quantity"])
        movements.append(
            StockMovement(
                merchant_id=current.merchant_id,
                kind=kind,
                sku_id=current.sku_id,
                lot=row.lot,
                expiry=row.expiry,
                from_location_id=row.location_id,
                from_status=row.status,
                quantity=take,
                actor=_actor(actor),
                reason=reason,
                document_type=current.document_type or "reservation",
                document_id=current.document_id or str(current.pk),
                occurred_at=now,
            )
        )
    # Units leave on-hand and reserved together, so the counter's free stock never shrinks: no guard needed.
    StockLevel.objects.filter(sku_id=current.sku_id).update(
        on_hand=F("on_hand") - counted_out, reserved=F("reserved") - quantity
    )
    for movement in movements:
        movement.save()
        _stock_changed(movement)
    current.quantity -= quantity
    current.consumed_quantity += quantity
    if current.quantity == 0:
        current.status = ReservationStatus.CONSUMED
    current.updated_at = now
    current.save(update_fields=["quantity", "consumed_quantity", "status", "updated_at"])
    event_record(
        ReservationConsumed(
            reservation_id=current.pk, sku_id=current.sku_id, quantity=quantity, remaining=current.quantity
        ),
        merchant_id=current.merchant_id,
    )
    return current


def _release(current: Reservation, quantity: int) -> Reservation:
    """Give back ``quantity`` units: the unallocated part first, then the latest allocations."""
    allocations = _open_allocations(current)
    allocated = sum(a.quantity for a in allocations)
    need = max(0, quantity - (current.quantity - allocated))
    lines: list[tuple[ReservationAllocation, int]] = []
    for allocation in reversed(allocations):
        if need == 0:
            break
        take = min(need, allocation.quantity)
        lines.append((allocation, take))
        need -= take
    _lock_rows(a.stock_id for a, _q in lines)
    for allocation, take in sorted(lines, key=lambda line: line[0].stock_id):
        StockQuantity.objects.filter(pk=allocation.stock_id, reserved__gte=take).update(reserved=F("reserved") - take)
        allocation.quantity -= take
        allocation.save(update_fields=["quantity"])
    StockLevel.objects.filter(sku_id=current.sku_id, reserved__gte=quantity).update(reserved=F("reserved") - quantity)
    now = clock.now()
    current.quantity -= quantity
    current.released_quantity += quantity
    if current.quantity == 0:
        current.status = ReservationStatus.CONSUMED if current.consumed_quantity else ReservationStatus.RELEASED
    current.updated_at = now
    current.save(update_fields=["quantity", "released_quantity", "status", "updated_at"])
    event_record(
        ReservationReleased(
            reservation_id=current.pk, sku_id=current.sku_id, quantity=quantity, remaining=current.quantity
        ),
        merchant_id=current.merchant_id,
    )
    return current


@transaction.atomic
def reservation_release(*, reservation: Reservation | int, actor: Any = None) -> Reservation:
    """Give back everything still reserved (order cancelled, line removed)."""
    current = _reservation_locked(reservation)
    return _release(current, current.quantity)


@transaction.atomic
def reservation_shrink(*, reservation: Reservation | int, quantity: int, actor: Any = None) -> Reservation:
    """Give back ``quantity`` units of a reservation and keep the rest (a line reduced, a partial shortage)."""
    domain.quantity_check(quantity)
    current = _reservation_locked(reservation)
    if quantity > current.quantity:
        raise ValidationFailed(
            _("The reservation holds %(held)d unit(s); it cannot shrink by %(asked)d.")
            % {"held": current.quantity, "asked": quantity},
            code="shrink_too_large",
            details={"reserved": current.quantity, "requested": quantity},
        )
    return _release(current, quantity)


@transaction.atomic
def reservation_move(
    *,
    reservation: Reservation | int,
    allocation: ReservationAllocation | int,
    to_location: Any,
    quantity: int | None = None,
    lot: str | None = None,
    actor: Any = None,
) -> Reservation:
    """Pin (part of) an allocation to another place or lot (the stock there must be free, sellable, counted)."""
    current = _reservation_locked(reservation)
    allocation_id = allocation if isinstance(allocation, int) else allocation.pk
    source = current.allocations.filter(pk=allocation_id).first()
    if source is None:
        raise NotFound(_("Allocation not found."), code="unknown_allocation")
    quantity = source.quantity if quantity is None else quantity
    domain.quantity_check(quantity)
    if quantity > source.quantity:
        raise ValidationFailed(
            _("This allocation holds %(held)d unit(s) only.") % {"held": source.quantity},
            code="move_too_large",
            details={"allocated": source.quantity, "requested": quantity},
        )
    wanted_lot = source.lot if lot is None else lot
    domain.tracking_check(
        _tracking(current.sku),
        lot=wanted_lot,
        expiry=None,
        serial="",
        quantity=quantity,
        today=clock.today(),
        incoming=False,
    )
    target_row = (
        StockQuantity.objects.filter(
            sku_id=current.sku_id,
            location_id=to_location.pk,
            lot=wanted_lot,
            status=StockStatus.SELLABLE,
            counted=True,
            on_hand__gte=F("reserved") + quantity,
        )
        .exclude(pk=source.stock_id)
        .order_by(F("expiry").asc(nulls_last=True), "pk")
        .first()
    )
    if target_row is None:
        raise InsufficientStock(
            _("Insufficient stock: %(quantity)d free sellable unit(s) are not at that place.") % {"quantity": quantity},
            details={"location_id": to_location.pk, "requested": quantity},
        )
    _lock_rows([source.stock_id, target_row.pk])
    for row_id in sorted([source.stock_id, target_row.pk]):
        if row_id == source.stock_id:
            StockQuantity.objects.filter(pk=row_id, reserved__gte=quantity).update(reserved=F("reserved") - quantity)
        else:
            updated = StockQuantity.objects.filter(pk=row_id, on_hand__gte=F("reserved") + quantity).update(
                reserved=F("reserved") + quantity
            )
            if not updated:
                raise InsufficientStock(_("Insufficient stock at the new place."), details={"requested": quantity})
    source.quantity -= quantity
    source.save(update_fields=["quantity"])
    ReservationAllocation.objects.create(
        reservation=current,
        stock_id=target_row.pk,
        location_id=target_row.location_id,
        lot=target_row.lot,
        expiry=target_row.expiry,
        quantity=quantity,
        created_at=clock.now(),
    )
    event_record(
        ReservationMoved(
            reservation_id=current.pk,
            sku_id=current.sku_id,
            quantity=quantity,
            from_location_id=source.location_id,
            to_location_id=target_row.location_id,
        ),
        merchant_id=current.merchant_id,
    )
    return current


# --- Which stock counts toward availability ---------------------------------------------------------------------


@dataclass(frozen=True)
class CountingSyncReport:
    added: int  # rows whose zone became active: their stock now counts
    removed: int  # rows whose zone is no longer active: taken out of availability
    held: int  # rows still counted because reservations rely on them (retried by the next sweep)


def stock_counting_sync(*, zone: Any = None, at: datetime | None = None) -> CountingSyncReport:
    """Bring ``StockQuantity.counted`` (and the SKU counters) in line with the zones' state at ``at``.

    Called by the periodic sweep (``quai.inventory.tasks.stock_counting_sweep``) and whenever a zone opens,
    closes or is re-shaped. One short transaction per row, so a long sweep never holds hot rows for long.
    See ``quai.inventory.models`` for why this is the one place where the flag changes.
    """
    from quai.warehouse.selectors import zone_active_q

    now = at or clock.now()
    active = zone_active_q(now, prefix="location__zone__")
    base = StockQuantity.objects.all()
    if zone is not None:
        base = base.filter(location__zone_id=zone.pk)
    to_add = list(base.filter(counted=False).filter(active).order_by("pk").values_list("pk", flat=True))
    to_remove = list(base.filter(counted=True).exclude(active).order_by("pk").values_list("pk", flat=True))
    added = removed = held = 0
    for row_id, counted in [(i, True) for i in to_add] + [(i, False) for i in to_remove]:
        with transaction.atomic():
            row = _lock_rows([row_id]).get(row_id)
            if row is None or row.counted == counted:
                continue
            if row.status == StockStatus.SELLABLE and row.on_hand:
                if counted:
                    _level_add(sku=row.sku, on_hand=row.on_hand)
                else:
                    ok = StockLevel.objects.filter(sku_id=row.sku_id, on_hand__gte=F("reserved") + row.on_hand).update(
                        on_hand=F("on_hand") - row.on_hand
                    )
                    if not ok:
                        held += 1
                        continue
                event_record(
                    StockCountingChanged(
                        sku_id=row.sku_id, location_id=row.location_id, counted=counted, quantity=row.on_hand
                    ),
                    merchant_id=row.merchant_id,
                )
            StockQuantity.objects.filter(pk=row_id).update(counted=counted)
            if counted:
                added += 1
            else:
                removed += 1
    return CountingSyncReport(added=added, removed=removed, held=held)


# --- Policy -----------------------------------------------------------------------------------------------------


@transaction.atomic
def stock_policy_set(
    *,
    merchant: Any,
    sku: Any = None,
    safety_buffer: int | None = None,
    min_shelf_life_days: int | None = None,
    count_tolerance_units: int | None = None,
    count_tolerance_percent: int | None = None,
) -> StockPolicy:
    """Set the safety buffer of a SKU (or the merchant's default), the merchant's minimum shelf life, and how far a
    cycle count may differ from the books before a supervisor must approve it (per SKU or merchant default)."""
    merchant_id = merchant if isinstance(merchant, int) else merchant.pk
    if sku is not None and sku.merchant_id != merchant_id:
        raise NotFound(_("SKU not found."), code="unknown_sku")
    for name, value in (
        ("safety_buffer", safety_buffer),
        ("min_shelf_life_days", min_shelf_life_days),
        ("count_tolerance_units", count_tolerance_units),
        ("count_tolerance_percent", count_tolerance_percent),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValidationFailed(
                _("%(field)s must be a whole number, zero or more.") % {"field": name},
                code="invalid_policy",
                details={"field": name, "value": value},
            )
    if sku is not None and min_shelf_life_days is not None:
        raise ValidationFailed(
            _("The minimum shelf life is set per merchant, not per SKU."), code="shelf_life_per_merchant"
        )
    policy = StockPolicy.objects.select_for_update().filter(merchant_id=merchant_id, sku=sku).first()
    if policy is None:
        policy = StockPolicy(merchant_id=merchant_id, sku=sku)
    if safety_buffer is not None:
        policy.safety_buffer = safety_buffer
    if min_shelf_life_days is not None:
        policy.min_shelf_life_days = min_shelf_life_days
    if count_tolerance_units is not None:
        policy.count_tolerance_units = count_tolerance_units
    if count_tolerance_percent is not None:
        policy.count_tolerance_percent = count_tolerance_percent
    policy.save()
    return policy


# --- Zone closing (foundation hook) -----------------------------------------------------------------------------


def zone_close_check(zone: Any) -> list[Any]:
    """Registered with the warehouse: a zone holding stock or allocated reservations must not close."""
    from quai.warehouse.domain import ZoneCloseBlocker

    rows = StockQuantity.objects.filter(location__zone_id=zone.pk, on_hand__gt=0)
    units = int(rows.aggregate(units=Sum("on_hand"))["units"] or 0)
    reserved = int(
        ReservationAllocation.objects.filter(stock__location__zone_id=zone.pk, quantity__gt=0).aggregate(
            total=Sum("quantity")
        )["total"]
        or 0
    )
    blockers = []
    if units:
        blockers.append(
            ZoneCloseBlocker(
                kind="stock",
                message=_("%(units)d unit(s) of stock in %(places)d place(s); create move tasks to empty the zone")
                % {"units": units, "places": rows.values("location_id").distinct().count()},
                count=units,
            )
        )
    if reserved:
        blockers.append(
            ZoneCloseBlocker(
                kind="reservations",
                message=_("%(units)d reserved unit(s) allocated here") % {"units": reserved},
                count=reserved,
            )
        )
    return blockers


def _destination_for(*, site_id: int, exclude_zone_id: int, sku: Any, now: datetime) -> Any:
    """A place for stock leaving a closing zone: where the SKU already is, else the first storage location."""
    from quai.warehouse.models import Location
    from quai.warehouse.selectors import zone_active_q

    usable = (
        Location.objects.filter(site_id=site_id, status="active")
        .exclude(zone_id=exclude_zone_id)
        .filter(zone_active_q(now, prefix="zone__"))
        .filter(Q(zone__merchant=None) | Q(zone__merchant_id=sku.merchant_id))
    )
    same_sku = usable.filter(
        pk__in=StockQuantity.objects.filter(sku_id=sku.pk, on_hand__gt=0).values("location_id")
    ).order_by("pick_sequence", "pk")
    return same_sku.first() or usable.filter(zone__kind="storage").order_by("pick_sequence", "pk").first()


@transaction.atomic
def zone_empty_tasks(*, zone: Any, actor: Any = None) -> list[MoveTask]:
    """Create one move task per stock row left in ``zone`` (reserved units included: the reservation follows the
    stock when the task is done). Rows that already have an open task are skipped, so calling it twice is safe."""
    now = clock.now()
    rows = list(
        StockQuantity.objects.filter(location__zone_id=zone.pk, on_hand__gt=0)
        .select_related("sku", "location")
        .order_by("pk")
    )
    open_for = set(
        MoveTask.objects.filter(stock__in=rows, status=MoveTaskStatus.OPEN).values_list("stock_id", flat=True)
    )
    tasks = []
    for row in rows:
        if row.pk in open_for:
            continue
        destination = _destination_for(site_id=row.location.site_id, exclude_zone_id=zone.pk, sku=row.sku, now=now)
        tasks.append(
            MoveTask(
                merchant_id=row.merchant_id,
                sku=row.sku,
                stock=row,
                from_location=row.location,
                to_location=destination,
                quantity=row.on_hand,
                reason=_("Empty zone %(code)s before closing it.") % {"code": zone.code},
                created_at=now,
            )
        )
    return MoveTask.objects.bulk_create(tasks)


@transaction.atomic
def move_task_complete(*, task: MoveTask | int, to_location: Any = None, actor: Any = None) -> MoveTask:
    """Do a move task: the stock moves and the reservations allocated to it follow to the new place."""
    pk = task if isinstance(task, int) else task.pk
    current = MoveTask.objects.select_for_update().select_related("sku").get(pk=pk)
    if current.status != MoveTaskStatus.OPEN:
        raise Conflict(_("This move task is already %(status)s.") % {"status": current.status}, code="task_closed")
    destination = to_location or current.to_location
    if destination is None:
        raise ValidationFailed(_("Say where the stock goes."), code="destination_required")
    row = StockQuantity.objects.get(pk=current.stock_id)
    quantity = min(current.quantity, row.on_hand)
    carried = list(ReservationAllocation.objects.filter(stock_id=row.pk, quantity__gt=0).order_by("pk"))
    reserved_here = sum(a.quantity for a in carried)
    # Free the allocations, move everything, pin them again at the destination (all in this transaction).
    _lock_rows([row.pk])
    if reserved_here:
        StockQuantity.objects.filter(pk=row.pk).update(reserved=F("reserved") - reserved_here)
    movement = stock_move(
        sku=current.sku,
        from_location=current.from_location,
        to_location=destination,
        quantity=max(quantity, reserved_here),
        lot=row.lot,
        expiry=row.expiry,
        status=row.status,
        actor=actor,
        reason=current.reason,
        document_type="move_task",
        document_id=str(current.pk),
    )
    if reserved_here:
        target = StockQuantity.objects.get(
            sku_id=row.sku_id, location_id=destination.pk, lot=row.lot, expiry=row.expiry, status=row.status
        )
        StockQuantity.objects.filter(pk=target.pk, on_hand__gte=F("reserved") + reserved_here).update(
            reserved=F("reserved") + reserved_here
        )
        ReservationAllocation.objects.filter(pk__in=[a.pk for a in carried]).update(
            stock_id=target.pk, location_id=destination.pk
        )
    current.status = MoveTaskStatus.DONE
    current.to_location = destination
    current.done_at = movement.occurred_at
    current.save(update_fields=["status", "to_location", "done_at"])
    return current


# --- Cycle counts (inventaire tournant) -------------------------------------------------------------------------
#
# A count task covers one location (every SKU there, or one SKU). The counter scans what is there (blind by
# default: the expected quantities are not shown); submitting snapshots the books, computes each line's variance
# and, when every line is within its tolerance (``domain.count_review``), applies the count at once through
# ``stock_count``; otherwise it waits for a supervisor, who approves (applied through ``stock_count``) or rejects
# (the location is counted again). The status changes only through ``count_task_transition``.

SUPERVISOR_GROUPS = ("admin", "supervisor")
COUNT_REASON = "cycle count"


def is_supervisor(user: Any) -> bool:
    """Supervisors and 3PL admins (and superusers) may approve or reject counts."""
    return user is not None and user_has_staff_role(user, SUPERVISOR_GROUPS)


def _supervisor_check(actor: Any) -> None:
    if not is_supervisor(actor):
        raise Forbidden(_("Only a supervisor can approve or reject a count."), code="supervisor_only")


def _count_task_locked(task: CountTask | int) -> CountTask:
    pk = task if isinstance(task, int) else task.pk
    current = CountTask.objects.select_for_update().filter(pk=pk).first()
    if current is None:
        raise NotFound(_("Count not found."), code="unknown_count_task", details={"count_task_id": pk})
    return current


@transaction.atomic
def count_task_transition(
    *, task: CountTask | int, to_status: str, actor: Any = None, note: str = "", details: dict[str, Any] | None = None
) -> CountTask:
    """The one writer of a count task's status: checks the transition table, stamps who and when, audits, tells."""
    current = _count_task_locked(task)
    from_status = current.status
    if not domain.count_transition_allowed(from_status, to_status):
        raise Conflict(
            _("A count that is %(status)s cannot become %(to)s.")
            % {"status": CountTaskStatus(from_status).label, "to": CountTaskStatus(to_status).label}
            if to_status in CountTaskStatus.values
            else _("Unknown count status '%(to)s'.") % {"to": to_status},
            code="invalid_transition",
            details={
                "count_task_id": current.pk,
                "from": from_status,
                "to": to_status,
                "allowed": sorted(domain.COUNT_TASK_TRANSITIONS.get(from_status, ())),
            },
        )
    now = clock.now()
    who = _actor(actor)
    current.status = to_status
    fields = ["status"]
    if to_status == CountTaskStatus.COUNTING:
        current.counted_by = who
        fields.append("counted_by")
    elif to_status == CountTaskStatus.SUBMITTED:
        current.submitted_at = now
        fields.append("submitted_at")
        if current.counted_by_id is None:
            current.counted_by = who
            fields.append("counted_by")
    elif to_status in (CountTaskStatus.APPROVED, CountTaskStatus.REJECTED):
        current.decided_by = who
        current.decided_at = now
        fields += ["decided_by", "decided_at"]
    elif to_status == CountTaskStatus.APPLIED:
        current.applied_at = now
        fields.append("applied_at")
    current.save(update_fields=fields)
    CountTaskTransition.objects.create(
        task=current,
        from_status=from_status,
        to_status=to_status,
        actor=who,
        note=note[:255],
        details=details or {},
        occurred_at=now,
    )
    event_record(
        CountTaskChanged(
            count_task_id=current.pk,
            location_id=current.location_id,
            sku_id=current.sku_id,
            from_status=from_status,
            to_status=to_status,
        ),
        merchant_id=current.merchant_id,
    )
    return current


@transaction.atomic
def count_task_create(
    *, location: Any = None, sku: Any = None, site: Any = None, blind: bool = True, actor: Any = None
) -> list[CountTask]:
    """Open count tasks: of one location (every SKU, or only ``sku``), or of ``sku`` in every location holding it
    (within ``site`` when given). All or nothing: a location already under an open count refuses the lot."""
    from quai.warehouse.models import Location

    if location is None and sku is None:
        raise ValidationFailed(_("Say which location or which SKU to count."), code="count_scope_required")
    if location is not None:
        wanted = [location.pk]
    else:
        held = StockQuantity.objects.filter(sku_id=sku.pk, on_hand__gt=0)
        if site is not None:
            held = held.filter(location__site_id=site.pk)
        wanted = sorted(set(held.values_list("location_id", flat=True)))
        if not wanted:
            raise ValidationFailed(
                _("SKU %(sku)s is in no location: there is nothing to count.") % {"sku": sku.code},
                code="nothing_to_count",
                details={"sku_id": sku.pk},
            )
    # Locked in id order: two people starting a count of the same place get one task, not two.
    places = list(Location.objects.select_for_update().filter(pk__in=wanted).order_by("pk"))
    if len(places) != len(wanted):
        raise NotFound(_("Location not found."), code="unknown_location", details={"location_ids": wanted})
    if site is not None and any(place.site_id != site.pk for place in places):
        raise ValidationFailed(_("That location is in another site."), code="location_site_mismatch")
    busy = CountTask.objects.filter(location_id__in=wanted, status__in=domain.COUNT_TASK_ACTIVE)
    if sku is not None:
        busy = busy.filter(Q(sku=None) | Q(sku_id=sku.pk))
    clash = busy.order_by("pk").values("pk", "location_id").first()
    if clash is not None:
        raise Conflict(
            _("This location already has a count in progress (#%(task)d).") % {"task": clash["pk"]},
            code="count_already_open",
            details={"count_task_id": clash["pk"], "location_id": clash["location_id"]},
        )
    now = clock.now()
    return [
        CountTask.objects.create(
            site_id=place.site_id,
            location=place,
            sku=sku,
            merchant_id=sku.merchant_id if sku is not None else None,
            blind=bool(blind),
            created_by=_actor(actor),
            created_at=now,
        )
        for place in places
    ]


@dataclass(frozen=True)
class CountedItem:
    """What a scan designates in a count: the SKU, its lot and expiry, the stock status and how many units."""

    sku: Any
    lot: str
    expiry: date | None
    status: str
    quantity: int


def _merchants_to_try(task: CountTask) -> list[int]:
    """The merchants whose barcodes a scan may be: those with stock or lines here first, then the others."""
    from quai.tenants.models import Merchant

    if task.merchant_id is not None:
        return [task.merchant_id]
    here = list(
        StockQuantity.objects.filter(location_id=task.location_id)
        .order_by("merchant_id")
        .values_list("merchant_id", flat=True)
        .distinct()
    )
    here += [m for m in task.lines.values_list("merchant_id", flat=True).distinct() if m not in here]
    rest = [m for m in Merchant.objects.order_by("pk").values_list("pk", flat=True) if m not in here]
    return here + rest


def _count_item(task: CountTask, code: str, quantity: int) -> CountedItem:
    """Resolve a scanned code to what is counted; lot and expiry come from the label or from what the place holds."""
    from quai.catalog.selectors import scan_resolve

    scanned = None
    for merchant_id in _merchants_to_try(task):
        try:
            scanned = scan_resolve(merchant=merchant_id, code=code)
        except NotFound:
            continue
        break
    if scanned is None:
        raise NotFound(_("Unknown code: %(code)s") % {"code": code}, code="unknown_code", details={"code": code})
    if scanned.sku is None:
        raise ValidationFailed(_("That is a pallet or parcel label: scan the items themselves."), code="not_an_item")
    sku = scanned.sku
    if task.sku_id is not None and sku.pk != task.sku_id:
        raise ValidationFailed(
            _("This count is for one SKU only; %(sku)s is not it.") % {"sku": sku.code},
            code="not_in_count",
            details={"sku_id": sku.pk, "count_sku_id": task.sku_id},
        )
    tracking = _tracking(sku)
    held = StockQuantity.objects.filter(location_id=task.location_id, sku_id=sku.pk)
    counted = task.lines.filter(sku_id=sku.pk)
    lot = scanned.lot or "" if tracking.lot else ""
    if tracking.lot and not lot:
        lots = set(held.filter(on_hand__gt=0).values_list("lot", flat=True))
        lots |= set(counted.values_list("lot", flat=True))
        if len(lots) != 1:
            raise ValidationFailed(
                _("Several lots (or none known) of %(sku)s here: scan the label that carries the lot.")
                % {"sku": sku.code},
                code="lot_required",
                details={"sku_id": sku.pk},
            )
        lot = lots.pop()
    expiry = scanned.expiry if tracking.expiry else None
    if tracking.expiry and expiry is None:
        expiries = set(held.filter(lot=lot, on_hand__gt=0).values_list("expiry", flat=True)) | set(
            counted.filter(lot=lot).values_list("expiry", flat=True)
        )
        if len(expiries) != 1:
            raise ValidationFailed(
                _("Several expiry dates (or none known) of %(sku)s here: scan the label that carries the date.")
                % {"sku": sku.code},
                code="expiry_required",
                details={"sku_id": sku.pk},
            )
        expiry = expiries.pop()
    statuses = set(held.filter(lot=lot, expiry=expiry).values_list("status", flat=True))
    status = statuses.pop() if len(statuses) == 1 else StockStatus.SELLABLE
    units = quantity * max(1, scanned.quantity or 1)
    return CountedItem(sku=sku, lot=lot, expiry=expiry, status=status, quantity=units)


def _countable(task: CountTask | int, actor: Any) -> CountTask:
    current = _count_task_locked(task)
    if current.status not in domain.COUNT_TASK_COUNTABLE:
        raise Conflict(
            _("This count is %(status)s: it can no longer be counted.")
            % {"status": CountTaskStatus(current.status).label},
            code="count_closed",
            details={"count_task_id": current.pk, "status": current.status},
        )
    if current.status != CountTaskStatus.COUNTING:
        current = count_task_transition(task=current, to_status=CountTaskStatus.COUNTING, actor=actor)
    return current


def _line_for(task: CountTask, *, sku: Any, lot: str, expiry: date | None, status: str) -> CountLine:
    line = task.lines.filter(sku_id=sku.pk, lot=lot, expiry=expiry, status=status).first()
    if line is None:
        line = CountLine.objects.create(
            task=task, merchant_id=sku.merchant_id, sku=sku, lot=lot, expiry=expiry, status=status
        )
    return line


@transaction.atomic
def count_scan(*, task: CountTask | int, code: str, quantity: int = 1, actor: Any = None) -> CountLine:
    """One scan of a count: ``quantity`` units (1, or the case size typed) of the scanned item are added."""
    domain.quantity_check(quantity)
    code = (code or "").strip()
    if not code:
        raise ValidationFailed(_("Scan a code."), code="code_required")
    current = _countable(task, actor)
    item = _count_item(current, code, quantity)
    line = _line_for(current, sku=item.sku, lot=item.lot, expiry=item.expiry, status=item.status)
    CountLine.objects.filter(pk=line.pk).update(
        counted_quantity=F("counted_quantity") + item.quantity, updated_at=clock.now()
    )
    line.refresh_from_db()
    return line


@transaction.atomic
def count_line_set(
    *,
    task: CountTask | int,
    counted_quantity: int,
    line_id: int | None = None,
    sku: Any = None,
    lot: str = "",
    expiry: date | None = None,
    status: str = StockStatus.SELLABLE,
    actor: Any = None,
) -> CountLine:
    """Say how many units of one item were counted (a correction of the scans, or a count typed in)."""
    if isinstance(counted_quantity, bool) or not isinstance(counted_quantity, int) or counted_quantity < 0:
        raise ValidationFailed(
            _("A count is a whole number of units, zero or more."),
            code="invalid_quantity",
            details={"field": "counted_quantity", "value": counted_quantity},
        )
    current = _countable(task, actor)
    if line_id is not None:
        line = current.lines.filter(pk=line_id).first()
        if line is None:
            raise NotFound(_("Count line not found."), code="unknown_count_line", details={"line_id": line_id})
    else:
        if sku is None:
            raise ValidationFailed(_("Say which SKU was counted."), code="sku_required")
        if current.sku_id is not None and sku.pk != current.sku_id:
            raise ValidationFailed(
                _("This count is for one SKU only; %(sku)s is not it.") % {"sku": sku.code},
                code="not_in_count",
                details={"sku_id": sku.pk, "count_sku_id": current.sku_id},
            )
        _status_check(status)
        tracking = _tracking(sku)
        domain.tracking_check(
            tracking, lot=lot, expiry=expiry, serial="", quantity=1, today=clock.today(), incoming=False
        )
        if tracking.lot and not lot:
            raise ValidationFailed(_("This SKU is tracked by lot: say which lot."), code="lot_required")
        if tracking.expiry and expiry is None:
            raise ValidationFailed(_("This SKU is tracked by expiry date: give the expiry."), code="expiry_required")
        line = _line_for(current, sku=sku, lot=lot, expiry=expiry, status=status)
    CountLine.objects.filter(pk=line.pk).update(counted_quantity=counted_quantity, updated_at=clock.now())
    line.refresh_from_db()
    return line


def count_tolerance(*, merchant_id: int, sku_id: int) -> domain.CountTolerance:
    """The SKU's count tolerance: its own StockPolicy, else the merchant's default, else the domain defaults."""
    policies: dict[int | None, Any] = {
        p["sku_id"]: p
        for p in StockPolicy.objects.filter(merchant_id=merchant_id)
        .filter(Q(sku_id=sku_id) | Q(sku=None))
        .values("sku_id", "count_tolerance_units", "count_tolerance_percent")
    }
    units: int | None = None
    percent: int | None = None
    for key in (sku_id, None):
        policy = policies.get(key)
        if policy is None:
            continue
        units = policy["count_tolerance_units"] if units is None else units
        percent = policy["count_tolerance_percent"] if percent is None else percent
    return domain.CountTolerance(
        units=domain.DEFAULT_COUNT_TOLERANCE_UNITS if units is None else units,
        percent=domain.DEFAULT_COUNT_TOLERANCE_PERCENT if percent is None else percent,
    )


def _books(task: CountTask) -> dict[tuple[int, str, date | None, str], tuple[int, int, int]]:
    """What the books hold in the task's scope: (sku, lot, expiry, status) → (merchant, on hand, reserved)."""
    rows = StockQuantity.objects.filter(location_id=task.location_id)
    if task.sku_id is not None:
        rows = rows.filter(sku_id=task.sku_id)
    books: dict[tuple[int, str, date | None, str], tuple[int, int, int]] = {}
    for row in rows.order_by("pk").values("sku_id", "lot", "expiry", "status", "merchant_id", "on_hand", "reserved"):
        key = (row["sku_id"], row["lot"], row["expiry"], row["status"])
        merchant_id, on_hand, reserved = books.get(key, (row["merchant_id"], 0, 0))
        books[key] = (merchant_id, on_hand + row["on_hand"], reserved + row["reserved"])
    return books


@transaction.atomic
def count_submit(*, task: CountTask | int, actor: Any = None) -> CountTask:
    """Finish counting: snapshot the books, compute the variances; within tolerance the count is applied at once,
    beyond it (or below what is reserved there) it waits for a supervisor."""
    from quai.catalog.models import Sku

    current = _count_task_locked(task)
    if current.status not in domain.COUNT_TASK_COUNTABLE:
        raise Conflict(
            _("This count is %(status)s: it can no longer be submitted.")
            % {"status": CountTaskStatus(current.status).label},
            code="count_closed",
            details={"count_task_id": current.pk, "status": current.status},
        )
    books = _books(current)
    lines = {(x.sku_id, x.lot, x.expiry, x.status): x for x in current.lines.all()}
    missing = [key for key, (_m, on_hand, _r) in books.items() if on_hand > 0 and key not in lines]
    skus = {sku.pk: sku for sku in Sku.objects.filter(pk__in={key[0] for key in missing})}
    for key in missing:  # on the books but not found: counted zero
        lines[key] = _line_for(current, sku=skus[key[0]], lot=key[1], expiry=key[2], status=key[3])
    now = clock.now()
    reviewed: list[domain.CountedLine] = []
    for key, line in lines.items():
        _merchant, expected, reserved = books.get(key, (line.merchant_id, 0, 0))
        tolerance = count_tolerance(merchant_id=line.merchant_id, sku_id=line.sku_id)
        line.expected_quantity = expected
        line.reserved_quantity = reserved
        line.variance = domain.count_variance(expected=expected, counted=line.counted_quantity)
        line.needs_approval = domain.count_needs_approval(
            expected=expected, counted=line.counted_quantity, tolerance=tolerance
        ) or (line.counted_quantity < reserved)
        line.updated_at = now
        reviewed.append(
            domain.CountedLine(expected=expected, counted=line.counted_quantity, reserved=reserved, tolerance=tolerance)
        )
    CountLine.objects.bulk_update(
        list(lines.values()),
        ["expected_quantity", "reserved_quantity", "variance", "needs_approval", "updated_at"],
    )
    reasons = domain.count_review(reviewed)
    current.review_reasons = ",".join(reasons)
    current.save(update_fields=["review_reasons"])
    current = count_task_transition(
        task=current,
        to_status=CountTaskStatus.SUBMITTED,
        actor=actor,
        details={"lines": len(lines), "review": reasons},
    )
    if reasons:
        return current
    try:
        with transaction.atomic():
            return _count_apply(current, actor=actor)
    except (ValidationFailed, Conflict) as exc:  # the books moved meanwhile, or the stock cannot take it
        current.review_reasons = ",".join([*reasons, f"apply_refused:{exc.code}"])[:200]
        current.save(update_fields=["review_reasons"])
        return current


def _count_apply(current: CountTask, *, actor: Any) -> CountTask:
    """Apply a submitted (or approved) count line by line through ``stock_count``; refused if the books moved."""
    from quai.catalog.models import Sku
    from quai.warehouse.models import Location

    location = Location.objects.get(pk=current.location_id)
    books = _books(current)
    lines = list(current.lines.order_by("pk"))
    skus = {sku.pk: sku for sku in Sku.objects.filter(pk__in={line.sku_id for line in lines})}
    stale = [
        line.pk
        for line in lines
        if books.get((line.sku_id, line.lot, line.expiry, line.status), (0, 0, 0))[1] != line.expected_quantity
    ]
    if stale:
        raise Conflict(
            _("The stock in this location changed since it was counted: count it again."),
            code="count_stale",
            details={"count_task_id": current.pk, "line_ids": stale},
        )
    for line in lines:
        try:
            stock_count(
                sku=skus[line.sku_id],
                location=location,
                counted_quantity=line.counted_quantity,
                lot=line.lot,
                expiry=line.expiry,
                status=line.status,
                actor=actor,
                reason=COUNT_REASON,
                document_type="count_task",
                document_id=str(current.pk),
            )
        except InsufficientStock as exc:
            raise Conflict(
                _(
                    "%(sku)s: %(counted)d unit(s) counted but more are promised to reservations here; move or "
                    "release those reservations first."
                )
                % {"sku": skus[line.sku_id].code, "counted": line.counted_quantity},
                code="count_below_reserved",
                details={"count_task_id": current.pk, "line_id": line.pk, **exc.details},
            ) from exc
    return count_task_transition(task=current, to_status=CountTaskStatus.APPLIED, actor=actor)


@transaction.atomic
def count_approve(*, task: CountTask | int, actor: Any, note: str = "") -> CountTask:
    """A supervisor accepts a count that waits for approval: it is applied through ``stock_count`` at once.

    Refused (nothing written) when the location's stock moved since the count (``count_stale``) or when fewer
    units were counted than are reserved there (``count_below_reserved``)."""
    _supervisor_check(actor)
    current = count_task_transition(task=task, to_status=CountTaskStatus.APPROVED, actor=actor, note=note)
    return _count_apply(current, actor=actor)


@transaction.atomic
def count_reject(*, task: CountTask | int, actor: Any, reason: str = "") -> CountTask:
    """A supervisor refuses a count: it goes back to be counted again from zero (what was counted is kept in the
    audit row)."""
    _supervisor_check(actor)
    current = _count_task_locked(task)
    counted = [
        {
            "sku_id": line.sku_id,
            "lot": line.lot,
            "expiry": line.expiry.isoformat() if line.expiry else None,
            "status": line.status,
            "counted": line.counted_quantity,
            "expected": line.expected_quantity,
        }
        for line in current.lines.order_by("pk")
    ]
    current = count_task_transition(
        task=current, to_status=CountTaskStatus.REJECTED, actor=actor, note=reason, details={"lines": counted}
    )
    current.lines.all().delete()
    current.review_reasons = ""
    current.save(update_fields=["review_reasons"])
    return current


@transaction.atomic
def count_task_cancel(*, task: CountTask | int, actor: Any = None, reason: str = "") -> CountTask:
    """Drop a count that has not been submitted (or was rejected); nothing is applied."""
    return count_task_transition(task=task, to_status=CountTaskStatus.CANCELLED, actor=actor, note=reason)
