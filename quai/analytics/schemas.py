from __future__ import annotations

from datetime import date, datetime

from ninja import Schema


class StageOut(Schema):
    stage: str
    orders: int
    lines: int


class CutoffOut(Schema):
    service: str
    name: str
    cutoff: datetime
    due: int
    packed: int
    shipped: int
    left: int
    ahead: int
    verdict: str
    finish_at: datetime | None
    short: int


class AtRiskOut(Schema):
    order_id: int
    external_id: str
    merchant_code: str
    service: str
    ship_by: datetime | None
    delivery_by: date | None
    at_risk_since: datetime | None


class ZoneStaffOut(Schema):
    zone_id: int | None
    zone_code: str
    activity: str
    planned: int
    rostered: int
    active: int
    lines_last_hour: int


class ThrottleOut(Schema):
    merchant_id: int
    merchant_code: str
    orders_per_hour: int | None
    lines_per_hour: int | None
    orders_left: int | None
    lines_left: int | None
    sources: list[str]
    next_room_at: datetime | None


class CurvePointOut(Schema):
    at: datetime
    stages: dict[str, int]
    total: int


class SupervisorOut(Schema):
    site_id: int
    site_code: str
    at: datetime
    merchant_id: int | None
    backlog: list[StageOut]
    backlog_total: int
    aside: list[StageOut]
    throughput: dict[str, int]
    lines_last_hour: dict[str, int]
    cutoffs: list[CutoffOut]
    at_risk_count: int
    at_risk: list[AtRiskOut]
    staffing: list[ZoneStaffOut] | None
    throttles: list[ThrottleOut]
    curve: list[CurvePointOut]

    @staticmethod
    def resolve_merchant_id(obj: object) -> int | None:
        return obj.merchant_scope  # type: ignore[attr-defined]
