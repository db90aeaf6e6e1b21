from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import factory

from quai.core import clock
from quai.integrations.models import WebhookDelivery, WebhookSubscription
from quai.integrations.signing import secret_generate
from quai.tenants.tests.factories import MerchantFactory


class WebhookSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookSubscription

    merchant = factory.SubFactory(MerchantFactory)
    url = "https://hooks.example.com/quai"
    event_types = factory.LazyFunction(lambda: ["*"])
    secret = factory.LazyFunction(secret_generate)


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    subscription = factory.SubFactory(WebhookSubscriptionFactory)
    merchant = factory.SelfAttribute("subscription.merchant")
    event_id = factory.LazyFunction(uuid.uuid4)
    event_name = "inventory.stock_changed"
    resource_key = "sku:1"
    payload = factory.LazyAttribute(lambda d: {"id": str(d.event_id), "type": d.event_name, "data": {}})
    next_attempt_at = factory.LazyFunction(clock.now)


ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "subscription_id": lambda merchant: WebhookSubscriptionFactory(merchant=merchant).pk,
    "delivery_id": lambda merchant: (
        WebhookDeliveryFactory(subscription=WebhookSubscriptionFactory(merchant=merchant)).pk
    ),
}
