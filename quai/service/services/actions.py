"""Agent actions on an order, through the warehouse's own services, effective at once.

Hold, release, cancel and address change are orders' services (``quai.orders.services``): a hold placed here is
the hold the pack station reads, and a refusal (``order_labelled``: a label exists; ``invalid_transition``: the
order has moved on) is the warehouse's own, with its reason. A reship is a new order through orders intake (its
reason and who pays in its notes). Every action, done or refused, is kept (``AgentAction``) for the order-360 panel.

Returns (RMA): lines of the order, a reason, a status machine (``quai.service.domain.RMA_TRANSITIONS``); asking
for the return label is the ``label_requested`` step, whose event shipping answers with a label. An exchange also
opens its replacement order through intake, on hold until the return is received (at once for a trusted shopper).
Refunds are recorded, bounded by what was paid, and pushed to the shop through integrations when it can.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, QuaiError, ValidationFailed
from quai.core.outbox import event_record
from quai.core.states import StateMachine, actor_of, transition
from quai.orders import selectors as orders_selectors
from quai.orders import services as orders_services
from quai.orders.domain import HoldReason
from quai.service import domain
from quai.service.events import RefundRecorded, RmaOpened, RmaStatusChanged
from quai.service.models import (
    AgentAction,
    Category,
    CustomerOrder,
    Refund,
    RefundState,
    Rma,
    RmaKind,
    RmaLine,
    RmaStatus,
    Ticket,
)
from quai.tenants.scope import Scope

RMA_MACHINE = StateMachine.from_table("rma", domain.RMA_TRANSITIONS, names=domain.RMA_TRANSITION_NAMES)

T = TypeVar("T")

PAYERS = ("merchant", "warehouse", "carrier", "shopper")


def _record(
    *, kind: str, order: Any, ticket: Ticket | None, actor: Any, outcome: str, error: QuaiError | None, details: dict
) -> AgentAction:
    who = actor_of(actor)
    return AgentAction.objects.create(
        merchant_id=order.merchant_id,
        ticket=ticket,
        order_id=order.pk,
        kind=kind,
        outcome=outcome,
        code=error.code if error else "",
        message=error.message if error else "",
        details=details,
        actor_id=who.user_id,
        actor_label=who.label,
        at=clock.now(),
    )


def _act(
    kind: str, *, scope: Scope, order_id: int, ticket: Ticket | None, actor: Any, details: dict, run: Callable[[Any], T]
) -> T:
    """Run one action on an order of ``scope``; keep it as done, or as refused with the warehouse's reason (in its
    own transaction, since the refused one rolled back) and raise the refusal again for the caller to show."""
    order = orders_selectors.order_get(scope=scope, order_id=order_id)
    try:
        with transaction.atomic():
            result = run(order)
            _record(kind=kind, order=order, ticket=ticket, actor=actor, outcome="done", error=None, details=details)
            return result
    except QuaiError as refused:
        _record(kind=kind, order=order, ticket=ticket, actor=actor, outcome="refused", error=refused, details=details)
        raise


def action_hold(*, scope: Scope, order_id: int, actor: Any, note: str = "", ticket: Ticket | None = None) -> Any:
    return _act(
        "hold",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"note": note},
        run=lambda order: orders_services.order_hold(
            order=order.pk, reason=HoldReason.CUSTOMER_SERVICE, note=note, actor=actor
        ),
    )


def action_release_hold(
    *, scope: Scope, order_id: int, actor: Any, note: str = "", ticket: Ticket | None = None
) -> Any:
    return _act(
        "release_hold",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"note": note},
        run=lambda order: orders_services.order_release_hold(order=order.pk, actor=actor, note=note),
    )


def action_cancel(*, scope: Scope, order_id: int, actor: Any, reason: str, ticket: Ticket | None = None) -> Any:
    return _act(
        "cancel",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"reason": reason},
        run=lambda order: orders_services.order_cancel(order=order.pk, actor=actor, reason=reason),
    )


def action_address_change(
    *, scope: Scope, order_id: int, actor: Any, address: Mapping[str, Any], ticket: Ticket | None = None
) -> Any:
    # The address itself is personal data: the kept action names the country only.
    return _act(
        "address_change",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"country": str(address.get("country", ""))},
        run=lambda order: orders_services.order_address_change(order=order.pk, address=address, actor=actor),
    )


def action_item_add(
    *,
    scope: Scope,
    order_id: int,
    actor: Any,
    sku_code: str,
    quantity: int,
    unit_price: Decimal | str = "0",
    ticket: Ticket | None = None,
) -> Any:
    """Add an item (a SKU code or barcode of the order's merchant) and reserve it, until picking starts."""
    from quai.catalog.selectors import scan_resolve
    from quai.orders.services.amend import order_line_add

    def run(order: Any) -> Any:
        sku = scan_resolve(merchant=order.merchant_id, code=sku_code).sku
        if sku is None:
            raise ValidationFailed(_("Scan or type an item's code."), code="unknown_code")
        return order_line_add(order=order.pk, sku=sku, quantity=quantity, unit_price=unit_price, actor=actor)

    return _act(
        "item_add",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"sku_code": sku_code, "quantity": quantity, "unit_price": str(unit_price)},
        run=run,
    )


def action_carrier_change(
    *, scope: Scope, order_id: int, actor: Any, carrier_service: str, ticket: Ticket | None = None
) -> Any:
    """Another carrier service for the order, until its label exists."""
    from quai.orders.services.amend import order_carrier_service_change

    return _act(
        "carrier_change",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"carrier_service": carrier_service},
        run=lambda order: order_carrier_service_change(order=order.pk, carrier_service=carrier_service, actor=actor),
    )


def _lines_chosen(order: Any, lines: Sequence[Mapping[str, Any]]) -> list[tuple[Any, int]]:
    """(order line, quantity) for each chosen line, checked against the order: its own lines, within quantity."""
    by_id = {line.pk: line for line in order.lines.all()}
    chosen: list[tuple[Any, int]] = []
    problems = []
    for index, item in enumerate(lines):
        line = by_id.get(item.get("line_id"))
        quantity = item.get("quantity")
        if line is None:
            problems.append({"field": f"lines.{index}.line_id", "message": _("Not a line of this order.")})
        elif not isinstance(quantity, int) or isinstance(quantity, bool) or not 0 < quantity <= line.quantity:
            problems.append(
                {
                    "field": f"lines.{index}.quantity",
                    "message": _("Between 1 and %(max)d.") % {"max": line.quantity},
                }
            )
        else:
            chosen.append((line, quantity))
    if not lines:
        problems.append({"field": "lines", "message": _("Choose at least one line.")})
    if problems:
        raise ValidationFailed(
            _("The lines are not valid: %(summary)s")
            % {"summary": "; ".join(f"{p['field']}: {p['message']}" for p in problems)},
            code="invalid_input",
            details={"fields": problems},
        )
    return chosen


def _shipped_check(order: Any) -> None:
    """Returns and reships are about items the shopper got (or should have): the order must have left."""
    if order.status not in ("shipped", "partially_shipped", "delivered"):
        raise Conflict(
            _("Order %(order)s has not left the warehouse (%(status)s): cancel it or change it instead.")
            % {"order": order.external_id, "status": order.get_status_display()},
            code="order_not_shipped",
            details={"order_id": order.pk, "status": order.status},
        )


def _follow_up_order(order: Any, *, suffix: str, chosen: list[tuple[Any, int]], notes: str, actor: Any) -> Any:
    """A new order for the same shopper and address, at no charge, through orders intake."""
    number = 1 + sum(
        1
        for _ in orders_selectors.order_list(scope=Scope.merchant(order.merchant_id)).filter(
            external_id__startswith=f"{order.external_id}-{suffix}"
        )
    )
    data = {
        "channel": "service",
        "external_id": f"{order.external_id}-{suffix}{number}"[:100],
        "priority": order.priority,
        "currency": order.currency,
        "shopper": {"name": order.shopper_name, "email": order.shopper_email, "phone": order.shopper_phone},
        "shipping_address": {
            "company": order.ship_company,
            "line1": order.address_line1,
            "line2": order.address_line2,
            "postcode": order.postcode,
            "city": order.city,
            "region": order.region,
            "country": order.country,
        },
        "carrier_service": order.carrier_service,
        "shipping_total": "0",
        "notes": notes[:2000],
        "lines": [{"sku": line.sku_code, "quantity": quantity, "unit_price": "0"} for line, quantity in chosen],
    }
    created = orders_services.order_create(merchant=order.merchant_id, data=data, actor=actor).order
    link = CustomerOrder.objects.filter(order_id=order.pk).first()
    if link is not None:
        CustomerOrder.objects.get_or_create(order_id=created.pk, defaults={"customer_id": link.customer_id})
    return created


def action_reship(
    *,
    scope: Scope,
    order_id: int,
    actor: Any,
    lines: Sequence[Mapping[str, Any]],
    reason: str,
    paid_by: str,
    ticket: Ticket | None = None,
) -> Any:
    """Ship missing or damaged items again: a new order (``<number>-R<n>``, free for the shopper) whose notes say
    why and who pays (merchant, warehouse, carrier or shopper)."""
    if paid_by not in PAYERS:
        raise ValidationFailed(
            _("Say who pays for the reship: %(payers)s.") % {"payers": ", ".join(PAYERS)},
            code="invalid_input",
            details={"fields": [{"field": "paid_by", "message": ", ".join(PAYERS)}]},
        )
    if not reason.strip():
        raise ValidationFailed(
            _("Say why the items are shipped again."),
            code="reason_required",
            details={"fields": [{"field": "reason", "message": _("Required.")}]},
        )

    def run(order: Any) -> Any:
        _shipped_check(order)
        chosen = _lines_chosen(order, lines)
        notes = _("Reship of %(order)s: %(reason)s (paid by %(payer)s)") % {
            "order": order.external_id,
            "reason": reason.strip(),
            "payer": paid_by,
        }
        return _follow_up_order(order, suffix="R", chosen=chosen, notes=notes, actor=actor)

    return _act(
        "reship",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"reason": reason, "paid_by": paid_by, "lines": list(lines)},
        run=run,
    )


# --- Returns ------------------------------------------------------------------------------------------------------


def rma_transition(*, rma: Rma, to_status: str, actor: Any = None, reason: str = "") -> Rma:
    values: dict[str, Any] = {}
    if to_status == RmaStatus.LABEL_REQUESTED:
        values["label_requested_at"] = clock.now()
    with transaction.atomic():
        transition(
            rma,
            machine=RMA_MACHINE,
            to_status=to_status,
            actor=actor,
            reason=reason,
            values=values,
            event=lambda step: RmaStatusChanged(
                rma_id=rma.pk, order_id=rma.order_id, from_status=step.from_status, to_status=step.to_status
            ),
        )
        if to_status == RmaStatus.RECEIVED and rma.replacement_order_id:
            replacement = orders_selectors.order_get(
                scope=Scope.merchant(rma.merchant_id), order_id=rma.replacement_order_id
            )
            if replacement.status == "on_hold":
                orders_services.order_release_hold(
                    order=replacement.pk, actor=actor, note=_("Return %(rma)s received") % {"rma": rma.reference}
                )
    return rma


def rma_open(
    *,
    scope: Scope,
    order_id: int,
    actor: Any,
    lines: Sequence[Mapping[str, Any]],
    reason: str,
    kind: str = RmaKind.RETURN,
    note: str = "",
    request_label: bool = True,
    ticket: Ticket | None = None,
) -> Rma:
    """Open a return (or an exchange) for lines of an order that left the warehouse; ask for its label at once.

    An exchange opens its replacement order through intake (the same lines at no charge), which reserves the
    stock now; it stays on hold until the return is received, unless the shopper is trusted.
    """
    if reason not in Category.values:
        raise ValidationFailed(
            _("Unknown return reason %(reason)s.") % {"reason": reason},
            code="invalid_input",
            details={"fields": [{"field": "reason", "message": ", ".join(Category.values)}]},
        )
    if kind not in RmaKind.values:
        raise ValidationFailed(
            _("Unknown return kind %(kind)s.") % {"kind": kind},
            code="invalid_input",
            details={"fields": [{"field": "kind", "message": ", ".join(RmaKind.values)}]},
        )

    def run(order: Any) -> Rma:
        _shipped_check(order)
        chosen = _lines_chosen(order, lines)
        _returnable_check(order, chosen)
        rma = Rma.objects.create(
            merchant_id=order.merchant_id, order_id=order.pk, ticket=ticket, kind=kind, reason=reason, note=note
        )
        RmaLine.objects.bulk_create(
            [RmaLine(rma=rma, order_line=line, sku_code=line.sku_code, quantity=quantity) for line, quantity in chosen]
        )
        event_record(
            RmaOpened(
                rma_id=rma.pk,
                order_id=order.pk,
                kind=kind,
                reason=reason,
                lines=[{"sku_code": line.sku_code, "quantity": quantity} for line, quantity in chosen],
            ),
            merchant_id=order.merchant_id,
        )
        if kind == RmaKind.EXCHANGE:
            replacement = _follow_up_order(
                order,
                suffix="X",
                chosen=chosen,
                notes=_("Exchange %(rma)s of %(order)s") % {"rma": rma.reference, "order": order.external_id},
                actor=actor,
            )
            Rma.objects.filter(pk=rma.pk).update(replacement_order=replacement)
            rma.replacement_order = replacement
            link = CustomerOrder.objects.filter(order_id=order.pk).select_related("customer").first()
            if not (link and link.customer.trusted):
                orders_services.order_hold(
                    order=replacement.pk,
                    reason=HoldReason.CUSTOMER_SERVICE,
                    note=_("Waits for return %(rma)s") % {"rma": rma.reference},
                    actor=actor,
                )
        if request_label:
            rma_transition(rma=rma, to_status=RmaStatus.LABEL_REQUESTED, actor=actor)
        return rma

    return _act(
        "exchange" if kind == RmaKind.EXCHANGE else "return",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"reason": reason, "lines": list(lines)},
        run=run,
    )


def _returnable_check(order: Any, chosen: list[tuple[Any, int]]) -> None:
    """A line cannot come back more often than it was sent: open returns count against it."""
    open_statuses = [s for s in RmaStatus.values if s != RmaStatus.CANCELLED]
    for line, quantity in chosen:
        already = (
            RmaLine.objects.filter(order_line=line, rma__status__in=open_statuses).aggregate(total=Sum("quantity"))[
                "total"
            ]
            or 0
        )
        if already + quantity > line.quantity:
            raise ValidationFailed(
                _("%(sku)s: %(already)d of %(quantity)d already on a return.")
                % {"sku": line.sku_code, "already": already, "quantity": line.quantity},
                code="return_exceeds_quantity",
                details={"line_id": line.pk, "already": already, "quantity": line.quantity},
            )


# --- Refunds ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundPush:
    state: str
    external_id: str = ""
    error: str = ""


def _push_refund(refund: Refund, order: Any) -> RefundPush:
    """Queue the refund for the shop through integrations' ``connection_push_refund`` (a retried connector call
    per shop the order came from); an order from no connected shop stays recorded for the merchant to refund."""
    from quai.integrations import services as integrations_services
    from quai.integrations.connectors.base import Refund as ShopRefund

    push = getattr(integrations_services, "connection_push_refund", None)
    if push is None:
        return RefundPush(RefundState.RECORDED)
    shaped = ShopRefund(lines=(), amount=refund.amount, currency=refund.currency, reason=refund.reason)
    try:
        calls = push(order=order, refund=shaped, key=f"quai-refund-{refund.pk}")
    except QuaiError as exc:
        return RefundPush(RefundState.FAILED, error=exc.message[:500])
    if not calls:
        return RefundPush(RefundState.RECORDED)
    return RefundPush(RefundState.PUSHED, external_id=",".join(str(call.pk) for call in calls)[:100])


def refund_issue(
    *,
    scope: Scope,
    order_id: int,
    actor: Any,
    amount: Decimal | str,
    reason: str,
    ticket: Ticket | None = None,
    rma: Rma | None = None,
) -> Refund:
    """Record a refund for an order, never more than was paid less what was refunded already, and push it."""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        value = Decimal("-1")
    if value.is_nan() or value <= 0:  # NaN quantizes to itself, and comparing it raises
        raise ValidationFailed(
            _("The refund must be an amount above zero."),
            code="invalid_input",
            details={"fields": [{"field": "amount", "message": _("Above zero.")}]},
        )
    if not reason.strip():
        raise ValidationFailed(
            _("Say why the shopper is refunded."),
            code="reason_required",
            details={"fields": [{"field": "reason", "message": _("Required.")}]},
        )

    def run(order: Any) -> Refund:
        # The order row locked first: two agents refunding at once cannot both fit under what was paid.
        orders_services.order_locked(order.pk)
        refunded = Refund.objects.filter(order_id=order.pk).exclude(state=RefundState.FAILED).aggregate(
            total=Sum("amount")
        )["total"] or Decimal("0")
        left = order.total - refunded
        if value > left:
            raise ValidationFailed(
                _("%(amount)s %(currency)s is more than what is left to refund on order %(order)s: %(left)s.")
                % {"amount": value, "currency": order.currency, "order": order.external_id, "left": left},
                code="refund_exceeds_paid",
                details={"order_id": order.pk, "paid": str(order.total), "refunded": str(refunded), "left": str(left)},
            )
        refund = Refund.objects.create(
            merchant_id=order.merchant_id,
            order_id=order.pk,
            ticket=ticket,
            rma=rma,
            amount=value,
            currency=order.currency,
            reason=reason.strip()[:500],
            actor_label=actor_of(actor).label,
        )
        pushed = _push_refund(refund, order)
        Refund.objects.filter(pk=refund.pk).update(
            state=pushed.state, external_id=pushed.external_id, push_error=pushed.error
        )
        refund.refresh_from_db()
        event_record(
            RefundRecorded(
                refund_id=refund.pk,
                order_id=order.pk,
                amount=str(refund.amount),
                currency=refund.currency,
                state=refund.state,
            ),
            merchant_id=order.merchant_id,
        )
        return refund

    return _act(
        "refund",
        scope=scope,
        order_id=order_id,
        ticket=ticket,
        actor=actor,
        details={"amount": str(value), "reason": reason},
        run=run,
    )
