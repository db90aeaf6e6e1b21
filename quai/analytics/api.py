"""HTTP API of analytics (mounted under /api/v1/analytics): the supervisor's figures as JSON, thin over the read
model. Staff see every merchant's orders (or the one they name); a merchant's key only its own."""

# No "from __future__ import annotations" here: Ninja reads the Query[...] annotation at runtime.

from typing import Any

from django.http import HttpRequest
from ninja import Field as NinjaField
from ninja import Query, Router, Schema

from quai.analytics import selectors
from quai.analytics.schemas import SupervisorOut
from quai.tenants.auth import principal_of

router = Router(tags=["analytics"])


class SupervisorQuery(Schema):
    site: str | None = NinjaField(None, max_length=40, description="The site's code (or id); the first site if empty.")
    merchant_id: int | None = NinjaField(None, description="Staff: one merchant's figures only.")


@router.get("/supervisor", response=SupervisorOut)
def supervisor(request: HttpRequest, filters: Query[SupervisorQuery]) -> Any:
    """Backlog per stage, today's cut-offs and whether each will be made, throughput over the last hour, orders at
    risk, staff per zone against plan (staff only) and the day's backlog curve, for one site."""
    scope = principal_of(request).scope(filters.merchant_id)
    site = selectors.board_site(site=filters.site)
    return selectors.supervisor_board(scope=scope, site=site)
