"""The sender's claim written as one SQL statement takes the rows the ORM's form of it took (the form it replaced),
and a sender that keeps the subscriptions it read between claims reads one again once it was saved."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.integrations import services
from quai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from quai.integrations.services import deliveries
from quai.integrations.tests.factories import WebhookDeliveryFactory, WebhookSubscriptionFactory

pytestmark = pytest.mark.django_db


def _orm_claim(batch: int) -> list[WebhookDelivery]:
    """The claim's former ORM form, without its lease (what it selects, in its order)."""
    now = clock.now()
    older_pending = WebhookDelivery.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        resource_key=OuterRef("resource_key"),
        status=DeliveryStatus.PENDING,
        id__lt=OuterRef("id"),
    )
    with transaction.atomic():
        due = (
            WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(locked_until=None) | Q(locked_until__lte=now))
            .filter(subscription__active=True)
            .exclude(Exists(older_pending))
            .order_by("next_attempt_at", "id")
        )
        return list(due[:batch])


def _fields(delivery: WebhookDelivery) -> tuple:
    return tuple(getattr(delivery, field.attname) for field in WebhookDelivery._meta.concrete_fields)


def test_the_claim_takes_the_rows_the_orm_form_took_in_its_order(merchant):
    now = clock.now()
    clock.set_now(now)
    first = WebhookSubscriptionFactory(merchant=merchant)
    second = WebhookSubscriptionFactory(merchant=merchant)
    inactive = WebhookSubscriptionFactory(merchant=merchant, active=False)
    for n in range(6):  # two per resource: the second waits behind the first
        WebhookDeliveryFactory(subscription=first, resource_key=f"sku:{n % 3}", next_attempt_at=now - timedelta(n))
    WebhookDeliveryFactory(subscription=second, resource_key="sku:0", payload={"data": {"é": [1, 2.5, None]}})
    WebhookDeliveryFactory(subscription=second, resource_key="sku:9", next_attempt_at=now + timedelta(minutes=5))
    WebhookDeliveryFactory(subscription=second, resource_key="sku:8", locked_until=now + timedelta(seconds=30))
    WebhookDeliveryFactory(subscription=second, resource_key="sku:7", locked_until=now - timedelta(seconds=1))
    WebhookDeliveryFactory(subscription=second, resource_key="sku:6", status=DeliveryStatus.SUCCEEDED)
    WebhookDeliveryFactory(subscription=inactive, resource_key="sku:0")

    for batch in (2, 50):
        expected = [_fields(d) for d in _orm_claim(batch)]
        with transaction.atomic():
            claimed = services.webhook_deliveries_claim(batch=batch)
            transaction.set_rollback(True)  # the lease taken back: the next batch size sees the same rows
        assert [_fields(d) for d in claimed] == expected
        assert len(expected) == min(batch, 5)  # three resources of the first, sku:0 and sku:7 of the second

    claimed = services.webhook_deliveries_claim(batch=50)
    assert WebhookDelivery.objects.filter(locked_until=now + deliveries.lease()).count() == len(claimed) == 5
    assert {d.subscription for d in claimed} == {first, second}
    assert services.webhook_deliveries_claim(batch=50) == []  # leased, or behind a leased one


def test_a_sender_reads_a_subscription_again_once_it_was_saved_and_not_before(merchant):
    subscription = WebhookSubscriptionFactory(merchant=merchant)
    for n in range(3):
        WebhookDeliveryFactory(subscription=subscription, resource_key=f"sku:{n}")
    kept: dict[int, WebhookSubscription] = {}

    def claim_one() -> tuple[WebhookDelivery, int]:
        with CaptureQueriesContext(connection) as context:
            (delivery,) = services.webhook_deliveries_claim(batch=1, subscriptions=kept)
        reads = [q for q in context.captured_queries if '"integrations_webhooksubscription"."secret"' in q["sql"]]
        return delivery, len(reads)

    first, reads = claim_one()
    assert reads == 1 and first.subscription.secret == subscription.secret
    _second, reads = claim_one()
    assert reads == 0  # not saved since: the one read before

    rotated = services.webhook_subscription_rotate_secret(subscription=subscription)
    third, reads = claim_one()
    assert reads == 1 and third.subscription.secret == rotated.secret != subscription.secret


def test_the_lingering_senders_look_says_due_exactly_when_a_delivery_is_pending_due_and_not_leased(merchant):
    now = clock.now()
    clock.set_now(now)
    subscription = WebhookSubscriptionFactory(merchant=merchant)
    assert not deliveries.webhook_deliveries_due()
    WebhookDeliveryFactory(subscription=subscription, resource_key="a", next_attempt_at=now + timedelta(seconds=1))
    WebhookDeliveryFactory(subscription=subscription, resource_key="b", locked_until=now + timedelta(seconds=1))
    WebhookDeliveryFactory(subscription=subscription, resource_key="c", status=DeliveryStatus.SUCCEEDED)
    assert not deliveries.webhook_deliveries_due()
    assert services.webhook_deliveries_claim(batch=50) == []

    clock.set_now(now + timedelta(seconds=1))  # a's time has come, b's lease is over
    assert deliveries.webhook_deliveries_due()
    assert len(services.webhook_deliveries_claim(batch=50)) == 2
    assert not deliveries.webhook_deliveries_due()  # both leased now
