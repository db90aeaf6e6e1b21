"""Outbound webhooks API (``/webhooks``) and shop connections (``shops_router``, ``/shops``).

Webhooks: subscriptions (the secret shown once, rotated with an overlap), deliveries with their
attempts, replay and ping. A merchant only reaches its own; another merchant's answers 404 like a missing one.
Sending happens in the workers: replay and ping answer 202 with the delivery, which is sent after the commit."""

# No "from __future__ import annotations" here: Ninja reads Query[...] annotations at runtime, under @paginate.
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from quai.integrations import selectors, services
from quai.integrations.models import (
    Connection,
    ConnectionStatus,
    DeliveryStatus,
    InboundStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from quai.integrations.schemas import (
    ConnectionCreateIn,
    ConnectionOut,
    ConnectionUpdateIn,
    InboundDeliveryOut,
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


# --- Shop connections (mounted at /shops) --------------------------------------------------------------------------

shops_router = Router(tags=["shops"])


class ConnectionFilters(Schema):
    merchant_id: int | None = None
    platform: str | None = None
    status: ConnectionStatus | None = None


class InboundFilters(Schema):
    status: InboundStatus | None = None


def _connection(request: HttpRequest, connection_id: int) -> Connection:
    return selectors.connection_get(scope=principal_of(request).scope(), connection_id=connection_id)


@shops_router.get("", response=list[ConnectionOut])
@paginate
def connection_list(request: HttpRequest, filters: Query[ConnectionFilters]):
    values = filters.dict()
    return selectors.connection_list(scope=principal_of(request).scope(values.pop("merchant_id")), **values)


@shops_router.post("", response={201: ConnectionOut})
def connection_create(request: HttpRequest, payload: ConnectionCreateIn) -> Status[Any]:
    """Connect a shop. Credentials are write-only (stored encrypted); the answer shows the inbound URL to give the
    shop (WooCommerce: the webhooks' delivery URL + the topic)."""
    merchant = principal_of(request).merchant_for(payload.merchant_id)
    return Status(201, services.connection_create(merchant=merchant, **payload.dict(exclude={"merchant_id"})))


@shops_router.get("/{connection_id}", response=ConnectionOut)
def connection_detail(request: HttpRequest, connection_id: int) -> Connection:
    return _connection(request, connection_id)


@shops_router.patch("/{connection_id}", response=ConnectionOut)
def connection_update(request: HttpRequest, connection_id: int, payload: ConnectionUpdateIn) -> Connection:
    return services.connection_update(
        connection=_connection(request, connection_id), **payload.dict(exclude_unset=True)
    )


@shops_router.delete("/{connection_id}", response={204: None})
def connection_delete(request: HttpRequest, connection_id: int) -> Status[None]:
    services.connection_delete(connection=_connection(request, connection_id))
    return Status(204, None)


@shops_router.post("/{connection_id}/health", response={202: ConnectionOut})
def connection_health(request: HttpRequest, connection_id: int) -> Status[Any]:
    """Check the shop (credentials, webhooks) in a worker; the result lands in ``last_health``."""
    connection = _connection(request, connection_id)
    services.connection_task(connection=connection, action="health")
    return Status(202, connection)


@shops_router.post("/{connection_id}/reconcile", response={202: ConnectionOut})
def connection_reconcile(request: HttpRequest, connection_id: int) -> Status[Any]:
    """Compare the shop's stock with Quai's and repair the drift, in a worker; the report lands in
    ``last_reconcile``."""
    connection = _connection(request, connection_id)
    services.connection_task(connection=connection, action="reconcile")
    return Status(202, connection)


@shops_router.get("/{connection_id}/deliveries", response=list[InboundDeliveryOut])
@paginate
def connection_delivery_list(request: HttpRequest, connection_id: int, filters: Query[InboundFilters]):
    connection = _connection(request, connection_id)
    return selectors.inbound_delivery_list(
        scope=principal_of(request).scope(), connection_id=connection.pk, status=filters.status
    )


@shops_router.post("/deliveries/{shop_delivery_id}/retry", response={202: InboundDeliveryOut})
def connection_delivery_retry(request: HttpRequest, shop_delivery_id: int) -> Status[Any]:
    """Take a held or failed shop call again (after creating the missing SKU, for instance)."""
    delivery = selectors.inbound_delivery_get(scope=principal_of(request).scope(), delivery_id=shop_delivery_id)
    return Status(202, services.inbound_delivery_retry(delivery=delivery))


def _hook_answer(request: HttpRequest, connection_id: int, topic: str) -> HttpResponse:
    answer = services.connection_receive(
        connection_id=connection_id,
        topic=topic,
        method=request.method or "POST",
        headers=request.headers,
        raw_body=request.body,  # the bytes as sent: the signature is checked on them, before any parsing
        query={key: (values if len(values) > 1 else values[0]) for key, values in request.GET.lists()},
        raw_query=request.META.get("QUERY_STRING", ""),  # as sent: Shopify signs its GET callbacks' query string
    )
    return JsonResponse(answer.body, status=answer.status)


# Called by shop platforms, not by API clients: outside the OpenAPI description (docs/CONNECTORS.md documents them).
@shops_router.post("/{connection_id}/hooks/{topic}", auth=None, include_in_schema=False)
def connection_hook(request: HttpRequest, connection_id: int, topic: str) -> HttpResponse:
    """A shop's webhook. No API key: the platform's signature over the raw body authenticates it (401 otherwise,
    nothing stored). Answered at once (202; 200 for a ping or a delivery already received), processed by a worker."""
    return _hook_answer(request, connection_id, topic)


@shops_router.get("/{connection_id}/hooks/{topic}", auth=None, include_in_schema=False)
def connection_callback(request: HttpRequest, connection_id: int, topic: str) -> HttpResponse:
    """A shop's callback (Shopify's ``fetch_stock``, ``fetch_tracking_numbers``), verified by its adapter."""
    return _hook_answer(request, connection_id, topic)
