from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import factory

from quai.core import clock
from quai.integrations.models import Connection, InboundDelivery, InboundStatus, WebhookDelivery, WebhookSubscription
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


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    merchant = factory.SubFactory(MerchantFactory)
    name = "Boutique"
    platform = "woocommerce"
    base_url = "https://shop.example"
    credentials = factory.LazyFunction(
        lambda: json.dumps({"consumer_key": "ck_test", "consumer_secret": "cs_test", "webhook_secret": "s3cret"})
    )


class InboundDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InboundDelivery

    connection = factory.SubFactory(ConnectionFactory)
    merchant = factory.SelfAttribute("connection.merchant")
    delivery_key = factory.Sequence(lambda n: f"key-{n}")
    topic = "order.created"
    body = b"{}"
    status = InboundStatus.FAILED


ISOLATION_FACTORIES.update(
    {
        "connection_id": lambda merchant: ConnectionFactory(merchant=merchant).pk,
        "shop_delivery_id": lambda merchant: InboundDeliveryFactory(connection=ConnectionFactory(merchant=merchant)).pk,
    }
)
