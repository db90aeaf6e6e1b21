"""An order's life after intake: cancel, hold and release the hold, change the address, release to the warehouse.

Cancel, hold and address change are allowed until a label exists (``quai.orders.domain.LABELLED``: from packed
on, until labels have records of their own), then refused with 409 ``order_labelled`` saying why. Each service
owns its transaction, locks the order row first and writes its status only through ``order_transition``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, NotFound, QuaiError, ValidationFailed
from quai.core.outbox import event_record
from quai.core.rows import Among
from quai.core.states import Step
from quai.inventory.services import reservation_release
from quai.orders import domain
from quai.orders.events import OrderAddressChanged, OrderCancelled, OrderHeld, OrderHoldReleased, OrderReleased
from quai.orders.models import Order, OrderLine, OrderPolicy, OrderStatus
from quai.orders.services.intake import address_validate, release_buffer_forget
from quai.orders.services.transitions import ORDER_MACHINE, order_step_of, order_transition, order_transitions_many

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


def _release_refusal(
    current: Order, at: datetime, split_shipments: Callable[[int], bool], covered_any: Callable[[int], bool]
) -> Conflict | None:
    """Why ``order_release`` refuses ``current`` (locked) at ``at``, or None; ``split_shipments`` and
    ``covered_any`` read, only for a backordered order, its merchant's policy and whether a line of it is covered."""
    if current.status not in (OrderStatus.ALLOCATED, OrderStatus.BACKORDERED):
        # The table allows on_hold → released (a released hold going back where it was), so it cannot refuse a
        # held order here: the release sweep reads due orders before locking them, and one held in between must
        # stay held, not reach the warehouse.
        return Conflict(
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
    if at < current.release_after:
        return Conflict(
            _("Order %(external_id)s is in its release buffer until %(at)s.")
            % {"external_id": current.external_id, "at": current.release_after.isoformat()},
            code="order_in_release_buffer",
            details={"order_id": current.pk, "release_after": current.release_after.isoformat()},
        )
    if current.status == OrderStatus.BACKORDERED:
        splits = split_shipments(current.merchant_id)
        if not splits or not covered_any(current.pk):
            return Conflict(
                _("Order %(external_id)s waits for stock: it ships when every line is covered.")
                % {"external_id": current.external_id},
                code="order_backordered",
                details={"order_id": current.pk, "split_shipments": splits},
            )
    return None


def _released_event(current: Order) -> OrderReleased:
    return OrderReleased(
        order_id=current.pk,
        channel=current.channel,
        external_id=current.external_id,
        split=current.status == OrderStatus.BACKORDERED,
    )


@transaction.atomic
def order_release(*, order: Order | int, actor: Any = None, now: datetime | None = None) -> Order:
    """Hand an order to the warehouse once its release buffer is over (the shopper could still change it before).

    An allocated order is released whole. A backordered one only when its merchant ships in parts (split
    shipments): what is covered goes now, the rest later; otherwise 409 ``order_backordered``. Too early: 409
    ``order_in_release_buffer`` with the time it may go.
    """
    current = order_locked(order)
    refusal = _release_refusal(
        current,
        now or clock.now(),
        lambda merchant_id: order_policy_get(merchant_id=merchant_id).split_shipments,
        lambda order_id: OrderLine.objects.filter(order_id=order_id, reserved_quantity__gt=0).exists(),
    )
    if refusal is not None:
        raise refusal
    released = _released_event(current)
    order_transition(order=current, to_status=OrderStatus.RELEASED, actor=actor)
    event_record(released, merchant_id=current.merchant_id)
    return current


@dataclass(frozen=True)
class ReleaseOutcome:
    """One order's answer in ``orders_release_many``: the order released, or why not (nothing written for it)."""

    order_id: int
    order: Order | None = None
    error: QuaiError | None = None


#: What ``orders_release_many`` reads of a locked order: what ``_release_refusal``, ``order.released`` and the step
#: (``order_step_of``) read.
RELEASE_FIELDS = ("id", "merchant", "channel", "external_id", "status", "version", "updated_at", "release_after")


def orders_release_many(
    *, order_ids: Sequence[int], actor: Any = None, now: datetime | None = None
) -> list[ReleaseOutcome]:
    """``order_release`` for each of ``order_ids`` in turn (the same checks, refusals, rows, audit and events, in
    the same order), in one transaction and a number of statements that does not grow with the orders: the orders
    locked and read at once (in id order), the policies and covered lines of the backordered ones read at once,
    then one ``transitions_many`` (one update, one insert of events, one of audit rows). A refused order (its
    ``Conflict`` or ``NotFound``, as one by one) is answered, not raised: the others go on."""
    at = now or clock.now()
    outcomes: list[ReleaseOutcome] = []
    with transaction.atomic():
        # Only the columns the checks and the step read (not the address, shopper and totals of every order).
        rows = Order.objects.select_for_update().filter(Among(F("pk"), order_ids)).only(*RELEASE_FIELDS).order_by("pk")
        locked = {order.pk: order for order in rows}
        waiting = [o for o in locked.values() if o.status == OrderStatus.BACKORDERED and at >= o.release_after]
        policies: dict[int, bool] = {}
        covered: set[int] = set()
        if waiting:
            merchants = {o.merchant_id for o in waiting}
            policies = dict(
                OrderPolicy.objects.filter(merchant_id__in=merchants).values_list("merchant_id", "split_shipments")
            )
            covered = set(
                OrderLine.objects.filter(order_id__in=[o.pk for o in waiting], reserved_quantity__gt=0)
                .values_list("order_id", flat=True)
                .distinct()
            )
        default_split = OrderPolicy().split_shipments
        steps: list[Step] = []
        going: dict[int, int] = {}  # order id → its place in ``outcomes``
        for order_id in order_ids:
            current = locked.get(order_id)
            if current is None:
                error: QuaiError = NotFound(
                    _("Order not found."), code="order_not_found", details={"order_id": order_id}
                )
                outcomes.append(ReleaseOutcome(order_id=order_id, error=error))
                continue
            refusal = (
                _release_refusal(
                    current,
                    at,
                    lambda merchant_id: policies.get(merchant_id, default_split),
                    lambda pk: pk in covered,
                )
                if order_id not in going
                else _release_refusal(Order(pk=current.pk, status=OrderStatus.RELEASED), at, bool, bool)
            )
            if refusal is not None:
                outcomes.append(ReleaseOutcome(order_id=order_id, error=refusal))
                continue
            going[order_id] = len(outcomes)
            outcomes.append(ReleaseOutcome(order_id=order_id, order=current))
            steps.append(
                order_step_of(
                    order=current,
                    to_status=OrderStatus.RELEASED,
                    actor=actor,
                    followed_by=[(_released_event(current), current.merchant_id)],
                )
            )
        for step in order_transitions_many(steps, locked=True):
            if step.error is not None:  # the table allows every release checked above: refuse rather than guess
                raise step.error
    return outcomes


@functools.cache
def _release_due_sql(vendor: str) -> str:
    """The due orders' read, written once: the ORM compiled it again at every tick (its subquery, join and
    DISTINCT), ~1 ms of CPU for a statement that mostly finds nothing. The same statement the ORM wrote for
    ``Order.objects.filter(release_after__lte=at).filter(Q(status=ALLOCATED) | Q(status=BACKORDERED,
    merchant_id__in=<policies splitting shipments>, lines__reserved_quantity__gt=0)).order_by("release_after",
    "pk").values_list("pk", flat=True).distinct()[:limit]`` (``test_release_due_sql`` compares the two)."""
    quote = connection.ops.quote_name
    order, line, policy = (quote(m._meta.db_table) for m in (Order, OrderLine, OrderPolicy))
    return (
        f"SELECT DISTINCT {order}.id, {order}.release_after FROM {order}"
        f" LEFT OUTER JOIN {line} ON ({order}.id = {line}.order_id)"
        f" WHERE ({order}.release_after <= %s AND ({order}.status = %s OR ({line}.reserved_quantity > 0"
        f" AND {order}.merchant_id IN (SELECT merchant_id FROM {policy} WHERE split_shipments)"
        f" AND {order}.status = %s)))"
        f" ORDER BY {order}.release_after ASC, {order}.id ASC LIMIT %s"
    )


def _release_due_ids(at: datetime, limit: int) -> list[int]:
    """The ids of the orders ``orders_release_due`` releases at ``at``, the first ``limit`` by release time."""
    moment = Order._meta.get_field("release_after").get_db_prep_value(at, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            _release_due_sql(connection.vendor),
            [moment, str(OrderStatus.ALLOCATED), str(OrderStatus.BACKORDERED), int(limit)],
        )
        return [row[0] for row in cursor.fetchall()]


def orders_release_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Release every order whose buffer is over (the periodic sweep): allocated ones, and backordered ones whose
    merchant ships in parts when something of them is covered. Returns how many went."""
    at = now or clock.now()
    due = _release_due_ids(at, limit)
    if not due:
        return 0  # a quiet tick: no transaction, no lock
    released = 0
    for outcome in orders_release_many(order_ids=due, actor="release sweep", now=at):
        if isinstance(outcome.error, Conflict):
            continue  # held or cancelled in between: nothing to release
        if outcome.error is not None:
            raise outcome.error
        released += 1
    return released
