"""Event sales HTTP API: a merchant reads its own campaigns; staff read every merchant's (scoped per request)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from quai.campaigns import selectors
from quai.tenants.auth import principal_of

router = Router(tags=["campaigns"])


class CampaignOut(Schema):
    id: int
    merchant_id: int
    site_id: int
    code: str
    name: str
    status: str
    starts_at: datetime
    ends_at: datetime
    release_per_hour: int | None
    zone_id: int | None
    staffing_plan_id: int | None
    order_curve: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    checked_at: datetime | None


@router.get("/", response=list[CampaignOut])
def campaign_list(request: HttpRequest, status: str | None = None) -> Any:
    return list(selectors.campaign_list(scope=principal_of(request).scope(), status=status)[:500])


@router.get("/{campaign_id}", response=CampaignOut)
def campaign_detail(request: HttpRequest, campaign_id: int) -> Any:
    return selectors.campaign_get(scope=principal_of(request).scope(), campaign_id=campaign_id)
