"""Tickets: opened from every channel, linked to orders, categorised, timed against the SLA, answered.

A ticket is opened by ``ticket_open`` whatever its channel (mail, the tracking page's form, the API, a shop's
event); the shopper's later messages come through ``ticket_shopper_message``, an agent's through ``ticket_reply``
(sent by mail after commit when the ticket has an address) and ``ticket_note`` (internal). Statuses move only
through ``ticket_transition`` (``quai.core.states``: audit row + ``service.ticket_status_changed``).

SLA clocks run on the merchant's business hours (``quai.service.domain.business_add``): the first response is
met by the first answer sent to the shopper (an automatic one counts), the resolution by the ticket resolved.
``tickets_sla_sweep`` (beat) warns once per clock when a breach comes within the warning time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.outbox import event_record
from quai.core.states import StateMachine, actor_of, transition
from quai.orders import selectors as orders_selectors
from quai.service import domain
from quai.service.events import TicketCreated, TicketSlaAtRisk, TicketStatusChanged
from quai.service.models import (
    Channel,
    CustomerOrder,
    MessageKind,
    SendState,
    ServiceSettings,
    Ticket,
    TicketMessage,
    TicketStatus,
)
from quai.service.services.customers import customer_match, email_normalise
from quai.tenants.scope import Scope

TICKET_MACHINE = StateMachine.from_table("ticket", domain.TICKET_TRANSITIONS, names=domain.TICKET_TRANSITION_NAMES)

SUBJECT_MAX = 250
BODY_MAX = 100_000

logger = logging.getLogger(__name__)


def service_settings(*, merchant_id: int) -> ServiceSettings:
    """The merchant's customer-service settings, or the defaults (unsaved) when it never set any."""
    return ServiceSettings.objects.filter(merchant_id=merchant_id).first() or ServiceSettings(merchant_id=merchant_id)


def ticket_get(*, scope: Scope, ticket_id: int) -> Ticket:
    ticket = Ticket.objects.within(scope).filter(pk=ticket_id).first()
    if ticket is None:
        raise NotFound(_("Ticket not found."), code="ticket_not_found", details={"ticket_id": ticket_id})
    return ticket


def ticket_transition(*, ticket: Ticket, to_status: str, actor: Any = None, reason: str = "") -> Ticket:
    """Move a ticket along ``TICKET_MACHINE``; resolving stamps ``resolved_at``, reopening clears it."""
    values: dict[str, Any] = {}
    if to_status == TicketStatus.RESOLVED:
        values["resolved_at"] = clock.now()
    elif to_status == TicketStatus.OPEN:
        values["resolved_at"] = None
    transition(
        ticket,
        machine=TICKET_MACHINE,
        to_status=to_status,
        actor=actor,
        reason=reason,
        values=values,
        event=lambda step: TicketStatusChanged(
            ticket_id=ticket.pk, from_status=step.from_status, to_status=step.to_status
        ),
    )
    return ticket


def _clean_text(value: str, *, name: str, limit: int, required: bool = True) -> str:
    text = (value or "").replace("\x00", "").strip()
    if required and not text:
        raise ValidationFailed(
            _("The %(field)s is empty.") % {"field": name},
            code="invalid_input",
            details={"fields": [{"field": name, "message": _("Required.")}]},
        )
    if len(text) > limit:
        raise ValidationFailed(
            _("The %(field)s is too long (%(max)d characters at most).") % {"field": name, "max": limit},
            code="invalid_input",
            details={"fields": [{"field": name, "message": _("Too long.")}]},
        )
    return text


def orders_referenced(*, merchant_id: int, text: str, email: str = "", order_ids: Iterable[int] = ()) -> list[Any]:
    """The merchant's orders a ticket is about: named by id, by order number or tracking number in its text, or,
    when none is named, the latest order of the shopper's email."""
    scope = Scope.merchant(merchant_id)
    found: dict[int, Any] = {}
    for order_id in order_ids:
        order = orders_selectors.order_get(scope=scope, order_id=order_id)
        found[order.pk] = order
    candidates = domain.reference_candidates(text)
    if candidates:
        for order in orders_selectors.order_list(scope=scope).filter(external_id__in=candidates)[:10]:
            found.setdefault(order.pk, order)
        for order_id in _orders_by_tracking(scope=scope, references=candidates):
            found.setdefault(order_id, orders_selectors.order_get(scope=scope, order_id=order_id))
    if not found and email:
        latest = orders_selectors.order_list(scope=scope).filter(shopper_email=email_normalise(email)).first()
        if latest is not None:
            found[latest.pk] = latest
    return list(found.values())


def _orders_by_tracking(*, scope: Scope, references: Sequence[str]) -> list[int]:
    """Orders whose parcels carry one of ``references`` as tracking number, when shipping can tell."""
    from quai.service import warehouse

    return warehouse.orders_by_tracking(scope=scope, references=references)


@dataclass(frozen=True)
class IncomingMessage:
    """A shopper's message as a channel received it (mail parsed, form or API body)."""

    body: str
    subject: str = ""
    email: str = ""
    name: str = ""
    phone: str = ""
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    order_ids: tuple[int, ...] = ()


@transaction.atomic
def ticket_open(
    *, merchant_id: int, channel: str, message: IncomingMessage, actor: Any = None, auto_answer: bool = True
) -> Ticket:
    """Open a ticket with its first message: customer found or made, orders linked, category suggested, SLA set.

    A "where is my order" ticket about one order is answered at once with the live status when the order is on
    time (``quai.service.services.wismo``), and marked for an agent (``escalation``) when late or at risk.
    """
    if channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown channel %(channel)s.") % {"channel": channel},
            code="invalid_input",
            details={"fields": [{"field": "channel", "message": ", ".join(Channel.values)}]},
        )
    body = _clean_text(message.body, name="body", limit=BODY_MAX)
    subject = _clean_text(message.subject or body.splitlines()[0], name="subject", limit=10_000)[:SUBJECT_MAX]
    email = email_normalise(message.email)
    orders = orders_referenced(
        merchant_id=merchant_id, text=f"{subject}\n{body}", email=email, order_ids=message.order_ids
    )
    customer = customer_match(
        merchant_id=merchant_id,
        email=email,
        phone=message.phone,
        country=orders[0].country if orders else "FR",
        name=message.name,
    )
    if customer is None and orders:
        link = CustomerOrder.objects.filter(order_id=orders[0].pk).select_related("customer").first()
        customer = link.customer if link else None
    guess = domain.category_suggest(f"{subject}\n{body}")
    now = clock.now()
    settings = service_settings(merchant_id=merchant_id)
    first_due, resolution_due = domain.sla_due(now, settings.sla_targets, settings.business_hours)
    ticket = Ticket.objects.create(
        merchant_id=merchant_id,
        subject=subject,
        channel=channel,
        category=guess.category,
        suggested_category=guess.category,
        customer=customer,
        requester_email=email,
        requester_name=message.name[:200],
        language=domain.language_guess(f"{subject}\n{body}"),
        first_response_due=first_due,
        resolution_due=resolution_due,
        created_at=now,
    )
    if orders:
        ticket.orders.set([order.pk for order in orders])
    TicketMessage.objects.create(
        merchant_id=merchant_id,
        ticket=ticket,
        kind=MessageKind.INBOUND,
        author_label=message.name or email or actor_of(actor).label,
        body=body,
        message_id=message.message_id,
        in_reply_to=message.in_reply_to,
        references=message.references,
        attachments=message.attachments,
        problems=message.problems,
        created_at=now,
    )
    event_record(
        TicketCreated(ticket_id=ticket.pk, channel=channel, category=guess.category, order_ids=[o.pk for o in orders]),
        merchant_id=merchant_id,
    )
    if auto_answer and guess.category in (domain.WHERE_IS_MY_ORDER, domain.LATE) and len(orders) == 1:
        from quai.service.services.wismo import wismo_handle

        wismo_handle(ticket=ticket, order=orders[0], settings=settings)
    return ticket


@transaction.atomic
def ticket_shopper_message(*, ticket: Ticket, message: IncomingMessage) -> TicketMessage:
    """The shopper wrote again on a ticket: the message joins its thread and a waiting ticket reopens."""
    body = _clean_text(message.body, name="body", limit=BODY_MAX)
    stored = TicketMessage.objects.create(
        merchant_id=ticket.merchant_id,
        ticket=ticket,
        kind=MessageKind.INBOUND,
        author_label=message.name or message.email,
        body=body,
        message_id=message.message_id,
        in_reply_to=message.in_reply_to,
        references=message.references,
        attachments=message.attachments,
        problems=message.problems,
        created_at=clock.now(),
    )
    ticket.refresh_from_db()
    target = domain.status_after_shopper_message(ticket.status)
    if target is not None:
        ticket_transition(ticket=ticket, to_status=target, actor=message.email or "shopper", reason="shopper replied")
    return stored


def _outbound(
    ticket: Ticket, *, body: str, actor: Any, automatic: bool, settings: ServiceSettings | None
) -> TicketMessage:
    from quai.service.services.mail import outgoing_message_id

    now = clock.now()
    mail = bool(ticket.requester_email)
    who = actor_of(actor)
    return TicketMessage.objects.create(
        merchant_id=ticket.merchant_id,
        ticket=ticket,
        kind=MessageKind.OUTBOUND,
        author_id=who.user_id,
        author_label=who.label,
        body=body,
        message_id=outgoing_message_id(ticket, settings=settings) if mail else "",
        send_state=SendState.PENDING if mail else SendState.NOT_APPLICABLE,
        automatic=automatic,
        created_at=now,
    )


@transaction.atomic
def ticket_reply(
    *,
    ticket: Ticket,
    body: str,
    actor: Any = None,
    resolve: bool = False,
    automatic: bool = False,
    settings: ServiceSettings | None = None,
) -> TicketMessage:
    """Answer the shopper: stored at once, mailed after commit (threaded under the shopper's last mail); the
    first answer meets the first-response clock; the ticket then waits for the shopper, or is resolved.
    ``settings``: the merchant's service settings when the caller has read them already (else read here)."""
    text = _clean_text(body, name="body", limit=BODY_MAX)
    locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
    if locked.status == TicketStatus.CLOSED:
        raise Conflict(
            _("Ticket %(ticket)s is closed: open a new ticket to write again.") % {"ticket": locked.reference},
            code="ticket_closed",
            details={"ticket_id": locked.pk},
        )
    message = _outbound(locked, body=text, actor=actor, automatic=automatic, settings=settings)
    if locked.first_responded_at is None:
        Ticket.objects.filter(pk=locked.pk).update(first_responded_at=message.created_at)
    ticket.refresh_from_db()
    target = TicketStatus.RESOLVED if resolve else TicketStatus.PENDING
    if ticket.status != target and TICKET_MACHINE.can(ticket.status, target):
        ticket_transition(ticket=ticket, to_status=target, actor=actor)
    if message.send_state == SendState.PENDING:
        message_pk = message.pk
        transaction.on_commit(lambda: _send_later(message_pk))
    return message


def _send_later(message_pk: int) -> None:
    """Queue the answer's mail; when the broker cannot take it, the answer stays stored and is handed to the retry
    sweep (``mails_retry_due``) instead of failing the agent's request."""
    from quai.service.tasks import ticket_message_send

    try:
        ticket_message_send.delay(message_pk)
    except Exception as exc:  # any broker failure: the sweep sends it
        logger.warning("answer %s not queued (%s); the retry sweep sends it", message_pk, exc)
        TicketMessage.objects.filter(pk=message_pk, send_state=SendState.PENDING).update(
            send_state=SendState.FAILED, send_error=str(exc)[:500], next_send_at=clock.now()
        )


def ticket_note(*, ticket: Ticket, body: str, actor: Any = None) -> TicketMessage:
    """An internal note: agents see it, the shopper never does."""
    text = _clean_text(body, name="body", limit=BODY_MAX)
    who = actor_of(actor)
    return TicketMessage.objects.create(
        merchant_id=ticket.merchant_id,
        ticket=ticket,
        kind=MessageKind.NOTE,
        author_id=who.user_id,
        author_label=who.label,
        body=text,
        created_at=clock.now(),
    )


@transaction.atomic
def ticket_assign(*, ticket: Ticket, assignee: Any, actor: Any = None) -> Ticket:
    """Give the ticket to an agent (None: back to the queue); a new ticket taken by someone becomes open."""
    Ticket.objects.filter(pk=ticket.pk).update(assignee=assignee, updated_at=clock.now())
    ticket.refresh_from_db()
    if assignee is not None and ticket.status == TicketStatus.NEW:
        ticket_transition(ticket=ticket, to_status=TicketStatus.OPEN, actor=actor)
    return ticket


def ticket_categorise(*, ticket: Ticket, category: str) -> Ticket:
    from quai.service.models import Category

    if category not in Category.values:
        raise ValidationFailed(
            _("Unknown category %(category)s.") % {"category": category},
            code="invalid_input",
            details={"fields": [{"field": "category", "message": ", ".join(Category.values)}]},
        )
    Ticket.objects.filter(pk=ticket.pk).update(category=category, updated_at=clock.now())
    ticket.refresh_from_db()
    return ticket


def tickets_sla_sweep(*, now: datetime | None = None) -> int:
    """Warn once per clock about every ticket whose first response or resolution is due within its merchant's
    warning time (or already overdue): ``service.ticket_sla_at_risk``. Returns how many warnings went out."""
    at = now or clock.now()
    warned = 0
    settings_by_merchant: dict[int, ServiceSettings] = {}
    horizon = at + timedelta(days=1)
    running = list(domain.SLA_RUNNING)
    candidates = Ticket.objects.filter(status__in=running).filter(
        Q(first_responded_at__isnull=True, first_response_warned=False, first_response_due__lte=horizon)
        | Q(resolution_warned=False, resolution_due__lte=horizon)
    )
    for ticket in candidates.order_by("pk")[:1000]:
        settings = settings_by_merchant.setdefault(ticket.merchant_id, service_settings(merchant_id=ticket.merchant_id))
        warn = timedelta(minutes=settings.warn_before_minutes)
        clocks = []
        if ticket.first_responded_at is None and not ticket.first_response_warned:
            clocks.append(("first_response", ticket.first_response_due, "first_response_warned"))
        if not ticket.resolution_warned:
            clocks.append(("resolution", ticket.resolution_due, "resolution_warned"))
        for name, due, flag in clocks:
            state = domain.sla_state(due=due, done_at=None, now=at, warn_before=warn)
            if state not in (domain.SLA_AT_RISK, domain.SLA_BREACHED):
                continue
            with transaction.atomic():
                # The flag flips once: two sweeps racing warn once between them.
                if Ticket.objects.filter(pk=ticket.pk, **{flag: False}).update(**{flag: True}) != 1:
                    continue
                event_record(
                    TicketSlaAtRisk(
                        ticket_id=ticket.pk,
                        clock=name,
                        due=due.isoformat() if due else "",
                        breached=state == domain.SLA_BREACHED,
                    ),
                    merchant_id=ticket.merchant_id,
                )
            warned += 1
    return warned


def sla_clocks(ticket: Ticket, *, now: datetime | None = None) -> dict[str, str]:
    """The state of both SLA clocks of a ticket (met, ok, at_risk, breached), as the console shows them."""
    at = now or clock.now()
    settings = service_settings(merchant_id=ticket.merchant_id)
    warn = timedelta(minutes=settings.warn_before_minutes)
    return {
        "first_response": domain.sla_state(
            due=ticket.first_response_due, done_at=ticket.first_responded_at, now=at, warn_before=warn
        ),
        "resolution": domain.sla_state(due=ticket.resolution_due, done_at=ticket.resolved_at, now=at, warn_before=warn),
    }
