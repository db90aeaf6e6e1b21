"""Changes to an order after intake that customer service asks for: an item added, another carrier service.

An item is added only while nothing of the order is on the floor: received, allocated, backordered, or on hold
from one of those (``AMENDABLE``). From ``released`` on a wave may hold its pick tasks, and a line added then would
reach the pack station without having been picked: refused with ``order_picking_started``. The new line is a line
like intake's (next position, its own reservation document) and reserves through allocation's ``line_top_up``
(inventory's guarded ``reservation_create``: never oversold); what stock cannot cover is backordered, and an
allocated order then steps to ``backordered`` (a backordered one whose lines are now all covered steps to
``allocated``) through the order's own state machine. Totals grow by the line's amount.

The carrier service changes until a label exists (``order_labelled``, the rule of ``domain.LABELLED``).

Both lock the order row first (the lock order of ``allocation``), bump its version and record their event in the
same transaction.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Final

from django.db import transaction
from django.db.models import F, Max
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, ValidationFailed
from quai.core.outbox import event_record
from quai.core.states import actor_of
from quai.orders import domain
from quai.orders.events import OrderCarrierServiceChanged, OrderLineAdded
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services.allocation import line_top_up
from quai.orders.services.lifecycle import order_locked
from quai.orders.services.transitions import order_transition

#: Statuses an item may be added at (on hold counts when it was held from one of them).
AMENDABLE: Final = frozenset({domain.RECEIVED, domain.ALLOCATED, domain.BACKORDERED})


def item_add_allowed(status: str, held_from: str) -> bool:
    """Whether an item may still be added: nothing of the order has reached the floor."""
    return status in AMENDABLE or (status == domain.ON_HOLD and held_from in AMENDABLE)


def _quantity(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10_000:
        raise ValidationFailed(
            _("The quantity is a whole number between 1 and 10000."),
            code="invalid_quantity",
            details={"fields": [{"field": "quantity", "message": "1-10000"}]},
        )
    return value


def _price(value: Any) -> Decimal:
    try:
        price = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        price = Decimal("-1")
    if not price.is_finite() or price < 0 or price >= Decimal("10") ** 10:
        raise ValidationFailed(
            _("The unit price is an amount of zero or more."),
            code="invalid_input",
            details={"fields": [{"field": "unit_price", "message": ">= 0"}]},
        )
    return price


@transaction.atomic
def order_line_add(
    *, order: Order | int, sku: Any, quantity: int, unit_price: Decimal | str = "0", actor: Any = None
) -> OrderLine:
    """Add ``quantity`` of ``sku`` (one of the order's merchant's SKUs) to the order and reserve it at once."""
    count = _quantity(quantity)
    price = _price(unit_price)
    current = order_locked(order)
    if sku.merchant_id != current.merchant_id:
        raise ValidationFailed(
            _("This SKU is not one of the order's merchant's."), code="sku_not_found", details={"sku_id": sku.pk}
        )
    if not item_add_allowed(current.status, current.held_from):
        raise Conflict(
            _("Order %(external_id)s is %(status)s: it is on the floor already, so no item can be added.")
            % {"external_id": current.external_id, "status": current.get_status_display()},
            code="order_picking_started",
            details={"order_id": current.pk, "status": current.status},
        )
    position = (current.lines.aggregate(last=Max("position"))["last"] or 0) + 1
    line = OrderLine.objects.create(
        order=current,
        position=position,
        sku=sku,
        sku_code=sku.code,
        quantity=count,
        unit_price=price,
        backordered_quantity=count,
    )
    line_top_up(order=current, line=line, sku=sku, actor=actor)
    amount = price * count
    Order.objects.filter(pk=current.pk).update(
        lines_total=F("lines_total") + amount,
        total=F("total") + amount,
        version=F("version") + 1,
        updated_at=clock.now(),
    )
    current.refresh_from_db()
    covered = not current.lines.filter(backordered_quantity__gt=0).exists()
    if current.status in (OrderStatus.ALLOCATED, OrderStatus.BACKORDERED):
        target = domain.status_after_allocation(lines_fully_covered=covered)
        if target != current.status:
            order_transition(order=current, to_status=target, actor=actor, reason=_("Item added"))
    event_record(
        OrderLineAdded(
            order_id=current.pk,
            channel=current.channel,
            external_id=current.external_id,
            sku_code=sku.code,
            quantity=count,
            reserved=line.reserved_quantity,
            unit_price=str(price),
            by=actor_of(actor).label,
        ),
        merchant_id=current.merchant_id,
    )
    line.refresh_from_db()
    return line


@transaction.atomic
def order_carrier_service_change(*, order: Order | int, carrier_service: str, actor: Any = None) -> Order:
    """Ask for another carrier service (e.g. express instead of home delivery) while no label exists."""
    wanted = carrier_service.strip()
    if not wanted or len(wanted) > 64:
        raise ValidationFailed(
            _("Name the carrier service (at most 64 characters)."),
            code="invalid_input",
            details={"fields": [{"field": "carrier_service", "message": "1-64"}]},
        )
    current = order_locked(order)
    if domain.label_exists(current.status):
        raise Conflict(
            _("Order %(external_id)s is %(status)s: a shipping label exists, so its carrier can no longer change.")
            % {"external_id": current.external_id, "status": current.get_status_display()},
            code="order_labelled",
            details={"order_id": current.pk, "status": current.status, "action": "carrier_change"},
        )
    if current.status == OrderStatus.CANCELLED:
        raise Conflict(
            _("Order %(external_id)s is cancelled.") % {"external_id": current.external_id},
            code="order_cancelled",
            details={"order_id": current.pk},
        )
    before = current.carrier_service
    if before == wanted:
        return current
    Order.objects.filter(pk=current.pk).update(carrier_service=wanted, version=F("version") + 1, updated_at=clock.now())
    current.refresh_from_db()
    event_record(
        OrderCarrierServiceChanged(
            order_id=current.pk,
            channel=current.channel,
            external_id=current.external_id,
            from_service=before,
            to_service=wanted,
            by=actor_of(actor).label,
        ),
        merchant_id=current.merchant_id,
    )
    return current
