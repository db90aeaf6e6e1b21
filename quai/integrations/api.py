"""Outbound webhooks API: subscriptions (the secret shown once, rotated with an overlap), deliveries with their
attempts, replay and ping. A merchant only reaches its own; another merchant's answers 404 like a missing one.
Sending happens in the workers: replay and ping answer 202 with the delivery, which is sent after the commit."""

# No "from __future__ import annotations" here: Ninja reads Query[...] annotations at runtime, under @paginate.
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from quai.integrations import selectors, services
from quai.integrations.models import DeliveryStatus, WebhookDelivery, WebhookSubscription
from quai.integrations.schemas import (
    WebhookDeliveryOut,
    WebhookSecretRotateIn,
    WebhookSubscriptionCreatedOut,
    WebhookSubscriptionCreateIn,
    WebhookSubscriptionOut,
    WebhookSubscriptionUpdateIn,
)
from quai.tenants.auth import principal_of

router = Router(tags=["webhooks"])


class SubscriptionFilters(Schema):
    merchant_id: int | None = None
    active: bool | None = None


class DeliveryFilters(Schema):
    merchant_id: int | None = None
    subscription_id: int | None = None
    status: DeliveryStatus | None = None
    event_name: str | None = None
    event_id: UUID | None = None


def _subscription(request: HttpRequest, subscription_id: int) -> WebhookSubscription:
    return selectors.webhook_subscription_get(scope=principal_of(request).scope(), subscription_id=subscription_id)


def _delivery(request: HttpRequest, delivery_id: int) -> WebhookDelivery:
    return selectors.webhook_delivery_get(scope=principal_of(request).scope(), delivery_id=delivery_id)


@router.get("/subscriptions", response=list[WebhookSubscriptionOut])
@paginate
def webhook_subscription_list(request: HttpRequest, filters: Query[SubscriptionFilters]):
    values = filters.dict()
    return selectors.webhook_subscription_list(scope=principal_of(request).scope(values.pop("merchant_id")), **values)


@router.post("/subscriptions", response={201: WebhookSubscriptionCreatedOut})
def webhook_subscription_create(request: HttpRequest, payload: WebhookSubscriptionCreateIn) -> Status[Any]:
    """Subscribe a URL to event types. The answer carries the signing secret, which is never shown again."""
    merchant = principal_of(request).merchant_for(payload.merchant_id)
    subscription = services.webhook_subscription_create(merchant=merchant, **payload.dict(exclude={"merchant_id"}))
    return Status(201, subscription)


@router.get("/subscriptions/{subscription_id}", response=WebhookSubscriptionOut)
def webhook_subscription_detail(request: HttpRequest, subscription_id: int) -> WebhookSubscription:
    return _subscription(request, subscription_id)


@router.patch("/subscriptions/{subscription_id}", response=WebhookSubscriptionOut)
def webhook_subscription_update(
    request: HttpRequest, subscription_id: int, payload: WebhookSubscriptionUpdateIn
) -> WebhookSubscription:
    changes = payload.dict(exclude_unset=True)
    return services.webhook_subscription_update(subscription=_subscription(request, subscription_id), **changes)


@router.delete("/subscriptions/{subscription_id}", response={204: None})
def webhook_subscription_delete(request: HttpRequest, subscription_id: int) -> Status[None]:
    services.webhook_subscription_delete(subscription=_subscription(request, subscription_id))
    return Status(204, None)


@router.post("/subscriptions/{subscription_id}/rotate-secret", response=WebhookSubscriptionCreatedOut)
def webhook_subscription_rotate_secret(
    request: HttpRequest, subscription_id: int, payload: WebhookSecretRotateIn
) -> WebhookSubscription:
    """A new secret, shown this once; the previous one still signs for ``overlap_hours`` (both signatures sent)."""
    return services.webhook_subscription_rotate_secret(
        subscription=_subscription(request, subscription_id), overlap=timedelta(hours=payload.overlap_hours)
    )


@router.post("/subscriptions/{subscription_id}/ping", response={202: WebhookDeliveryOut})
def webhook_subscription_ping(request: HttpRequest, subscription_id: int) -> Status[Any]:
    """Send a signed ``webhook.ping`` event to the endpoint; follow it in the delivery's attempts."""
    delivery = services.webhook_subscription_ping(subscription=_subscription(request, subscription_id))
    return Status(202, _delivery(request, delivery.pk))


@router.get("/deliveries", response=list[WebhookDeliveryOut])
@paginate
def webhook_delivery_list(request: HttpRequest, filters: Query[DeliveryFilters]):
    values = filters.dict()
    return selectors.webhook_delivery_list(scope=principal_of(request).scope(values.pop("merchant_id")), **values)


@router.get("/deliveries/{delivery_id}", response=WebhookDeliveryOut)
def webhook_delivery_detail(request: HttpRequest, delivery_id: int) -> WebhookDelivery:
    return _delivery(request, delivery_id)


@router.post("/deliveries/{delivery_id}/replay", response={202: WebhookDeliveryOut})
def webhook_delivery_replay(request: HttpRequest, delivery_id: int) -> Status[Any]:
    """Send the delivery's event again (same body and ``webhook-id``), as a new delivery with its own attempts."""
    replay = services.webhook_delivery_replay(delivery=_delivery(request, delivery_id))
    return Status(202, _delivery(request, replay.pk))
