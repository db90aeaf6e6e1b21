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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, InsufficientStock, ValidationFailed
from quai.core.outbox import events_record_many
from quai.core.rows import ids_param, values_update
from quai.inventory.events import ReservationConsumed
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
from quai.inventory.services.movements import _place, _row_ensure
from quai.inventory.services.reservations import reservation_allocate, reservation_consume
from quai.inventory.services.totes import (
    MovementRow,
    _date,
    _ids_in,
    _lock_clause,
    _movements_insert,
    _Pinned,
    _places_of,
    _read,
    _rows_ensure_of,
    _rows_locked,
    _Sku,
    _Source,
)

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


@dataclass(frozen=True)
class ParcelStock:
    """One parcel of a many-parcel ledger write: its reservations and the pack station its units wait at."""

    parcel_id: int | str
    reservation_ids: Sequence[int]
    location: Any


def parcels_stock_pack(
    *, parcels: Sequence[ParcelStock], actor: Any = None, savepoint: bool = True
) -> list[list[MovementRow]]:
    """``parcel_stock_pack`` for many parcels (a pack line's batch of closes) in a bounded number of queries: the
    same refusals (the whole batch then writes nothing), the same ``pack`` movements, re-pinned allocations,
    quantity rows and ``StockChanged`` events, in the same order, as the parcels packed one by one in the order
    given. Returns each parcel's movements (``MovementRow``: the rows are read and written as tuples, no model
    instance built). ``savepoint=False``: inside the caller's transaction without a savepoint
    of its own (two statements less), for a caller that undoes its whole transaction on a refusal.

    Locks: every reservation in id order, then every quantity row touched in id order. A reservation not yet pinned
    to places is allocated first (``reservation_allocate``, one by one: the floor pins them at the wave, so this is
    the exception)."""
    if not parcels:
        return []
    with transaction.atomic(savepoint=savepoint):
        return _parcels_stock_pack(parcels, actor)


class _Packing(NamedTuple):
    """What the pack line and the truck read of a reservation, locked (no model instance)."""

    pk: int
    status: str
    quantity: int
    merchant_id: int
    sku_id: int
    sku: _Sku
    consumed_quantity: int
    document_type: str
    document_id: str


def _packing_locked(jobs: Sequence[ParcelStock]) -> dict[int, _Packing]:
    """Every reservation of the parcels, locked in id order (the package's lock order), with its SKU's code and
    owner read, as tuples, by a statement written once. Only the reservations are locked (``FOR UPDATE OF r``):
    the one-by-one form's ``select_related`` with ``select_for_update`` locked each SKU's row too, which nothing
    here writes or needs held (its code and owner do not change under a reservation), and which made every
    pack and hand-over write a lock into the SKUs' rows (heap pages dirtied, WAL) and wait for each other's on
    the same SKU."""
    wanted = sorted({pk for job in jobs for pk in job.reservation_ids})
    if not wanted:
        return {}
    sku_table = Reservation._meta.get_field("sku").related_model._meta.db_table
    sql = (
        "SELECT r.id, r.status, r.quantity, r.merchant_id, r.sku_id, s.code, s.merchant_id, r.consumed_quantity, "
        "r.document_type, r.document_id "
        f"FROM {Reservation._meta.db_table} r INNER JOIN {sku_table} s ON s.id = r.sku_id "
        f"WHERE r.id {_ids_in()} ORDER BY r.id{_lock_clause('r')}"
    )
    return {
        pk: _Packing(pk, status, quantity, merchant_id, sku_id, _Sku(sku_id, sku_code, owner), *document)
        for pk, status, quantity, merchant_id, sku_id, sku_code, owner, *document in _read(sql, [ids_param(wanted)])
    }


def _parcels_stock_pack(parcels: Sequence[ParcelStock], actor: Any) -> list[list[MovementRow]]:
    now = clock.now()
    reservations = _packing_locked(parcels)
    # One by one, a reservation no longer open (or emptied) is skipped, and so is one a parcel before took.
    seen: set[int] = set()
    work: list[tuple[int, ParcelStock, _Packing]] = []
    for index, job in enumerate(parcels):
        for pk in sorted(set(job.reservation_ids)):
            current = reservations.get(pk)
            if current is None:
                raise Reservation.DoesNotExist(f"Reservation matching query does not exist: {pk}")
            if current.status != ReservationStatus.OPEN or current.quantity == 0 or pk in seen:
                continue
            seen.add(pk)
            work.append((index, job, current))
    open_ids = [current.pk for _i, _job, current in work]
    # Every allocation read once: what each reservation has pinned, and the places its units are at. One not
    # fully pinned (the exception: the floor pins them at the wave) is allocated, and the allocations read again.
    allocations = _allocations_of(open_ids)
    short = [
        current for _index, _job, current in work if sum(a.quantity for a in allocations[current.pk]) < current.quantity
    ]
    for current in short:
        reservation_allocate(reservation=current.pk, actor=actor)
    if short:
        allocations = _allocations_of(open_ids)
    places = _places_of(
        {job.location.pk for job in parcels} | {a.location_id for found in allocations.values() for a in found},
        now=now,
    )

    # Decide every move in memory, in the order one by one would make them.
    moves: list[tuple[int, _Packing, _Pinned, tuple[Any, ...]]] = []
    for index, job, current in work:
        place = places.check(job.location.pk, sku=current.sku, incoming=True)
        if not place.active:
            raise ValidationFailed(
                _("Pack station %(code)s is in a zone that is not active: reserved units cannot wait there.")
                % {"code": place.location_code},
                code="pack_station_inactive",
                details={"location_id": place.location_id},
            )
        for allocation in allocations[current.pk]:
            if allocation.location_id == place.location_id:
                continue  # units already there stay
            source = allocation.stock
            key = (current.sku_id, place.location_id, source.lot, source.expiry, source.status)
            moves.append((index, current, allocation, key))
    if not moves:
        return [[] for _job in parcels]
    owners = {r.sku_id: r.sku.merchant_id for r in reservations.values()}
    target_ids = _rows_ensure_of({key for _i, _r, _a, key in moves}, owners, places, now=now)
    rows = _rows_locked([a.stock_id for _i, _r, a, _k in moves] + list(target_ids.values()))
    delta: dict[int, int] = {}
    for _index, current, allocation, key in moves:
        source_row, target_id, take = rows[allocation.stock_id], target_ids[key], allocation.quantity
        left = delta.get(source_row.pk, 0)
        if source_row.on_hand + left < take or source_row.reserved + left < take:
            raise InsufficientStock(
                _("Insufficient stock: the units reserved at %(code)s are no longer there.")
                % {"code": places.code(allocation.location_id)},
                details={"sku_id": current.sku_id, "location_id": allocation.location_id, "requested": take},
            )
        if _counts(source_row) != _counts(rows[target_id]):  # type: ignore[arg-type]
            raise ValidationFailed(
                _("Pack station %(code)s does not count toward availability like the shelf it takes from.")
                % {"code": places.code(key[1])},
                code="pack_station_inactive",
                details={"location_id": key[1]},
            )
        delta[source_row.pk] = left - take
        delta[target_id] = delta.get(target_id, 0) + take
    # On hand and reserved move together (the units stay reserved): one statement for every row.
    changed = {row_id: change for row_id, change in delta.items() if change}
    _columns_add(StockQuantity, {row_id: (change, change) for row_id, change in changed.items()}, QUANTITY_COLUMNS)
    # The allocations follow their units to the station's row.
    values_update(
        ReservationAllocation,
        ["stock", "location"],
        [(allocation.pk, target_ids[key], key[1]) for _i, _r, allocation, key in moves],
    )
    actor_id = getattr(_actor(actor), "pk", None)
    reason, kind = _("Packed"), MovementKind.PACK
    fields = [
        {
            "merchant_id": current.merchant_id,
            "kind": kind,
            "sku_id": current.sku_id,
            "lot": allocation.stock.lot,
            "expiry": allocation.stock.expiry,
            "from_location_id": allocation.stock.location_id,
            "from_status": allocation.stock.status,
            "to_location_id": key[1],
            "to_status": allocation.stock.status,
            "quantity": allocation.quantity,
            "actor_id": actor_id,
            "reason": reason,
            "document_type": PARCEL_DOCUMENT,
            "document_id": str(parcels[index].parcel_id),
            "occurred_at": now,
        }
        for index, current, allocation, key in moves
    ]
    movements = _movements_insert(fields)
    # A pack leaves the SKU's counter as it was (both rows count alike), so one read serves every event.
    levels = _levels({m.sku_id for m in movements})
    events_record_many(
        [
            (
                _stock_changed_event(
                    movement,
                    levels.get(movement.sku_id, {}),
                    sku_code=current.sku.code,
                    from_location_code=places.code(movement.from_location_id),
                    to_location_code=places.code(key[1]),
                ),
                movement.merchant_id,
            )
            for movement, (_index, current, _allocation, key) in zip(movements, moves, strict=True)
        ]
    )
    return _per_index(((index, m) for m, (index, _c, _a, _k) in zip(movements, moves, strict=True)), len(parcels))


def _allocations_of(reservation_ids: list[int]) -> dict[int, list[_Pinned]]:
    """The reservations' allocations holding units (quantity above zero), with their rows' keys and their places'
    codes, in id order."""
    found: dict[int, list[_Pinned]] = {pk: [] for pk in reservation_ids}
    if not reservation_ids:
        return found
    location_table = ReservationAllocation._meta.get_field("location").related_model._meta.db_table
    sql = (
        "SELECT a.id, a.reservation_id, a.location_id, a.stock_id, a.quantity, a.lot, q.lot, q.expiry, q.status, "
        f"q.location_id, l.code FROM {ReservationAllocation._meta.db_table} a "
        f"INNER JOIN {StockQuantity._meta.db_table} q ON q.id = a.stock_id "
        f"INNER JOIN {location_table} l ON l.id = a.location_id "
        f"WHERE a.reservation_id {_ids_in()} AND a.quantity > 0 ORDER BY a.id"
    )
    for pk, reservation_id, location_id, stock_id, quantity, lot, *key, code in _read(
        sql, [ids_param(reservation_ids)]
    ):
        stock = _Source(key[0], _date(key[1]), key[2], key[3])
        found[reservation_id].append(_Pinned(pk, reservation_id, location_id, stock_id, quantity, lot, stock, code))
    return found


def _levels(sku_ids: set[int]) -> dict[int, dict[str, int]]:
    if not sku_ids:
        return {}
    sql = f"SELECT sku_id, on_hand, reserved FROM {StockLevel._meta.db_table} WHERE sku_id {_ids_in()}"
    return {
        sku_id: {"on_hand": on_hand, "reserved": reserved}
        for sku_id, on_hand, reserved in _read(sql, [ids_param(sorted(sku_ids))])
    }


class ConsumedRow(NamedTuple):
    """A reservation ``parcels_stock_ship`` consumed, as it left it (no model instance)."""

    pk: int
    quantity: int
    consumed_quantity: int
    status: str


@transaction.atomic
def parcels_stock_ship(*, parcels: Sequence[ParcelStock], actor: Any = None) -> list[list[ConsumedRow]]:
    """``parcel_stock_ship`` for many parcels (a truck's manifest) in a bounded number of queries: the same refusal
    (``parcel_stock_elsewhere``, the whole batch then writing nothing), the same ``ship`` movements, consumed
    allocations and reservations, quantity rows, SKU counters and events (each reservation's ``StockChanged`` then
    its ``inventory.reservation_consumed``), in the same order, as the parcels shipped one by one in the order
    given. Returns each parcel's consumed reservations (``ConsumedRow``: the rows are read and written as tuples,
    no model instance built, by the pack line's statements).

    Locks: every reservation in id order, then every quantity row touched in id order."""
    if not parcels:
        return []
    now = clock.now()
    reservations = _packing_locked(parcels)
    allocations = _allocations_of(sorted(reservations))
    for job in parcels:
        for pk in sorted(set(job.reservation_ids)):
            if pk not in reservations:
                raise Reservation.DoesNotExist(f"Reservation matching query does not exist: {pk}")
            if any(a.location_id != job.location.pk for a in allocations[pk]):
                raise Conflict(
                    _("Some units of parcel %(parcel)s are not at its pack station: pack them first.")
                    % {"parcel": job.parcel_id},
                    code="parcel_stock_elsewhere",
                    details={"reservation_id": pk, "location_id": job.location.pk},
                )
    # Decide in memory, one parcel after the other: each open reservation gives up everything allocated.
    work: list[tuple[int, _Packing, list[_Pinned], ConsumedRow]] = []
    # Each reservation as the parcels before left it: a second parcel of the same reservation finds it consumed,
    # or (units left unallocated) nothing allocated any more, as one by one would.
    left = {pk: ConsumedRow(pk, r.quantity, r.consumed_quantity, r.status) for pk, r in reservations.items()}
    for index, job in enumerate(parcels):
        for pk in sorted(set(job.reservation_ids)):
            current, before = reservations[pk], left[pk]
            if before.status != ReservationStatus.OPEN:
                continue
            taken = allocations[pk] if before.consumed_quantity == current.consumed_quantity else []
            if not taken:
                raise Conflict(
                    _("Nothing of this reservation is allocated to a place yet: allocate it first."),
                    code="reservation_not_allocated",
                    details={"reservation_id": pk},
                )
            quantity = sum(a.quantity for a in taken)
            remaining = before.quantity - quantity
            status = ReservationStatus.CONSUMED if remaining == 0 else before.status
            left[pk] = ConsumedRow(pk, remaining, before.consumed_quantity + quantity, status)
            work.append((index, current, taken, left[pk]))
    if not work:
        return [[] for _job in parcels]
    rows = _rows_locked(a.stock_id for _i, _r, taken, _a in work for a in taken)
    delta: dict[int, int] = {}
    level_delta: list[tuple[int, int, int]] = []  # per reservation: SKU, on hand and reserved given up
    moves: list[tuple[int, _Packing, _Pinned]] = []
    for index, current, taken, _after in work:
        counted_out = 0
        for allocation in sorted(taken, key=lambda a: a.stock_id):
            row, take = rows[allocation.stock_id], allocation.quantity
            if row.on_hand + delta.get(row.pk, 0) < take or row.reserved + delta.get(row.pk, 0) < take:
                raise InsufficientStock(_("Insufficient stock: the allocated units are no longer there."))
            delta[row.pk] = delta.get(row.pk, 0) - take
            if _counts(row):  # type: ignore[arg-type]
                counted_out += take
            moves.append((index, current, allocation))
        level_delta.append((current.sku_id, counted_out, sum(a.quantity for a in taken)))
    _columns_add(StockQuantity, {row_id: (change, change) for row_id, change in delta.items()}, QUANTITY_COLUMNS)
    _allocations_emptied([allocation.pk for _i, _c, allocation in moves])
    # Units leave on-hand and reserved together, so the counters' free stock never shrinks: no guard needed.
    by_sku: dict[int, list[int]] = {}
    for sku_id, on_hand, reserved in level_delta:
        total = by_sku.setdefault(sku_id, [0, 0])
        total[0], total[1] = total[0] + on_hand, total[1] + reserved
    _columns_add(StockLevel, {s: (-t[0], -t[1]) for s, t in by_sku.items()}, QUANTITY_COLUMNS, key="sku_id")
    handed = _("Handed to the carrier (parcel %(parcel)s)")  # translated once for the truck
    reason_of = [handed % {"parcel": job.parcel_id} for job in parcels]
    actor_id = getattr(_actor(actor), "pk", None)
    movements = _movements_insert(
        [
            {
                "merchant_id": current.merchant_id,
                "kind": MovementKind.SHIP,
                "sku_id": current.sku_id,
                "lot": allocation.stock.lot,
                "expiry": allocation.stock.expiry,
                "from_location_id": allocation.stock.location_id,
                "from_status": allocation.stock.status,
                "to_location_id": None,
                "to_status": "",
                "quantity": allocation.quantity,
                "actor_id": actor_id,
                "reason": reason_of[index],
                "document_type": current.document_type or "reservation",
                "document_id": current.document_id or str(current.pk),
                "occurred_at": now,
            }
            for index, current, allocation in moves
        ]
    )
    values_update(
        Reservation,
        ["quantity", "consumed_quantity", "status", "updated_at"],
        [(after.pk, after.quantity, after.consumed_quantity, after.status, now) for _i, _c, _t, after in work],
    )
    # Each reservation's events see the counter as one by one would: after its own consumption, before the next's.
    levels = _levels(set(by_sku))
    after_levels: list[dict[str, int]] = [{} for _w in work]
    running = {sku_id: dict(level) for sku_id, level in levels.items()}
    for position in range(len(work) - 1, -1, -1):
        sku_id, on_hand, reserved = level_delta[position]
        level = running.get(sku_id)
        if level is None:
            continue  # no counter row: one by one reads none either
        after_levels[position] = dict(level)
        level["on_hand"], level["reserved"] = level["on_hand"] + on_hand, level["reserved"] + reserved
    events: list[tuple[Any, int | None]] = []
    moved = iter(zip(movements, moves, strict=True))
    for position, (_index, current, taken, after) in enumerate(work):
        for _n in taken:
            movement, (_i, _c, allocation) = next(moved)
            events.append(
                (
                    _stock_changed_event(
                        movement,
                        after_levels[position],
                        sku_code=current.sku.code,
                        from_location_code=allocation.location_code,
                        to_location_code="",
                    ),
                    current.merchant_id,
                )
            )
        events.append(
            (
                ReservationConsumed(
                    reservation_id=current.pk,
                    sku_id=current.sku_id,
                    quantity=level_delta[position][2],
                    remaining=after.quantity,
                    sku_code=current.sku.code,
                    document_type=current.document_type,
                    document_id=current.document_id,
                ),
                current.merchant_id,
            )
        )
    events_record_many(events)
    return _per_index(((index, after) for index, _c, _t, after in work), len(parcels))


def _allocations_emptied(ids: list[int]) -> None:
    """Each allocation gives up every unit it holds (the truck takes them all): ``quantity`` to ``consumed_quantity``,
    one statement written once. Its reservation's lock, held, keeps the units read under it."""
    if not ids:
        return
    table = ReservationAllocation._meta.db_table
    sql = f"UPDATE {table} SET consumed_quantity = consumed_quantity + quantity, quantity = 0 WHERE id {_ids_in()}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids_param(ids)])
