"""Bad input typed or crafted on the service's screens (the agent console, the shopper's tracking page) answers a
4xx or the screen's own refusal, in the reader's language, and changes nothing: never a server error."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from quai.service.models import AgentAction, Refund, Rma, Ticket
from quai.service.services.wismo import tracking_path
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

# "²" and "٣" pass str.isdigit(); only the second is a number int() reads.
NOT_NUMBERS = ["abc", "²", "1.5", ""]


def _agent() -> Client:
    user: Any = StaffUserFactory(username="agathe")
    user.groups.add(Group.objects.get_or_create(name="agent")[0])
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _ticket_about(order: Any) -> Ticket:
    Client().post(tracking_path(order) + "contact/", {"message": f"About {order.external_id}"})
    return Ticket.objects.get(orders=order)


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_an_action_on_an_order_that_is_not_a_number_is_refused_on_the_console(merchant, place, value):
    order = place("Q-1", to_status="allocated")
    ticket = _ticket_about(order)
    client = _agent()
    answer = client.post(
        f"/ops/service/tickets/{ticket.pk}/actions/hold/", {"order_id": value, "note": "x"}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200 and b'data-result="error"' in answer.content
    assert b"order_not_found" in answer.content
    order.refresh_from_db()
    assert order.status == "allocated"


def test_crafted_numbers_on_the_console_are_refused_not_a_server_error(merchant, place):
    order = place("Q-2", to_status="shipped")
    ticket = _ticket_about(order)
    client = _agent()
    line = order.lines.get()
    base = f"/ops/service/tickets/{ticket.pk}/"
    assert client.get(base + "?order=²").status_code == 200
    reship = client.post(
        base + "actions/reship/",
        {"order_id": order.pk, "line_²": "1", f"line_{line.pk}": "²", "reason": "x", "paid_by": "merchant"},
        HTTP_HX_REQUEST="true",
    )
    assert reship.status_code == 200 and b'data-result="error"' in reship.content
    added = client.post(
        base + "actions/add_item/",
        {"order_id": order.pk, "sku": line.sku_code, "quantity": "²", "unit_price": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert added.status_code == 200 and b'data-result="error"' in added.content
    resent = client.post(base + "resend/", {"message_id": "²", "order_id": "²"}, HTTP_HX_REQUEST="true")
    assert resent.status_code == 200 and b'data-result="error"' in resent.content
    assert order.lines.count() == 1 and not Rma.objects.exists()


@pytest.mark.parametrize("amount", ["NaN", "-NaN", "sNaN", "Infinity"])
def test_a_refund_of_no_number_is_refused_on_the_console(merchant, place, amount):
    order = place("Q-3", to_status="shipped")
    ticket = _ticket_about(order)
    answer = _agent().post(
        f"/ops/service/tickets/{ticket.pk}/actions/refund/",
        {"order_id": order.pk, "amount": amount, "reason": "x"},
        HTTP_HX_REQUEST="true",
    )
    assert answer.status_code == 200 and b'data-result="error"' in answer.content
    assert b"invalid_input" in answer.content and not Refund.objects.exists()


@pytest.mark.parametrize("what", ["note", "reply", "actions/hold"])
def test_a_post_to_a_ticket_that_does_not_exist_answers_404_in_the_agents_language(merchant, what):
    answer = _agent().post(
        f"/ops/service/tickets/987654/{what}/", {"body": "x", "order_id": "1"}, HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert answer.status_code == 404
    assert "Ticket introuvable" in answer.content.decode()
    assert not AgentAction.objects.exists()


def test_a_return_quantity_that_is_no_number_is_refused_on_the_tracking_page(merchant, place):
    order = place("Q-5", to_status="delivered")
    line = order.lines.get()
    path = tracking_path(order)
    client = Client(raise_request_exception=False)
    for form in ({f"qty_{line.pk}": "²", "reason": "return"}, {"qty_²": "1", "reason": "return"}):
        answer = client.post(path + "return/", form, HTTP_ACCEPT_LANGUAGE="fr")
        assert answer.status_code == 422 and b'class="error"' in answer.content
    assert client.get(path + "?rma=²").status_code == 200
    assert not Rma.objects.exists()


def test_a_blank_message_on_the_tracking_page_is_refused_in_the_shoppers_words(merchant, place):
    order = place("Q-6", to_status="picking")
    answer = Client().post(tracking_path(order) + "contact/", {"message": "   \n "}, HTTP_ACCEPT_LANGUAGE="fr")
    text = html.unescape(answer.content.decode())
    assert answer.status_code == 422 and "Écrivez votre message avant de l'envoyer." in text
    assert "body" not in text.split('role="alert"')[1].split("</p>")[0]
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(("language", "words"), [("fr", "ou son lien a expiré"), ("en", "or its link has expired")])
def test_an_unknown_shop_or_a_bad_link_says_so_in_the_shoppers_language(merchant, place, language, words):
    order = place("Q-7")
    client = Client()
    for path in ("/track/no-such-shop/", tracking_path(order)[:-3] + "xx/", tracking_path(order)[:-3] + "xx/contact/"):
        method = client.post if path.endswith("contact/") else client.get
        answer = method(path, HTTP_ACCEPT_LANGUAGE=language)
        text = answer.content.decode()
        assert answer.status_code == 404 and words in text, path
        assert merchant.name not in text and "Q-7" not in text
    assert not Ticket.objects.exists()


def test_the_console_says_its_codes_in_the_agents_language(merchant, place):
    # The SLA badges read "(ok)", why a ticket waits "no_promise", who pays a reship "merchant", on a French screen.
    order = place("Q-8", to_status="allocated")
    ticket = _ticket_about(order)
    Ticket.objects.filter(pk=ticket.pk).update(escalation="no_promise")
    client = _agent()
    queue = html.unescape(client.get("/ops/service/", HTTP_ACCEPT_LANGUAGE="fr").content.decode())
    page = html.unescape(client.get(f"/ops/service/tickets/{ticket.pk}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode())
    assert "pas de date promise" in queue and "pas de date promise" in page
    assert "(dans les temps)" in page and '<span class="badge">dans les temps</span>' in queue
    assert '<option value="merchant">le marchand</option>' in page
    assert "no_promise" not in page.replace('value="no_promise"', "")


def test_an_amount_typed_with_a_french_decimal_comma_is_read_as_the_agent_meant(merchant, place):
    # "10,50" was refused as "Le remboursement doit être un montant supérieur à zéro." on the French console.
    order = place("Q-9", to_status="shipped")
    ticket = _ticket_about(order)
    client = _agent()
    path = f"/ops/service/tickets/{ticket.pk}/actions/refund/"
    thousands = client.post(path, {"order_id": order.pk, "amount": "1,234", "reason": "x"}, HTTP_HX_REQUEST="true")
    assert b'data-result="error"' in thousands.content and not Refund.objects.exists()
    answer = client.post(path, {"order_id": order.pk, "amount": "10,50", "reason": "geste"}, HTTP_HX_REQUEST="true")
    assert b'data-result="ok"' in answer.content
    assert [str(r.amount) for r in Refund.objects.all()] == ["10.50"]


def test_a_ticket_about_several_orders_names_each_by_its_number(merchant, place):
    # The tabs read "#14#13#4": database ids, run together, where the agent knows the orders by their numbers.
    first, second = place("Q-10", to_status="shipped"), place("Q-11", to_status="shipped")
    ticket = _ticket_about(first)
    ticket.orders.add(second)
    page = _agent().get(f"/ops/service/tickets/{ticket.pk}/").content.decode()
    tabs = page.split('<nav class="order-tabs">')[1].split("</nav>")[0]
    assert f'?order={second.pk}" class="current">Q-11</a>' in tabs and f'?order={first.pk}" class="">Q-10</a>' in tabs
    assert f"#{first.pk}" not in tabs
