"""The order's steps on the warehouse floor after picking: packed, shipped (whole or in part), delivered.

Called by packing (a parcel closed) and shipping (the carrier took it, tracking said delivered); each step goes
through ``order_transition``, so the table decides: a held or cancelled order cannot be packed
(``invalid_transition``), and each step writes its audit row and ``order.status_changed``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services.lifecycle import order_locked
from quai.orders.services.transitions import order_transition


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
