"""Reads of customer service, always inside a tenant scope; the order-360 panel assembled from orders' selectors and
what the warehouse recorded (``quai.service.warehouse``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Case, F, Q, QuerySet, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.orders import selectors as orders_selectors
from quai.service import warehouse
from quai.service.models import (
    AgentAction,
    Customer,
    CustomerOrder,
    Macro,
    Refund,
    Rma,
    Ticket,
    TicketMessage,
    TicketStatus,
)
from quai.tenants.scope import Scope
from quai.warehouse.models import Site, ZoneKind
from quai.warehouse.selectors import site_list


def customer_list(*, scope: Scope, q: str | None = None) -> QuerySet[Customer]:
    qs = Customer.objects.within(scope)
    if q:
        term = q.strip()
        qs = qs.filter(Q(email__icontains=term) | Q(name__icontains=term) | Q(phone__icontains=term))
    return qs.order_by("-id")


def ticket_queue(
    *,
    scope: Scope,
    status: str | None = None,
    category: str | None = None,
    assignee_id: int | None = None,
    open_only: bool = True,
) -> QuerySet[Ticket]:
    """Tickets sorted by the SLA clock due first: the first response while unanswered, else the resolution."""
    qs = Ticket.objects.within(scope).select_related("assignee", "customer")
    if status:
        qs = qs.filter(status=status)
    elif open_only:
        qs = qs.filter(status__in=[TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING])
    if category:
        qs = qs.filter(category=category)
    if assignee_id is not None:
        qs = qs.filter(assignee_id=assignee_id)
    # An unanswered ticket's next deadline is its first response; an answered one's, its resolution.
    next_due = Case(When(first_responded_at__isnull=True, then=F("first_response_due")), default=F("resolution_due"))
    ordered = qs.annotate(next_due=Coalesce(next_due, F("resolution_due"))).order_by(
        F("next_due").asc(nulls_last=True), "id"
    )
    return ordered  # type: ignore[return-value]


def ticket_detail(*, scope: Scope, ticket_id: int) -> Ticket:
    ticket = Ticket.objects.within(scope).select_related("assignee", "customer").filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFound(_("Ticket not found."), code="ticket_not_found", details={"ticket_id": ticket_id})
    return ticket


def ticket_messages(*, scope: Scope, ticket: Ticket, with_notes: bool = True) -> QuerySet[TicketMessage]:
    qs = TicketMessage.objects.within(scope).filter(ticket=ticket)
    if not with_notes:
        qs = qs.exclude(kind="note")
    return qs.order_by("created_at", "id")


def macro_list(*, scope: Scope, merchant_id: int) -> QuerySet[Macro]:
    return Macro.objects.within(scope).filter(merchant_id=merchant_id).order_by("name")


def rma_get(*, scope: Scope, rma_id: int) -> Rma:
    rma = Rma.objects.within(scope).prefetch_related("lines").filter(pk=rma_id).first()
    if rma is None:
        raise NotFound(_("Return not found."), code="rma_not_found", details={"rma_id": rma_id})
    return rma


@dataclass
class Order360:
    """Everything about one order an agent needs beside a ticket."""

    order: Any
    lines: list[Any]
    timeline: list[Any]
    events: list[warehouse.WarehouseEvent]
    parcels: list[warehouse.Parcel]
    tickets: list[Ticket]
    returns: list[Rma]
    refunds: list[Refund]
    actions: list[AgentAction]
    customer: Customer | None = None
    labelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def order_360(*, scope: Scope, order_id: int, exclude_ticket_id: int | None = None) -> Order360:
    """The order with its lines, promise, status history, every warehouse event (time, operator), parcels, the
    shopper's other tickets, returns, refunds and the agent actions on it."""
    from quai.orders import domain as orders_domain

    order = orders_selectors.order_detail(scope=scope, order_id=order_id)
    link = CustomerOrder.objects.filter(order_id=order.pk).select_related("customer").first()
    customer = link.customer if link else None
    tickets = Ticket.objects.within(scope).filter(orders=order)
    if customer is not None:
        tickets = Ticket.objects.within(scope).filter(Q(orders=order) | Q(customer=customer))
    if exclude_ticket_id is not None:
        tickets = tickets.exclude(pk=exclude_ticket_id)
    return Order360(
        order=order,
        lines=list(order.lines.all()),
        timeline=list(order.timeline),  # type: ignore[attr-defined]
        events=warehouse.order_warehouse_events(scope=scope, order_id=order.pk),
        parcels=warehouse.order_parcels(scope=scope, order_id=order.pk),
        tickets=list(tickets.distinct().order_by("-id")[:20]),
        returns=list(Rma.objects.within(scope).filter(order_id=order.pk).prefetch_related("lines")),
        refunds=list(Refund.objects.within(scope).filter(order_id=order.pk)),
        actions=list(AgentAction.objects.within(scope).filter(order_id=order.pk)[:50]),
        customer=customer,
        labelled=orders_domain.label_exists(order.status),
    )


def unsent_answers(*, scope: Scope, limit: int = 20) -> list[TicketMessage]:
    """Agents' answers whose mail failed (being retried, or given up), newest first, for the console's banner."""
    return list(
        TicketMessage.objects.within(scope)
        .filter(send_state="failed")
        .select_related("ticket")
        .order_by("-created_at", "-id")[:limit]
    )


def desk_sites() -> QuerySet[Site]:
    """The sites the returns desk can work in: those with a returns zone (the warehouse's, staff only)."""
    return site_list().filter(zones__kind=ZoneKind.RETURNS).distinct()


@functools.cache
def _unanswered_sql(vendor: str) -> str:
    table = Ticket._meta.db_table
    return (
        f'SELECT * FROM "{table}" WHERE "merchant_id" = %s AND "first_responded_at" IS NULL'
        ' ORDER BY "first_response_due" ASC, "id" ASC LIMIT %s'
    )


def tickets_unanswered(*, merchant_id: int, limit: int) -> list[Ticket]:
    """The merchant's tickets no one has answered yet, the first ``limit`` by first-response due time (then id): an
    agent's next ones. The same rows as ``Ticket.objects.filter(merchant_id=…, first_responded_at__isnull=True)
    .order_by("first_response_due", "pk")[:limit]`` in a statement written once (``Ticket.objects.raw``): the
    simulated day asks at every tick and mostly finds none, and the ORM compiled the query each time. No limit, no
    statement (the ORM's ``[:0]``)."""
    if limit <= 0:
        return []
    return list(Ticket.objects.raw(_unanswered_sql(connection.vendor), [merchant_id, limit]))
