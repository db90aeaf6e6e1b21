"""Tickets from what the shops and the warehouse did to an order without an agent (subscribed by event name).

- ``order.cancelled`` not made by an agent (the shop's cancellation reaches orders through integrations'
  ``_order_cancel``; a merchant may cancel through the API): every open ticket of the order gets an internal note;
  when none is open and the floor already had the order (released, picking, on hold), a ticket is opened for an
  agent, since the shopper may have asked us, or goods may have to be put back.
- ``order.held`` for a reason other than customer service (payment, fraud, address, merchant): open tickets get a
  note; an address hold with no open ticket opens one, since only the shopper can fix an address.

The texts carry no personal data beyond what the ticket already holds (the order's number and statuses). Integrations
records no event when it holds a shop delivery for an unknown SKU (``InboundDelivery`` held): there is nothing to
subscribe to for that yet.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.core.events import Envelope
from quai.orders import selectors as orders_selectors
from quai.orders.domain import HoldReason
from quai.service import domain
from quai.service.models import AgentAction, Category, MessageKind, Ticket
from quai.service.services.tickets import IncomingMessage, ticket_note, ticket_open
from quai.tenants.scope import Scope

#: Statuses at which a cancellation means the floor already worked on the order.
_ON_THE_FLOOR = ("released", "picking", "on_hold")
ACTOR = "shop events"


def _order(order_id: int) -> Any:
    try:
        return orders_selectors.order_get(scope=Scope.system("service: shop events"), order_id=order_id)
    except NotFound:
        return None


def _open_tickets(order: Any) -> list[Ticket]:
    return list(
        Ticket.objects.within(Scope.merchant(order.merchant_id))
        .filter(orders=order, status__in=domain.SLA_RUNNING)
        .order_by("id")
    )


def _note_or_open(order: Any, text: str, *, open_ticket: bool, category: str) -> None:
    tickets = _open_tickets(order)
    for ticket in tickets:
        # Idempotent by content: an event handled twice notes once.
        if not ticket.messages.filter(kind=MessageKind.NOTE, body=text).exists():
            ticket_note(ticket=ticket, body=text, actor=ACTOR)
    if tickets or not open_ticket:
        return
    ticket = ticket_open(
        merchant_id=order.merchant_id,
        channel="shop",
        message=IncomingMessage(
            body=text,
            subject=_("Order %(order)s: to check") % {"order": order.external_id},
            email=order.shopper_email,
            name=order.shopper_name,
            order_ids=(order.pk,),
        ),
        actor=ACTOR,
        auto_answer=False,
    )
    Ticket.objects.filter(pk=ticket.pk).update(category=category, escalation="shop_event")


def on_order_cancelled(event: Any, envelope: Envelope) -> None:
    """Subscribed to ``order.cancelled``."""
    order = _order(event.order_id)
    if order is None:
        return
    by_agent = AgentAction.objects.filter(order_id=order.pk, kind="cancel", outcome="done").exists()
    if by_agent:
        return  # the agent's own action: the ticket already says it
    text = _("Order %(order)s was cancelled outside customer service (it was %(status)s): %(reason)s") % {
        "order": order.external_id,
        "status": event.from_status,
        "reason": event.reason or "—",
    }
    with transaction.atomic():
        _note_or_open(order, text, open_ticket=event.from_status in _ON_THE_FLOOR, category=Category.CANCEL)


def on_order_held(event: Any, envelope: Envelope) -> None:
    """Subscribed to ``order.held``."""
    if event.hold_reason == HoldReason.CUSTOMER_SERVICE:
        return  # an agent's hold
    order = _order(event.order_id)
    if order is None:
        return
    text = _("Order %(order)s is on hold (%(reason)s): %(note)s") % {
        "order": order.external_id,
        "reason": event.hold_reason,
        "note": event.note or "—",
    }
    with transaction.atomic():
        _note_or_open(
            order, text, open_ticket=event.hold_reason == HoldReason.ADDRESS, category=Category.ADDRESS_CHANGE
        )
