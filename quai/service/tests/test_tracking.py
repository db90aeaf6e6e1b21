"""The shopper's tracking page: look-up without leaks, signed links, rate limit, contact form; the agent console."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from quai.service.models import ServiceSettings, Ticket
from quai.service.services.wismo import tracking_path
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


def test_the_right_email_or_postcode_leads_to_the_signed_page(merchant, place):
    order = place("T-1", to_status="picking")
    ServiceSettings.objects.create(merchant=merchant, brand_name="Acme Shop", brand_colour="#aa3300")
    client = Client()
    by_email = client.post(f"/track/{merchant.code}/", {"number": "T-1", "proof": "Camille@Example.fr"})
    assert by_email.status_code == 302 and by_email["Location"].startswith("/track/s/")
    assert order.external_id == "T-1"
    by_postcode = client.post(f"/track/{merchant.code}/", {"number": "T-1", "proof": "75 011"})
    assert by_postcode.status_code == 302
    page = client.get(by_email["Location"], HTTP_ACCEPT_LANGUAGE="en")
    text = page.content.decode()
    assert page.status_code == 200 and "T-1" in text and "Acme Shop" in text and "#aa3300" in text
    assert "camille@example.fr" not in text  # nothing personal on the page


def test_a_wrong_email_answers_exactly_like_a_missing_order(merchant, place):
    place("T-2")
    client = Client()
    wrong = client.post(f"/track/{merchant.code}/", {"number": "T-2", "proof": "someone@else.fr"})
    missing = client.post(f"/track/{merchant.code}/", {"number": "NOPE", "proof": "someone@else.fr"})
    assert wrong.status_code == missing.status_code == 200
    assert (
        wrong.content.replace(b"T-2", b"NOPE").split(b"csrfmiddlewaretoken")[0]
        == missing.content.split(b"csrfmiddlewaretoken")[0]
    )


def test_the_lookup_is_rate_limited(merchant, place):
    place("T-3")
    client = Client()
    for _attempt in range(10):
        assert client.post(f"/track/{merchant.code}/", {"number": "T-3", "proof": "x@y.fr"}).status_code == 200
    assert client.post(f"/track/{merchant.code}/", {"number": "T-3", "proof": "camille@example.fr"}).status_code == 429


def test_a_tampered_link_is_not_found(merchant, place):
    order = place("T-4")
    assert Client().get(tracking_path(order)[:-3] + "xx/").status_code == 404


def test_the_contact_form_opens_a_ticket_linked_to_the_order(merchant, place):
    order = place("T-5")
    path = tracking_path(order)
    answer = Client().post(path + "contact/", {"message": "Can I add a gift note?"})
    assert answer.status_code == 302 and answer["Location"] == path + "?sent=1"
    ticket = Ticket.objects.get(merchant=merchant)
    assert ticket.channel == "form" and list(ticket.orders.values_list("pk", flat=True)) == [order.pk]
    assert ticket.requester_email == "camille@example.fr"


def _agent():
    user = StaffUserFactory(username="agathe")
    user.groups.add(Group.objects.get_or_create(name="agent")[0])
    client = Client()
    client.force_login(user)
    return client


def test_the_console_shows_the_queue_and_a_ticket_beside_its_order(merchant, place):
    order = place("C-1", to_status="picking")
    client = _agent()
    client.post(tracking_path(order) + "contact/", {"message": "Le colis C-1 ?"})
    ticket = Ticket.objects.get()
    queue = client.get("/ops/service/")
    assert queue.status_code == 200 and ticket.reference.encode() in queue.content
    page = client.get(f"/ops/service/tickets/{ticket.pk}/")
    assert page.status_code == 200 and b"C-1" in page.content and b"order.status_changed" in page.content
    held = client.post(
        f"/ops/service/tickets/{ticket.pk}/actions/hold/", {"order_id": order.pk, "note": "x"}, HTTP_HX_REQUEST="true"
    )
    assert b'data-result="ok"' in held.content
    order.refresh_from_db()
    assert order.status == "on_hold"


def test_the_console_shows_a_refusal_with_its_reason(merchant, place):
    order = place("C-2", to_status="packed")
    client = _agent()
    client.post(tracking_path(order) + "contact/", {"message": "Annulez C-2"})
    ticket = Ticket.objects.get()
    refused = client.post(
        f"/ops/service/tickets/{ticket.pk}/actions/cancel/",
        {"order_id": order.pk, "reason": "x"},
        HTTP_HX_REQUEST="true",
    )
    assert b'data-result="error"' in refused.content and b"order_labelled" in refused.content


def test_the_console_is_for_agents_only(merchant):
    client = Client()
    client.force_login(StaffUserFactory(username="packer"))
    assert client.get("/ops/service/").status_code == 403
