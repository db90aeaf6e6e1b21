"""Tickets from what shops did without an agent (order.cancelled, order.held, by event name), and answers whose mail
failed tried again by the beat sweep with a growing wait, shown in the console, sent again by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from quai.core import clock
from quai.core.outbox import outbox_relay
from quai.orders import services as orders_services
from quai.service import services
from quai.service.models import MessageKind, SendState, ServiceSettings, Ticket, TicketMessage
from quai.service.services.mail import SEND_MAX_ATTEMPTS
from quai.service.tests.mailserver import smtp_server
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


def _ticket_about(merchant, order):  # type: ignore[no-untyped-def]
    return services.ticket_open(
        merchant_id=merchant.pk,
        channel="api",
        message=services.IncomingMessage(body="Une question", email="camille@example.fr", order_ids=(order.pk,)),
        auto_answer=False,
    )


def test_a_cancellation_by_the_shop_notes_the_open_ticket_or_opens_one_when_the_floor_had_it(merchant, place):
    noted = place("E-1")
    ticket = _ticket_about(merchant, noted)
    orders_services.order_cancel(order=noted.pk, reason="Cancelled in the shop.")
    on_floor = place("E-2", to_status="picking")
    orders_services.order_cancel(order=on_floor.pk, reason="Cancelled in the shop.")
    quiet = place("E-3")
    orders_services.order_cancel(order=quiet.pk, reason="Cancelled in the shop.")
    outbox_relay()
    outbox_relay()  # handled once: a second relay adds nothing
    notes = TicketMessage.objects.filter(ticket=ticket, kind=MessageKind.NOTE)
    assert notes.count() == 1 and "E-1" in notes.get().body and "Cancelled in the shop." in notes.get().body
    opened = Ticket.objects.get(channel="shop")
    assert list(opened.orders.values_list("pk", flat=True)) == [on_floor.pk]
    assert (opened.category, opened.escalation) == ("cancel", "shop_event")
    assert not Ticket.objects.filter(orders=quiet).exists()


def test_an_agents_own_cancel_and_hold_make_no_extra_note(merchant, place):
    order = place("E-4")
    ticket = _ticket_about(merchant, order)
    from quai.tenants.scope import Scope

    services.action_hold(scope=Scope.merchant(merchant), order_id=order.pk, actor="agent", ticket=ticket)
    services.action_cancel(scope=Scope.merchant(merchant), order_id=order.pk, actor="agent", reason="x", ticket=ticket)
    outbox_relay()
    assert not TicketMessage.objects.filter(ticket=ticket, kind=MessageKind.NOTE).exists()


def test_an_address_hold_opens_a_ticket_and_a_payment_hold_notes_only(merchant, place):
    address = place("E-5")
    orders_services.order_hold(order=address.pk, reason="address", note="street unknown to the carrier")
    payment = place("E-6")
    orders_services.order_hold(order=payment.pk, reason="payment")
    outbox_relay()
    opened = Ticket.objects.get(channel="shop")
    assert list(opened.orders.values_list("pk", flat=True)) == [address.pk] and opened.category == "address_change"
    assert "street unknown to the carrier" in opened.messages.get().body


def test_a_failed_answer_is_retried_with_backoff_then_sent(merchant, django_capture_on_commit_callbacks):
    settings = ServiceSettings.objects.create(
        merchant=merchant, support_email="support@acme.example", smtp_host="127.0.0.1", smtp_port=1, smtp_starttls=False
    )
    ticket = services.ticket_open(
        merchant_id=merchant.pk, channel="api", message=services.IncomingMessage(body="Hi", email="camille@example.fr")
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = services.ticket_reply(ticket=ticket, body="Bonjour !", actor="agent")
    reply.refresh_from_db()
    assert reply.send_state == SendState.FAILED and reply.send_attempts == 1
    first_wait = reply.next_send_at - clock.now()
    assert timedelta(seconds=50) < first_wait <= timedelta(minutes=1, seconds=6)
    assert services.mails_retry_due() == 0  # not due yet
    clock.advance(first_wait + timedelta(seconds=1))
    assert services.mails_retry_due() == 1
    reply.refresh_from_db()
    assert reply.send_attempts == 2 and reply.next_send_at - clock.now() > first_wait  # the wait grows

    agent = StaffUserFactory(username="agathe")
    agent.groups.add(Group.objects.get_or_create(name="agent")[0])
    client = Client()
    client.force_login(agent)
    queue = client.get("/ops/service/").content.decode()
    assert 'id="unsent"' in queue and ticket.reference in queue
    page = client.get(f"/ops/service/tickets/{ticket.pk}/").content.decode()
    assert f'id="resend-{reply.pk}"' in page

    with smtp_server() as (host, port, received):
        ServiceSettings.objects.filter(pk=settings.pk).update(smtp_port=port, smtp_host=host)
        clock.advance(timedelta(hours=2))
        assert services.mails_retry_due() == 1
    reply.refresh_from_db()
    assert reply.send_state == SendState.SENT and reply.next_send_at is None and len(received) == 1
    assert 'id="unsent"' not in client.get("/ops/service/").content.decode()


def test_a_mail_is_given_up_after_its_last_attempt_and_can_be_sent_by_hand(merchant):
    ServiceSettings.objects.create(merchant=merchant, smtp_host="127.0.0.1", smtp_port=1, smtp_starttls=False)
    ticket = services.ticket_open(
        merchant_id=merchant.pk, channel="api", message=services.IncomingMessage(body="Hi", email="c@example.fr")
    )
    reply = services.ticket_reply(ticket=ticket, body="Bonjour", actor="agent")
    services.ticket_message_send(message_id=reply.pk)
    for _attempt in range(SEND_MAX_ATTEMPTS - 1):
        clock.advance(timedelta(hours=2))
        services.mails_retry_due()
    reply.refresh_from_db()
    assert reply.send_attempts == SEND_MAX_ATTEMPTS and reply.next_send_at is None
    clock.advance(timedelta(hours=2))
    assert services.mails_retry_due() == 0
    from quai.tenants.scope import Scope

    again = services.ticket_message_resend(scope=Scope.merchant(merchant), message_id=reply.pk)
    assert again.send_state == SendState.FAILED and again.send_attempts == SEND_MAX_ATTEMPTS + 1


def test_an_answer_the_broker_refuses_is_kept_for_the_retry_sweep(
    merchant, monkeypatch, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    from quai.service import tasks

    def broker_down(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("Acquire on closed pool")

    monkeypatch.setattr(tasks.ticket_message_send, "delay", broker_down)
    ticket = services.ticket_open(
        merchant_id=merchant.pk, channel="api", message=services.IncomingMessage(body="Hi", email="c@example.fr")
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = services.ticket_reply(ticket=ticket, body="Bonjour", actor="agent")
    reply.refresh_from_db()
    assert reply.send_state == SendState.FAILED and reply.next_send_at is not None and "closed pool" in reply.send_error
    assert TicketMessage.objects.filter(
        pk=reply.pk, send_state=SendState.FAILED, next_send_at__lte=clock.now()
    ).exists()
