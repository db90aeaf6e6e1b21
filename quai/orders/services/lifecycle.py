"""An order's life after intake: cancel, hold and release the hold, change the address, release to the warehouse.

Cancel, hold and address change are allowed until a label exists (``quai.orders.domain.LABELLED``: from packed
on, until labels have records of their own), then refused with 409 ``order_labelled`` saying why. Each service
owns its transaction, locks the order row first and writes its status only through ``order_transition``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.outbox import event_record
from quai.inventory.services import reservation_release
from quai.orders import domain
from quai.orders.events import OrderAddressChanged, OrderCancelled, OrderHeld, OrderHoldReleased, OrderReleased
from quai.orders.models import Order, OrderLine, OrderPolicy, OrderStatus
from quai.orders.services.intake import address_validate, release_buffer_forget
from quai.orders.services.transitions import ORDER_MACHINE, order_transition

_ACTION_WORDS = {
    "cancel": lambda: _("cancelled"),
    "hold": lambda: _("put on hold"),
    "address_change": lambda: _("given another address"),
}


def order_locked(order: Order | int) -> Order:
    pk = order if isinstance(order, int) else order.pk
    found = Order.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(_("Order not found."), code="order_not_found", details={"order_id": pk})
    return found


def _refuse_once_labelled(order: Order, action: str) -> None:
    if domain.refused_once_labelled(action, order.status):
        raise Conflict(
            _("Order %(external_id)s is %(status)s: a shipping label exists, so it can no longer be %(action)s.")
            % {
                "external_id": order.external_id,
                "status": order.get_status_display(),
                "action": _ACTION_WORDS[action](),
            },
            code="order_labelled",
            details={"order_id": order.pk, "status": order.status, "action": action},
        )


def _version_check(order: Order, version: int | None) -> None:
    if version is not None and version != order.version:
        raise Conflict(
            _("This order changed since it was read (version %(read)d, now %(current)d); read it again.")
            % {"read": version, "current": order.version},
            code="stale_version",
            details={"order_id": order.pk, "version": order.version},
        )


@transaction.atomic
def order_cancel(*, order: Order | int, actor: Any = None, reason: str = "", version: int | None = None) -> Order:
    """Cancel an order and give its stock back (every open reservation of its lines is released).

    Refused once a label exists (``order_labelled``); a cancelled or delivered order is ``invalid_transition``.
    """
    current = order_locked(order)
    _version_check(current, version)
    _refuse_once_labelled(current, "cancel")
    from_status = current.status
    # The table decides before any stock moves (a cancelled or delivered order: invalid_transition).
    ORDER_MACHINE.check(from_status, OrderStatus.CANCELLED, reason=reason)
    released = []
    lines = list(OrderLine.objects.filter(order=current).order_by("sku_id", "position"))
    for line in lines:
        if line.reservation_id is not None and line.reserved_quantity:
            reservation_release(reservation=line.reservation_id, actor=actor)
            released.append({"sku_code": line.sku_code, "quantity": line.reserved_quantity})
    OrderLine.objects.filter(order=current).update(reserved_quantity=0, backordered_quantity=0)
    order_transition(
        order=current,
        to_status=OrderStatus.CANCELLED,
        actor=actor,
        reason=reason,
        values={"held_from": "", "hold_reason": ""},
    )
    event_record(
        OrderCancelled(
            order_id=current.pk,
            channel=current.channel,
            external_id=current.external_id,
            from_status=from_status,
            reason=reason,
            released_lines=released,
        ),
        merchant_id=current.merchant_id,
    )
    return current


@transaction.atomic
def order_hold(*, order: Order | int, reason: str, note: str = "", actor: Any = None) -> Order:
    """Put an order on hold for ``reason`` (payment, fraud, address, customer_service, merchant).

    The order remembers where it was (``held_from``) and goes back there when the hold is released. Refused once a
    label exists (``order_labelled``); an order already on hold is ``invalid_transition``.
    """
    if reason not in domain.HoldReason.ALL:
        raise ValidationFailed(
            _("A hold needs one of these reasons: %(expected)s.") % {"expected": ", ".join(domain.HoldReason.ALL)},
            code="invalid_hold_reason",
            details={"fields": [{"field": "reason", "message": ", ".join(domain.HoldReason.ALL)}]},
        )
    current = order_locked(order)
    _refuse_once_labelled(current, "hold")
    held_from = current.status
    order_transition(
        order=current,
        to_status=OrderStatus.ON_HOLD,
        actor=actor,
        reason=note or reason,
        values={"held_from": held_from, "hold_reason": reason},
        details={"hold_reason": reason},
    )
    event_record(
        OrderHeld(
            order_id=current.pk,
            channel=current.channel,
            external_id=current.external_id,
            hold_reason=reason,
            held_from=held_from,
            note=note,
        ),
        merchant_id=current.merchant_id,
    )
    return current


@transaction.atomic
def order_release_hold(*, order: Order | int, actor: Any = None, note: str = "") -> Order:
    """Lift an order's hold: it goes back where it was (allocated if its backorder was covered meanwhile)."""
    current = order_locked(order)
    if current.status != OrderStatus.ON_HOLD:
        raise Conflict(
            _("Order %(external_id)s is not on hold.") % {"external_id": current.external_id},
            code="order_not_on_hold",
            details={"order_id": current.pk, "status": current.status},
        )
    covered = not OrderLine.objects.filter(order=current, backordered_quantity__gt=0).exists()
    target = domain.status_after_hold(current.held_from, lines_fully_covered=covered)
    hold_reason = current.hold_reason
    order_transition(
        order=current,
        to_status=target,
        actor=actor,
        reason=note,
        values={"held_from": "", "hold_reason": ""},
        details={"hold_reason": hold_reason},
    )
    event_record(
        OrderHoldReleased(
            order_id=current.pk,
            channel=current.channel,
            external_id=current.external_id,
            hold_reason=hold_reason,
            to_status=target,
        ),
        merchant_id=current.merchant_id,
    )
    return current


ADDRESS_FIELDS = ("ship_company", "address_line1", "address_line2", "postcode", "city", "region", "country")


@transaction.atomic
def order_address_change(
    *, order: Order | int, address: Mapping[str, Any], actor: Any = None, version: int | None = None
) -> Order:
    """Replace an order's shipping address (checked as at intake: postcode for its country…).

    Refused once a label exists (``order_labelled``) and on a stale ``version`` (``stale_version``). The event
    names the fields that changed, not their values (personal data).
    """
    current = order_locked(order)
    _version_check(current, version)
    _refuse_once_labelled(current, "address_change")
    if current.status == OrderStatus.CANCELLED:
        raise Conflict(
            _("Order %(external_id)s is cancelled.") % {"external_id": current.external_id},
            code="order_cancelled",
            details={"order_id": current.pk},
        )
    values = address_validate(address)
    changed = [name for name in ADDRESS_FIELDS if getattr(current, name) != values[name]]
    if not changed:
        return current
    Order.objects.filter(pk=current.pk).update(**values, version=F("version") + 1, updated_at=clock.now())
    current.refresh_from_db()
    event_record(
        OrderAddressChanged(
            order_id=current.pk,
            channel=current.channel,
            external_id=current.external_id,
            fields=changed,
            country=current.country,
        ),
        merchant_id=current.merchant_id,
    )
    return current


def order_policy_get(*, merchant_id: int) -> OrderPolicy:
    """The merchant's order policy, or the defaults (unsaved) when it never set one."""
    return OrderPolicy.objects.filter(merchant_id=merchant_id).first() or OrderPolicy(merchant_id=merchant_id)


def order_policy_set(
    *, merchant: Any, release_buffer_minutes: int | None = None, split_shipments: bool | None = None
) -> OrderPolicy:
    merchant_id = merchant if isinstance(merchant, int) else merchant.pk
    if release_buffer_minutes is not None and not 0 <= release_buffer_minutes <= 7 * 24 * 60:
        raise ValidationFailed(
            _("The release buffer must be between 0 and %(max)d minutes.") % {"max": 7 * 24 * 60},
            details={"fields": [{"field": "release_buffer_minutes", "message": "0-10080"}]},
        )
    policy, _created = OrderPolicy.objects.get_or_create(merchant_id=merchant_id)
    if release_buffer_minutes is not None:
        policy.release_buffer_minutes = release_buffer_minutes
    if split_shipments is not None:
        policy.split_shipments = split_shipments
    policy.save()
    # Intake's cached buffer (quai.orders.services.intake), in this process: now, and once committed (a request
    # reading the old row in between would keep it).
    release_buffer_forget(merchant_id)
    transaction.on_commit(lambda: release_buffer_forget(merchant_id))
    return policy


@transaction.atomic
def order_release(*, order: Order | int, actor: Any = None, now: datetime | None = None) -> Order:
    """Hand an order to the warehouse once its release buffer is over (the shopper could still change it before).

    An allocated order is released whole. A backordered one only when its merchant ships in parts (split
    shipments): what is covered goes now, the rest later; otherwise 409 ``order_backordered``. Too early: 409
    ``order_in_release_buffer`` with the time it may go.
    """
    current = order_locked(order)
    if current.status not in (OrderStatus.ALLOCATED, OrderStatus.BACKORDERED):
        # The table allows on_hold → released (a released hold going back where it was), so it cannot refuse a
        # held order here: the release sweep reads due orders before locking them, and one held in between must
        # stay held, not reach the warehouse.
        raise Conflict(
            _("The status cannot go from “%(from)s” to “%(to)s”.")
            % {"from": current.get_status_display(), "to": OrderStatus.RELEASED.label},
            code="invalid_transition",
            details={
                "aggregate": ORDER_MACHINE.aggregate,
                "from": current.status,
                "to": OrderStatus.RELEASED,
                "allowed": ORDER_MACHINE.allowed_from(current.status),
            },
        )
    at = now or clock.now()
    if at < current.release_after:
        raise Conflict(
            _("Order %(external_id)s is in its release buffer until %(at)s.")
            % {"external_id": current.external_id, "at": current.release_after.isoformat()},
            code="order_in_release_buffer",
            details={"order_id": current.pk, "release_after": current.release_after.isoformat()},
        )
    split = current.status == OrderStatus.BACKORDERED
    if split:
        policy = order_policy_get(merchant_id=current.merchant_id)
        covered_any = OrderLine.objects.filter(order=current, reserved_quantity__gt=0).exists()
        if not policy.split_shipments or not covered_any:
            raise Conflict(
                _("Order %(external_id)s waits for stock: it ships when every line is covered.")
                % {"external_id": current.external_id},
                code="order_backordered",
                details={"order_id": current.pk, "split_shipments": policy.split_shipments},
            )
    order_transition(order=current, to_status=OrderStatus.RELEASED, actor=actor)
    event_record(
        OrderReleased(order_id=current.pk, channel=current.channel, external_id=current.external_id, split=split),
        merchant_id=current.merchant_id,
    )
    return current


def orders_release_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Release every order whose buffer is over (the periodic sweep): allocated ones, and backordered ones whose
    merchant ships in parts when something of them is covered. Returns how many went."""
    at = now or clock.now()
    splitting = OrderPolicy.objects.filter(split_shipments=True).values("merchant_id")
    due = list(
        Order.objects.filter(release_after__lte=at)
        .filter(
            Q(status=OrderStatus.ALLOCATED)
            | Q(status=OrderStatus.BACKORDERED, merchant_id__in=splitting, lines__reserved_quantity__gt=0)
        )
        .order_by("release_after", "pk")
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
    released = 0
    for order_id in due:
        try:
            order_release(order=order_id, actor="release sweep", now=at)
        except Conflict:
            continue  # held or cancelled in between: nothing to release
        released += 1
    return released
