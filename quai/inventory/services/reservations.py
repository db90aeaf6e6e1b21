"""Reservations: reserve (SKU level) → allocate (places and lots) → consume (pick) or release.

A reservation holds stock at two levels that move together: the merchant-SKU ``StockLevel.reserved`` counter
(what availability subtracts) and, once allocated, ``StockQuantity.reserved`` of the rows it is pinned to (what
a move or a count must leave in place). The hot path, ``reservation_create``, is one guarded update of the
counter; the rest lock the reservation first, then the quantity rows in primary-key order.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.db import insert_returning_id
from quai.core.errors import Conflict, InsufficientStock, NotFound, ValidationFailed
from quai.core.models import OutboxEvent
from quai.core.outbox import event_record, events_record_many, outbox_nudge
from quai.core.rows import ids_param, model_rows_insert
from quai.inventory import domain, selectors
from quai.inventory.events import (
    ReservationAllocated,
    ReservationConsumed,
    ReservationMade,
    ReservationMoved,
    ReservationReleased,
)
from quai.inventory.models import (
    MovementKind,
    Reservation,
    ReservationAllocation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockQuantity,
    StockStatus,
)
from quai.inventory.services._common import (
    _actor,
    _counts,
    _kind_check,
    _lock_rows,
    _reserved_add_guarded,
    _stock_changed,
    _tracking,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _PlaceCode(TypedDict):
        location_code: str

    # An allocation read with its place's code (``_open_allocations``), for the events of the picks it becomes.
    OpenAllocation = WithAnnotations[ReservationAllocation, _PlaceCode]


_Allocation = TypeVar("_Allocation", bound=ReservationAllocation)


def _reservation_locked(reservation: Reservation | int) -> Reservation:
    pk = reservation if isinstance(reservation, int) else reservation.pk
    try:
        current = Reservation.objects.select_for_update().select_related("sku").get(pk=pk)
    except Reservation.DoesNotExist:
        raise NotFound(_("Reservation not found."), code="reservation_not_found") from None
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
# ``event_record(ReservationMade(...))`` writes (a test compares them); the SKU's code is a bound parameter taken
# from the SKU the caller holds, so speaking the merchant's terms costs the statement no join.
_RESERVE_PG_INSERTS = f"""
reservation AS (
    INSERT INTO {Reservation._meta.db_table} (merchant_id, sku_id, quantity, requested_quantity, consumed_quantity,
        released_quantity, status, document_type, document_id, created_at, updated_at)
    SELECT %(merchant_id)s, level.sku_id, %(quantity)s, %(quantity)s, 0, 0, 'open', %(document_type)s,
        %(document_id)s, %(now)s, %(now)s
    FROM level
    RETURNING id
), event AS (
    INSERT INTO {OutboxEvent._meta.db_table} (event_id, name, schema_version, merchant_id, aggregate, aggregate_id,
        payload, occurred_at, relayed_at, attempts, last_error, next_attempt_at)
    SELECT %(event_id)s, %(event_name)s, %(schema_version)s, %(merchant_id)s, %(aggregate)s, reservation.id::text,
        jsonb_build_object('reservation_id', reservation.id, 'sku_id', %(sku_id)s::bigint,
            'quantity', %(quantity)s::integer, 'document_type', %(document_type)s::text,
            'document_id', %(document_id)s::text, 'sku_code', %(sku_code)s::text),
        %(now)s, NULL, 0, '', NULL
    FROM reservation
    RETURNING id
)"""

_RESERVE_PG_SQL = f"""
WITH level AS (
    {_RESERVE_SQL} RETURNING sku_id
), {_RESERVE_PG_INSERTS}
SELECT reservation.id, false FROM reservation, event
"""

# A line with a document is answered in that same round trip when it is a retry: ``existing`` finds its open
# reservation (through the partial unique index, whose predicate the WHERE repeats so the planner uses it), the
# update is then skipped by a one-time filter (the hot row is not even locked) and the statement returns the
# existing id flagged ``true``. Two first attempts racing both miss ``existing`` (one snapshot per statement); the
# second insert then meets the unique index, which fails its whole statement — the update included — and the
# caller re-reads the winner. A line without a document cannot meet that index: it keeps the statement above.
_RESERVE_PG_DOCUMENT_SQL = f"""
WITH existing AS (
    SELECT id FROM {Reservation._meta.db_table}
    WHERE merchant_id = %(merchant_id)s AND document_type = %(document_type)s AND document_id = %(document_id)s
        AND sku_id = %(sku_id)s AND status = 'open' AND NOT (document_id = '')
    LIMIT 1
), level AS (
    {_RESERVE_SQL} AND NOT EXISTS (SELECT 1 FROM existing) RETURNING sku_id
), {_RESERVE_PG_INSERTS}
SELECT reservation.id, false FROM reservation, event
UNION ALL
SELECT existing.id, true FROM existing
"""


def reservation_create(
    *,
    merchant: Any,
    sku: Any,
    quantity: int,
    document_type: str = "",
    document_id: str = "",
    allocate: bool = False,
    actor: Any = None,
) -> Reservation:
    """Reserve ``quantity`` units of a SKU for an order line (first stage: SKU level, no place yet).

    ``allocate=True`` also pins the units to places at once (``reservation_allocate``), in one transaction owned
    here: when the places cannot cover the quantity, ``InsufficientStock`` and nothing is reserved either. Without
    it the hot path below is untouched.

    The hot path costs the same whatever the ledger holds: the guarded
    ``UPDATE stock_level SET reserved = reserved + n WHERE sku_id = … AND on_hand - reserved >= n``, the
    reservation row and its ``ReservationMade`` event, all or nothing. On PostgreSQL that is one statement (see
    ``_RESERVE_PG_SQL`` and ``_RESERVE_PG_DOCUMENT_SQL``); elsewhere (SQLite) three statements in one transaction,
    the update last so the hot row is held only for that statement and the commit. Zero rows updated:
    ``InsufficientStock``, nothing written.

    Idempotent per document line: while (merchant, document type, document id, SKU) has an open reservation, a
    second one is refused with ``Conflict(code="reservation_exists")`` whose details carry the existing
    ``reservation_id`` — also when both arrive at once (the partial unique index decides; nothing is held twice).
    """
    if allocate:
        with transaction.atomic():
            reservation = reservation_create(
                merchant=merchant,
                sku=sku,
                quantity=quantity,
                document_type=document_type,
                document_id=document_id,
                actor=actor,
            )
            return reservation_allocate(reservation=reservation, actor=actor)
    domain.quantity_check(quantity)
    merchant_id = merchant if isinstance(merchant, int) else merchant.pk
    if sku.merchant_id != merchant_id:
        raise NotFound(_("SKU not found."), code="sku_not_found", details={"sku_id": sku.pk})
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
    postgresql = connection.vendor == "postgresql"
    reserve = _reserve_pg if postgresql else _reserve_in_transaction
    # Only a line with a document can meet the unique index. Inside the caller's transaction that failure must
    # not doom the transaction, so on PostgreSQL the attempt runs in a savepoint (on SQLite it runs in its own
    # atomic block already); outside a transaction the statement is its own, and a savepoint would only add round
    # trips to the hot path.
    guarded = postgresql and bool(values["document_id"]) and connection.in_atomic_block
    for attempt in (1, 2):
        try:
            with transaction.atomic() if guarded else contextlib.nullcontext():
                return reserve(sku=sku, values=values)
        except IntegrityError:
            if not values["document_id"]:
                raise
            winner = selectors.reservation_open_for_document(
                merchant_id=merchant_id, document_type=document_type, document_id=values["document_id"], sku_id=sku.pk
            )
            if winner is not None:
                raise _already_reserved(winner) from None
            if attempt == 2:
                raise
            # The winner was consumed or released in between: the line holds nothing now, so try once more.
    raise AssertionError("unreachable")  # pragma: no cover


def _reserve_pg(*, sku: Any, values: dict[str, Any]) -> Reservation:
    with connection.cursor() as cursor:
        cursor.execute(
            _RESERVE_PG_DOCUMENT_SQL if values["document_id"] else _RESERVE_PG_SQL,
            {
                **values,
                "now": values["created_at"],
                "event_id": uuid.uuid4(),
                "event_name": ReservationMade.name,
                "schema_version": ReservationMade.schema_version,
                "aggregate": ReservationMade.aggregate,
                "sku_code": sku.code,
            },
        )
        row = cursor.fetchone()
    if row is None:
        raise _not_enough_to_reserve(sku=sku, quantity=values["quantity"])
    if row[1]:
        raise _already_reserved(Reservation.objects.get(pk=row[0]))
    outbox_nudge()
    reservation = Reservation(id=row[0], **values)
    reservation._state.adding = False
    return reservation


def _reserve_in_transaction(*, sku: Any, values: dict[str, Any]) -> Reservation:
    with transaction.atomic():
        if values["document_id"]:
            existing = selectors.reservation_open_for_document(
                merchant_id=values["merchant_id"],
                document_type=values["document_type"],
                document_id=values["document_id"],
                sku_id=sku.pk,
            )
            if existing is not None:
                raise _already_reserved(existing)
        reservation = Reservation(id=insert_returning_id(Reservation, values), **values)
        reservation._state.adding = False
        event_record(
            ReservationMade(
                reservation_id=reservation.pk,
                sku_id=sku.pk,
                quantity=values["quantity"],
                document_type=values["document_type"],
                document_id=values["document_id"],
                sku_code=sku.code,
            ),
            merchant_id=values["merchant_id"],
        )
        with connection.cursor() as cursor:
            cursor.execute(_RESERVE_SQL, {"quantity": values["quantity"], "sku_id": sku.pk})
            updated = cursor.rowcount
        if not updated:
            raise _not_enough_to_reserve(sku=sku, quantity=values["quantity"])
    return reservation


class LockedLevels(dict[int, int]):
    """Free units (``on_hand - reserved``) of SKUs whose level rows the current transaction holds, by SKU id, as
    ``stock_levels_lock`` read them under the lock; ``reservations_create_many`` keeps them current as it reserves."""


def stock_levels_lock(sku_ids: Sequence[int]) -> LockedLevels:
    """Lock the level rows of ``sku_ids`` in SKU order (the global lock order) and read their free units, in ONE
    statement. A SKU without a level row has 0 free. Call it inside a transaction; on SQLite (no row locks) the
    ``IMMEDIATE`` transaction already holds every row."""
    ids = sorted(set(sku_ids))
    levels = LockedLevels(dict.fromkeys(ids, 0))
    if ids:
        # The ORM's statement (filter, order, FOR UPDATE, the annotation) written once: compiling it was ~1 ms of
        # the group committer's CPU per batch, on intake's serial path. The ids are one parameter (fixed text).
        with connection.cursor() as cursor:
            cursor.execute(_LEVELS_LOCK_PG if connection.vendor == "postgresql" else _LEVELS_LOCK, [ids_param(ids)])
            levels.update(cursor.fetchall())
    return levels


_LEVELS_LOCK_PG = (
    f"SELECT sku_id, on_hand - reserved FROM {StockLevel._meta.db_table} WHERE sku_id = ANY(%s) "
    "ORDER BY sku_id FOR UPDATE"
)
# SQLite: no row locks (the IMMEDIATE transaction holds every row).
_LEVELS_LOCK = (
    f"SELECT sku_id, on_hand - reserved FROM {StockLevel._meta.db_table} "
    "WHERE sku_id IN (SELECT value FROM json_each(%s)) ORDER BY sku_id"
)


@dataclass(frozen=True)
class ReservationRequest:
    """One line's want for ``reservations_create_many``. ``partial``: when fewer units are free, take those (a line
    that may be backordered for the rest) rather than nothing."""

    merchant_id: int
    sku: Any
    quantity: int
    document_type: str = ""
    document_id: str = ""
    partial: bool = True


def reservations_create_many(
    *, requests: Sequence[ReservationRequest], levels: LockedLevels
) -> list[Reservation | None]:
    """Reserve for many lines at once, served in the order given (the caller's priority order): each request gets
    its quantity, or — short — what is still free (``partial``) or nothing; ``None`` when it gets nothing.

    ``levels`` is what ``stock_levels_lock`` returned in THIS transaction for every SKU of ``requests``: the rows
    are held, so deciding in Python is exact. Then ONE guarded update of all the SKUs' counters
    (``reserved = reserved + n WHERE on_hand - reserved >= n``, the same guard as ``reservation_create``; a count
    that differs raises ``InsufficientStock`` — the transaction must be rolled back, nothing stands), ONE insert of
    the reservation rows and ONE of their ``ReservationMade`` events, each row what ``reservation_create`` writes.
    Bad requests (a quantity below one, another merchant's SKU, a SKU not locked) raise before any write.
    """
    for request in requests:
        domain.quantity_check(request.quantity)
        if request.sku.merchant_id != request.merchant_id:
            raise NotFound(_("SKU not found."), code="sku_not_found", details={"sku_id": request.sku.pk})
        if request.sku.pk not in levels:
            raise ValueError(f"SKU {request.sku.pk} is not locked by stock_levels_lock in this transaction")
    granted: list[int] = []
    totals: dict[int, int] = {}
    for request in requests:
        free = levels[request.sku.pk] - totals.get(request.sku.pk, 0)
        take = request.quantity if free >= request.quantity else (max(free, 0) if request.partial else 0)
        granted.append(take)
        if take:
            totals[request.sku.pk] = totals.get(request.sku.pk, 0) + take
    if not totals:
        return [None] * len(requests)
    _levels_reserve(totals)
    for sku_id, total in totals.items():
        levels[sku_id] -= total
    now = clock.now()
    rows = [
        Reservation(
            merchant_id=request.merchant_id,
            sku_id=request.sku.pk,
            quantity=take,
            requested_quantity=take,
            status=ReservationStatus.OPEN,
            document_type=request.document_type,
            document_id=str(request.document_id),
            created_at=now,
            updated_at=now,
        )
        for request, take in zip(requests, granted, strict=True)
        if take
    ]
    # The rows ``bulk_create`` writes (ids set), without compiling the insert again on intake's serial path.
    model_rows_insert(rows)
    events_record_many(
        [
            (
                ReservationMade(
                    reservation_id=row.pk,
                    sku_id=row.sku_id,
                    quantity=row.quantity,
                    document_type=row.document_type,
                    document_id=row.document_id,
                    sku_code=request.sku.code,
                ),
                row.merchant_id,
            )
            for row, request in zip(rows, [r for r, take in zip(requests, granted, strict=True) if take], strict=True)
        ]
    )
    made = iter(rows)
    return [next(made) if take else None for take in granted]


def _levels_reserve(totals: Mapping[int, int]) -> None:
    """Add ``totals`` (units by SKU) to the SKUs' reserved counters in one guarded statement, all or nothing."""
    if _reserved_add_guarded(StockLevel._meta.db_table, "sku_id", totals) != len(totals):
        raise InsufficientStock(
            _("Insufficient stock: the units of a batch could not all be reserved; nothing was reserved."),
            details={"sku_ids": sorted(totals)},
        )


def _already_reserved(existing: Reservation) -> Conflict:
    return Conflict(
        _(
            "Document %(document)s already holds open reservation #%(reservation)d of this SKU "
            "(%(quantity)d unit(s)): it is not reserved twice."
        )
        % {
            "document": f"{existing.document_type} {existing.document_id}".strip(),
            "reservation": existing.pk,
            "quantity": existing.quantity,
        },
        code="reservation_exists",
        details={
            "reservation_id": existing.pk,
            "sku_id": existing.sku_id,
            "document_type": existing.document_type,
            "document_id": existing.document_id,
            "quantity": existing.quantity,
        },
    )


def _not_enough_to_reserve(*, sku: Any, quantity: int) -> InsufficientStock:
    return InsufficientStock(
        _("Insufficient stock: %(quantity)d unit(s) of %(sku)s cannot be reserved.")
        % {"quantity": quantity, "sku": sku.code},
        details={"sku_id": sku.pk, "requested": quantity},
    )


# Work is released against stock that is put away: receiving docks, pack and ship areas are never picked from.
ALLOCATABLE_ZONE_KINDS = ("storage", "picking")


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
    # One read for what the lock does not bring: each place's pick sequence (the plan) and code (the event).
    places = {
        pk: (sequence, code)
        for pk, sequence, code in StockQuantity.objects.filter(pk__in=list(rows)).values_list(
            "pk", "location__pick_sequence", "location__code"
        )
    }
    candidates = [
        domain.Candidate(
            stock_id=row.pk,
            free=row.on_hand - row.reserved,
            expiry=row.expiry,
            received_at=row.received_at,
            pick_sequence=places[row.pk][0] if row.pk in places else 0,
        )
        for row in rows.values()
    ]
    plan = domain.allocation_plan(
        quantity=need,
        candidates=candidates,
        fefo=sku.expiry_tracked,
        today=today,
        min_shelf_life_days=selectors.min_shelf_life_days(merchant_id=current.merchant_id) if sku.expiry_tracked else 0,
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
                {
                    "location_id": a.location_id,
                    "location_code": places[a.stock_id][1],
                    "lot": a.lot,
                    "quantity": a.quantity,
                    "stock_id": a.stock_id,
                }
                for a in created
            ],
            sku_code=sku.code,
            document_type=current.document_type,
            document_id=current.document_id,
        ),
        merchant_id=current.merchant_id,
    )
    return current


def _open_allocations(reservation: Reservation) -> list[OpenAllocation]:
    """The allocations still holding units, each with its place's ``location_code`` (read in the same query, for
    the events of the movements they become)."""
    return list(
        reservation.allocations.filter(quantity__gt=0).annotate(location_code=F("location__code")).order_by("pk")
    )


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
    lines = _taken(allocations, quantity)
    rows = _lock_rows(a.stock_id for a, _q in lines)
    now = clock.now()
    counted_out = 0
    movements: list[tuple[StockMovement, str]] = []  # with the code of the place each leaves (for its event)
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
            (
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
                ),
                allocation.location_code,
            )
        )
    # Units leave on-hand and reserved together, so the counter's free stock never shrinks: no guard needed.
    StockLevel.objects.filter(sku_id=current.sku_id).update(
        on_hand=F("on_hand") - counted_out, reserved=F("reserved") - quantity
    )
    for movement, location_code in movements:
        movement.save()
        _stock_changed(movement, sku_code=current.sku.code, from_location_code=location_code)
    current.quantity -= quantity
    current.consumed_quantity += quantity
    if current.quantity == 0:
        current.status = ReservationStatus.CONSUMED
    current.updated_at = now
    current.save(update_fields=["quantity", "consumed_quantity", "status", "updated_at"])
    event_record(
        ReservationConsumed(
            reservation_id=current.pk,
            sku_id=current.sku_id,
            quantity=quantity,
            remaining=current.quantity,
            sku_code=current.sku.code,
            document_type=current.document_type,
            document_id=current.document_id,
        ),
        merchant_id=current.merchant_id,
    )
    return current


def _taken(allocations: Iterable[_Allocation], need: int) -> list[tuple[_Allocation, int]]:
    """The allocations, in the order given, that ``need`` units leave, each with how many it gives up."""
    lines: list[tuple[_Allocation, int]] = []
    for allocation in allocations:
        if need == 0:
            break
        take = min(need, allocation.quantity)
        lines.append((allocation, take))
        need -= take
    return lines


def _release(current: Reservation, quantity: int) -> Reservation:
    """Give back ``quantity`` units: the unallocated part first, then the latest allocations."""
    allocations = _open_allocations(current)
    allocated = sum(a.quantity for a in allocations)
    need = max(0, quantity - (current.quantity - allocated))
    return _release_lines(current, quantity, _taken(reversed(allocations), need))


def _release_lines(
    current: Reservation, quantity: int, lines: Sequence[tuple[ReservationAllocation, int]]
) -> Reservation:
    """Give back ``quantity`` units of the locked reservation ``current``: ``lines`` are the allocations they leave
    (each with how many), the rest of ``quantity`` is its unallocated part. The one writer of a release, whichever
    allocations the caller chose (``_release``: the latest; ``reservation_release_at``: those at one place)."""
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
            reservation_id=current.pk,
            sku_id=current.sku_id,
            quantity=quantity,
            remaining=current.quantity,
            sku_code=current.sku.code,
            document_type=current.document_type,
            document_id=current.document_id,
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
    source = current.allocations.filter(pk=allocation_id).annotate(location_code=F("location__code")).first()
    if source is None:
        raise NotFound(_("Allocation not found."), code="allocation_not_found")
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
            sku_code=current.sku.code,
            from_location_code=source.location_code,
            to_location_code=to_location.code,
        ),
        merchant_id=current.merchant_id,
    )
    return current
