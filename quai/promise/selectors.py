"""Reads of the promise: the snapshot the rule runs on (cached), the stock of a cart, the supervisor's figures.

The hot path (``POST /api/v1/promise``) makes no heavy query, and none at all once warm:

- the site's configuration is cached per process until a configuration write (``snapshot_invalidate``) or
  ``CONFIG_TTL``;
- the backlog is never counted from the orders there: ``BacklogDelta`` keeps it per merchant and status as rows
  appended by ``order.status_changed`` (``quai.promise.services.backlog_apply``, one insert per relay batch) and
  folded by the watch, and the hot path sums those few rows at most every ``BACKLOG_TTL`` seconds;
- each merchant's release buffer (its order policy, read through ``quai.orders.selectors``) is cached per merchant
  for ``CONFIG_TTL`` like the configuration, since a policy changes as rarely;
- a SKU's stock (free to sell, and its open ASNs) is read through inventory's availability selector for the SKUs the
  process has not seen in the last ``STOCK_TTL`` seconds, and kept that long.

Events are relayed in a worker, not in the web process that quotes, so an in-process cache cannot be told of a
change by them: the TTLs bound how old a figure may be instead. The promise tolerates it: a backlog seconds old
moves a cut-off by a few lines' worth of work at most, and stock two seconds old is what a shop's own stock feed is
at best; an order that took the last unit meanwhile is backordered and its promise broken as ``stock_short``.
"""

from __future__ import annotations

import threading
import time as monotonic
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Count, F, Model, Q, QuerySet, Sum

from quai.core import clock
from quai.core.rows import Among, converted, ids_in, ids_param, reading
from quai.inventory import selectors as inventory_selectors
from quai.labor import domain as labor_domain
from quai.labor import selectors as labor_selectors
from quai.orders import domain as order_domain
from quai.orders.selectors import order_list, release_buffer_minutes_of
from quai.promise import domain
from quai.promise.models import (
    BacklogDelta,
    CarrierService,
    PromiseRecord,
    PromiseSite,
    PromiseStatus,
    SiteClosure,
    StageCapacity,
    TransitLane,
)
from quai.tenants.scope import Scope
from quai.warehouse.models import Site

if TYPE_CHECKING:
    from quai.labor.models import StaffingPlan
    from quai.orders.models import Order

CONFIG_TTL = 60.0
#: A configuration whose rows' stamp has not moved is still read again after this long: the bound on a change the
#: stamp cannot see (a warehouse site's calendar saved twice within one instant of a frozen clock).
CONFIG_MAX_AGE = 3600.0
BACKLOG_TTL = 5.0
#: How long labour's capacity per hour is kept, and how many hours ahead it is read (the others run at the
#: configured capacity).
LABOUR_TTL = 60.0
LABOUR_HOURS = 72
#: The plans and shifts are read for this much past the hours asked, so the same read serves as the window moves.
STAFFING_READ_AHEAD = timedelta(hours=24)
STOCK_TTL = 2.0
#: Past this many SKUs in the stock cache, it starts again empty (memory stays bounded whatever the catalogue).
STOCK_CACHE_MAX = 50_000

#: Order statuses whose lines still wait at each stage (allocated and released work is ahead of a new order).
STAGE_STATUSES: dict[str, tuple[str, ...]] = {
    "pick": (order_domain.ALLOCATED, order_domain.RELEASED),
    "pack": (order_domain.ALLOCATED, order_domain.RELEASED, order_domain.PICKING),
}


@dataclass(frozen=True)
class SiteConfig:
    """One site's configuration as the rule reads it, with the rows' ids the recording needs."""

    promise_site_id: int
    site_id: int
    site_code: str
    merchant_ids: frozenset[int]  # empty: every merchant
    snapshot: domain.Snapshot  # with an empty backlog; ``snapshot_for`` adds the live one
    lane_ids: dict[tuple[str, str], int]
    kept_rate_threshold: float
    widened_confidence: float


@dataclass(frozen=True)
class _Configs:
    """The configurations read, the stamp of the rows they were read from, when read and when last checked."""

    configs: list[SiteConfig]
    stamp: tuple[object, ...]
    loaded: float
    checked: float


@dataclass(frozen=True)
class _StaffingReads:
    """What labour's capacity is computed from, read for a window of hours and kept while ``staffing_stamp`` stays
    the same: the plans overlapping the window (newest first), their heads per (plan, stage) and hour, and the
    shifts of active staff per stage (``(staff, starts, ends)`` in start order)."""

    stages: frozenset[str]
    read_from: datetime
    read_until: datetime
    stamp: tuple[object, ...]
    loaded: float
    plans: list[StaffingPlan]
    heads: dict[tuple[int, str], dict[datetime, int]]
    shifts: dict[str, list[tuple[int, datetime, datetime]]]


_lock = threading.Lock()
_configs: _Configs | None = None
_backlogs: dict[int, tuple[float, dict[str, int]]] = {}
_labour: dict[int, tuple[float, dict[str, dict[datetime, float]]]] = {}
_staffing: dict[int, _StaffingReads] = {}
_staffing_seen: tuple[tuple[object, ...], float] | None = None
_stock: dict[tuple[int, str], tuple[float, SkuStock]] = {}
_buffers: dict[int, tuple[float, timedelta]] = {}


def snapshot_invalidate() -> None:
    """Forget everything cached (a configuration write calls it; tests start with it)."""
    global _configs, _staffing_seen
    with _lock:
        _configs = None
        _staffing_seen = None
        _backlogs.clear()
        _labour.clear()
        _staffing.clear()
        _stock.clear()
        _buffers.clear()
    labor_selectors.measured_rate_invalidate()


def config_invalidate() -> None:
    """Forget the site configurations only (a lane's outcomes changed its transit or its widening): labour's
    figures, the stock and the backlog do not depend on them."""
    global _configs
    with _lock:
        _configs = None


def caches_check() -> None:
    """What a relay batch calls before it quotes: the configuration and what labour's capacity is read from are
    checked against their rows' stamps (one small query) and read again only if they changed, so a batch never
    quotes from a configuration or a roster another process changed since — whatever the TTLs say — and never
    reads them again when nothing changed."""
    config_stamp, staffing_stamp = _stamps(staffing=True)
    site_configs(stamp=config_stamp)
    _staffing_check(monotonic.monotonic(), stamp=staffing_stamp)


def backlog_invalidate() -> None:
    with _lock:
        _backlogs.clear()


def _time(text: str) -> time:
    return time.fromisoformat(text)


def _service_of(row: CarrierService, lanes: Iterable[TransitLane], widened_confidence: float) -> domain.CarrierService:
    transit: dict[str, domain.Transit] = {}
    lane_confidence: dict[str, float] = {}
    for lane in lanes:
        seed = domain.Transit(tuple((int(d), float(s)) for d, s in lane.seed))
        observed = {int(days): int(count) for days, count in (lane.observed or {}).items()}
        transit[lane.zone] = domain.transit_observed(seed, observed)
        if lane.widened:
            lane_confidence[lane.zone] = widened_confidence
    return domain.CarrierService(
        code=row.code,
        name=row.name,
        carrier=row.carrier,
        cutoffs={int(day): _time(cutoff) for day, cutoff in row.cutoffs.items()},
        delivery_weekdays=frozenset(int(d) for d in row.delivery_weekdays),
        transit=transit,
        pickup_point=row.pickup_point,
        price=row.price,
        currency=row.currency,
        lane_confidence=lane_confidence,
    )


_COUNT_WIDENED = "COUNT(CASE WHEN widened THEN 1 END)"


def _config_stamp_columns() -> list[str]:
    """The scalar subqueries of the configuration's stamp: a few aggregates over its small tables (a site or two,
    their services and lanes) that change whenever one of their rows does. A configuration load or an admin edit
    raises the promise site's ``version``; a lane's outcomes raise its ``kept + broken`` (its observed transit and
    its widening change only with them); services and sites are saved through the ORM (``updated_at``); rows added
    or removed change the counts and the highest ids."""
    merchants = PromiseSite.merchants.through
    parts: tuple[tuple[type[Model], tuple[str, ...]], ...] = (
        (PromiseSite, ("COUNT(*)", "MAX(id)", "MAX(updated_at)", "SUM(version)")),
        (merchants, ("COUNT(*)", "MAX(id)", "SUM(merchant_id)")),
        (SiteClosure, ("COUNT(*)", "MAX(id)")),
        (StageCapacity, ("COUNT(*)", "MAX(id)", "SUM(lines_per_hour)")),
        (CarrierService, ("COUNT(*)", "MAX(id)", "MAX(updated_at)", "COUNT(CASE WHEN active THEN 1 END)")),
        (TransitLane, ("COUNT(*)", "MAX(id)", "MAX(updated_at)", "SUM(kept + broken)", _COUNT_WIDENED)),
        (Site, ("COUNT(*)", "MAX(id)", "MAX(updated_at)")),
    )
    return [
        f"(SELECT {expression} FROM {connection.ops.quote_name(model._meta.db_table)})"
        for model, expressions in parts
        for expression in expressions
    ]


def _stamps(*, staffing: bool) -> tuple[tuple[object, ...], tuple[object, ...] | None]:
    """The configuration's stamp, and labour's too (``labor.selectors.staffing_stamp``) when ``staffing``: ONE
    query either way."""
    own = _config_stamp_columns()
    columns = own + (labor_selectors.staffing_stamp_columns() if staffing else [])
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(columns))
        row = tuple(cursor.fetchone())
    name = str(connection.settings_dict["NAME"])
    return (name, *row[: len(own)]), ((name, *row[len(own) :]) if staffing else None)


def _load_configs() -> list[SiteConfig]:
    configs = []
    sites = PromiseSite.objects.select_related("site").prefetch_related(
        "closures", "capacities", "merchants", "services__lanes"
    )
    for row in sites.order_by("site__code"):
        site = row.site
        calendar = domain.SiteCalendar(
            time_zone=site.time_zone,
            opening_days=frozenset(int(d) for d in site.opening_days),
            opens_at=site.opens_at if isinstance(site.opens_at, time) else _time(str(site.opens_at)),
            closes_at=site.closes_at if isinstance(site.closes_at, time) else _time(str(site.closes_at)),
            holiday_country=row.holiday_country,
            holiday_subdivision=row.holiday_subdivision,
            works_public_holidays=row.works_public_holidays,
            closures=frozenset(c.day for c in row.closures.all()),
        )
        services = [s for s in row.services.all() if s.active]
        lane_ids = {(s.code, lane.zone): lane.pk for s in services for lane in s.lanes.all()}
        snapshot = domain.Snapshot(
            calendar=calendar,
            services=tuple(_service_of(s, s.lanes.all(), float(row.widened_confidence)) for s in services),
            capacity=domain.Capacity(
                lines_per_hour={c.stage: float(c.lines_per_hour) for c in row.capacities.all()}, backlog_lines={}
            ),
            putaway_hours=float(row.putaway_hours),
            confidence=float(row.confidence),
        )
        configs.append(
            SiteConfig(
                promise_site_id=row.pk,
                site_id=site.pk,
                site_code=site.code,
                merchant_ids=frozenset(m.pk for m in row.merchants.all()),
                snapshot=snapshot,
                lane_ids=lane_ids,
                kept_rate_threshold=float(row.kept_rate_threshold),
                widened_confidence=float(row.widened_confidence),
            )
        )
    return configs


def site_configs(*, stamp: tuple[object, ...] | None = None) -> list[SiteConfig]:
    """Every site's configuration: the process's copy for ``CONFIG_TTL`` without a query (the quote's hot path),
    then the rows' stamp is read (or given: a relay batch reads it at its start, ``caches_check``) and the copy kept
    if the stamp is the same — read again only when a row changed, or after ``CONFIG_MAX_AGE`` whatever the stamp
    says."""
    global _configs
    now = monotonic.monotonic()
    cached = _configs
    if cached is not None and stamp is None and now - cached.checked < CONFIG_TTL:
        return cached.configs
    if stamp is None:
        stamp = _stamps(staffing=False)[0]
    if cached is not None and cached.stamp == stamp and now - cached.loaded < CONFIG_MAX_AGE:
        with _lock:
            if _configs is cached:
                _configs = replace(cached, checked=now)
        return cached.configs
    configs = _load_configs()
    with _lock:
        _configs = _Configs(configs=configs, stamp=stamp, loaded=now, checked=now)
    return configs


def site_config_for(merchant_id: int) -> SiteConfig | None:
    """The site that ships for ``merchant_id``: one that names it, else the first that serves every merchant."""
    fallback = None
    for config in site_configs():
        if merchant_id in config.merchant_ids:
            return config
        if not config.merchant_ids and fallback is None:
            fallback = config
    return fallback


TRACKED_STATUSES: frozenset[str] = frozenset(status for stage in STAGE_STATUSES.values() for status in stage)


def _stages(lines_by_status: dict[str, int]) -> dict[str, int]:
    return {stage: sum(int(lines_by_status.get(s, 0)) for s in wanted) for stage, wanted in STAGE_STATUSES.items()}


def _count_backlog(config: SiteConfig) -> dict[str, int]:
    """The site's backlog per stage: the sum of ``BacklogDelta`` per status (a few rows once the watch folded them)."""
    rows = BacklogDelta.objects.within(Scope.system("promise backlog"))
    if config.merchant_ids:
        rows = rows.filter(merchant_id__in=config.merchant_ids)
    found = rows.order_by().values_list("status").annotate(total=Sum("lines"))
    return _stages({status: int(total or 0) for status, total in found})


def backlog_sums(*, scope: Scope) -> dict[tuple[int, str], int]:
    """The backlog as the moves say it: lines per (merchant, status), summed over ``BacklogDelta`` (zeros left out)."""
    rows = (
        BacklogDelta.objects.within(scope).order_by().values_list("merchant_id", "status").annotate(total=Sum("lines"))
    )
    return {(int(merchant_id), str(status)): int(total) for merchant_id, status, total in rows if total}


def backlog_counted_from_orders(*, scope: Scope) -> dict[tuple[int, str], int]:
    """Order lines per (merchant, status) of the tracked statuses, counted from the orders themselves: the heavy
    count ``BacklogDelta`` spares the hot path; the watch runs it to repair the sums."""
    rows = (
        order_list(scope=scope)
        .filter(status__in=TRACKED_STATUSES)
        .order_by()
        .values_list("merchant_id", "status")
        .annotate(line_count=Count("lines"))
    )
    return {(int(merchant_id), str(status)): int(count) for merchant_id, status, count in rows}


def order_line_counts(*, scope: Scope, order_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """``order id → (merchant id, order lines)`` of the orders in ``order_ids`` within ``scope``, in one query (the
    backlog handler's read, once per relay batch)."""
    ids = list(dict.fromkeys(order_ids))
    if not ids:
        return {}
    params: list[Any] = [ids_param(ids)]
    if scope.merchant_id is not None:
        params.append(scope.merchant_id)
    with connection.cursor() as cursor:
        cursor.execute(_line_counts_sql(connection.vendor, scope.merchant_id is not None), params)
        return {int(pk): (int(merchant_id), int(count)) for pk, merchant_id, count in cursor.fetchall()}


@cache
def _line_counts_sql(vendor: str, one_merchant: bool) -> str:
    """``order_line_counts``'s statement, written once: the ids one parameter (``quai.core.rows.ids_in``), the lines
    counted per order by a subquery — the rows of the ORM's ``order_list(scope).filter(pk__in=ids)
    .values_list("pk", "merchant_id").annotate(Count("lines"))``, which it compiled again on each relay batch,
    preparing every id (1.08 of ``backlog_apply``'s 1.17 s, profiled in a 1,000-order day); same rows:
    ``test_backlog_line_counts``."""
    from quai.orders.models import Order, OrderLine

    quote = connection.ops.quote_name
    line_order = quote(OrderLine._meta.get_field("order").column)
    sql = (
        f"SELECT o.{quote('id')}, o.{quote('merchant_id')},"
        f" (SELECT COUNT(*) FROM {quote(OrderLine._meta.db_table)} l WHERE l.{line_order} = o.{quote('id')})"
        f" FROM {quote(Order._meta.db_table)} o WHERE o.{quote('id')} {ids_in(vendor)}"
    )
    if one_merchant:
        sql += f" AND o.{quote('merchant_id')} = %s"
    return sql


@dataclass(frozen=True)
class OrderToPromise:
    """What recording an order's promise reads of it: the shop's promise if it passed one, where it goes, when it
    came and may be released, and its lines as ``(SKU code, quantity)`` in the order's line order."""

    pk: int
    merchant_id: int
    promise_id: str
    carrier_service: str
    country: str
    postcode: str
    created_at: datetime
    release_after: datetime | None
    promised_from: date | None
    promised_to: date | None
    lines: tuple[tuple[str, int], ...]
    #: The SKU of each line (``lines``' order): its stock may be read by id (``stock_warm``).
    sku_ids: tuple[int, ...] = ()
    #: Its promise is recorded already.
    promised: bool = False

    @classmethod
    def of(cls, order: Order) -> OrderToPromise:
        lines = list(order.lines.all())
        return cls(
            order.pk,
            order.merchant_id,
            order.promise_id,
            order.carrier_service,
            order.country,
            order.postcode,
            order.created_at,
            order.release_after,
            order.promised_from,
            order.promised_to,
            tuple((line.sku_code, line.quantity) for line in lines),
            tuple(line.sku_id for line in lines),
        )


_TO_PROMISE_FIELDS = (
    "pk",
    "merchant_id",
    "promise_id",
    "carrier_service",
    "country",
    "postcode",
    "created_at",
    "release_after",
    "promised_from",
    "promised_to",
)


def orders_to_promise(*, scope: Scope, order_ids: Iterable[int]) -> dict[int, OrderToPromise]:
    """``order id → OrderToPromise`` of the orders in ``order_ids`` within ``scope``, each saying whether its
    promise is recorded already, in ONE query (the orders joined to their lines, as tuples: a relay batch of
    ``order.received`` needs no model instance of either).

    The statement is written once (``_to_promise_sql``), the ids one parameter, and an order's own columns go
    through the ORM's converters once per order, not once per line: the ORM's ``values_list`` over the same join
    compiled it again on each relay batch and converted the order's instants on every line's row (0.38 s of the
    promise's 2.5 s in a 5,000-order SQLite day). Same values: ``test_orders_to_promise_read``."""
    ids = list(dict.fromkeys(order_ids))
    if not ids:
        return {}
    params: list[Any] = [ids_param(ids)]
    if scope.merchant_id is not None:
        params.append(scope.merchant_id)
    sql, converters = _to_promise_sql(connection.vendor, scope.merchant_id is not None)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    width = len(_TO_PROMISE_FIELDS)
    found: dict[int, OrderToPromise] = {}
    lines: list[tuple[str, int]] = []
    skus: list[int] = []
    head: list[Any] = []
    for row in rows:
        if not head or row[0] != head[0]:
            if head:
                found[head[0]] = _to_promise(head, lines, skus)
            head, lines, skus = list(row[: width + 1]), [], []
            converted(head, 0, converters)
        if row[width + 1] is not None:
            lines.append((row[width + 1], row[width + 2]))
            skus.append(row[width + 3])
    if head:
        found[head[0]] = _to_promise(head, lines, skus)
    return found


def _to_promise(head: list[Any], lines: list[tuple[str, int]], skus: list[int]) -> OrderToPromise:
    pk, merchant_id, promise_id, service, country, postcode, created, release, since, until, promised = head
    return OrderToPromise(
        pk,
        merchant_id,
        promise_id,
        service,
        country,
        postcode,
        created,
        release,
        since,
        until,
        tuple(lines),
        tuple(skus),
        bool(promised),
    )


@cache
def _to_promise_sql(vendor: str, one_merchant: bool) -> tuple[str, tuple[tuple[int, tuple[tuple[Any, Any], ...]], ...]]:
    """``orders_to_promise``'s statement and the converters of its order columns (``quai.core.rows.reading``, by
    position): ``order_list(scope).filter(pk__in=ids).annotate(promised=Exists(records of the order))
    .order_by("pk", "lines__position", "lines__id").values_list(*_TO_PROMISE_FIELDS, "promised", the line's SKU
    code, quantity and SKU id)``, written once."""
    from quai.orders.models import Order, OrderLine

    quote = connection.ops.quote_name
    names, _columns, by_model_position = reading(Order, _TO_PROMISE_FIELDS)
    by_attname = {str(field.attname): field for field in Order._meta.concrete_fields}
    order_fields = [by_attname["id" if name == "pk" else name] for name in _TO_PROMISE_FIELDS]
    # ``reading`` lists the fields in the model's order; the statement in ``_TO_PROMISE_FIELDS``' order.
    position = {str(field.attname): index for index, field in enumerate(order_fields)}
    converters = tuple(sorted((position[names[index]], found) for index, found in by_model_position))
    line = {str(field.name): quote(str(field.column)) for field in OrderLine._meta.concrete_fields}
    record_order = quote(next(str(f.column) for f in PromiseRecord._meta.concrete_fields if f.name == "order"))
    columns = ", ".join(f"o.{quote(str(field.column))}" for field in order_fields)
    sql = (
        f"SELECT {columns},"
        f" EXISTS(SELECT 1 FROM {quote(PromiseRecord._meta.db_table)} r WHERE r.{record_order} = o.{quote('id')}),"
        f" l.{line['sku_code']}, l.{line['quantity']}, l.{line['sku']}"
        f" FROM {quote(Order._meta.db_table)} o"
        f" LEFT OUTER JOIN {quote(OrderLine._meta.db_table)} l ON l.{line['order']} = o.{quote('id')}"
        f" WHERE o.{quote('id')} {ids_in(vendor)}"
    )
    if one_merchant:
        sql += f" AND o.{quote('merchant_id')} = %s"
    sql += f" ORDER BY o.{quote('id')}, l.{line['position']}, l.{quote('id')}"
    return sql, converters


def backlog_for(config: SiteConfig) -> dict[str, int]:
    now = monotonic.monotonic()
    cached = _backlogs.get(config.promise_site_id)
    if cached is not None and now - cached[0] < BACKLOG_TTL:
        return cached[1]
    backlog = _count_backlog(config)
    with _lock:
        _backlogs[config.promise_site_id] = (now, backlog)
    return backlog


def labour_capacity_by_hour(*, site_id: int, stage: str, since: datetime, hours: int) -> dict[datetime, float]:
    """Lines per hour of ``stage`` at the site for each clock hour from ``since``'s, for ``hours`` hours: one stage
    of ``labour_capacity_by_stage``."""
    return labour_capacity_by_stage(site_id=site_id, stages=(stage,), since=since, hours=hours).get(stage, {})


def _staffing_check(now: float, *, stamp: tuple[object, ...] | None = None) -> tuple[object, ...]:
    """Labour's stamp (``labor.selectors.staffing_stamp``), read again after ``LABOUR_TTL`` (or given: a relay
    batch reads it at its start); when it moved, labour's figures and what they were read from are forgotten."""
    global _staffing_seen
    seen = _staffing_seen
    if stamp is None:
        if seen is not None and now - seen[1] < LABOUR_TTL:
            return seen[0]
        stamp = labor_selectors.staffing_stamp()
    with _lock:
        if _staffing_seen is None or _staffing_seen[0] != stamp:
            _staffing.clear()
            _labour.clear()
        _staffing_seen = (stamp, now)
    return stamp


def _staffing_reads(*, site_id: int, stages: frozenset[str], first: datetime, until: datetime) -> _StaffingReads:
    """The plans, their heads and the shifts of ``[first, until)``: this process's copy while labour's stamp has
    not moved, read again — for a day more than asked, so the window's hourly move reuses it — otherwise (and after
    ``CONFIG_MAX_AGE`` whatever the stamp says)."""
    now = monotonic.monotonic()
    stamp = _staffing_check(now)
    cached = _staffing.get(site_id)
    if (
        cached is not None
        and cached.stamp == stamp
        and stages <= cached.stages
        and cached.read_from <= first
        and until <= cached.read_until
        and now - cached.loaded < CONFIG_MAX_AGE
    ):
        return cached
    read_until = until + STAFFING_READ_AHEAD
    plans = list(labor_selectors.plan_list(site_id=site_id).filter(starts_at__lt=read_until, ends_at__gt=first))
    heads = labor_selectors.plan_heads_by_activity_hour(plan_ids=[plan.pk for plan in plans], activities=sorted(stages))
    shifts: dict[str, list[tuple[int, datetime, datetime]]] = {}
    rows = (
        labor_selectors.shift_list(site_id=site_id)
        .filter(activity__in=sorted(stages), starts_at__lt=read_until, ends_at__gt=first, staff__active=True)
        .values_list("activity", "staff_id", "starts_at", "ends_at")
    )
    for activity, staff, starts, ends in rows:
        shifts.setdefault(activity, []).append((staff, starts, ends))
    reads = _StaffingReads(
        stages=stages,
        read_from=first,
        read_until=read_until,
        stamp=stamp,
        loaded=now,
        plans=plans,
        heads=heads,
        shifts=shifts,
    )
    with _lock:
        _staffing[site_id] = reads
    return reads


def labour_capacity_by_stage(
    *, site_id: int, stages: Iterable[str], since: datetime, hours: int
) -> dict[str, dict[datetime, float]]:
    """Lines per hour of each of ``stages`` at the site for each clock hour from ``since``'s, for ``hours`` hours,
    as labour's ``capacity_lines_per_hour`` answers it in the middle of each hour — only the hours labour knows
    (someone rostered, or a staffing plan covering it), in order lines (``labor.selectors.order_line_rate``: the
    standard over the plan's work per line, or the measured rate). Every stage in one pass over the plans, their
    cells and the shifts (kept while labour's stamp stays the same, ``_staffing_reads``), the rate read once per
    stage and work per line, at ``since``: it moves with the scans, so it is read at each call."""
    wanted = frozenset(stages)
    first = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    until = first + timedelta(hours=hours)
    reads = _staffing_reads(site_id=site_id, stages=wanted, first=first, until=until)
    covering_plans = [plan for plan in reads.plans if plan.starts_at < until and plan.ends_at > first]
    found_by_stage: dict[str, dict[datetime, float]] = {}
    for stage in sorted(wanted):
        plans = [(plan, reads.heads[(plan.pk, stage)]) for plan in covering_plans if (plan.pk, stage) in reads.heads]
        shifts = [shift for shift in reads.shifts.get(stage, ()) if shift[1] < until and shift[2] > first]
        # The stage's rate in order lines, read once per work per line (a plan's packing may count a parcel's
        # handling).
        rates: dict[float, float | None] = {}
        found: dict[datetime, float] = {}
        for n in range(hours):
            hour = first + timedelta(hours=n)
            at = hour + timedelta(minutes=30)
            plan_heads = next(((p, h) for p, h in plans if p.starts_at <= at < p.ends_at), None)
            rostered = len({staff for staff, starts, ends in shifts if starts <= at < ends})
            if rostered == 0 and plan_heads is not None:
                rostered = plan_heads[1].get(hour, 0)
            if rostered == 0:
                if plan_heads is not None:
                    found[hour] = 0.0
                continue
            covering = plan_heads[0] if plan_heads is not None else None
            per_line = labor_selectors.plan_work_per_line(covering, stage)
            if per_line not in rates:
                rates[per_line] = labor_selectors.order_line_rate(
                    site=site_id, activity=stage, at=since, work_per_line=per_line
                )
            rate = rates[per_line]
            if rate is None:
                continue
            utilisation = float(covering.utilisation) if covering is not None else 0.85
            found[hour] = labor_domain.capacity_of(rostered, lines_per_hour=rate, utilisation=utilisation)
        found_by_stage[stage] = found
    return found_by_stage


def labour_capacity_for(config: SiteConfig) -> dict[str, dict[datetime, float]]:
    """Labour's capacity per stage and hour for the next ``LABOUR_HOURS`` (cached ``LABOUR_TTL``, and forgotten at
    once when labour's stamp moves): what the staffing plan or the roster says the site does, where it says
    anything."""
    now = monotonic.monotonic()
    cached = _labour.get(config.site_id)
    if cached is not None and now - cached[0] < LABOUR_TTL:
        return cached[1]
    since = clock.now()
    stages = config.snapshot.capacity.lines_per_hour.keys() | set(domain.STAGES)
    hourly = {
        stage: figures
        for stage, figures in labour_capacity_by_stage(
            site_id=config.site_id, stages=stages, since=since, hours=LABOUR_HOURS
        ).items()
        if figures
    }
    with _lock:
        _labour[config.site_id] = (now, hourly)
    return hourly


def release_buffer_for(merchant_id: int) -> timedelta:
    """The merchant's release buffer (cached ``CONFIG_TTL``): how long its orders wait after intake before the
    warehouse may start them."""
    now = monotonic.monotonic()
    cached = _buffers.get(merchant_id)
    if cached is not None and now - cached[0] < CONFIG_TTL:
        return cached[1]
    minutes = release_buffer_minutes_of(scope=Scope.merchant(merchant_id), merchant_id=merchant_id)
    buffer = timedelta(minutes=minutes)
    with _lock:
        _buffers[merchant_id] = (now, buffer)
    return buffer


def snapshot_for(config: SiteConfig, *, merchant_id: int, release_buffer: timedelta | None = None) -> domain.Snapshot:
    """The site's snapshot for ``merchant_id``'s cart with the live backlog (cached for ``BACKLOG_TTL``), labour's
    capacity per hour where a staffing plan or the roster gives one (cached for ``LABOUR_TTL``) and the release
    buffer: ``release_buffer`` when given (an order's own), else the merchant's (cached)."""
    snapshot = config.snapshot
    capacity = replace(snapshot.capacity, backlog_lines=backlog_for(config), hourly=labour_capacity_for(config))
    if release_buffer is None:
        release_buffer = release_buffer_for(merchant_id)
    return replace(snapshot, capacity=capacity, release_buffer=release_buffer)


@dataclass(frozen=True)
class SkuStock:
    sku_id: int
    code: str
    available: int
    #: Open ASNs by expected date; None when not read (``stock_warm``): only a quantity within ``available`` may
    #: then use this entry, a larger one has ``stock_of`` read the SKU again in full.
    incoming: tuple[tuple[date, int], ...] | None


def _fresh(cached: tuple[float, SkuStock] | None, now: float, quantity: int | None) -> SkuStock | None:
    if cached is None or now - cached[0] >= STOCK_TTL:
        return None
    stock = cached[1]
    if stock.incoming is None and (quantity is None or quantity > stock.available):
        return None
    return stock


def stock_of(
    *, merchant_id: int, codes: Iterable[str], quantities: Mapping[str, int] | None = None
) -> dict[str, SkuStock]:
    """Free stock (what shops may sell: on hand − reserved − safety buffer) and open ASNs of the merchant's SKUs
    named by ``codes``; a code not of this merchant is absent. Read through inventory's availability selector
    for the codes not read in the last ``STOCK_TTL`` seconds (one call for all of them), kept that long. With
    ``quantities`` (the cart's, per code), an entry ``stock_warm`` read without its ASNs serves a quantity it
    covers; without, every entry returned has its ASNs."""
    wanted = list(dict.fromkeys(codes))
    now = monotonic.monotonic()
    found: dict[str, SkuStock] = {}
    missing = []
    for code in wanted:
        stock = _fresh(_stock.get((merchant_id, code)), now, None if quantities is None else quantities.get(code))
        if stock is not None:
            found[code] = stock
        else:
            missing.append(code)
    if not missing:
        return found
    page = inventory_selectors.availability_list(scope=Scope.merchant(merchant_id))
    read = {}
    for row in inventory_selectors.AvailabilityPage(page.queryset.filter(code__in=missing)):
        incoming = tuple((i.expected_date, i.quantity) for i in row.incoming if i.expected_date is not None)
        read[row.sku_code] = SkuStock(row.sku_id, row.sku_code, row.available_to_sell, incoming)
    _stock_keep(merchant_id, now, read)
    found.update(read)
    return found


def _stock_keep(merchant_id: int, now: float, read: Mapping[str, SkuStock]) -> None:
    with _lock:
        if len(_stock) + len(read) > STOCK_CACHE_MAX:
            _stock.clear()
        for code, stock in read.items():
            _stock[(merchant_id, code)] = (now, stock)


def stock_warm(*, merchant_id: int, skus: Iterable[tuple[int, str]]) -> None:
    """Read what shops may sell of the merchant's ``skus`` (``(id, code)``: a relay batch's order lines) not read
    in the last ``STOCK_TTL`` seconds, in ONE query (``inventory.selectors.available_to_sell_many``), for the
    quotes that follow: a line within that stock needs nothing more; the ASNs of a SKU are read (``stock_of``) only
    for a line it does not cover. A SKU whose code is no longer the line's is kept under its own code: the line's
    quote then reads its code as it would have."""
    now = monotonic.monotonic()
    wanted: dict[int, str] = {}
    for sku_id, code in skus:
        cached = _stock.get((merchant_id, code))
        if cached is None or now - cached[0] >= STOCK_TTL:
            wanted[sku_id] = code
    if not wanted:
        return
    rows = inventory_selectors.available_to_sell_many(merchant_id=merchant_id, sku_ids=list(wanted))
    _stock_keep(
        merchant_id, now, {code: SkuStock(sku_id, code, available, None) for sku_id, (code, available) in rows.items()}
    )


def stock_invalidate() -> None:
    """Forget the stock read (this process only)."""
    with _lock:
        _stock.clear()


# --- The supervisor's figures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeptRate:
    key: str
    kept: int
    broken: int

    @property
    def total(self) -> int:
        return self.kept + self.broken

    @property
    def rate(self) -> float | None:
        return self.kept / self.total if self.total else None


def kept_rates(*, scope: Scope, days: int = 14) -> dict[str, list[KeptRate]]:
    """Kept and broken promises decided in the last ``days`` days, by merchant, by carrier and by day."""
    since = clock.today() - timedelta(days=days - 1)
    rows = (
        PromiseRecord.objects.within(scope)
        .filter(status__in=(PromiseStatus.KEPT, PromiseStatus.BROKEN), closed_on__gte=since)
        .values("merchant__code", "carrier", "service", "closed_on", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    tallies: dict[str, dict[str, list[int]]] = {"merchant": {}, "carrier": {}, "day": {}}
    for row in rows:
        kept = row["status"] == PromiseStatus.KEPT
        keys = {
            "merchant": row["merchant__code"],
            "carrier": row["carrier"] or row["service"],
            "day": row["closed_on"].isoformat(),
        }
        for axis, key in keys.items():
            tally = tallies[axis].setdefault(key, [0, 0])
            tally[0 if kept else 1] += row["n"]
    by_day = tallies["day"]
    for offset in range(days):
        by_day.setdefault((since + timedelta(days=offset)).isoformat(), [0, 0])
    return {axis: [KeptRate(k, v[0], v[1]) for k, v in sorted(found.items())] for axis, found in tallies.items()}


@dataclass(frozen=True)
class CutoffCount:
    """The orders promised to ship at one cut-off of one carrier service, and how many are packed and shipped."""

    service: str
    ship_by: datetime
    due: int
    packed: int
    shipped: int


def cutoff_counts(
    *, scope: Scope, promise_site_id: int, since: datetime, until: datetime, merchant_ids: Iterable[int] | None
) -> list[CutoffCount]:
    """Per (carrier service, cut-off) in ``[since, until)``: the promises due (cancelled orders left out), those
    whose order is packed or further, those shipped; of ``merchant_ids`` only, unless None (every merchant the
    scope sees). One aggregate query."""
    records = PromiseRecord.objects.within(scope).filter(
        promise_site_id=promise_site_id, ship_by__gte=since, ship_by__lt=until
    )
    if merchant_ids is not None:
        records = records.filter(merchant_id__in=list(merchant_ids))
    shipped = (order_domain.SHIPPED, order_domain.PARTIALLY_SHIPPED, order_domain.DELIVERED)
    rows = (
        records.exclude(order__status=order_domain.CANCELLED)
        .order_by()
        .values_list("service", "ship_by")
        .annotate(
            due=Count("id"),
            packed=Count("id", filter=Q(order__status__in=(order_domain.PACKED, *shipped))),
            shipped=Count("id", filter=Q(shipped_at__isnull=False) | Q(order__status__in=shipped)),
        )
    )
    return [CutoffCount(*row) for row in rows]


def at_risk_now(*, scope: Scope, limit: int = 100) -> list[PromiseRecord]:
    return list(
        PromiseRecord.objects.within(scope)
        .filter(status=PromiseStatus.AT_RISK)
        .select_related("order", "merchant")
        .order_by("ship_by", "id")[:limit]
    )


def widened_lanes() -> list[TransitLane]:
    return list(TransitLane.objects.filter(widened=True).select_related("service__promise_site__site"))


def open_records(*, scope: Scope, promise_site_id: int) -> list[PromiseRecord]:
    """Promises not yet decided and not yet shipped, in the warehouse's work order (cut-off, then age)."""
    return list(
        PromiseRecord.objects.within(scope)
        .filter(
            promise_site_id=promise_site_id,
            status__in=(PromiseStatus.PENDING, PromiseStatus.AT_RISK),
            shipped_at__isnull=True,
            ship_by__isnull=False,
        )
        .select_related("order")
        .annotate(line_count=Count("order__lines"))
        .order_by("ship_by", "order__created_at", "id")
    )


def overdue_records(*, scope: Scope, today: date) -> list[PromiseRecord]:
    """Promises whose last promised delivery day is over and that were not delivered."""
    return list(
        PromiseRecord.objects.within(scope)
        .filter(Q(status__in=(PromiseStatus.PENDING, PromiseStatus.AT_RISK)), delivery_by__lt=today)
        .select_related("order", "promise_site__site")
    )


def ship_by_for_orders(*, scope: Scope, order_ids: Iterable[int]) -> dict[int, datetime]:
    """The promised ship-by instant (the cut-off of the promised ship date) of each order in ``order_ids`` that has
    one, for the warehouse's work order (waves). One query, the ids one parameter (``Among``: the same text for any
    number of orders, so no chunks either); an order without a recorded promise, or whose promised ship date has no
    known cut-off, is absent."""
    rows = (
        PromiseRecord.objects.within(scope)
        .filter(Among(F("order_id"), order_ids), ship_by__isnull=False)
        .values_list("order_id", "ship_by")
    )
    return {int(order_id): ship_by for order_id, ship_by in rows}


def record_list(*, scope: Scope) -> QuerySet[PromiseRecord]:
    """The promises made, within ``scope`` (the records themselves, for a report to aggregate as it needs)."""
    return PromiseRecord.objects.within(scope)
