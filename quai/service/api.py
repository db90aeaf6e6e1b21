"""Customer service HTTP API: customers (GDPR export and erase), tickets (open, answer, note, status), returns,
refunds and reships. Thin: each handler parses, calls one service and answers what the selectors read. Every
route reads through the principal's scope: another merchant's rows answer ``<entity>_not_found``."""

# No "from __future__ import annotations": Ninja reads the handlers' annotations at import.
from typing import Any

from django.http import HttpRequest
from ninja import Router
from ninja.pagination import paginate

from quai.service import selectors, services
from quai.service.models import Ticket
from quai.service.schemas import (
    CustomerOut,
    RefundCreateIn,
    RefundOut,
    ReshipIn,
    ReshipOut,
    RmaCreateIn,
    RmaOut,
    RmaStatusIn,
    TicketCreateIn,
    TicketDetailOut,
    TicketNoteIn,
    TicketOut,
    TicketReplyIn,
    TicketStatusIn,
)
from quai.tenants.auth import principal_of

router = Router(tags=["service"])


def _ticket_detail(request: HttpRequest, ticket_id: int) -> Ticket:
    return selectors.ticket_detail(scope=principal_of(request).scope(), ticket_id=ticket_id)


def _ticket(request: HttpRequest, ticket_id: int | None) -> Ticket | None:
    if ticket_id is None:
        return None
    return selectors.ticket_detail(scope=principal_of(request).scope(), ticket_id=ticket_id)


@router.get("/customers", response=list[CustomerOut])
@paginate
def customer_list(request: HttpRequest, merchant_id: int | None = None, q: str | None = None):
    return selectors.customer_list(scope=principal_of(request).scope(merchant_id), q=q)


@router.get("/customers/{customer_id}", response=CustomerOut)
def customer_detail(request: HttpRequest, customer_id: int) -> Any:
    return services.customer_get(scope=principal_of(request).scope(), customer_id=customer_id)


@router.get("/customers/{customer_id}/export", response=dict[str, Any])
def customer_export(request: HttpRequest, customer_id: int) -> dict[str, Any]:
    """Everything held about the shopper, as JSON (GDPR access and portability)."""
    return services.customer_export(scope=principal_of(request).scope(), customer_id=customer_id)


@router.post("/customers/{customer_id}/erase", response=CustomerOut)
def customer_erase(request: HttpRequest, customer_id: int) -> Any:
    """Erase the shopper's personal data (GDPR erasure); orders, returns and refunds stay, anonymised."""
    principal = principal_of(request)
    return services.customer_erase(scope=principal.scope(), customer_id=customer_id, actor=principal)


@router.get("/tickets", response=list[TicketOut])
@paginate
def ticket_list(
    request: HttpRequest,
    merchant_id: int | None = None,
    status: str | None = None,
    category: str | None = None,
):
    """Open tickets (or those of ``status``), the one due first on top."""
    return selectors.ticket_queue(scope=principal_of(request).scope(merchant_id), status=status, category=category)


@router.post("/tickets", response={201: TicketDetailOut})
def ticket_create(request: HttpRequest, payload: TicketCreateIn) -> tuple[int, Ticket]:
    """Open a ticket (the API channel, or ``shop`` for a shopper's message a shop forwarded): linked to the orders
    named by id, by number or tracking number in the text, or the shopper's latest order; a "where is my order"
    about an order on time is answered at once."""
    principal = principal_of(request)
    merchant = principal.merchant_for(payload.merchant_id)
    ticket = services.ticket_open(
        merchant_id=merchant.pk,
        channel=payload.channel,
        message=services.IncomingMessage(
            body=payload.body,
            subject=payload.subject,
            email=payload.email,
            name=payload.name,
            phone=payload.phone,
            order_ids=tuple(payload.order_ids),
        ),
        actor=principal,
    )
    return 201, _ticket_detail(request, ticket.pk)


@router.get("/tickets/{ticket_id}", response=TicketDetailOut)
def ticket_detail(request: HttpRequest, ticket_id: int) -> Ticket:
    return _ticket_detail(request, ticket_id)


@router.post("/tickets/{ticket_id}/replies", response=TicketDetailOut)
def ticket_reply(request: HttpRequest, ticket_id: int, payload: TicketReplyIn) -> Ticket:
    """Answer the shopper (mailed when the ticket has an address); the ticket then waits for them, or resolves."""
    principal = principal_of(request)
    ticket = selectors.ticket_detail(scope=principal.scope(), ticket_id=ticket_id)
    services.ticket_reply(ticket=ticket, body=payload.body, actor=principal, resolve=payload.resolve)
    return _ticket_detail(request, ticket_id)


@router.post("/tickets/{ticket_id}/notes", response=TicketDetailOut)
def ticket_note(request: HttpRequest, ticket_id: int, payload: TicketNoteIn) -> Ticket:
    principal = principal_of(request)
    ticket = selectors.ticket_detail(scope=principal.scope(), ticket_id=ticket_id)
    services.ticket_note(ticket=ticket, body=payload.body, actor=principal)
    return _ticket_detail(request, ticket_id)


@router.post("/tickets/{ticket_id}/status", response=TicketDetailOut)
def ticket_status(request: HttpRequest, ticket_id: int, payload: TicketStatusIn) -> Ticket:
    principal = principal_of(request)
    ticket = selectors.ticket_detail(scope=principal.scope(), ticket_id=ticket_id)
    services.ticket_transition(ticket=ticket, to_status=payload.status, actor=principal, reason=payload.reason)
    return _ticket_detail(request, ticket_id)


@router.post("/returns", response={201: RmaOut})
def rma_create(request: HttpRequest, payload: RmaCreateIn) -> tuple[int, Any]:
    """Open a return or an exchange for lines of a shipped order; its return label is requested at once."""
    principal = principal_of(request)
    rma = services.rma_open(
        scope=principal.scope(),
        order_id=payload.order_id,
        actor=principal,
        lines=[line.dict() for line in payload.lines],
        reason=payload.reason,
        kind=payload.kind,
        note=payload.note,
        ticket=_ticket(request, payload.ticket_id),
    )
    return 201, selectors.rma_get(scope=principal.scope(), rma_id=rma.pk)


@router.get("/returns/{rma_id}", response=RmaOut)
def rma_detail(request: HttpRequest, rma_id: int) -> Any:
    return selectors.rma_get(scope=principal_of(request).scope(), rma_id=rma_id)


@router.post("/returns/{rma_id}/status", response=RmaOut)
def rma_status(request: HttpRequest, rma_id: int, payload: RmaStatusIn) -> Any:
    principal = principal_of(request)
    rma = selectors.rma_get(scope=principal.scope(), rma_id=rma_id)
    services.rma_transition(rma=rma, to_status=payload.status, actor=principal, reason=payload.reason)
    return selectors.rma_get(scope=principal.scope(), rma_id=rma_id)


@router.post("/refunds", response={201: RefundOut})
def refund_create(request: HttpRequest, payload: RefundCreateIn) -> tuple[int, Any]:
    """Refund a shopper, up to what the order cost less earlier refunds; pushed to the shop when it can be."""
    principal = principal_of(request)
    rma = selectors.rma_get(scope=principal.scope(), rma_id=payload.rma_id) if payload.rma_id else None
    refund = services.refund_issue(
        scope=principal.scope(),
        order_id=payload.order_id,
        actor=principal,
        amount=payload.amount,
        reason=payload.reason,
        ticket=_ticket(request, payload.ticket_id),
        rma=rma,
    )
    return 201, refund


@router.post("/reships", response={201: ReshipOut})
def reship_create(request: HttpRequest, payload: ReshipIn) -> tuple[int, dict[str, Any]]:
    """Ship missing or damaged items again: a new order through intake, saying why and who pays."""
    principal = principal_of(request)
    order = services.action_reship(
        scope=principal.scope(),
        order_id=payload.order_id,
        actor=principal,
        lines=[line.dict() for line in payload.lines],
        reason=payload.reason,
        paid_by=payload.paid_by,
        ticket=_ticket(request, payload.ticket_id),
    )
    return 201, {"order_id": order.pk, "external_id": order.external_id, "status": order.status}
