"""The webhooks API: subscriptions (secret shown once), URL checks, rotation, ping, deliveries and replay."""

from __future__ import annotations

import pytest

from quai.integrations import services
from quai.integrations.models import WebhookDelivery, WebhookSubscription
from quai.integrations.tests.factories import WebhookDeliveryFactory, WebhookSubscriptionFactory
from quai.integrations.tests.receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    server = Receiver()
    server.start()
    yield server
    server.stop()


def test_creating_a_subscription_answers_its_secret_once(api, merchant, receiver):
    created = api.post("webhooks/subscriptions", {"url": receiver.url, "event_types": ["inventory.*"]})

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["merchant_id"] == merchant.pk
    read = api.get(f"webhooks/subscriptions/{body['id']}").json()
    assert "secret" not in read
    assert WebhookSubscription.objects.get().secret == body["secret"]


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "hooks.example.com", "https://user:pw@example.com/"])
def test_a_url_that_is_not_plain_http_or_https_is_refused(api, url):
    refused = api.post("webhooks/subscriptions", {"url": url, "event_types": ["*"]})

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_webhook_url"
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "http://localhost/x",
    ],
)
def test_a_private_loopback_or_link_local_url_is_refused_in_production(api, settings, url):
    settings.QUAI_WEBHOOKS_ALLOW_PRIVATE = False

    refused = api.post("webhooks/subscriptions", {"url": url, "event_types": ["*"]})

    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "webhook_url_not_public"
    assert not WebhookSubscription.objects.exists()


def test_an_event_type_quai_does_not_publish_is_refused_but_a_prefix_is_accepted(api):
    refused = api.post("webhooks/subscriptions", {"url": "https://h.example.com/", "event_types": ["order.acepted"]})
    accepted = api.post("webhooks/subscriptions", {"url": "https://h.example.com/", "event_types": ["shipment.*"]})

    assert refused.json()["error"]["code"] == "unknown_event_type"
    assert accepted.status_code == 201


def test_a_stale_version_is_refused_and_a_current_one_changes_the_subscription(api, merchant):
    subscription = WebhookSubscriptionFactory(merchant=merchant)

    stale = api.patch(f"webhooks/subscriptions/{subscription.pk}", {"version": 0, "active": False})
    changed = api.patch(f"webhooks/subscriptions/{subscription.pk}", {"version": 1, "active": False})

    assert stale.json()["error"]["code"] == "stale_version"
    assert (changed.json()["active"], changed.json()["version"]) == (False, 2)


def test_rotating_the_secret_answers_the_new_one_and_keeps_the_old_one_signing_for_the_overlap(api, merchant):
    subscription = WebhookSubscriptionFactory(merchant=merchant)

    rotated = api.post(f"webhooks/subscriptions/{subscription.pk}/rotate-secret", {"overlap_hours": 2}).json()

    subscription.refresh_from_db()
    assert rotated["secret"] == subscription.secret != subscription.previous_secret
    assert rotated["secret_rotating_until"] is not None


def test_a_ping_is_a_signed_delivery_logged_with_its_attempt(api, merchant, receiver):
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)

    pinged = api.post(f"webhooks/subscriptions/{subscription.pk}/ping")
    services.webhook_deliveries_send_due()

    assert pinged.status_code == 202
    assert receiver.requests[0].json["type"] == "webhook.ping"
    delivery = api.get(f"webhooks/deliveries/{pinged.json()['id']}").json()
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [200]


def test_a_delivery_is_replayed_through_the_api(api, merchant, receiver):
    original = WebhookDeliveryFactory(subscription=WebhookSubscriptionFactory(merchant=merchant, url=receiver.url))

    replayed = api.post(f"webhooks/deliveries/{original.pk}/replay")
    services.webhook_deliveries_send_due()

    assert replayed.status_code == 202
    assert replayed.json()["replay_of_id"] == original.pk
    assert {d.status for d in WebhookDelivery.objects.all()} == {"succeeded"}
    listed = api.get("webhooks/deliveries", event_id=str(original.event_id)).json()
    assert listed["count"] == 2


def test_another_merchants_delivery_cannot_be_replayed(api, other_merchant):
    foreign = WebhookDeliveryFactory(subscription=WebhookSubscriptionFactory(merchant=other_merchant))

    refused = api.post(f"webhooks/deliveries/{foreign.pk}/replay")

    assert refused.json()["error"]["code"] == "webhook_delivery_not_found"
    assert WebhookDelivery.objects.count() == 1


def test_an_inactive_subscription_cannot_be_pinged(api, merchant):
    subscription = WebhookSubscriptionFactory(merchant=merchant, active=False)

    refused = api.post(f"webhooks/subscriptions/{subscription.pk}/ping")

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "webhook_subscription_inactive"
