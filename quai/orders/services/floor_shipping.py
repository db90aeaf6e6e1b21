"""The order's steps on the warehouse floor after picking: packed, shipped (whole or in part), delivered.

Called by packing (a parcel closed) and shipping (the carrier took it, tracking said delivered); each step goes
through ``order_transition``, so the table decides: a held or cancelled order cannot be packed
(``invalid_transition``), and each step writes its audit row and ``order.status_changed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.core.rows import by_ids
from quai.core.states import InsertedStep, transitions_of_inserted
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services.lifecycle import order_locked
from quai.orders.services.transitions import ORDER_MACHINE, _status_changed, order_transition


@transaction.atomic
def order_pack(*, order: Order | int, actor: Any = None, parcel_id: int | None = None) -> Order:
    """A parcel of the order is closed: picking → packed.

    An order the pack station took straight from ``released`` (no pick wave yet: the packer picked it himself)
    goes through ``picking`` first, so its history tells both steps.
    """
    current = order_locked(order)
    details = {"parcel_id": parcel_id} if parcel_id is not None else None
    if current.status == OrderStatus.RELEASED:
        order_transition(order=current, to_status=OrderStatus.PICKING, actor=actor, details=details)
    return order_transition(order=current, to_status=OrderStatus.PACKED, actor=actor, details=details)


@transaction.atomic
def order_ship(*, order: Order | int, actor: Any = None, parcel_ids: list[int] | None = None) -> Order:
    """The carrier took the order's parcel(s): packed → shipped, or partially shipped while lines still wait for
    backordered stock (a split shipment); a partially shipped order whose rest leaves becomes shipped."""
    current = order_locked(order)
    waiting = OrderLine.objects.filter(order_id=current.pk, backordered_quantity__gt=0).exists()
    split = current.status == OrderStatus.PACKED and waiting
    target = OrderStatus.PARTIALLY_SHIPPED if split else OrderStatus.SHIPPED
    details = {"parcel_ids": parcel_ids} if parcel_ids else None
    return order_transition(order=current, to_status=target, actor=actor, details=details)


@transaction.atomic
def order_deliver(*, order: Order | int, actor: Any = None) -> Order:
    """The carrier says the parcel was delivered: shipped → delivered (a repeat is ``invalid_transition``)."""
    current = order_locked(order)
    return order_transition(order=current, to_status=OrderStatus.DELIVERED, actor=actor)


#: What the many forms read of a locked order: its step's columns (status, version, the time it changed) and its
#: ``order.status_changed`` (merchant, channel, external id). A truck's hundreds of orders were read whole (address,
#: shopper, totals: some 40 columns each), for nothing; the orders returned load any other column when asked.
STEP_FIELDS = ("id", "merchant", "channel", "external_id", "status", "version", "updated_at")


def _locked_many(order_ids: Sequence[int]) -> dict[int, Order]:
    """The orders locked in id order (the order every multi-order write takes), with their ``STEP_FIELDS``."""
    wanted = sorted(set(order_ids))
    # By a statement written once (``by_ids``, the ids one parameter): the queryset compiled its SQL per batch.
    found = {o.pk: o for o in by_ids(Order, wanted, fields=STEP_FIELDS, lock=True)}
    for pk in wanted:
        if pk not in found:
            raise NotFound(_("Order not found."), code="order_not_found", details={"order_id": pk})
    return found


def orders_pack_many(
    *, packed: Sequence[tuple[int, int | None]], actor: Any = None, locked: Mapping[int, Order] | None = None
) -> list[Order]:
    """``order_pack`` for many orders (a pack line's batch of closes, ``packed``: each order and its parcel): the
    same steps, audit rows and ``order.status_changed`` events as the orders packed one by one, each order's in the
    same order (an order taken straight from ``released`` goes through ``picking`` first), in a bounded number of
    queries: the orders locked in id order and read there, then moved by ``transitions_of_inserted`` — whose
    promise (the status in memory is the stored one) holds for rows this transaction has locked and read. A step
    the table forbids refuses the whole batch (``invalid_transition``) with nothing written. Returns the orders as
    packed, in the order given.

    ``locked``: the orders as the caller's transaction locked and read them (the pack line's close locks its
    parcels' orders before it records them), by id; they are neither locked nor read again, and no savepoint is
    taken (three statements less a round): a refusal raised after the first write leaves the caller's transaction
    to be undone whole, as the close does. The orders given are moved in place."""
    if not packed:
        return []
    if locked is not None:
        missing = next((order_id for order_id, _parcel in packed if order_id not in locked), None)
        if missing is not None:
            raise NotFound(_("Order not found."), code="order_not_found", details={"order_id": missing})
        with transaction.atomic(savepoint=False):
            return _orders_packed(packed, locked, actor)
    with transaction.atomic():
        return _orders_packed(packed, _locked_many([order_id for order_id, _parcel in packed]), actor)


def _orders_packed(packed: Sequence[tuple[int, int | None]], orders: Mapping[int, Order], actor: Any) -> list[Order]:
    """The steps of ``orders_pack_many`` for orders locked and read by this transaction."""
    details = [{"parcel_id": parcel_id} if parcel_id is not None else None for _order, parcel_id in packed]
    first = [
        _order_step(orders[order_id], OrderStatus.PICKING, actor=actor, details=detail)
        for (order_id, _parcel), detail in zip(packed, details, strict=True)
        if orders[order_id].status == OrderStatus.RELEASED
    ]
    transitions_of_inserted(first, machine=ORDER_MACHINE)
    then = [
        _order_step(orders[order_id], OrderStatus.PACKED, actor=actor, details=detail)
        for (order_id, _parcel), detail in zip(packed, details, strict=True)
    ]
    transitions_of_inserted(then, machine=ORDER_MACHINE)
    return [orders[order_id] for order_id, _parcel in packed]


def orders_ship_many(*, shipped: Sequence[tuple[int, list[int] | None]], actor: Any = None) -> list[Order]:
    """``order_ship`` for many orders (a truck's manifest, ``shipped``: each order and its parcels): the same steps
    (shipped, or partially shipped while lines wait for backordered stock), audit rows and events as one by one, in
    a bounded number of queries (see ``orders_pack_many``). Returns the orders, in the order given."""
    if not shipped:
        return []
    with transaction.atomic():
        orders = _locked_many([order_id for order_id, _parcels in shipped])
        waiting = set(
            OrderLine.objects.filter(order_id__in=list(orders), backordered_quantity__gt=0).values_list(
                "order_id", flat=True
            )
        )
        steps = []
        for order_id, parcel_ids in shipped:
            current = orders[order_id]
            split = current.status == OrderStatus.PACKED and order_id in waiting
            target = OrderStatus.PARTIALLY_SHIPPED if split else OrderStatus.SHIPPED
            details = {"parcel_ids": parcel_ids} if parcel_ids else None
            steps.append(_order_step(current, target, actor=actor, details=details))
        transitions_of_inserted(steps, machine=ORDER_MACHINE)
    return [orders[order_id] for order_id, _parcels in shipped]


def orders_deliver_many(*, order_ids: Sequence[int], actor: Any = None, savepoint: bool = True) -> list[Order]:
    """``order_deliver`` for many orders (a carrier's tracking file saying several parcels were delivered): the same
    steps, audit rows and ``order.status_changed`` events as one by one, in the order given, in a bounded number of
    queries (see ``orders_pack_many``). An order given twice is refused at its second step, as one by one
    (``invalid_transition``: delivered already), and so is one the table does not let be delivered: the whole batch
    then writes nothing. Returns the orders as delivered, in the order given.

    ``savepoint=False``: for a caller whose own transaction is undone whole when this raises (a tracking file);
    no savepoint is taken (two statements less a batch), so a refusal after the first write — the guarded update
    finding a status changed meanwhile — is undone with the caller's work, not apart from it."""
    if not order_ids:
        return []
    with transaction.atomic(savepoint=savepoint):
        orders = _locked_many(order_ids)
        seen: set[int] = set()
        labels = {str(value): str(label) for value, label in OrderStatus.choices}
        for order_id in order_ids:
            # One by one, the second delivery of an order finds it delivered already.
            source = OrderStatus.DELIVERED if order_id in seen else orders[order_id].status
            ORDER_MACHINE.check(source, OrderStatus.DELIVERED, labels=labels)
            seen.add(order_id)
        transitions_of_inserted(
            [_order_step(orders[order_id], OrderStatus.DELIVERED, actor=actor, details=None) for order_id in order_ids],
            machine=ORDER_MACHINE,
        )
    return [orders[order_id] for order_id in order_ids]


def _order_step(order: Order, to_status: str, *, actor: Any, details: dict[str, Any] | None) -> InsertedStep:
    """The step as ``order_transition`` makes it: the same audit row and ``order.status_changed``."""
    return InsertedStep(
        obj=order,
        to_status=to_status,
        actor=actor,
        details=details,
        event=_status_changed(order),
    )
