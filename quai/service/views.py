"""The agent console (htmx, keyboard): the queue sorted by SLA due time, a ticket beside its order's 360 panel,
answers with macros, notes, assignment, statuses, and actions on the order through the warehouse's services.

Every write is one service call; a refusal (``order_labelled``, ``invalid_transition``…) is shown in the panel with
the warehouse's own reason. POSTs answer the workspace fragment to htmx, or redirect back without it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from quai.core.errors import QuaiError
from quai.orders import selectors as orders_selectors
from quai.service import domain, selectors, services
from quai.service.models import Category, RmaKind, Ticket, TicketStatus
from quai.tenants.access import staff_role_required, staff_scope
from quai.tenants.scope import Scope

AGENT_GROUPS = ("admin", "supervisor", "agent")

agent_required = staff_role_required(AGENT_GROUPS, gettext_lazy("This screen is for contact-centre agents."))

#: The words the console shows for the codes it reads: an SLA clock's state, why a ticket waits for an agent, who
#: pays a reship (a code not listed shows as it is).
SLA_LABELS = {
    "met": gettext_lazy("met"),
    "ok": gettext_lazy("on time"),
    "at_risk": gettext_lazy("at risk"),
    "breached": gettext_lazy("breached"),
}
ESCALATION_LABELS = {
    "on_hold": gettext_lazy("order on hold"),
    "backordered": gettext_lazy("order waiting for stock"),
    "cancelled": gettext_lazy("order cancelled"),
    "late": gettext_lazy("late"),
    "no_tracking_news": gettext_lazy("no news from the carrier"),
    "no_promise": gettext_lazy("no promised date"),
    "shop_event": gettext_lazy("the shop's event"),
}
PAYER_LABELS = {
    "merchant": gettext_lazy("the merchant"),
    "warehouse": gettext_lazy("the warehouse"),
    "carrier": gettext_lazy("the carrier"),
    "shopper": gettext_lazy("the shopper"),
}


def _words(ticket: Ticket, clocks: dict[str, str]) -> dict[str, Any]:
    return {
        "sla": {name: SLA_LABELS.get(state, state) for name, state in clocks.items()},
        "escalation": ESCALATION_LABELS.get(ticket.escalation, ticket.escalation),
    }


def _hx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _number(value: Any, default: int) -> int:
    """A whole number typed or sent in a form, else ``default`` ("²" passes ``str.isdigit``; ``int`` refuses it)."""
    text = str(value or "").strip()
    return int(text) if text.isdecimal() else default


@agent_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    scope = staff_scope(request.user)
    status = request.GET.get("status") or None
    category = request.GET.get("category") or None
    mine = request.GET.get("mine") == "1"
    tickets = selectors.ticket_queue(
        scope=scope, status=status, category=category, assignee_id=request.user.pk if mine else None
    ).prefetch_related("orders")[:200]
    rows = []
    for t in tickets:
        clocks = services.sla_clocks(t)
        rows.append({"ticket": t, "sla": clocks, "words": _words(t, clocks)})
    unsent = selectors.unsent_answers(scope=scope)
    return render(
        request,
        "service/queue.html",
        {
            "rows": rows,
            "statuses": TicketStatus.choices,
            "categories": Category.choices,
            "status": status or "",
            "category": category or "",
            "mine": mine,
            "unsent": unsent,
            "screen": "service",
        },
    )


def _workspace(
    request: HttpRequest, ticket: Ticket, *, order_id: int | None = None, feedback: dict[str, str] | None = None
) -> dict[str, Any]:
    scope = Scope.merchant(ticket.merchant_id)
    linked = list(ticket.orders.order_by("-id").values_list("pk", "external_id"))
    order_ids = [pk for pk, _external_id in linked]
    chosen = order_id if order_id in order_ids else (order_ids[0] if order_ids else None)
    panel = selectors.order_360(scope=scope, order_id=chosen, exclude_ticket_id=ticket.pk) if chosen else None
    order = panel.order if panel else None
    macros = []
    values = services.macro_values(ticket=ticket, order=order)
    clocks = services.sla_clocks(ticket)
    for macro in selectors.macro_list(scope=scope, merchant_id=ticket.merchant_id):
        macros.append({"macro": macro, "text": domain.macro_render(macro.body, values)})
    return {
        "ticket": ticket,
        "messages": selectors.ticket_messages(scope=scope, ticket=ticket),
        "sla": clocks,
        "words": _words(ticket, clocks),
        "order_ids": order_ids,
        "linked_orders": linked,
        "panel": panel,
        "macros": macros,
        "statuses": [
            (value, label) for value, label in TicketStatus.choices if services.TICKET_MACHINE.can(ticket.status, value)
        ],
        "categories": Category.choices,
        "reasons": [c for c in Category.choices if c[0] not in ("where_is_my_order", "other")],
        "payers": [(payer, PAYER_LABELS.get(payer, payer)) for payer in services.PAYERS],
        "rma_kinds": RmaKind.choices,
        "feedback": feedback,
        "screen": "service",
    }


def _ticket(request: HttpRequest, ticket_id: int) -> Ticket:
    return selectors.ticket_detail(scope=staff_scope(request.user), ticket_id=ticket_id)


def _amount(value: Any) -> str:
    """An amount as an agent types it: "10,50" (the French decimal comma) is 10.50; "1,234" stays as typed (a
    thousands comma misread as decimals would pay a thousandth), for the service to refuse."""
    text = str(value or "").strip().replace("\u00a0", "").replace(" ", "")
    whole, comma, decimals = text.partition(",")
    if comma and "." not in text and "," not in decimals and len(decimals) <= 2:
        return f"{whole}.{decimals}"
    return text


def _not_found(request: HttpRequest, error: QuaiError) -> HttpResponse:
    return render(request, "service/not_found.html", {"message": error.message, "screen": "service"}, status=404)


@agent_required
@require_GET
def ticket_page(request: HttpRequest, ticket_id: int) -> HttpResponse:
    try:
        ticket = _ticket(request, ticket_id)
    except QuaiError as exc:
        return _not_found(request, exc)
    context = _workspace(request, ticket, order_id=_number(request.GET.get("order"), 0) or None)
    return render(request, "service/ticket.html", context)


def _answer(request: HttpRequest, ticket: Ticket, *, ok: str = "", error: QuaiError | None = None) -> HttpResponse:
    ticket.refresh_from_db()
    feedback = {"result": "error", "text": error.message, "code": error.code} if error else {"result": "ok", "text": ok}
    order_id = _number(request.POST.get("order_id"), 0) or None
    if _hx(request):
        context = _workspace(request, ticket, order_id=order_id, feedback=feedback)
        return render(request, "service/_workspace.html", context, status=200)
    url = reverse("service_ops:ticket", kwargs={"ticket_id": ticket.pk})
    return redirect(f"{url}?order={order_id}" if order_id else url)


@agent_required
@require_POST
def ticket_post(request: HttpRequest, ticket_id: int, what: str) -> HttpResponse:
    """One write from the ticket's workspace: reply, note, assign, status, category, link an order."""
    try:
        ticket = _ticket(request, ticket_id)
    except QuaiError as exc:
        return _not_found(request, exc)
    user = request.user
    data = request.POST
    try:
        if what == "reply":
            services.ticket_reply(
                ticket=ticket, body=data.get("body", ""), actor=user, resolve=data.get("resolve") == "1"
            )
            message = _("Answer sent.")
        elif what == "resend":
            raw = data.get("message_id", "")
            sent = services.ticket_message_resend(scope=Scope.merchant(ticket.merchant_id), message_id=_number(raw, 0))
            if sent.send_state != "sent":
                raise QuaiError(sent.send_error or _("The mail could not be sent."), code="mail_not_sent")
            message = _("Answer sent.")
        elif what == "note":
            services.ticket_note(ticket=ticket, body=data.get("body", ""), actor=user)
            message = _("Note added.")
        elif what == "assign":
            services.ticket_assign(ticket=ticket, assignee=user if data.get("to") != "queue" else None, actor=user)
            message = _("Assigned.")
        elif what == "status":
            services.ticket_transition(ticket=ticket, to_status=data.get("status", ""), actor=user)
            message = _("Status changed.")
        elif what == "category":
            services.ticket_categorise(ticket=ticket, category=data.get("category", ""))
            message = _("Category changed.")
        elif what == "link":
            found = (
                orders_selectors.order_list(scope=Scope.merchant(ticket.merchant_id))
                .filter(external_id=data.get("number", "").strip())
                .first()
            )
            if found is None:
                raise QuaiError(_("No order of this merchant has that number."), code="order_not_found")
            ticket.orders.add(found)
            message = _("Order linked.")
        else:
            raise QuaiError(_("Unknown action."), code="invalid_input")
    except QuaiError as exc:
        return _answer(request, ticket, error=exc)
    return _answer(request, ticket, ok=message)


def _lines(data: Any) -> list[dict[str, int]]:
    """Chosen lines from the form: ``line_<id>`` = quantity (empty or 0: not chosen)."""
    chosen = []
    for key, value in data.items():
        line_id = _number(key[5:], -1) if key.startswith("line_") else -1
        if line_id >= 0 and str(value).strip() not in ("", "0"):
            chosen.append({"line_id": line_id, "quantity": _number(value, -1)})
    return chosen


@agent_required
@require_POST
def order_action(request: HttpRequest, ticket_id: int, action: str) -> HttpResponse:
    """An action on the ticket's order through the warehouse's own services, effective at once."""
    try:
        ticket = _ticket(request, ticket_id)
    except QuaiError as exc:
        return _not_found(request, exc)
    data = request.POST
    user = request.user
    scope = Scope.merchant(ticket.merchant_id)
    order_id = _number(data.get("order_id"), 0)
    common: dict[str, Any] = {"scope": scope, "order_id": order_id, "actor": user, "ticket": ticket}
    try:
        if order_id not in ticket.orders.values_list("pk", flat=True):
            raise QuaiError(_("This order is not linked to the ticket."), code="order_not_found")
        if action == "hold":
            services.action_hold(**common, note=data.get("note", ""))
            message = _("Order put on hold: the warehouse stops it now.")
        elif action == "release_hold":
            services.action_release_hold(**common, note=data.get("note", ""))
            message = _("Hold released.")
        elif action == "cancel":
            services.action_cancel(**common, reason=data.get("reason", ""))
            message = _("Order cancelled; its stock is given back.")
        elif action == "address":
            address = {
                key: data.get(key, "") for key in ("company", "line1", "line2", "postcode", "city", "region", "country")
            }
            services.action_address_change(**common, address=address)
            message = _("Address changed.")
        elif action == "reship":
            created = services.action_reship(
                **common, lines=_lines(data), reason=data.get("reason", ""), paid_by=data.get("paid_by", "")
            )
            ticket.orders.add(created)
            message = _("Reship %(order)s created.") % {"order": created.external_id}
        elif action == "return":
            rma = services.rma_open(
                **common, lines=_lines(data), reason=data.get("return_reason", ""), kind=data.get("kind", "return")
            )
            message = _("Return %(rma)s opened; its label is requested.") % {"rma": rma.reference}
            if rma.replacement_order_id:
                ticket.orders.add(rma.replacement_order_id)
        elif action == "refund":
            refund = services.refund_issue(**common, amount=_amount(data.get("amount")), reason=data.get("reason", ""))
            message = _("Refund of %(amount)s %(currency)s: %(state)s.") % {
                "amount": refund.amount,
                "currency": refund.currency,
                "state": refund.get_state_display(),
            }
        elif action == "add_item":
            quantity = data.get("quantity", "")
            line = services.action_item_add(
                **common,
                sku_code=data.get("sku", ""),
                quantity=_number(quantity, -1),
                unit_price=_amount(data.get("unit_price")) or "0",
            )
            message = _("%(quantity)d × %(sku)s added: %(reserved)d reserved.") % {
                "quantity": line.quantity,
                "sku": line.sku_code,
                "reserved": line.reserved_quantity,
            }
        elif action == "carrier":
            order = services.action_carrier_change(**common, carrier_service=data.get("carrier_service", ""))
            message = _("Carrier service now %(service)s.") % {"service": order.carrier_service}
        else:
            raise QuaiError(_("Unknown action."), code="invalid_input")
    except QuaiError as exc:
        return _answer(request, ticket, error=exc)
    return _answer(request, ticket, ok=message)
