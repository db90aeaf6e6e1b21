"""Picking into a tote: reserved units move from their shelf to the tote, still reserved (issue 15, item 10).

A tote is a location (in an active zone of the site, so its stock counts toward availability like the shelf it
comes from). ``reservation_pick_to`` writes one ``pick`` movement per quantity row it takes from, re-pins the
allocations it takes to the tote's row, and leaves the reservation open: the units stay on hand and reserved, so
availability does not move, ``stock_check`` finds them in the tote, and only the carrier's hand-over consumes the
reservation (``parcel_stock_ship``). A cancelled order's reservation is released as usual: its units then wait,
free, in the tote until someone puts them away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, InsufficientStock, NotFound, ValidationFailed
from quai.core.outbox import events_record_many
from quai.core.rows import Among, ids_in, ids_param, rows_insert
from quai.inventory import domain
from quai.inventory.models import (
    MovementKind,
    Reservation,
    ReservationAllocation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockQuantity,
)
from quai.inventory.services._common import (
    QUANTITY_COLUMNS,
    _actor,
    _columns_add,
    _counts,
    _lock_rows,
    _per_index,
    _stock_changed,
    _stock_changed_event,
)
from quai.inventory.services.movements import _Place, _place, _place_checked, _row_ensure, zone_is_active
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


@dataclass(frozen=True)
class PickToLine:
    """One move of ``reservation_pick_to_many``: ``quantity`` units of ``reservation`` allocated at the location
    ``from_location_id`` (of ``lot`` when given) into the tote location ``to_location_id``."""

    reservation: int
    from_location_id: int
    to_location_id: int
    quantity: int
    lot: str | None = None


class _Sku(NamedTuple):
    """What a pick reads of a reservation's SKU."""

    pk: int
    code: str
    merchant_id: int


@dataclass(frozen=True, slots=True)
class _Held:
    """What a pick reads of a reservation, locked (``reservation_pick_to_many`` builds no model instance)."""

    pk: int
    status: str
    merchant_id: int
    sku_id: int
    sku: _Sku
    document_type: str
    document_id: str


class _Source(NamedTuple):
    """The key of an allocation's quantity row (a row's key never changes: read with the allocation)."""

    lot: str
    expiry: date | None
    status: str
    location_id: int


@dataclass(frozen=True, slots=True)
class _Pinned:
    """An allocation as a pick reads it, with its quantity row's key (and, read by ``parcels._allocations_of``, its
    place's code: the truck's events name the place its units leave)."""

    pk: int
    reservation_id: int
    location_id: int
    stock_id: int
    quantity: int
    lot: str
    stock: _Source
    location_code: str = ""


class MovementRow(NamedTuple):
    """A movement a many-form wrote (``reservation_pick_to_many``, ``parcels_stock_pack``): its row's id and the
    fields its ``StockChanged`` reads — the rows are written as values, no model instance built."""

    pk: int
    merchant_id: int
    kind: str
    sku_id: int
    lot: str
    expiry: date | None
    from_location_id: int
    from_status: str
    to_location_id: int
    to_status: str
    quantity: int


def _movements_insert(fields: Sequence[dict[str, Any]]) -> list[MovementRow]:
    """Insert the movements (each its fields; the other columns their defaults, as ``bulk_create`` writes them) in
    one statement returning their ids, in order."""
    ids = rows_insert(StockMovement, fields, returning=("id",))
    if len(ids) != len(fields):
        raise RuntimeError(f"{len(ids)} ids returned for {len(fields)} movements")
    return [
        MovementRow(
            pk=pk,
            merchant_id=row["merchant_id"],
            kind=row["kind"],
            sku_id=row["sku_id"],
            lot=row["lot"],
            expiry=row["expiry"],
            from_location_id=row["from_location_id"],
            from_status=row["from_status"],
            to_location_id=row["to_location_id"],
            to_status=row["to_status"],
            quantity=row["quantity"],
        )
        for (pk,), row in zip(ids, fields, strict=True)
    ]


class _Row(NamedTuple):
    """A quantity row locked for a pick: what the checks and the guards read of it."""

    pk: int
    sku_id: int
    location_id: int
    status: str
    counted: bool
    on_hand: int
    reserved: int


def _ids_in() -> str:
    """``IN`` a list of ids given as ONE parameter (``quai.core.rows.ids_param``): the statement's text is the same
    for any number of ids, so it is written once, not compiled by the ORM on every call."""
    return ids_in(connection.vendor)


def _lock_clause(of: str = "") -> str:
    """``select_for_update()``'s clause where the database has it: FOR UPDATE (every row the statement reads), or
    with ``of`` (a table's alias) FOR UPDATE OF it, the rows of the other tables joined read but not locked."""
    if not connection.features.has_select_for_update:
        return ""
    return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"


def _read(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _date(value: Any) -> date | None:
    """A date column's value as the ORM converts it (SQLite returns its ISO text)."""
    return value if value is None or isinstance(value, date) else date.fromisoformat(value)


def _moment_converter() -> Callable[[Any], datetime | None]:
    """A datetime column's value as the ORM converts it: PostgreSQL's driver gives it aware; SQLite gives its text,
    which the backend's own converter parses (aware, in the connection's time zone)."""
    if connection.vendor == "postgresql":
        return lambda value: value
    convert = connection.ops.convert_datetimefield_value  # type: ignore[attr-defined]
    return lambda value: None if value is None else convert(value, None, connection)


def _rows_locked(ids: Iterable[int]) -> dict[int, _Row]:
    """``_lock_rows`` (the same rows locked in the same primary-key order), read as tuples, not model instances, by a
    statement written once (``_ids_in``)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    sql = (
        "SELECT id, sku_id, location_id, status, counted, on_hand, reserved "
        f"FROM {StockQuantity._meta.db_table} WHERE id {_ids_in()} ORDER BY id{_lock_clause()}"
    )
    return {
        pk: _Row(pk, sku_id, location_id, status, bool(counted), on_hand, reserved)
        for pk, sku_id, location_id, status, counted, on_hand, reserved in _read(sql, [ids_param(wanted)])
    }


_STATUS_LABELS = dict(ReservationStatus.choices)


def _held_locked(ids: Sequence[int]) -> dict[int, _Held]:
    """The reservations ``ids``, locked in id order, with their SKUs' codes and owners, as ``_Held`` tuples by a
    statement written once (the ids one parameter). Only the reservations are locked (``FOR UPDATE OF r``): the
    ORM's ``select_for_update`` with the SKU's columns locked every SKU row read too, which the pick never writes
    (``parcels._packing_locked`` says why that cost), and its ``IN (…)`` list made a new text for each number of
    reservations, parsed and planned again by PostgreSQL."""
    if not ids:
        return {}
    sku_table = Reservation._meta.get_field("sku").related_model._meta.db_table
    sql = (
        "SELECT r.id, r.status, r.merchant_id, r.sku_id, s.code, s.merchant_id, r.document_type, r.document_id "
        f"FROM {Reservation._meta.db_table} r INNER JOIN {sku_table} s ON s.id = r.sku_id "
        f"WHERE r.id {_ids_in()} ORDER BY r.id{_lock_clause('r')}"
    )
    return {
        pk: _Held(pk, status, merchant_id, sku_id, _Sku(sku_id, code, owner), *document)
        for pk, status, merchant_id, sku_id, code, owner, *document in _read(sql, [ids_param(ids)])
    }


def reservation_pick_to_many(
    *,
    lines: Sequence[PickToLine],
    actor: Any = None,
    events: list[tuple[Any, int | None]] | None = None,
    savepoint: bool = True,
) -> list[list[MovementRow]]:
    """``reservation_pick_to`` for a whole pick list in a bounded number of queries, whatever its length: the same
    refusals (nothing written), the same movements, allocations, quantity rows and ``StockChanged`` events as the
    lines picked one by one in this order. Returns each line's movements.

    Locks: the reservations in id order (not their SKUs' rows: ``_held_locked``), then every quantity
    row touched in id order (the order of the one-line form, which locks one reservation then its two rows). The
    place checks are ``_place``'s, read for all the locations at once (``_places_of``). The rows read are tuples,
    not model instances, and the rows written go through ``quai.core.rows`` (one statement each, compiled once):
    a tick of the simulated floor picks a dozen lines, so the statements' fixed cost is the whole cost.

    ``events``: when given (a list), the ``StockChanged`` events are appended to it, for the caller to record with
    its own in one insert (after them, in this transaction), instead of recorded here.

    ``savepoint=False``: inside the caller's transaction without a savepoint of its own (two statements less), for
    a caller that undoes its whole transaction on a refusal (``parcels_stock_pack``'s option)."""
    if not lines:
        return []
    with transaction.atomic(savepoint=savepoint):
        return _pick_to_many(lines, actor, events)


def _pick_to_many(
    lines: Sequence[PickToLine], actor: Any, events: list[tuple[Any, int | None]] | None
) -> list[list[MovementRow]]:
    for line in lines:
        domain.quantity_check(line.quantity)
    now = clock.now()
    wanted = sorted({line.reservation for line in lines})
    reservations = _held_locked(wanted)
    for pk in wanted:
        current = reservations.get(pk)
        if current is None:
            raise NotFound(_("Reservation not found."), code="reservation_not_found", details={"reservation_id": pk})
        if current.status != ReservationStatus.OPEN:
            raise Conflict(
                _("This reservation is already %(status)s.")
                % {"status": str(_STATUS_LABELS.get(current.status, current.status))},
                code="reservation_closed",
                details={"reservation_id": current.pk, "status": current.status},
            )
    allocations: dict[tuple[int, int], list[_Pinned]] = {}
    # Every allocation of these reservations, the emptied ones too: those with units are the ones to take from;
    # the first one on each quantity row is where units picked onto that row merge (``there`` below).
    first_on_row: dict[tuple[int, int], int] = {}
    for row in (
        ReservationAllocation.objects.filter(Among(F("reservation_id"), wanted))
        .order_by("pk")
        .values_list(
            "pk",
            "reservation_id",
            "location_id",
            "stock_id",
            "quantity",
            "lot",
            "stock__lot",
            "stock__expiry",
            "stock__status",
            "stock__location_id",
        )
    ):
        allocation = _Pinned(row[0], row[1], row[2], row[3], row[4], row[5], _Source(row[6], row[7], row[8], row[9]))
        first_on_row.setdefault((allocation.reservation_id, allocation.stock_id), allocation.pk)
        if allocation.quantity > 0:
            allocations.setdefault((allocation.reservation_id, allocation.location_id), []).append(allocation)
    places = _places_of(
        {line.from_location_id for line in lines} | {line.to_location_id for line in lines},
        now=now,
    )

    # Decide every move in memory, in the lines' order, exactly as the one-line form would one call after another.
    left: dict[int, int] = {}  # allocation id → units left on it
    moves: list[tuple[int, _Pinned, tuple[Any, ...], int]] = []  # (line index, source, target key, n)
    for index, line in enumerate(lines):
        current = reservations[line.reservation]
        sku = current.sku
        source_place = places.check(line.from_location_id, sku=sku, incoming=False)
        target_place = places.check(line.to_location_id, sku=sku, incoming=True)
        chosen = [
            a
            for a in allocations.get((current.pk, line.from_location_id), [])
            if left.get(a.pk, a.quantity) > 0 and (line.lot is None or a.lot == line.lot)
        ]
        held = sum(left.get(a.pk, a.quantity) for a in chosen)
        if held < line.quantity:
            raise Conflict(
                _("Only %(held)d unit(s) of this reservation are allocated at %(code)s; %(asked)d asked.")
                % {"held": held, "asked": line.quantity, "code": source_place.location_code},
                code="reservation_not_allocated",
                details={"reservation_id": current.pk, "allocated": held, "requested": line.quantity},
            )
        need = line.quantity
        for allocation in chosen:
            if need == 0:
                break
            take = min(need, left.get(allocation.pk, allocation.quantity))
            need -= take
            left[allocation.pk] = left.get(allocation.pk, allocation.quantity) - take
            source = allocation.stock
            key = (sku.pk, target_place.location_id, source.lot, source.expiry, source.status)
            moves.append((index, allocation, key, take))

    owners = {r.sku_id: r.sku.merchant_id for r in reservations.values()}
    target_ids = _rows_ensure_of({key for _i, _a, key, _n in moves}, owners, places, now=now)
    rows = _rows_locked([a.stock_id for _i, a, _k, _n in moves] + list(target_ids.values()))
    delta: dict[int, int] = {}
    for _index, allocation, key, take in moves:
        source_row, target_id = rows[allocation.stock_id], target_ids[key]
        if _counts(source_row) != _counts(rows[target_id]):  # type: ignore[arg-type]
            raise ValidationFailed(
                _("Tote %(code)s does not count toward availability like the shelf it takes from.")
                % {"code": places.code(key[1])},
                code="tote_inactive",
                details={"location_id": key[1]},
            )
        delta[source_row.pk] = delta.get(source_row.pk, 0) - take
        delta[target_id] = delta.get(target_id, 0) + take
    for row_id, change in delta.items():
        locked = rows[row_id]
        if locked.on_hand + change < 0 or locked.reserved + change < 0:
            raise InsufficientStock(
                _("Insufficient stock: the units reserved at %(code)s are no longer there.")
                % {"code": places.code(locked.location_id)},
                details={"sku_id": locked.sku_id, "location_id": locked.location_id, "requested": -change},
            )
    # On hand and reserved move together (the units stay reserved): one statement for every row.
    changed = {row_id: (change, change) for row_id, change in delta.items() if change}
    _columns_add(StockQuantity, changed, QUANTITY_COLUMNS)

    # The allocations follow their units: each part taken is pinned to the tote's row (merged with one there).
    taken: dict[int, int] = {}
    pinned: dict[tuple[int, int], int] = {}  # (reservation, target row) → units
    first_source: dict[tuple[int, int], _Pinned] = {}
    for _index, allocation, key, take in moves:
        taken[allocation.pk] = taken.get(allocation.pk, 0) - take
        pin = (allocation.reservation_id, target_ids[key])
        pinned[pin] = pinned.get(pin, 0) + take
        first_source.setdefault(pin, allocation)
    # The first allocation on the row, as ``.first()`` takes it one line at a time (read under the reservations'
    # locks above: no other writer adds one meanwhile; a row created by ``_rows_ensure`` has none). The units
    # taken and those merged in are one statement: an allocation's change is their sum.
    there = {pin: first_on_row[pin] for pin in pinned if pin in first_on_row}
    for pin, n in pinned.items():
        if pin in there:
            taken[there[pin]] = taken.get(there[pin], 0) + n
    _columns_add(ReservationAllocation, {pk: (n,) for pk, n in taken.items() if n}, ("quantity",))
    rows_insert(
        ReservationAllocation,
        [
            {
                "reservation_id": reservation_id,
                "stock_id": stock_id,
                "location_id": rows[stock_id].location_id,
                "lot": first_source[(reservation_id, stock_id)].stock.lot,
                "expiry": first_source[(reservation_id, stock_id)].stock.expiry,
                "quantity": n,
                "created_at": now,
            }
            for (reservation_id, stock_id), n in pinned.items()
            if (reservation_id, stock_id) not in there
        ],
    )

    actor_id = getattr(_actor(actor), "pk", None)
    movements = _movements_insert(
        [
            {
                "merchant_id": reservations[allocation.reservation_id].merchant_id,
                "kind": MovementKind.PICK,
                "sku_id": key[0],
                "lot": allocation.stock.lot,
                "expiry": allocation.stock.expiry,
                "from_location_id": allocation.stock.location_id,
                "from_status": allocation.stock.status,
                "to_location_id": key[1],
                "to_status": allocation.stock.status,
                "quantity": take,
                "actor_id": actor_id,
                "reason": _("Picked into tote %(code)s") % {"code": places.code(key[1])},
                "document_type": reservations[allocation.reservation_id].document_type or "reservation",
                "document_id": reservations[allocation.reservation_id].document_id
                or str(reservations[allocation.reservation_id].pk),
                "occurred_at": now,
            }
            for _index, allocation, key, take in moves
        ]
    )
    # A pick leaves the SKU's counter as it was (both rows count alike), so one read serves every event.
    levels: dict[int, Any] = {
        row["sku_id"]: row
        for row in StockLevel.objects.filter(Among(F("sku_id"), {m.sku_id for m in movements})).values(
            "sku_id", "on_hand", "reserved"
        )
    }
    changes = [
        (
            _stock_changed_event(
                movement,
                levels.get(movement.sku_id, {}),
                sku_code=reservations[allocation.reservation_id].sku.code,
                from_location_code=places.code(allocation.stock.location_id),
                to_location_code=places.code(key[1]),
            ),
            movement.merchant_id,
        )
        for movement, (_index, allocation, key, _take) in zip(movements, moves, strict=True)
    ]
    if events is None:
        events_record_many(changes)
    else:
        events.extend(changes)
    return _per_index(((index, m) for m, (index, _a, _k, _t) in zip(movements, moves, strict=True)), len(lines))


@dataclass
class _Places:
    """The locations of a many-line write with their zones, checked as ``_place`` checks one location."""

    locations: dict[int, dict[str, Any]]
    zones: dict[int, dict[str, Any]]
    now: datetime

    def code(self, location_id: int) -> str:
        return str(self.locations[location_id]["code"])

    def active(self, location_id: int) -> bool:
        zone = self.zones[self.locations[location_id]["zone_id"]]
        return zone_is_active(
            status=zone["status"], valid_from=zone["valid_from"], valid_until=zone["valid_until"], at=self.now
        )

    def check(self, location_id: int, *, sku: Any, incoming: bool) -> _Place:
        loc = self.locations.get(location_id)
        if loc is None:
            raise NotFound(_("Location not found."), code="location_not_found", details={"location_id": location_id})
        return _place_checked(loc, self.zones[loc["zone_id"]], sku=sku, incoming=incoming, now=self.now)


def _places_of(location_ids: set[int], *, now: datetime) -> _Places:
    """Read the locations with their zones in one statement, with ``_place``'s shared lock on the zones
    (PostgreSQL: FOR KEY SHARE OF the zones, taken in zone id order, so a zone cannot close under the write). It
    was two: the locations, then their zones."""
    from quai.warehouse.models import Location, Zone

    locations: dict[int, dict[str, Any]] = {}
    zones: dict[int, dict[str, Any]] = {}
    if not location_ids:
        return _Places(locations=locations, zones=zones, now=now)
    # PostgreSQL: FOR KEY SHARE OF the zones; SQLite has no row locks (the ORM's select_for_update writes none).
    lock = " FOR KEY SHARE OF z" if connection.vendor == "postgresql" else ""
    sql = (
        "SELECT l.id, l.code, l.status, l.zone_id, l.site_id, z.status, z.valid_from, z.valid_until, z.merchant_id "
        f"FROM {Location._meta.db_table} l INNER JOIN {Zone._meta.db_table} z ON z.id = l.zone_id "
        f"WHERE l.id {_ids_in()} ORDER BY z.id, l.id{lock}"
    )
    rows = _read(sql, [ids_param(sorted(location_ids))])
    moment = _moment_converter()
    for pk, code, status, zone_id, site_id, zone_status, valid_from, valid_until, merchant_id in rows:
        locations[pk] = {"pk": pk, "code": code, "status": status, "zone_id": zone_id, "site_id": site_id}
        zones[zone_id] = {
            "pk": zone_id,
            "status": zone_status,
            "valid_from": moment(valid_from),
            "valid_until": moment(valid_until),
            "merchant_id": merchant_id,
        }
    return _Places(locations=locations, zones=zones, now=now)


def _rows_ensure(
    keys: set[tuple[Any, ...]], reservations: Mapping[int, Any], places: _Places, *, now: datetime
) -> dict[tuple[Any, ...], int]:
    """``_row_ensure`` for many keys (sku, location, lot, expiry, status): the ids of their quantity rows, the
    missing ones created empty (counted when their zone is active). ``reservations``: by id, each with its
    ``sku_id`` and ``sku.merchant_id`` (the owner of a created row)."""
    return _rows_ensure_of(keys, {r.sku_id: r.sku.merchant_id for r in reservations.values()}, places, now=now)


def _rows_ensure_of(
    keys: set[tuple[Any, ...]], merchants: Mapping[int, int], places: _Places, *, now: datetime
) -> dict[tuple[Any, ...], int]:
    """``_rows_ensure`` with the SKUs' owners given (``merchants``: SKU id → merchant id). The rows created are
    inserted in one statement that returns their ids (in the order given); only when another transaction created
    one of them meanwhile (the insert skips it) are the keys read again."""

    def found(wanted: Iterable[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
        wanted = list(wanted)
        if not wanted:
            return {}
        sql = (
            f"SELECT id, sku_id, location_id, lot, expiry, status FROM {StockQuantity._meta.db_table} "
            f"WHERE sku_id {_ids_in()} AND location_id {_ids_in()}"
        )
        rows = _read(sql, [ids_param(sorted({k[0] for k in wanted})), ids_param(sorted({k[1] for k in wanted}))])
        return {(sku, loc, lot, _date(expiry), status): pk for pk, sku, loc, lot, expiry, status in rows}

    existing = found(keys)
    missing = sorted((key for key in keys if key not in existing), key=_key_order)
    if not missing:
        return {key: existing[key] for key in keys}
    ids = rows_insert(
        StockQuantity,
        [
            {
                "merchant_id": merchants[sku],
                "sku_id": sku,
                "location_id": loc,
                "lot": lot,
                "expiry": expiry,
                "status": status,
                "on_hand": 0,
                "reserved": 0,
                "counted": places.active(loc),
                "received_at": now,
            }
            for sku, loc, lot, expiry, status in missing
        ],
        returning=("id",),
        skip_conflicts=True,
    )
    if len(ids) == len(missing):
        existing.update({key: int(pk) for key, (pk,) in zip(missing, ids, strict=True)})
    else:  # a concurrent writer created some of them: read them all back
        existing.update(found(missing))
    return {key: existing[key] for key in keys}


def _key_order(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row key's place in the insert (a fixed order, whatever the set's): its columns, no expiry first."""
    sku, loc, lot, expiry, status = key
    return (sku, loc, lot, expiry is not None, expiry or date.min, status)
