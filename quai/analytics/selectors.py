"""The supervisor's board: one site's figures, read through the other apps' selectors (orders, promise, labour,
fulfilment, warehouse) with a handful of aggregate queries whatever the number of orders — never one per order.

Read models only: nothing here writes. ``scope`` decides whose orders count: staff see every merchant's, a merchant's
key only its own (and then neither the warehouse's staffing nor other merchants' release limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from quai.analytics import domain
from quai.core import clock
from quai.core.errors import NotFound
from quai.fulfillment import selectors as fulfilment_selectors
from quai.labor import selectors as labor_selectors
from quai.orders import selectors as order_selectors
from quai.promise import selectors as promise_selectors
from quai.tenants import selectors as tenant_selectors
from quai.tenants.scope import Scope
from quai.warehouse.models import Site
from quai.warehouse.selectors import site_get, site_list

#: At-risk records read from the promise (most urgent first); the board lists the first ``AT_RISK_SHOWN``.
AT_RISK_READ = 200
AT_RISK_SHOWN = 12
WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class StageFigure:
    stage: str
    orders: int
    lines: int


@dataclass(frozen=True)
class AtRiskOrder:
    order_id: int
    external_id: str
    merchant_code: str
    service: str
    ship_by: datetime | None
    delivery_by: object
    at_risk_since: datetime | None


@dataclass(frozen=True)
class ThrottleFigure:
    merchant_id: int
    merchant_code: str
    orders_per_hour: int | None
    lines_per_hour: int | None
    orders_left: int | None
    lines_left: int | None
    sources: list[str]
    next_room_at: datetime | None


@dataclass
class SupervisorBoard:
    site_id: int
    site_code: str
    site_name: str
    at: datetime
    merchant_scope: int | None  # the one merchant whose figures these are, None for every merchant
    backlog: list[StageFigure]
    aside: list[StageFigure]
    throughput: dict[str, int]
    lines_last_hour: dict[str, int]
    cutoffs: list[domain.CutoffOutlook]
    at_risk_count: int
    at_risk: list[AtRiskOrder]
    staffing: list[labor_selectors.ZoneStaffing] | None
    throttles: list[ThrottleFigure]
    curve: list[domain.CurvePoint] = field(default_factory=list)

    @property
    def backlog_total(self) -> int:
        return sum(figure.orders for figure in self.backlog)


def _merchant_ids(site: Site, scope: Scope) -> tuple[list[int] | None, domain.MerchantFilter]:
    """The merchants whose orders count at ``site`` inside ``scope``: None when no filter is needed (every merchant
    of the scope), else their ids (one query on the merchants when the site takes "every merchant but…")."""
    configs = [
        domain.SiteServing(site_code=config.site_code, merchant_ids=config.merchant_ids)
        for config in promise_selectors.site_configs()
    ]
    serving = domain.site_merchants(site.code, configs)
    if scope.merchant_id is not None:
        return ([scope.merchant_id] if serving.allows(scope.merchant_id) else []), serving
    if serving.include is not None:
        return sorted(serving.include), serving
    if not serving.exclude:
        return None, serving
    ids = tenant_selectors.merchant_list(scope=scope).exclude(pk__in=serving.exclude).values_list("pk", flat=True)
    return sorted(ids), serving


def _cutoff_tallies(
    *, scope: Scope, site: Site, merchant_ids: list[int] | None, day_start: datetime, day_end: datetime
) -> list[domain.CutoffTally]:
    """Today's cut-offs of the site's carrier services (the promise's configuration) with the orders promised to
    ship at each: one aggregate query."""
    config = next((c for c in promise_selectors.site_configs() if c.site_code == site.code), None)
    if config is None:
        return []
    calendar = config.snapshot.calendar
    day = day_start.astimezone(calendar.zone).date()
    names = {service.code: service.name for service in config.snapshot.services}
    planned: dict[tuple[str, datetime], tuple[int, int, int]] = {}
    if calendar.works_on(day):
        for service in config.snapshot.services:
            cutoff = service.cutoffs.get(day.isoweekday())
            if cutoff is not None:
                planned[(service.code, calendar.local(day, cutoff))] = (0, 0, 0)
    counts = promise_selectors.cutoff_counts(
        scope=scope,
        promise_site_id=config.promise_site_id,
        since=day_start,
        until=day_end,
        merchant_ids=merchant_ids,
    )
    for count in counts:
        before = planned.get((count.service, count.ship_by), (0, 0, 0))
        planned[(count.service, count.ship_by)] = (
            before[0] + count.due,
            before[1] + count.packed,
            before[2] + count.shipped,
        )
    return [
        domain.CutoffTally(
            service=service, name=names.get(service, service), cutoff=cutoff, due=due, packed=packed, shipped=shipped
        )
        for (service, cutoff), (due, packed, shipped) in planned.items()
    ]


def _at_risk(*, scope: Scope, site: Site, serving: domain.MerchantFilter) -> tuple[int, list[AtRiskOrder]]:
    """The promise's at-risk detection (``at_risk_now``), kept to this site's orders."""
    config = next((c for c in promise_selectors.site_configs() if c.site_code == site.code), None)
    mine = config.promise_site_id if config is not None else None
    records = [
        record
        for record in promise_selectors.at_risk_now(scope=scope, limit=AT_RISK_READ)
        if record.promise_site_id == mine or (record.promise_site_id is None and serving.allows(record.merchant_id))
    ]
    shown = [
        AtRiskOrder(
            order_id=record.order_id,
            external_id=record.order.external_id,
            merchant_code=record.merchant.code,
            service=record.service,
            ship_by=record.ship_by,
            delivery_by=record.delivery_by,
            at_risk_since=record.at_risk_since,
        )
        for record in records[:AT_RISK_SHOWN]
    ]
    return len(records), shown


def _throttles(*, scope: Scope, site: Site, at: datetime) -> list[ThrottleFigure]:
    rooms = fulfilment_selectors.release_rooms(scope=scope, site_id=site.pk, at=at)
    if not rooms:
        return []
    codes = dict(tenant_selectors.merchant_list(scope=scope).filter(pk__in=list(rooms)).values_list("pk", "code"))
    return [
        ThrottleFigure(
            merchant_id=room.merchant_id,
            merchant_code=codes.get(room.merchant_id, str(room.merchant_id)),
            orders_per_hour=room.orders_per_hour,
            lines_per_hour=room.lines_per_hour,
            orders_left=room.orders_left,
            lines_left=room.lines_left,
            sources=list(room.sources),
            next_room_at=room.next_room_at,
        )
        for room in sorted(rooms.values(), key=lambda r: codes.get(r.merchant_id, ""))
    ]


def supervisor_board(*, scope: Scope, site: Site) -> SupervisorBoard:
    """Everything the supervisor's board shows for ``site`` now, inside ``scope``."""
    now = clock.now()
    zone = ZoneInfo(site.time_zone)
    local_now = now.astimezone(zone)
    day_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = (day_start + timedelta(days=1, hours=2)).replace(hour=0)
    merchant_ids, serving = _merchant_ids(site, scope)

    tracked = [status for statuses in domain.STAGES.values() for status in statuses] + list(domain.ASIDE)
    counts = order_selectors.order_counts_by_status(scope=scope, merchant_ids=merchant_ids, statuses=tracked)
    by_stage = domain.backlog_by_stage(counts)
    backlog = [StageFigure(stage, *by_stage[stage]) for stage in domain.STAGES]
    aside = [StageFigure(status, *by_stage[status]) for status in domain.ASIDE]

    last_hour = order_selectors.order_steps_count(
        scope=scope, merchant_ids=merchant_ids, since=now - WINDOW, until=now + timedelta(seconds=1)
    )
    received = sum(
        order_selectors.orders_created_count(
            scope=scope, merchant_ids=merchant_ids, since=now - WINDOW, until=now + timedelta(seconds=1), by_hour=zone
        ).values()
    )
    flow = domain.throughput(last_hour, received)

    today_steps = order_selectors.order_steps_count(
        scope=scope, merchant_ids=merchant_ids, since=day_start, until=now + timedelta(seconds=1), by_hour=zone
    )
    today_received = order_selectors.orders_created_count(
        scope=scope, merchant_ids=merchant_ids, since=day_start, until=now + timedelta(seconds=1), by_hour=zone
    )
    # The curve starts when the site opens (what came in overnight is its first level), at midnight before that.
    opens = site.opens_at if isinstance(site.opens_at, time) else time.fromisoformat(str(site.opens_at))
    opening = local_now.replace(hour=opens.hour, minute=0, second=0, microsecond=0)
    curve = domain.backlog_curve(
        now=local_now,
        hours=domain.hours_between(opening if opening <= local_now else day_start, local_now),
        current={figure.stage: figure.orders for figure in backlog},
        steps_by_hour=today_steps,
        received_by_hour=today_received,
    )

    tallies = _cutoff_tallies(scope=scope, site=site, merchant_ids=merchant_ids, day_start=day_start, day_end=day_end)
    cutoffs = domain.cutoff_outlook(tallies, now=now, packed_per_hour=float(flow["packed"]))
    at_risk_count, at_risk = _at_risk(scope=scope, site=site, serving=serving)

    staffing = None
    lines_last_hour: dict[str, int] = {}
    if scope.is_all:
        staffing = labor_selectors.zone_staffing(site=site, at=now)
        for row in staffing:
            lines_last_hour[row.activity] = lines_last_hour.get(row.activity, 0) + row.lines_last_hour

    return SupervisorBoard(
        site_id=site.pk,
        site_code=site.code,
        site_name=site.name,
        at=now,
        merchant_scope=scope.merchant_id,
        backlog=backlog,
        aside=aside,
        throughput=flow,
        lines_last_hour=lines_last_hour,
        cutoffs=cutoffs,
        at_risk_count=at_risk_count,
        at_risk=at_risk,
        staffing=staffing,
        throttles=_throttles(scope=scope, site=site, at=now),
        curve=curve,
    )


def board_site(*, site: str | None) -> Site:
    """The site the board is asked for: by code (or id); the first site by code when none is named."""
    cleaned = (site or "").strip()
    if cleaned.isdecimal():
        return site_get(site_id=int(cleaned))
    sites = site_list()
    found = sites.filter(code__iexact=cleaned).first() if cleaned else sites.first()
    if found is None:
        raise NotFound(_("Site not found."), code="site_not_found", details={"site": cleaned})
    return found
