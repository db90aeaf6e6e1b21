"""The back office subscribes a merchant's URL through the same service as the API, shows the new secret once, and
rotates secrets; in Chromium, the add page and the page after saving are screenshot for a person to look at."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from conftest import login_page, screenshot
from quai.core import clock
from quai.integrations.models import WebhookSubscription
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

ADD = "/admin/integrations/webhooksubscription/add/"
LIST = "/admin/integrations/webhooksubscription/"


@pytest.fixture
def desk(db) -> Client:  # type: ignore[no-untyped-def]
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(StaffUserFactory(username="desk", is_superuser=True))
    return client


def _add(desk: Client, merchant: Any, **fields: str) -> Any:
    data = {"merchant": merchant.pk, "url": "https://hooks.example.com/quai", "event_types": "order.*, *"}
    data.update(fields)
    data["active"] = "on"
    return desk.post(ADD, data)


@pytest.mark.django_db
def test_the_back_office_subscribes_a_url_and_shows_its_secret_once(desk, settings):
    settings.QUAI_WEBHOOKS_ALLOW_PRIVATE = True
    merchant = MerchantFactory()

    saved = _add(desk, merchant, event_types="order.*  inventory.stock_changed, order.*")

    assert saved.status_code == 302
    subscription = WebhookSubscription.objects.get()
    # The secret waits for the next page on the server (session messages), never in the browser's cookie jar
    # (Django's default keeps messages in a signed but readable "messages" cookie).
    assert "messages" not in saved.cookies
    assert (subscription.merchant, subscription.url) == (merchant, "https://hooks.example.com/quai")
    assert subscription.event_types == ["order.*", "inventory.stock_changed"]
    assert subscription.secret.startswith("whsec_")
    after = desk.get(saved["Location"]).content.decode()
    assert subscription.secret in after
    for page in (LIST, f"{LIST}{subscription.pk}/change/", saved["Location"]):
        assert subscription.secret not in desk.get(page).content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "must start with http:// or https://"),
        ({"url": "http://127.0.0.1/x"}, "Quai only calls public addresses"),
        ({"event_types": "order.nope"}, "Quai publishes no event named"),
        ({"event_types": " , "}, "Subscribe to at least one event type"),
    ],
)
def test_the_back_office_refuses_what_the_api_refuses_field_by_field(desk, settings, fields, message):
    settings.QUAI_WEBHOOKS_ALLOW_PRIVATE = False
    refused = _add(desk, MerchantFactory(), **fields)

    assert refused.status_code == 200
    assert message in refused.content.decode()
    assert not WebhookSubscription.objects.exists()


@pytest.mark.django_db
def test_the_back_office_rotates_a_secret_with_an_overlap_or_at_once_and_shows_the_new_one_once(desk):
    clock.set_now(clock.now())
    kept, leaked = WebhookSubscriptionFactory(), WebhookSubscriptionFactory()
    old_kept, old_leaked = kept.secret, leaked.secret

    desk.post(LIST, {"action": "rotate_secret", "_selected_action": [kept.pk]})
    shown = desk.post(LIST, {"action": "rotate_secret_now", "_selected_action": [leaked.pk]}, follow=True)
    kept.refresh_from_db()
    leaked.refresh_from_db()

    assert (kept.previous_secret, kept.previous_secret_expires_at) == (old_kept, clock.now() + timedelta(hours=24))
    assert (leaked.previous_secret, leaked.previous_secret_expires_at) == ("", None)
    assert leaked.secret != old_leaked
    assert leaked.secret in shown.content.decode()
    assert leaked.secret not in desk.get(LIST).content.decode()


@pytest.mark.django_db
def test_editing_a_subscription_in_the_back_office_goes_through_the_service_and_bumps_its_version(desk):
    subscription = WebhookSubscriptionFactory(description="old")

    desk.post(f"{LIST}{subscription.pk}/change/", {"description": "new"})
    subscription.refresh_from_db()

    assert (subscription.description, subscription.active, subscription.version) == ("new", False, 2)
    assert not list(get_messages(desk))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_subscription_added_in_french_in_chromium_shows_its_secret_after_saving(browser_page, live_server, settings):  # type: ignore[no-untyped-def]
    settings.QUAI_WEBHOOKS_ALLOW_PRIVATE = True
    merchant = MerchantFactory(name="Maison Lune")
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    login_page(page, StaffUserFactory(username="desk", is_superuser=True), live_server.url)

    page.goto(ADD)
    page.select_option("#id_merchant", str(merchant.pk))
    page.fill("#id_url", "https://boutique.example/quai")
    page.fill("#id_event_types", "order.*, inventory.stock_changed")
    page.fill("#id_description", "Boutique principale")
    assert "Types d’événements" in page.content() or "types d’événements" in page.content().lower()
    screenshot(page, "integrations-webhook-add")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")

    subscription = WebhookSubscription.objects.get()
    message = page.inner_text(".messagelist")
    assert subscription.secret in message
    assert "ne sera plus affiché" in message
    screenshot(page, "integrations-webhook-added")
    page.reload()
    assert subscription.secret not in page.content()
