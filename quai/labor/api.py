"""Labour HTTP API: the warehouse's people and plans, for staff only."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from quai.labor import selectors
from quai.tenants.auth import principal_of

router = Router(tags=["labor"])


class PlanCellOut(Schema):
    hour: datetime
    zone_id: int | None
    activity: str
    workload_lines: Decimal
    lines_per_hour: Decimal
    heads: int


class PlanOut(Schema):
    id: int
    site_id: int
    name: str
    source: str
    starts_at: datetime
    ends_at: datetime
    utilisation: Decimal
    cells: list[PlanCellOut]


@router.get("/plans/{plan_id}", response=PlanOut)
def plan_detail(request: HttpRequest, plan_id: int) -> Any:
    principal_of(request).require_staff()
    plan = selectors.plan_get(plan_id=plan_id)
    fields = ("id", "site_id", "name", "source", "starts_at", "ends_at", "utilisation")
    return {**{name: getattr(plan, name) for name in fields}, "cells": selectors.plan_cells(plan=plan)}
