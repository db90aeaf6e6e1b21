"""Mail in over POP3 and out over SMTP, against local servers on loopback; replies threaded by Message-ID."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from quai.orders import services as orders_services
from quai.orders.tests.conftest import order_data
from quai.service import services
from quai.service.models import MessageKind, SendState, ServiceSettings, Ticket, TicketMessage, TicketStatus
from quai.service.tests.mailserver import Mailbox, pop3_server, smtp_server

pytestmark = pytest.mark.django_db


def _mail(*, subject: str, body: str, sender: str = "Camille <camille@example.fr>", **headers: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "support@acme.example"
    mail["Subject"] = subject
    mail["Message-ID"] = headers.pop("message_id", make_msgid(domain="example.fr"))
    for name, value in headers.items():
        mail[name.replace("_", "-")] = value
    mail.set_content(body)
    return bytes(mail)


def _settings(merchant, pop: tuple[str, int], smtp: tuple[str, int] | None = None) -> ServiceSettings:
    return ServiceSettings.objects.create(
        merchant=merchant,
        brand_name="Acme",
        support_email="support@acme.example",
        mail_host=pop[0],
        mail_port=pop[1],
        mail_ssl=False,
        mail_username="support",
        mail_password="secret",
        smtp_host=smtp[0] if smtp else "127.0.0.1",
        smtp_port=smtp[1] if smtp else 1,
        smtp_starttls=False,
    )


def test_a_mail_becomes_a_ticket_linked_to_its_order_and_the_agent_reply_arrives_in_the_same_thread(
    merchant, shirt, django_capture_on_commit_callbacks
):
    order = orders_services.order_create(
        merchant=merchant,
        data=order_data("SHOP-1001", lines=[{"sku": shirt.code, "quantity": 1, "unit_price": "19.90"}]),
    ).order
    first_id = make_msgid(domain="example.fr")
    box = Mailbox(
        mails=[_mail(subject="Colis cassé", body="Ma commande SHOP-1001 est arrivée cassée.", message_id=first_id)]
    )
    with pop3_server(box) as pop, smtp_server() as (host, port, received):
        settings = _settings(merchant, pop, (host, port))
        report = services.mailbox_poll(settings=settings)
        assert (report.fetched, report.deleted) == (1, 1)
        assert box.mails == []  # deleted once stored
        ticket = Ticket.objects.get(merchant=merchant)
        assert list(ticket.orders.values_list("pk", flat=True)) == [order.pk]
        assert ticket.category == "damaged" and ticket.channel == "email" and ticket.language == "fr"
        assert ticket.requester_email == "camille@example.fr"
        with django_capture_on_commit_callbacks(execute=True):
            reply = services.ticket_reply(ticket=ticket, body="Nous renvoyons l'article.", actor="agent")
        reply.refresh_from_db()
        assert reply.send_state == SendState.SENT
        assert len(received) == 1
        sent = received[0]
        assert sent["In-Reply-To"] == first_id
        assert first_id in sent["References"]
        assert sent["Message-ID"] == reply.message_id
        assert f"[{ticket.reference}]" in sent["Subject"]
        # The shopper answers the agent's mail: it joins the same ticket and reopens it.
        box.mails.append(
            _mail(
                subject=f"Re: {sent['Subject']}",
                body="Merci !",
                In_Reply_To=reply.message_id,
                References=f"{first_id} {reply.message_id}",
            )
        )
        services.mailbox_poll(settings=settings)
    assert Ticket.objects.filter(merchant=merchant).count() == 1
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert ticket.messages.filter(kind=MessageKind.INBOUND).count() == 2


def test_polling_the_same_mail_twice_stores_it_once(merchant):
    raw = _mail(subject="Hello", body="Where is my order?")
    box = Mailbox(mails=[raw])
    with pop3_server(box) as pop:
        settings = _settings(merchant, pop)
        services.mail_ingest(merchant_id=merchant.pk, raw=raw)  # e.g. a poll that died before DELE
        services.mailbox_poll(settings=settings)
    assert TicketMessage.objects.filter(merchant=merchant).count() == 1


def test_a_mail_with_a_malformed_header_is_kept_with_its_problem_noted(merchant):
    raw = (
        b"From: =?utf-8?q?broken\r\nSubject: =?x-unknown?B?????=\r\nMessage-ID: not-an-id\r\n"
        b"\r\nMon colis est en retard\r\n"
    )
    message = services.mail_ingest(merchant_id=merchant.pk, raw=raw)
    assert "Mon colis est en retard" in message.body
    assert "no_sender_address" in message.problems
    assert message.message_id.endswith("@quai.invalid>")  # a stable id from the mail's bytes
    assert message.ticket.category == "late"


def test_a_huge_mail_makes_a_ticket_from_its_start_and_stays_on_the_server(merchant, monkeypatch):
    from quai.service.services import mail as mail_module

    monkeypatch.setattr(mail_module, "MAIL_MAX_BYTES", 2000)
    big = EmailMessage()
    big["From"] = "camille@example.fr"
    big["Subject"] = "Photos of the damage"
    big["Message-ID"] = make_msgid(domain="example.fr")
    big.set_content("The vase arrived broken, photos attached.")
    big.add_attachment(b"\x89PNG" + b"0" * 50_000, maintype="image", subtype="png", filename="vase.png")
    box = Mailbox(mails=[bytes(big)])
    with pop3_server(box) as pop:
        settings = _settings(merchant, pop)
        report = services.mailbox_poll(settings=settings)
        again = services.mailbox_poll(settings=settings)
    assert (report.fetched, report.deleted, report.left_on_server) == (1, 0, 1)
    assert len(box.mails) == 1  # nothing lost
    assert again.fetched == 1 and TicketMessage.objects.filter(merchant=merchant).count() == 1
    message = TicketMessage.objects.get(merchant=merchant)
    assert "too_large" in message.problems
    assert message.ticket.subject == "Photos of the damage"


def test_a_reply_to_a_closed_ticket_opens_a_new_one(merchant):
    first = services.mail_ingest(merchant_id=merchant.pk, raw=_mail(subject="Question", body="Avez-vous du rouge ?"))
    ticket = first.ticket
    services.ticket_transition(ticket=ticket, to_status="resolved")
    services.ticket_transition(ticket=ticket, to_status="closed")
    services.mail_ingest(
        merchant_id=merchant.pk, raw=_mail(subject="Re: Question", body="Et en bleu ?", In_Reply_To=first.message_id)
    )
    assert Ticket.objects.filter(merchant=merchant).count() == 2


def test_an_smtp_failure_is_kept_on_the_message(merchant, django_capture_on_commit_callbacks):
    ServiceSettings.objects.create(
        merchant=merchant, support_email="support@acme.example", smtp_host="127.0.0.1", smtp_port=1, smtp_starttls=False
    )
    ticket = services.ticket_open(
        merchant_id=merchant.pk,
        channel="api",
        message=services.IncomingMessage(body="Hello", email="camille@example.fr"),
    )
    with django_capture_on_commit_callbacks(execute=True):
        reply = services.ticket_reply(ticket=ticket, body="Hi!", actor="agent")
    reply.refresh_from_db()
    assert reply.send_state == SendState.FAILED and reply.send_error


@pytest.mark.django_db
def test_a_send_task_whose_message_is_gone_ends_quietly_with_a_log_line(caplog):
    from quai.service.tasks import ticket_message_send

    with caplog.at_level("INFO", logger="quai.service.tasks"):
        assert ticket_message_send.run(message_id=987654321) == "gone"
    assert "ticket message 987654321 is gone" in caplog.text
