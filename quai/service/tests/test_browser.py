"""The agent console and the shopper's tracking page in Chromium, on a desk screen and a phone."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from conftest import login_page, screenshot
from quai.service.models import ServiceSettings, Ticket
from quai.service.services.wismo import tracking_path
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_holds_an_order_from_the_keyboard_and_sees_a_labelled_order_refused(
    chromium, live_server, merchant, place
):
    ServiceSettings.objects.create(merchant=merchant, brand_name="Acme Shop", brand_colour="#8a2be2")
    picking = place("WEB-1", to_status="picking", promise={"delivery_by": "2030-01-10"})
    packed = place("WEB-2", to_status="packed")
    from django.test import Client

    shopper = Client()
    shopper.post(tracking_path(picking) + "contact/", {"message": "Bonjour, pouvez-vous bloquer la commande WEB-1 ?"})
    shopper.post(tracking_path(packed) + "contact/", {"message": "Please cancel WEB-2"})
    agent = StaffUserFactory(username="agathe")
    agent.groups.add(Group.objects.get_or_create(name="agent")[0])
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale="fr-FR", base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    login_page(page, agent, live_server.url)
    page.goto("/ops/service/")
    assert page.locator("#queue tr.row").count() == 2
    screenshot(page, "service-queue-desktop")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_selector("#order-360")
    first = Ticket.objects.order_by("pk").first()
    ticket_url = page.url
    page.goto(f"/ops/service/tickets/{first.pk}/")
    page.fill("input[name=note] >> nth=0", "shopper asked")
    page.click("#action-hold")
    page.wait_for_selector('#feedback[data-result="ok"]')
    picking.refresh_from_db()
    assert picking.status == "on_hold" and picking.hold_reason == "customer_service"
    page.keyboard.press("r")
    page.keyboard.type("C'est bloqué.")
    page.click("#send-reply")
    page.wait_for_selector("text=C'est bloqué.")
    screenshot(page, "service-ticket-desktop")
    second = Ticket.objects.order_by("pk").last()
    page.goto(f"/ops/service/tickets/{second.pk}/")
    page.click("#action-cancel")
    page.wait_for_selector('#feedback[data-result="error"]')
    assert "order_labelled" in page.inner_text("#feedback")
    screenshot(page, "service-ticket-refused-desktop")
    packed.refresh_from_db()
    assert packed.status == "packed" and ticket_url
    context.close()


def test_a_shopper_tracks_an_order_on_a_phone_and_writes_to_the_team(chromium, live_server, merchant, place):
    ServiceSettings.objects.create(merchant=merchant, brand_name="Acme Shop", brand_colour="#8a2be2")
    place("WEB-3", to_status="shipped", promise={"delivery_by": "2030-01-10"})
    context = chromium.new_context(viewport={"width": 390, "height": 844}, locale="fr-FR", base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"/track/{merchant.code}/")
    page.fill("#number", "WEB-3")
    page.fill("#proof", "wrong@example.fr")
    page.click("button[type=submit] >> text=Suivre")
    assert page.locator(".error").is_visible()
    screenshot(page, "track-lookup-refused-phone")
    page.fill("#number", "WEB-3")
    page.fill("#proof", "75011")
    page.click("button[type=submit] >> text=Suivre")
    page.wait_for_selector("#timeline")
    assert "expédiée" in page.inner_text("#status")
    assert page.locator("#timeline li.done").count() == 4
    screenshot(page, "track-order-phone")
    page.fill("#message", "Pouvez-vous livrer chez le voisin ?")
    page.click("#contact button[type=submit]")
    page.wait_for_selector("#contact .ok")
    assert Ticket.objects.filter(merchant=merchant, channel="form").count() == 1
    page.click("header .lang button[value=en]")
    page.wait_for_selector("text=Your order is shipped.")
    screenshot(page, "track-order-phone-en")
    context.close()
