"""Outbound webhooks end to end: events through the outbox relay to a real local receiver, with retries, order per
resource, rotation, replay and a worker that dies after claiming."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from quai.core import clock
from quai.core.models import OutboxEvent
from quai.core.outbox import event_record, outbox_relay
from quai.integrations import services
from quai.integrations.models import DeliveryStatus, WebhookDelivery
from quai.integrations.signing import signature
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.inventory.events import ReservationReleased

pytestmark = pytest.mark.django_db


def _released(merchant, reservation_id: int, quantity: int) -> None:
    with transaction.atomic():
        event_record(
            ReservationReleased(reservation_id=reservation_id, sku_id=1, quantity=quantity, remaining=0),
            merchant_id=merchant.pk,
        )


def _relay_and_send() -> None:
    outbox_relay()
    services.webhook_deliveries_send_due()


def _later(**delta) -> None:
    clock.set_now(clock.now() + timedelta(**delta))


def _signatures_valid(request, *secrets: str) -> bool:
    sent = request.headers["webhook-signature"].split(" ")
    expected = [
        signature(
            secret=secret,
            msg_id=request.headers["webhook-id"],
            timestamp=int(request.headers["webhook-timestamp"]),
            body=request.body,
        )
        for secret in secrets
    ]
    return sent == expected


def test_a_receiver_that_answers_500_for_a_while_gets_every_event_in_order_per_resource_none_lost(merchant, receiver):
    clock.set_now(clock.now())
    receiver.answer = lambda index, request: (500, {}, b"down") if index < 4 else (200, {}, b"ok")
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url, event_types=["inventory.*"])
    for quantity in (1, 2, 3):
        _released(merchant, 10, quantity)
    for quantity in (7, 8):
        _released(merchant, 20, quantity)

    _relay_and_send()
    for _ in range(12):
        _later(hours=1)
        services.webhook_deliveries_send_due()

    delivered = [r.json for r in receiver.requests if r.status == 200]
    assert sorted(d["id"] for d in delivered) == sorted(str(d.event_id) for d in WebhookDelivery.objects.all())
    per_resource = {
        key: [d["data"]["quantity"] for d in delivered if d["resource"]["id"] == key] for key in ("10", "20")
    }
    assert per_resource == {"10": [1, 2, 3], "20": [7, 8]}
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SUCCEEDED}
    assert all(_signatures_valid(r, subscription.secret) for r in receiver.requests)
    first = WebhookDelivery.objects.order_by("id").first()
    assert first.attempt_log.count() >= 2
    failed = first.attempt_log.order_by("id").first()
    assert (failed.status_code, failed.response_excerpt) == (500, "down")
    assert failed.latency_ms >= 0


def test_a_delivery_waits_while_an_older_one_about_the_same_resource_is_pending(merchant, receiver):
    # The first delivery about reservation 10 is refused (503); the one about reservation 30 is sent beside it, in
    # whichever order the two concurrent requests arrive.
    receiver.answer = lambda index, request: (503, {}, b"") if request.json["data"]["quantity"] == 1 else (200, {}, b"")
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)
    _released(merchant, 10, 2)
    _released(merchant, 30, 5)

    _relay_and_send()

    assert sorted(r.json["data"]["quantity"] for r in receiver.requests) == [1, 5]
    older, newer = WebhookDelivery.objects.filter(resource_key="reservation:10").order_by("id")
    assert (older.status, newer.status, newer.attempts) == ("pending", "pending", 0)


def test_a_4xx_other_than_408_and_429_is_not_retried(merchant, receiver):
    receiver.answer = lambda index, request: (404, {}, b"no such hook")
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)

    _relay_and_send()
    _later(hours=2)
    services.webhook_deliveries_send_due()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, len(receiver.requests)) == (DeliveryStatus.FAILED, 1, 1)


def test_a_429_is_retried_after_its_retry_after(merchant, receiver):
    clock.set_now(clock.now())
    receiver.answer = lambda index, request: (429, {"Retry-After": "600"}, b"") if index == 0 else (200, {}, b"")
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)

    _relay_and_send()
    delivery = WebhookDelivery.objects.get()
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=600)
    _later(seconds=590)
    services.webhook_deliveries_send_due()
    assert len(receiver.requests) == 1
    _later(seconds=10)
    services.webhook_deliveries_send_due()

    assert [r.status for r in receiver.requests] == [429, 200]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_retries_end_after_24_hours_with_the_delivery_dead(merchant, receiver):
    clock.set_now(clock.now())
    receiver.answer = lambda index, request: (500, {}, b"")
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)

    _relay_and_send()
    for _ in range(30):
        _later(hours=1)
        services.webhook_deliveries_send_due()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.finished_at - delivery.created_at >= timedelta(hours=24)
    assert delivery.attempt_log.count() == len(receiver.requests)


def test_during_a_rotation_overlap_requests_carry_both_signatures_then_only_the_new_one(merchant, receiver):
    clock.set_now(clock.now())
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    old_secret = subscription.secret
    rotated = services.webhook_subscription_rotate_secret(subscription=subscription, overlap=timedelta(hours=24))
    _released(merchant, 10, 1)
    _relay_and_send()
    _later(hours=25)
    _released(merchant, 10, 2)
    _relay_and_send()

    during, after = receiver.requests
    assert _signatures_valid(during, rotated.secret, old_secret)
    assert _signatures_valid(after, rotated.secret)


def test_a_replay_is_a_new_delivery_of_the_same_event_with_the_same_webhook_id(merchant, receiver):
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)
    _relay_and_send()
    original = WebhookDelivery.objects.get()

    replay = services.webhook_delivery_replay(delivery=original)
    services.webhook_deliveries_send_due()

    replay.refresh_from_db()
    assert (replay.replay_of_id, replay.event_id, replay.status) == (original.pk, original.event_id, "succeeded")
    assert [r.headers["webhook-id"] for r in receiver.requests] == [str(original.event_id)] * 2
    assert receiver.requests[0].body == receiver.requests[1].body


def test_a_delivery_claimed_by_a_worker_that_died_is_sent_again_once_its_lease_has_expired(merchant, receiver):
    clock.set_now(clock.now())
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)
    outbox_relay()
    assert len(services.webhook_deliveries_claim()) == 1  # ... and the worker dies before sending

    services.webhook_deliveries_send_due()
    assert receiver.requests == []
    _later(seconds=61)
    services.webhook_deliveries_send_due()

    assert len(receiver.requests) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_only_active_subscriptions_of_the_events_merchant_whose_patterns_match_get_a_delivery(merchant, other_merchant):
    wanted = WebhookSubscriptionFactory(merchant=merchant, event_types=["inventory.reservation_released"])
    WebhookSubscriptionFactory(merchant=merchant, event_types=["order.*"])
    WebhookSubscriptionFactory(merchant=merchant, active=False)
    WebhookSubscriptionFactory(merchant=other_merchant)
    _released(merchant, 10, 1)

    outbox_relay()
    outbox_relay()  # a second relay writes nothing twice

    assert list(WebhookDelivery.objects.values_list("subscription_id", flat=True)) == [wanted.pk]


def test_no_webhook_is_ever_sent_inside_a_database_transaction(merchant, receiver):
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)
    outbox_relay()
    delivery = services.webhook_deliveries_claim()[0]

    with transaction.atomic(), pytest.raises(RuntimeError, match="outside any database transaction"):
        services.webhook_delivery_send(delivery=delivery)
    assert receiver.requests == []


def test_a_private_address_is_refused_at_sending_time_in_production(merchant, receiver, settings):
    WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)
    settings.QUAI_WEBHOOKS_ALLOW_PRIVATE = False

    _relay_and_send()

    delivery = WebhookDelivery.objects.get()
    assert receiver.requests == []
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempt_log.get().error.startswith("webhook_url_not_public: ")


def test_a_subscription_gets_no_event_that_happened_before_it_was_created_even_if_relayed_after(merchant, receiver):
    clock.set_now(clock.now())
    _released(merchant, 10, 1)  # in the outbox, not yet relayed
    _later(seconds=1)
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url, event_types=["inventory.*"])
    _released(merchant, 10, 2)  # at the subscription's creation time: wanted

    _relay_and_send()

    assert [r.json["data"]["quantity"] for r in receiver.requests] == [2]
    old_event = OutboxEvent.objects.order_by("id").first()
    assert not WebhookDelivery.objects.filter(subscription=subscription, event_id=old_event.event_id).exists()


def test_an_older_delivery_can_still_be_replayed_explicitly_to_its_subscription(merchant, receiver):
    clock.set_now(clock.now())
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)
    _relay_and_send()
    _later(days=3)

    replay = services.webhook_delivery_replay(delivery=WebhookDelivery.objects.get(subscription=subscription))
    services.webhook_deliveries_send_due()

    replay.refresh_from_db()
    assert replay.status == DeliveryStatus.SUCCEEDED
    assert [r.json["data"]["quantity"] for r in receiver.requests] == [1, 1]


def test_a_redirect_is_not_followed_but_logged_and_retried_so_a_corrected_url_gets_the_delivery(merchant, receiver):
    clock.set_now(clock.now())
    moved = receiver.url.replace("/hooks", "/moved")
    receiver.answer = lambda index, request: (
        (301, {"Location": moved}, b"") if request.path == "/hooks" else (200, {}, b"ok")
    )
    subscription = WebhookSubscriptionFactory(merchant=merchant, url=receiver.url)
    _released(merchant, 10, 1)

    _relay_and_send()

    delivery = WebhookDelivery.objects.get()
    attempt = delivery.attempt_log.get()
    assert [r.path for r in receiver.requests] == ["/hooks"]  # the Location was not followed
    assert (delivery.status, attempt.status_code) == (DeliveryStatus.PENDING, 301)
    assert moved in attempt.error  # the log says where the receiver wants its events

    services.webhook_subscription_update(subscription=subscription, version=subscription.version, url=moved)
    _later(minutes=1)
    services.webhook_deliveries_send_due()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert [r.path for r in receiver.requests] == ["/hooks", "/moved"]
