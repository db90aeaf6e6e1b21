"""The order's steps on the picking floor, for ``quai.fulfillment`` (which imports this module directly).

- ``order_picking_start``: released → picking when the order's batch starts (already picking: nothing to do);
- ``order_picking_check``: a held or cancelled order stops being picked, with a sentence the picker understands;
- ``order_line_short_backorder``: units a place did not have are given back and wait for stock as a backorder.

Each status change goes through ``order_transition``. A fully picked order stays ``picking``: the packer moves it
to ``packed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.rows import Among
from quai.core.states import InsertedStep, transitions_of_inserted
from quai.inventory.services import reservation_release_at
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services.transitions import ORDER_MACHINE, _status_changed, order_transition
from quai.warehouse.models import Location


def _stopped(order: Order) -> Conflict | None:
    if order.status == OrderStatus.ON_HOLD:
        return Conflict(
            _("Order %(external_id)s is on hold (%(reason)s): stop picking it and put its units aside.")
            % {"external_id": order.external_id, "reason": order.get_hold_reason_display() or order.hold_reason},
            code="order_on_hold",
            details={"order_id": order.pk, "hold_reason": order.hold_reason},
        )
    if order.status == OrderStatus.CANCELLED:
        return Conflict(
            _("Order %(external_id)s was cancelled: stop picking it and put its units aside.")
            % {"external_id": order.external_id},
            code="order_cancelled",
            details={"order_id": order.pk},
        )
    return None


def _locked(order_id: int) -> Order:
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:
        raise NotFound(_("Order not found."), code="order_not_found", details={"order_id": order_id})
    return order


def order_picking_check(*, order_id: int) -> Order:
    """The order if it may still be picked; ``order_on_hold`` or ``order_cancelled`` (409) otherwise."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFound(_("Order not found."), code="order_not_found", details={"order_id": order_id})
    refusal = _stopped(order)
    if refusal is not None:
        raise refusal
    return order


@transaction.atomic
def order_picking_start(*, order_id: int, actor: Any = None, reason: str = "") -> Order:
    """Released → picking (the order's batch starts). Already picking: unchanged. Held or cancelled: refused."""
    order = _locked(order_id)
    refusal = _stopped(order)
    if refusal is not None:
        raise refusal
    if order.status == OrderStatus.PICKING:
        return order
    return order_transition(order=order, to_status=OrderStatus.PICKING, actor=actor, reason=reason)


def orders_picking_start_many(
    *, order_ids: Sequence[int], actor: Any = None, reason: str = ""
) -> dict[int, Conflict | None]:
    """``order_picking_start`` for each of ``order_ids`` in turn (a batch's orders as it starts), in a few
    statements for all: the orders locked and read at once, the released ones moved by one ``transitions_many``.
    Each order's answer: None (picking now, or already), or the ``Conflict`` one by one raises (held, cancelled, a
    status the table does not let go to picking), with nothing written for it. An unknown order raises
    ``order_not_found``, with nothing written, as one by one it stops the caller."""
    return orders_picking_start_each(starts=[PickingStart(order_id, actor, reason) for order_id in order_ids])


@dataclass(frozen=True)
class PickingStart:
    """One ``order_picking_start`` of ``orders_picking_start_each``: the order, who starts it and why."""

    order_id: int
    actor: Any = None
    reason: str = ""


def orders_picking_start_each(*, starts: Sequence[PickingStart]) -> dict[int, Conflict | None]:
    """``orders_picking_start_many`` where each order has its own actor and reason (the orders of several batches,
    each started by its picker): ``order_picking_start`` for each in turn, the answers as there.

    Every refusal is decided before anything is written (the table checked against the status read under the
    lock), so the steps go through ``transitions_of_inserted`` (one update, one insert of events, one of audit rows)
    and, inside a caller's transaction (the floor's tick), without a savepoint: nothing is written before an
    answer or an error is known. The orders are read with the columns the steps and answers use only."""
    if transaction.get_connection().in_atomic_block:
        return _picking_started(starts)
    with transaction.atomic():
        return _picking_started(starts)


#: What a start reads of an order: its step's columns, its ``order.status_changed`` and a refusal's sentence.
START_FIELDS = ("id", "merchant", "channel", "external_id", "status", "version", "updated_at", "hold_reason")


def _picking_started(starts: Sequence[PickingStart]) -> dict[int, Conflict | None]:
    wanted = sorted({start.order_id for start in starts})
    locked = {
        order.pk: order
        for order in Order.objects.select_for_update().filter(Among(F("pk"), wanted)).only(*START_FIELDS).order_by("pk")
    }
    labels = {str(value): str(label) for value, label in OrderStatus.choices}
    answers: dict[int, Conflict | None] = {}
    steps: list[InsertedStep] = []
    missing = next((start.order_id for start in starts if start.order_id not in locked), None)
    if missing is not None:  # one by one, it stops the caller: before anything else is refused or written
        raise NotFound(_("Order not found."), code="order_not_found", details={"order_id": missing})
    for start in starts:
        order = locked[start.order_id]
        if start.order_id in answers:
            continue  # asked again: one by one, the second call finds it picking (or refused the same way)
        refusal = _stopped(order)
        if refusal is None and order.status != OrderStatus.PICKING:
            try:
                ORDER_MACHINE.check(order.status, OrderStatus.PICKING, reason=start.reason, labels=labels)
            except Conflict as conflict:
                refusal = conflict
            else:
                steps.append(
                    InsertedStep(
                        obj=order,
                        to_status=OrderStatus.PICKING,
                        actor=start.actor,
                        reason=start.reason,
                        event=_status_changed(order),
                    )
                )
        answers[start.order_id] = refusal
    # The rows were locked and read just now: their status in memory is the stored one (the promise it asks).
    transitions_of_inserted(steps, machine=ORDER_MACHINE)
    return answers


@transaction.atomic
def order_line_short_backorder(
    *, order_id: int, line_id: int, location: Location, quantity: int, actor: Any = None
) -> OrderLine:
    """``quantity`` units of a line were not found: its reservation gives them back and the line waits for them
    (``backordered_quantity``). Only the units allocated at ``location`` (the place found short) are given
    back; units already in a tote stay reserved. The order keeps its status (picking): what was found goes on."""
    order = _locked(order_id)
    line = OrderLine.objects.select_for_update().filter(pk=line_id, order_id=order.pk).first()
    if line is None:
        raise NotFound(_("Order line not found."), code="order_line_not_found", details={"line_id": line_id})
    if quantity < 1 or quantity > line.reserved_quantity or line.reservation_id is None:
        raise ValidationFailed(
            _("The line holds %(held)d unit(s); %(asked)d cannot be backordered.")
            % {"held": line.reserved_quantity, "asked": quantity},
            code="invalid_quantity",
            details={"reserved": line.reserved_quantity, "requested": quantity},
        )
    reservation_release_at(reservation=line.reservation_id, location=location, quantity=quantity, actor=actor)
    line.reserved_quantity -= quantity
    line.backordered_quantity += quantity
    OrderLine.objects.filter(pk=line.pk).update(
        reserved_quantity=line.reserved_quantity, backordered_quantity=line.backordered_quantity
    )
    return line
