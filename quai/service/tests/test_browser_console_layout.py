"""The agent console fits the screen it is opened on: a phone's 360 px, and a desk's width used, not 720 px of it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from conftest import login_page, screenshot
from quai.service.models import Ticket
from quai.service.services.wismo import tracking_path
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_console_stays_within_a_phone_and_spreads_on_a_desk(chromium, live_server, place, language):
    order = place("LAYOUT-1", to_status="picking")
    Client().post(tracking_path(order) + "contact/", {"message": "Où en est ma commande LAYOUT-1 ?"})
    ticket = Ticket.objects.get()
    agent: Any = StaffUserFactory(username="agathe")
    agent.groups.add(Group.objects.get_or_create(name="agent")[0])
    locale = "fr-FR" if language == "fr" else "en-GB"
    for size, (width, height) in {"phone": (360, 740), "desk": (1366, 900)}.items():
        context = chromium.new_context(viewport={"width": width, "height": height}, locale=locale)
        page = context.new_page()
        page.set_default_timeout(10_000)
        login_page(page, agent, live_server.url)
        for name, path in (("queue", "/ops/service/"), ("ticket", f"/ops/service/tickets/{ticket.pk}/")):
            page.goto(live_server.url + path)
            screenshot(page, f"service-{name}-{size}-{language}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, size)
        if size == "desk":
            # The ticket and the order's story side by side, over most of the screen.
            assert page.evaluate("document.querySelector('#workspace').getBoundingClientRect().width") > 1000
        context.close()
