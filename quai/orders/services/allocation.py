"""Allocation of order lines to stock, only through the inventory's reservation services.

Each line holds at most one inventory reservation (document "order", "<order id>/<position>"), never written here:
``reservation_create`` is the guarded update that cannot oversell, ``reservation_release`` gives stock back. A line
keeps what it got; what it still misses is its ``backordered_quantity``, which stock arriving later fills
(``backorders_allocate``, run by the ``inventory.stock_changed`` handler), orders served by priority class, then
age.

Locks, in one order everywhere: the order row first (``select_for_update``), then inventory's own order
(reservation → stock rows → the SKU's level row). Lines are reserved in SKU order, so two orders holding the same
two SKUs never wait on each other in a circle. The allocator handles one order per transaction: it never holds two
order rows at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.db.models import F

from quai.core.errors import InsufficientStock
from quai.core.models import StateTransition
from quai.core.outbox import event_record
from quai.core.rows import Among
from quai.inventory.selectors import availability_get
from quai.inventory.services import reservation_create, reservation_release
from quai.orders import domain
from quai.orders.events import OrderAllocated, OrderBackordered, OrderLinesAllocated
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services.transitions import order_step, order_transition
from quai.tenants.scope import Scope

DOCUMENT_TYPE = "order"

#: Orders whose backordered lines take stock when it arrives. Not from picking on: a line being picked holds what
#: it holds (its reservation is being consumed), and the rest of a split order ships in a later parcel.
WAITING_STATUSES = (OrderStatus.BACKORDERED, OrderStatus.ON_HOLD, OrderStatus.RELEASED)


def line_document_id(line: OrderLine) -> str:
    return f"{line.order_id}/{line.position}"


def _available(merchant_id: int, sku_id: int) -> int:
    return availability_get(scope=Scope.merchant(merchant_id), sku_id=sku_id).available


def _reserve(*, order: Order, line: OrderLine, sku: Any, quantity: int, actor: Any) -> Any:
    return reservation_create(
        merchant=order.merchant_id,
        sku=sku,
        quantity=quantity,
        document_type=DOCUMENT_TYPE,
        document_id=line_document_id(line),
        actor=actor,
    )


def line_top_up(*, order: Order, line: OrderLine, sku: Any, actor: Any = None) -> int:
    """Reserve what ``line`` still misses, as far as the stock goes; the units gained (0 when none is free).

    Call it inside a transaction holding the order's row. Never oversells: every unit goes through
    ``reservation_create``'s guarded update, whatever availability said a moment before.
    """
    missing = line.quantity - line.reserved_quantity
    if missing <= 0:
        return 0
    gained = 0
    if line.reservation_id is None:
        try:
            reservation = _reserve(order=order, line=line, sku=sku, quantity=missing, actor=actor)
            gained = missing
        except InsufficientStock:
            available = _available(order.merchant_id, sku.pk)
            if available <= 0:
                return 0
            try:
                reservation = _reserve(order=order, line=line, sku=sku, quantity=min(available, missing), actor=actor)
            except InsufficientStock:
                return 0  # taken in between: the next stock change tries again
            gained = min(available, missing)
    else:
        available = _available(order.merchant_id, sku.pk)
        if available <= 0:
            return 0
        gained = min(available, missing)
        # One open reservation per document line (inventory's rule): grow it by giving it back and reserving the
        # larger quantity in the same transaction. The units given back stay under this transaction's lock of the
        # SKU's level row until the commit (PostgreSQL; SQLite's transactions are IMMEDIATE), so the fallback to
        # the old quantity always succeeds.
        with transaction.atomic():
            reservation_release(reservation=line.reservation_id, actor=actor)
            try:
                reservation = _reserve(
                    order=order, line=line, sku=sku, quantity=line.reserved_quantity + gained, actor=actor
                )
            except InsufficientStock:
                reservation = _reserve(order=order, line=line, sku=sku, quantity=line.reserved_quantity, actor=actor)
                gained = 0
    line.reservation_id = reservation.pk
    line.reserved_quantity += gained
    line.backordered_quantity = line.quantity - line.reserved_quantity
    if line.pk is None:  # not inserted yet (intake): its INSERT carries these values
        return gained
    OrderLine.objects.filter(pk=line.pk).update(
        reservation_id=line.reservation_id,
        reserved_quantity=line.reserved_quantity,
        backordered_quantity=line.backordered_quantity,
    )
    return gained


def _line_entries(lines: Sequence[OrderLine]) -> list[dict[str, Any]]:
    return [
        {
            "sku_code": line.sku_code,
            "quantity": line.quantity,
            "reserved_quantity": line.reserved_quantity,
            "backordered_quantity": line.backordered_quantity,
        }
        for line in sorted(lines, key=lambda item: item.position)
    ]


def _allocation_event(order: Order, lines: Sequence[OrderLine], *, covered: bool) -> None:
    kind = OrderAllocated if covered else OrderBackordered
    event_record(
        kind(order_id=order.pk, channel=order.channel, external_id=order.external_id, lines=_line_entries(lines)),
        merchant_id=order.merchant_id,
    )


def order_lines_reserve(
    *,
    order: Order,
    lines: Sequence[OrderLine],
    skus: Mapping[int, Any],
    actor: Any = None,
    insert_lines: bool = False,
) -> StateTransition:
    """Reserve a received order's lines (``skus``: the SKU of each line by position) and move it to allocated or
    backordered; returns that step's audit row. Runs inside ``order_create``'s transaction.

    ``insert_lines``: the lines are not written yet; they are inserted once reserved, in one statement carrying
    their reservation and quantities (``order_create``: no UPDATE per line)."""
    for line in sorted(lines, key=lambda item: (item.sku_id, item.position)):
        line_top_up(order=order, line=line, sku=skus[line.position], actor=actor)
    if insert_lines:
        OrderLine.objects.bulk_create(lines)
    covered = all(line.backordered_quantity == 0 for line in lines)
    step = order_step(order=order, to_status=domain.status_after_allocation(lines_fully_covered=covered), actor=actor)
    _allocation_event(order, lines, covered=covered)
    return step


@transaction.atomic
def order_backorder_allocate(*, order_id: int, sku_id: int, actor: Any = None) -> tuple[int, bool]:
    """Give free stock of one SKU to one order's backordered lines: (units reserved, whether stock ran out).

    An order that is no longer waiting (cancelled, picked…) is skipped. A backordered order whose every line is now
    covered becomes allocated (``order.allocated``); any gain is told by ``order.lines_allocated``.
    """
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None or order.status not in WAITING_STATUSES:
        return 0, False
    if order.status == OrderStatus.ON_HOLD and order.held_from == OrderStatus.PICKING:
        return 0, False
    lines = list(OrderLine.objects.filter(order=order).select_related("sku").order_by("sku_id", "position"))
    gained_total = 0
    exhausted = False
    for line in lines:
        if line.sku_id != sku_id or line.backordered_quantity == 0:
            continue
        gained_total += line_top_up(order=order, line=line, sku=line.sku, actor=actor)
        if line.backordered_quantity > 0:
            exhausted = True
            break
    if gained_total:
        event_record(
            OrderLinesAllocated(
                order_id=order.pk,
                channel=order.channel,
                external_id=order.external_id,
                lines=_line_entries([line for line in lines if line.sku_id == sku_id]),
            ),
            merchant_id=order.merchant_id,
        )
        if order.status == OrderStatus.BACKORDERED and all(line.backordered_quantity == 0 for line in lines):
            order_transition(order=order, to_status=OrderStatus.ALLOCATED, actor=actor, reason="stock arrived")
            _allocation_event(order, lines, covered=True)
    return gained_total, exhausted


def _waiting_by_sku(sku_ids: Sequence[int]) -> dict[int, set[domain.WaitingOrder]]:
    """The orders waiting for each of ``sku_ids`` (a backordered line of it, the order in a waiting status): one
    query however many SKUs, whose text does not change with their number (``Among``: prepared once)."""
    rows = (
        OrderLine.objects.filter(Among(F("sku_id"), sku_ids))
        .filter(backordered_quantity__gt=0, order__status__in=WAITING_STATUSES)
        .values_list("sku_id", "order_id", "order__priority", "order__created_at")
        .distinct()
    )
    waiting: dict[int, set[domain.WaitingOrder]] = {}
    for sku, order_id, priority, at in rows:
        waiting.setdefault(sku, set()).add(domain.WaitingOrder(order_id=order_id, priority=priority, received_at=at))
    return waiting


def backorders_allocate(*, sku_id: int, actor: Any = None, waiting: set[domain.WaitingOrder] | None = None) -> int:
    """Give free stock of a SKU to the orders waiting for it, express first, then VIP, marketplace, standard, and
    oldest first within a class; stops as soon as the stock runs out. Returns the units reserved.

    Idempotent and safe to run at any time, from any number of workers: each order is handled in its own
    transaction under its row lock, and stock is only ever taken through ``reservation_create``. ``waiting``: the
    candidates already read (``_waiting_by_sku``); each is checked again under its row lock anyway.
    """
    if waiting is None:
        waiting = _waiting_by_sku([sku_id]).get(sku_id, set())
    total = 0
    for candidate in domain.backorder_queue(waiting):
        gained, exhausted = order_backorder_allocate(order_id=candidate.order_id, sku_id=sku_id, actor=actor)
        total += gained
        if exhausted:
            break
    return total


def on_stock_changed(event: Any, envelope: Any) -> None:
    """``inventory.stock_changed``: when the SKU has free stock, give it to its backorders."""
    if event.sellable_on_hand - event.reserved <= 0:
        return
    backorders_allocate(sku_id=event.sku_id, actor="backorder allocation")


def on_stock_changed_many(items: Sequence[tuple[Any, Any]]) -> None:
    """``on_stock_changed`` over a relay batch: the backorders of every SKU with free stock read in ONE query, then
    each such SKU allocated once, in the order its first event came. Once is what the per-event handler amounts
    to: after a SKU's allocation its backorders are served or its stock is out, so running it again changes
    nothing."""
    sku_ids = list(
        dict.fromkeys(event.sku_id for event, _envelope in items if event.sellable_on_hand - event.reserved > 0)
    )
    if not sku_ids:
        return
    waiting = _waiting_by_sku(sku_ids)
    for sku_id in sku_ids:
        if waiting.get(sku_id):
            backorders_allocate(sku_id=sku_id, actor="backorder allocation", waiting=waiting[sku_id])
