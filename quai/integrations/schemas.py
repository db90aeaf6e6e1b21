from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt

from quai.integrations.models import DeliveryStatus

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
