from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt

from quai.integrations.models import ConnectionStatus, DeliveryStatus, InboundStatus

EventType = Annotated[str, Field(min_length=1, max_length=100)]


class WebhookSubscriptionOut(Schema):
    id: int
    merchant_id: int
    url: str
    event_types: list[str]
    description: str
    active: bool
    version: int
    secret_rotating_until: datetime | None = Field(
        None, description="While set, requests are also signed with the previous secret (a rotation's overlap)."
    )
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_secret_rotating_until(obj: object) -> datetime | None:
        return getattr(obj, "previous_secret_expires_at", None) if getattr(obj, "previous_secret", "") else None


class WebhookSubscriptionCreatedOut(WebhookSubscriptionOut):
    secret: str = Field(..., description="The signing secret (whsec_…), shown this once: keep it.")


class WebhookSubscriptionCreateIn(Schema):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant it is for.")
    url: str = Field(..., min_length=1, max_length=2000, description="http(s); public addresses only in production.")
    event_types: list[EventType] = Field(
        ..., min_length=1, max_length=50, description="Event names, prefixes (order.*) or * for every event."
    )
    description: str = Field("", max_length=500)
    active: StrictBool = True


class WebhookSubscriptionUpdateIn(Schema):
    version: StrictInt = Field(..., description="The version you read; a stale one is refused with 409 stale_version.")
    url: str | None = Field(None, min_length=1, max_length=2000)
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=50)
    description: str | None = Field(None, max_length=500)
    active: StrictBool | None = None


class WebhookSecretRotateIn(Schema):
    overlap_hours: StrictInt = Field(
        24, ge=0, le=168, description="How long the previous secret still signs (0: dropped at once, e.g. leaked)."
    )


class WebhookAttemptOut(Schema):
    id: int
    status_code: int | None
    latency_ms: int
    response_excerpt: str
    error: str
    at: datetime


class WebhookDeliveryOut(Schema):
    id: int
    merchant_id: int
    subscription_id: int
    event_id: UUID
    event_name: str
    resource_key: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    finished_at: datetime | None
    replay_of_id: int | None
    created_at: datetime
    payload: dict[str, object]
    attempt_log: list[WebhookAttemptOut] = Field(..., description="Every attempt, oldest first.")


# --- Shop connections ----------------------------------------------------------------------------------------------

Credentials = dict[Annotated[str, Field(min_length=1, max_length=100)], Annotated[str, Field(max_length=2000)]]


class ConnectionOut(Schema):
    id: int
    merchant_id: int
    name: str
    platform: str
    base_url: str
    settings: dict[str, Any]
    credential_keys: list[str] = Field(
        ..., description="Which credentials are set (their values are write-only: never returned)."
    )
    inbound_url: str = Field(..., description="Where the shop calls Quai: append the topic (…/hooks/order.created).")
    status: ConnectionStatus
    safety_buffer: int
    push_stock: bool
    poll_orders: bool
    cursor: str
    last_sync_at: datetime | None
    last_polled_at: datetime | None
    last_stock_push_at: datetime | None
    lag_ms: int | None = Field(None, description="Delay between the last stock change and its push to the shop.")
    last_error: str
    last_error_at: datetime | None
    consecutive_failures: int
    next_retry_at: datetime | None
    last_health: dict[str, Any]
    last_reconcile: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_credential_keys(obj: Any) -> list[str]:
        from quai.integrations.services.connections import connection_config

        return sorted(connection_config(obj).credentials)

    @staticmethod
    def resolve_inbound_url(obj: Any) -> str:
        from quai.integrations.services.connections import connection_inbound_url

        return connection_inbound_url(obj)


class ConnectionCreateIn(Schema):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant it is for.")
    name: str = Field(..., min_length=1, max_length=200)
    platform: str = Field(..., min_length=1, max_length=30, description="woocommerce, shopify, prestashop, saleor…")
    base_url: str = Field(..., min_length=1, max_length=500, description="The shop's address.")
    credentials: Credentials = Field(
        default_factory=dict, description="API keys, tokens, webhook secret (write-only, stored encrypted)."
    )
    settings: dict[str, Any] = Field(default_factory=dict)
    safety_buffer: StrictInt = Field(0, ge=0, le=1_000_000)
    push_stock: StrictBool = True
    poll_orders: StrictBool = True


class ConnectionUpdateIn(Schema):
    version: StrictInt = Field(..., description="The version you read; a stale one is refused with 409 stale_version.")
    name: str | None = Field(None, min_length=1, max_length=200)
    base_url: str | None = Field(None, min_length=1, max_length=500)
    credentials: Credentials | None = Field(
        None, description="Merged key by key; an empty value removes the key. Never returned."
    )
    settings: dict[str, Any] | None = None
    safety_buffer: StrictInt | None = Field(None, ge=0, le=1_000_000)
    push_stock: StrictBool | None = None
    poll_orders: StrictBool | None = None
    status: ConnectionStatus | None = Field(None, description="active or paused.")


class InboundDeliveryOut(Schema):
    id: int
    connection_id: int
    topic: str
    delivery_key: str
    status: InboundStatus
    attempts: int
    reason: str = Field(..., description="Why it is held or failed (a missing SKU, a refused order…).")
    error_code: str
    missing_skus: list[str]
    external_id: str
    created_at: datetime
    processed_at: datetime | None
