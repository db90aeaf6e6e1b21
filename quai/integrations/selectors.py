"""Reads of outbound webhooks and shop connections, always within a tenant scope."""

from __future__ import annotations

from uuid import UUID

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.integrations.models import (
    Connection,
    ConnectorCall,
    InboundDelivery,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from quai.tenants.scope import Scope


def webhook_subscription_list(*, scope: Scope, active: bool | None = None) -> QuerySet[WebhookSubscription]:
    rows = WebhookSubscription.objects.within(scope)
    if active is not None:
        rows = rows.filter(active=active)
    return rows.order_by("id")


def webhook_subscription_get(*, scope: Scope, subscription_id: int) -> WebhookSubscription:
    subscription = WebhookSubscription.objects.within(scope).filter(pk=subscription_id).first()
    if subscription is None:
        raise NotFound(
            _("Webhook subscription not found."),
            code="webhook_subscription_not_found",
            details={"subscription_id": subscription_id},
        )
    return subscription


def _with_attempts(rows: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
    return rows.prefetch_related(Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("id")))


def webhook_delivery_list(
    *,
    scope: Scope,
    subscription_id: int | None = None,
    status: str | None = None,
    event_name: str | None = None,
    event_id: UUID | None = None,
) -> QuerySet[WebhookDelivery]:
    """Deliveries, newest first, each with its attempts."""
    rows = WebhookDelivery.objects.within(scope)
    if subscription_id is not None:
        rows = rows.filter(subscription_id=subscription_id)
    if status:
        rows = rows.filter(status=status)
    if event_name:
        rows = rows.filter(event_name=event_name)
    if event_id is not None:
        rows = rows.filter(event_id=event_id)
    return _with_attempts(rows.order_by("-id"))


def webhook_delivery_get(*, scope: Scope, delivery_id: int) -> WebhookDelivery:
    delivery = _with_attempts(WebhookDelivery.objects.within(scope).filter(pk=delivery_id)).first()
    if delivery is None:
        raise NotFound(
            _("Webhook delivery not found."), code="webhook_delivery_not_found", details={"delivery_id": delivery_id}
        )
    return delivery


def connection_list(*, scope: Scope, platform: str | None = None, status: str | None = None) -> QuerySet[Connection]:
    rows = Connection.objects.within(scope)
    if platform:
        rows = rows.filter(platform=platform)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("id")


def connection_get(*, scope: Scope, connection_id: int) -> Connection:
    found = Connection.objects.within(scope).filter(pk=connection_id).first()
    if found is None:
        raise NotFound(
            _("Shop connection not found."), code="connection_not_found", details={"connection_id": connection_id}
        )
    return found


def inbound_delivery_list(
    *, scope: Scope, connection_id: int | None = None, status: str | None = None
) -> QuerySet[InboundDelivery]:
    """A shop's calls, newest first (the raw body is left out of lists)."""
    rows = InboundDelivery.objects.within(scope).defer("body")
    if connection_id is not None:
        rows = rows.filter(connection_id=connection_id)
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-id")


def inbound_delivery_get(*, scope: Scope, delivery_id: int) -> InboundDelivery:
    found = InboundDelivery.objects.within(scope).filter(pk=delivery_id).first()
    if found is None:
        raise NotFound(
            _("Shop delivery not found."), code="shop_delivery_not_found", details={"shop_delivery_id": delivery_id}
        )
    return found


def connector_call_list(*, scope: Scope, connection_id: int | None = None) -> QuerySet[ConnectorCall]:
    rows = ConnectorCall.objects.within(scope)
    if connection_id is not None:
        rows = rows.filter(connection_id=connection_id)
    return rows.order_by("-id")
