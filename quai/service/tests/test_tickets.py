"""Tickets: linking, categories, SLA on business hours, state machine, automatic WISMO answers, the SLA sweep."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.errors import Conflict
from quai.core.models import OutboxEvent, StateTransition
from quai.service import services
from quai.service.models import MessageKind, ServiceSettings, TicketStatus

pytestmark = pytest.mark.django_db

MONDAY_10 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # 10:00 in Paris


def _open(merchant, body, **kw):
    return services.ticket_open(
        merchant_id=merchant.pk,
        channel=kw.pop("channel", "api"),
        message=services.IncomingMessage(body=body, email=kw.pop("email", "camille@example.fr"), **kw),
    )


def test_a_ticket_is_linked_by_order_number_and_gets_its_sla_on_business_hours(merchant, place):
    clock.set_now(datetime(2030, 1, 4, 15, 30, tzinfo=UTC))  # Friday 16:30 in Paris
    order = place("SHOP-7", to_status="allocated")
    ticket = _open(merchant, "Le mug de la commande SHOP-7 est arrivé cassé", email="")
    assert list(ticket.orders.values_list("pk", flat=True)) == [order.pk]
    assert ticket.category == "damaged" and ticket.suggested_category == "damaged"
    # 4 business hours from Friday 16:30 (closing 18:00): 1 h 30 on Friday, 2 h 30 on Monday → Monday 11:30.
    assert ticket.first_response_due == datetime(2030, 1, 7, 10, 30, tzinfo=UTC)
    assert OutboxEvent.objects.filter(name="service.ticket_created", aggregate_id=str(ticket.pk)).exists()


def test_a_ticket_without_a_number_is_linked_to_the_shoppers_latest_order(merchant, place):
    place("SHOP-1")
    latest = place("SHOP-2")
    ticket = _open(merchant, "Bonjour, une question sur mon colis", email="CAMILLE@example.fr")
    assert list(ticket.orders.values_list("pk", flat=True)) == [latest.pk]
    assert ticket.customer is not None and ticket.customer.email == "camille@example.fr"


def test_another_merchants_order_number_is_never_linked(merchant, other_merchant, place):
    place("SHOP-9")
    ticket = services.ticket_open(
        merchant_id=other_merchant.pk,
        channel="api",
        message=services.IncomingMessage(body="Where is SHOP-9?", email="someone@example.fr"),
    )
    assert ticket.orders.count() == 0


def test_where_is_my_order_on_time_is_answered_automatically_with_the_live_status(merchant, place):
    clock.set_now(MONDAY_10)
    ServiceSettings.objects.create(merchant=merchant, brand_name="Acme")
    order = place("SHOP-3", to_status="picking", promise={"delivery_by": "2030-01-10"})
    ticket = _open(merchant, "Où est ma commande SHOP-3 ?")
    ticket.refresh_from_db()
    assert ticket.auto_answered and ticket.status == TicketStatus.RESOLVED
    answer = ticket.messages.get(kind=MessageKind.OUTBOUND)
    assert answer.automatic
    assert "SHOP-3" in answer.body and "en cours de préparation" in answer.body
    assert "/track/" in answer.body
    assert ticket.first_responded_at is not None
    assert order.pk in ticket.orders.values_list("pk", flat=True)


def test_an_automatic_answer_reads_the_merchants_service_settings_once_and_uses_them_throughout(merchant, place):
    """ticket_open, the automatic answer and its Message-ID read the settings once between them (they were read
    three times a ticket): the brand signs the answer, the support address's domain names its Message-ID."""
    clock.set_now(MONDAY_10)
    ServiceSettings.objects.create(merchant=merchant, brand_name="Acme", support_email="aide@acme.example")
    place("SHOP-5", to_status="picking", promise={"delivery_by": "2030-01-10"})
    table = ServiceSettings._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        ticket = _open(merchant, "Où est ma commande SHOP-5 ?")
    assert sum(f'FROM "{table}"' in query["sql"] for query in queries) == 1
    answer = ticket.messages.get(kind=MessageKind.OUTBOUND)
    assert answer.message_id.endswith("@acme.example>") and answer.body.endswith("Acme")
    ticket.refresh_from_db()
    assert ticket.auto_answered and ticket.status == TicketStatus.RESOLVED


def test_where_is_my_order_when_late_goes_to_an_agent(merchant, place):
    clock.set_now(MONDAY_10)
    place("SHOP-4", to_status="shipped", promise={"delivery_by": "2030-01-03"})
    ticket = _open(merchant, "Where is my order SHOP-4?")
    ticket.refresh_from_db()
    assert not ticket.auto_answered and ticket.status == TicketStatus.NEW
    assert ticket.escalation == "late"
    assert ticket.messages.filter(kind=MessageKind.NOTE).exists()
    assert not ticket.messages.filter(kind=MessageKind.OUTBOUND).exists()


def test_an_agent_reply_meets_the_first_response_and_waits_for_the_shopper(merchant):
    ticket = _open(merchant, "Avez-vous du rouge ?", email="")
    services.ticket_reply(ticket=ticket, body="Oui !", actor="agent")
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.PENDING and ticket.first_responded_at is not None
    services.ticket_shopper_message(ticket=ticket, message=services.IncomingMessage(body="Merci, et en bleu ?"))
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    history = list(
        StateTransition.objects.filter(aggregate="ticket", aggregate_id=str(ticket.pk)).values_list(
            "from_status", "to_status"
        )
    )
    assert history == [("new", "pending"), ("pending", "open")]


def test_a_closed_ticket_refuses_replies_and_steps(merchant):
    ticket = _open(merchant, "Question", email="")
    services.ticket_transition(ticket=ticket, to_status="resolved")
    services.ticket_transition(ticket=ticket, to_status="closed")
    with pytest.raises(Conflict) as refused:
        services.ticket_reply(ticket=ticket, body="Hello", actor="agent")
    assert refused.value.code == "ticket_closed"
    with pytest.raises(Conflict) as invalid:
        services.ticket_transition(ticket=ticket, to_status="open")
    assert invalid.value.code == "invalid_transition"


def test_the_sla_sweep_warns_once_per_clock_before_a_breach(merchant):
    clock.set_now(MONDAY_10)
    ticket = _open(merchant, "Question", email="")
    assert services.tickets_sla_sweep() == 0
    clock.set_now(ticket.first_response_due - timedelta(minutes=30))
    assert services.tickets_sla_sweep() == 1
    assert services.tickets_sla_sweep() == 0  # warned once
    event = OutboxEvent.objects.get(name="service.ticket_sla_at_risk")
    assert event.payload["clock"] == "first_response" and event.payload["breached"] is False
    clock.set_now(ticket.resolution_due + timedelta(minutes=1))
    assert services.tickets_sla_sweep() == 1
    assert OutboxEvent.objects.filter(name="service.ticket_sla_at_risk", payload__breached=True).count() == 1


def test_the_queue_puts_the_ticket_due_first_on_top(merchant):
    from quai.service import selectors
    from quai.tenants.scope import Scope

    clock.set_now(MONDAY_10)
    later = _open(merchant, "one", email="")
    clock.set_now(MONDAY_10 - timedelta(days=3))
    earlier = _open(merchant, "two", email="")
    answered = _open(merchant, "three", email="")
    services.ticket_reply(ticket=answered, body="ok", actor="agent")
    queue = list(selectors.ticket_queue(scope=Scope.merchant(merchant)))
    assert queue[0] == earlier
    assert queue.index(later) < queue.index(answered)  # answered: its next clock is the resolution, days later


def test_the_beat_schedule_holds_the_service_sweeps():
    from quai.celery import app
    from quai.service import tasks  # noqa: F401

    assert app.conf.beat_schedule["service-tickets-sla-sweep"]["task"] == "quai.service.tasks.tickets_sla_sweep"
    assert date


def test_the_unanswered_tickets_read_written_once_reads_what_the_orm_read(merchant, other_merchant):
    from datetime import timedelta

    from quai.core import clock
    from quai.service.models import Ticket
    from quai.service.selectors import tickets_unanswered
    from quai.service.tests.factories import ticket_for

    # given tickets of two merchants, due at several times (one without a due time), one answered
    tickets = [ticket_for(merchant) for _ in range(4)] + [ticket_for(other_merchant)]
    for ticket, minutes in zip(tickets, (30, 10, None, 10, 5), strict=True):
        due = clock.now() + timedelta(minutes=minutes) if minutes is not None else None
        Ticket.objects.filter(pk=ticket.pk).update(first_response_due=due)
    Ticket.objects.filter(pk=tickets[0].pk).update(first_responded_at=clock.now())
    for limit in (0, 1, 2, 3, 10):
        # when an agent's next ones are read, then the same tickets in the same order as the ORM's query
        orm = list(
            Ticket.objects.filter(merchant_id=merchant.pk, first_responded_at__isnull=True).order_by(
                "first_response_due", "pk"
            )[:limit]
        )
        read = tickets_unanswered(merchant_id=merchant.pk, limit=limit)
        assert [t.pk for t in read] == [t.pk for t in orm]
        assert [t.__dict__ | {"_state": None} for t in read] == [t.__dict__ | {"_state": None} for t in orm]
