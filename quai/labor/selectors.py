"""Labour reads: measured rates, plans, rostered heads against plan, the live backlog, and the capacity the promise
reads (``capacity_lines_per_hour``)."""

from __future__ import annotations

import bisect
import threading
import time as monotonic
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.labor import domain
from quai.labor.models import ProductivityEntry, Shift, StaffingPlan, StaffingPlanCell, StaffMember, Standard
from quai.orders import domain as order_domain
from quai.orders.selectors import order_list
from quai.tenants.scope import Scope
from quai.warehouse.models import Site, Zone

#: Below this many lines seen, a measured rate is noise: the engineered standard stands.
MIN_MEASURED_LINES = 200
#: How far back the measured rate of a stage looks.
MEASURED_WINDOW = timedelta(days=14)

#: Order statuses whose lines still wait for each activity (what re-planning reads from the orders).
BACKLOG_STATUSES: dict[str, tuple[str, ...]] = {
    domain.PICK: (order_domain.ALLOCATED, order_domain.RELEASED),
    domain.PACK: (order_domain.ALLOCATED, order_domain.RELEASED, order_domain.PICKING),
    domain.SHIP: (order_domain.PACKED,),
}


def staff_list(*, site_id: int | None = None, active: bool | None = None) -> QuerySet[StaffMember]:
    qs = StaffMember.objects.select_related("user", "site")
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    if active is not None:
        qs = qs.filter(active=active)
    return qs.order_by("site_id", "user__username", "id")


def staff_get(*, staff_id: int) -> StaffMember:
    try:
        return StaffMember.objects.select_related("user", "site").get(pk=staff_id)
    except StaffMember.DoesNotExist:
        raise NotFound(_("Staff member not found."), code="staff_member_not_found") from None


def standard_list(*, site_id: int | None = None) -> QuerySet[Standard]:
    qs = Standard.objects.select_related("zone")
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    return qs.order_by("site_id", "activity", "zone_id", "id")


def shift_list(*, site_id: int | None = None, at: datetime | None = None) -> QuerySet[Shift]:
    qs = Shift.objects.select_related("staff__user", "zone")
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    if at is not None:
        qs = qs.filter(starts_at__lte=at, ends_at__gt=at)
    return qs.order_by("starts_at", "id")


def plan_list(*, site_id: int | None = None) -> QuerySet[StaffingPlan]:
    qs = StaffingPlan.objects.select_related("site")
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    return qs.order_by("-created_at", "-id")


def plan_get(*, plan_id: int) -> StaffingPlan:
    try:
        return StaffingPlan.objects.select_related("site").get(pk=plan_id)
    except StaffingPlan.DoesNotExist:
        raise NotFound(_("Staffing plan not found."), code="staffing_plan_not_found") from None


def plan_cells(*, plan: StaffingPlan) -> list[StaffingPlanCell]:
    return list(plan.cells.select_related("zone").order_by("hour", "activity", "zone_id", "id"))


def plan_heads_by_hour(*, plan_ids: Sequence[int], activity: str) -> dict[int, dict[datetime, int]]:
    """``plan id → hour → heads`` of ``activity`` in the plans ``plan_ids`` (every zone summed), in one query: the
    promise's read of several plans' cells for one stage."""
    return {
        plan_id: per_hour
        for (plan_id, _activity), per_hour in plan_heads_by_activity_hour(
            plan_ids=plan_ids, activities=(activity,)
        ).items()
    }


def plan_heads_by_activity_hour(
    *, plan_ids: Sequence[int], activities: Sequence[str]
) -> dict[tuple[int, str], dict[datetime, int]]:
    """``(plan id, activity) → hour → heads`` of ``activities`` in the plans ``plan_ids`` (every zone summed), in
    one query for every stage the promise reads."""
    found: dict[tuple[int, str], dict[datetime, int]] = {}
    if not plan_ids or not activities:
        return found
    rows = StaffingPlanCell.objects.filter(plan_id__in=list(plan_ids), activity__in=list(activities)).order_by()
    for plan_id, activity, hour, heads in rows.values_list("plan_id", "activity", "hour", "heads"):
        per_hour = found.setdefault((int(plan_id), str(activity)), {})
        per_hour[hour] = per_hour.get(hour, 0) + int(heads)
    return found


def staffing_stamp_columns() -> list[str]:
    """The scalar subqueries of ``staffing_stamp``: a caller may read them beside its own in one statement."""
    parts = (
        (StaffingPlan, ("COUNT(*)", "MAX(id)", "MAX(updated_at)")),
        (StaffingPlanCell, ("COUNT(*)", "MAX(id)", "SUM(heads)")),
        (Shift, ("COUNT(*)", "MAX(id)", "MAX(updated_at)")),
        (StaffMember, ("COUNT(*)", "MAX(id)", "MAX(updated_at)", "COUNT(CASE WHEN active THEN 1 END)")),
        (Standard, ("COUNT(*)", "MAX(id)", "MAX(updated_at)", "SUM(version)")),
    )
    return [
        f"(SELECT {expression} FROM {connection.ops.quote_name(model._meta.db_table)})"
        for model, expressions in parts
        for expression in expressions
    ]


def staffing_stamp() -> tuple[object, ...]:
    """A value that changes whenever what labour's capacity is computed from changes (plans and their cells, shifts,
    staff members' activity, standards), in ONE query of a few aggregates over those tables: the promise keeps
    what it read of them while the stamp stays the same. Plans and cells are only ever inserted; shifts, staff and
    standards are saved through the ORM (their ``updated_at`` moves) and a standard's ``version`` rises. It leaves
    out the scans: the measured rate moves with every scan and is read through its own cache."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(staffing_stamp_columns()))
        row = cursor.fetchone()
    return (str(connection.settings_dict["NAME"]), *row)


def measured_rate(
    *, site: Site | int, activity: str, zone: Zone | None, since: datetime, until: datetime
) -> domain.MeasuredRate:
    """Lines per active hour seen in the scans of ``activity`` (in ``zone``) between ``since`` and ``until``:
    ``domain.measured_rate`` over those scans, read through this process's cache of them (``_ScanCache``).

    Entries with no site (the pack station names none) count for every site."""
    site_id = site if isinstance(site, int) else site.pk
    key = (str(connection.settings_dict["NAME"]), site_id, activity, zone.pk if zone is not None else None)
    with _scan_lock:
        cache = _scan_caches.get(key)
        if cache is None or since < cache.loaded_from or monotonic.monotonic() - cache.built > SCAN_CACHE_SECONDS:
            cache = _scan_caches[key] = _ScanCache(loaded_from=since, built=monotonic.monotonic())

        def rows_of() -> QuerySet[ProductivityEntry]:
            return _entries(site_id=site_id, activity=activity, zone_id=key[3])

        if not cache.refresh(rows_of):
            cache = _scan_caches[key] = _ScanCache(loaded_from=since, built=monotonic.monotonic())
            cache.refresh(rows_of)
        if sum(each.count for each in _scan_caches.values()) > SCAN_CACHE_MAX:
            _scan_caches.clear()
            _scan_caches[key] = cache
        return cache.rate(since, until)


def _entries(*, site_id: int, activity: str, zone_id: int | None) -> QuerySet[ProductivityEntry]:
    rows = ProductivityEntry.objects.filter(activity=activity).filter(Q(site_id=site_id) | Q(site__isnull=True))
    return rows.filter(zone_id=zone_id) if zone_id is not None else rows


#: The scans kept per process (all keys): past this many the cache starts again empty.
SCAN_CACHE_MAX = 2_000_000
#: How often (wall-clock seconds) a cache checks the entries it has seen (an aggregate over all of them, the costlier
#: of its two queries): an entry committed late under a lower id (PostgreSQL) is counted at most this late, as the
#: promise's backlog (``BACKLOG_TTL``) is. SQLite has one writer at a time: its ids commit in order, none comes late.
SCAN_CHECK_SECONDS = 5.0
#: A cache is read again whole after this many wall-clock seconds: an entry's operator, site or zone set to NULL by
#: a deletion (``SET_NULL``) changes whose scan it is without changing how many there are.
SCAN_CACHE_SECONDS = 600.0


@dataclass
class _OperatorScans:
    """One person's scans in (time, id) order, and running totals of what each scan adds to the rate: ``lines[i]``
    and ``micro[i]`` are the lines and microseconds of the gaps ending at scans 1…i that count (within
    ``domain.IDLE_AFTER``)."""

    ats: list[datetime]
    keys: list[tuple[datetime, int]]
    scan_lines: list[int]
    lines: list[int]
    micro: list[int]

    def add(self, at: datetime, pk: int, lines: int) -> None:
        key = (at, pk)
        index = bisect.bisect(self.keys, key)
        self.keys.insert(index, key)
        self.ats.insert(index, at)
        self.scan_lines.insert(index, lines)
        del self.lines[index:], self.micro[index:]
        for i in range(index, len(self.ats)):
            gap = self.ats[i] - self.ats[i - 1] if i else None
            counted = gap is not None and gap <= domain.IDLE_AFTER
            previous_lines, previous_micro = (self.lines[i - 1], self.micro[i - 1]) if i else (0, 0)
            self.lines.append(previous_lines + (self.scan_lines[i] if counted else 0))
            self.micro.append(previous_micro + (gap // _MICROSECOND if counted and gap is not None else 0))

    def within(self, since: datetime, until: datetime) -> tuple[int, int]:
        """Lines and microseconds of the counted gaps between two of this person's scans in ``[since, until)``."""
        first = bisect.bisect_left(self.ats, since)
        last = bisect.bisect_left(self.ats, until) - 1
        if last <= first:
            return 0, 0
        return self.lines[last] - self.lines[first], self.micro[last] - self.micro[first]


@dataclass
class _ScanCache:
    """The scans of one (site, activity, zone) from ``loaded_from`` on, per person, read incrementally: each read
    fetches only the entries with an id above the highest seen, and (every ``SCAN_CHECK_SECONDS``) checks that the
    entries up to it still count, add up and end as those read (one aggregate): an entry committed late under a lower
    id (PostgreSQL hands ids out before commit), one deleted, a database emptied and filled again (a test, a scratch
    run) make it read everything again. Entries are otherwise never changed (``labor.services`` only inserts them).
    ``domain.measured_rate`` sums whole microseconds, so the per-person running totals give exactly its figure for
    any window: the rate costs one or two queries returning the new scans, not a read of all of them."""

    loaded_from: datetime
    built: float
    last_id: int = 0
    count: int = 0
    total_lines: int = 0
    newest: datetime | None = None
    checked: float = 0.0
    operators: dict[str, _OperatorScans] = field(default_factory=dict)

    #: The statement reading the entries past an id (its text, its parameters, where the id goes), compiled once:
    #: the ORM built and compiled it again at every read, most of a read's cost when few scans are new.
    fresh_sql: tuple[str, list[Any], int] | None = None
    #: The check's aggregate over the entries up to the last id seen, compiled once as ``fresh_sql`` is.
    check_sql: tuple[str, list[Any], int] | None = None

    def refresh(self, rows_of: Callable[[], QuerySet[ProductivityEntry]]) -> bool:
        """Read the entries not seen yet (``rows_of()``: all of this cache's key); False if the ones seen changed
        (the caller starts again)."""
        now = monotonic.monotonic()
        convert = _moment_converter()
        if self.last_id and now - self.checked >= SCAN_CHECK_SECONDS:
            if self.check_sql is None:
                seen = rows_of().filter(occurred_at__gte=self.loaded_from, pk__lte=_ID_MARK).order_by()
                sql, params, at_mark = _compiled(seen.values_list("lines", "occurred_at"))
                # ``aggregate(Count("pk"), Sum("lines"), Max("occurred_at"))`` over those rows
                sql = f"SELECT COUNT(*), SUM(seen.lines), MAX(seen.occurred_at) FROM ({sql}) seen"
                self.check_sql = (sql, params, at_mark)
            count, lines, newest = _read_marked(self.check_sql, self.last_id)[0]
            if convert is not None and newest is not None:
                newest = convert(newest)
            if (count, lines, newest) != (self.count, self.total_lines, self.newest):
                return False
            self.checked = now
        if self.fresh_sql is None:
            fresh = rows_of().filter(occurred_at__gte=self.loaded_from, pk__gt=_ID_MARK).order_by("pk")
            self.fresh_sql = _by_id_range(
                _compiled(fresh.values_list("pk", "operator_id", "operator_label", "occurred_at", "lines"))
            )
        for pk, operator_id, label, at, lines in _read_marked(self.fresh_sql, self.last_id):
            if convert is not None:
                at = convert(at)
            operator = str(operator_id or label)
            own = self.operators.get(operator)
            if own is None:
                own = self.operators[operator] = _OperatorScans([], [], [], [], [])
            own.add(at, pk, lines)
            self.last_id = pk
            self.count += 1
            self.total_lines += lines
            self.newest = at if self.newest is None else max(self.newest, at)
        return True

    def rate(self, since: datetime, until: datetime) -> domain.MeasuredRate:
        # The scans' instants are in UTC (both drivers'); a window in another zone (the simulated day's clock is
        # the site's local time) compares the same instants, but each comparison of two zones asks both for their
        # offset: a bisect over 3,000 scans took 33 µs, not 0.2, and a rate 0.4–0.6 ms, not 0.02, late in a
        # 5,000-order day. The same instants in UTC: the same figure.
        since, until = _utc(since), _utc(until)
        lines = micro = 0
        for own in self.operators.values():
            found_lines, found_micro = own.within(since, until)
            lines += found_lines
            micro += found_micro
        return domain.MeasuredRate(lines=lines, active_hours=micro / domain.MICROSECONDS_PER_HOUR)


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (naive: unchanged, the scans are naive too without ``USE_TZ``)."""
    if moment.tzinfo is None or moment.tzinfo is UTC:
        return moment
    return moment.astimezone(UTC)


def _moment_converter() -> Callable[[Any], datetime] | None:
    """The ORM's own conversion of a datetime column: PostgreSQL's driver gives it aware (none to do); SQLite gives
    its text, which the backend parses (``datetime.fromisoformat``) and, naive, puts in the connection's time zone:
    done here without the four calls around it per scan, the backend's converter kept for any other text."""
    full = getattr(connection.ops, "convert_datetimefield_value", None)
    if full is None:
        return None
    if not settings.USE_TZ:
        return lambda value: full(value, None, connection)
    zone = connection.timezone

    def convert(value: Any) -> datetime:
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return full(value, None, connection)
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
        return full(value, None, connection)

    return convert


def _compiled(rows: QuerySet[Any]) -> tuple[str, list[Any], int]:
    """``rows``' statement, its parameters and where ``_ID_MARK`` stands among them: compiled by the ORM once, read
    many times with another id (``_read_marked``)."""
    sql, params = rows.query.get_compiler(connection=connection).as_sql()
    return sql, list(params), list(params).index(_ID_MARK)


def _by_id_range(compiled: tuple[str, list[Any], int]) -> tuple[str, list[Any], int]:
    """The read of the entries past an id, kept on the id's range on SQLite (``NOT INDEXED``: no index but the
    rowid, which the id is). Its planner took the (activity, occurred_at) index instead and walked every entry of
    the activity in the window on each read, however few were new: 1.7 ms a read, against 0.02, late in a
    5,000-order day whose promise reads it twice per relay batch. PostgreSQL's planner weighs the id's range by its
    statistics: its statement is left as the ORM wrote it."""
    sql, params, at_mark = compiled
    if connection.vendor != "sqlite":
        return compiled
    table = connection.ops.quote_name(ProductivityEntry._meta.db_table)
    head = f" FROM {table} "
    if sql.count(head) != 1:  # not the one-table statement expected: as written
        return compiled
    return sql.replace(head, f" FROM {table} NOT INDEXED ", 1), params, at_mark


def _read_marked(compiled: tuple[str, list[Any], int], pk: int) -> list[tuple[Any, ...]]:
    sql, params, at_mark = compiled
    params = list(params)
    params[at_mark] = pk
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


_MICROSECOND = timedelta(microseconds=1)
#: A value no id takes, marking where the last id seen goes in the compiled read of ``_ScanCache.fresh_sql``.
_ID_MARK = -7_315_021_973
_scan_lock = threading.RLock()
_scan_caches: dict[tuple[str, int, str, int | None], _ScanCache] = {}


def measured_rate_invalidate() -> None:
    """Forget this process's scans (tests that rewrite entries in place)."""
    with _scan_lock:
        _scan_caches.clear()


def backlog_lines_now(*, scope: Scope, merchant_ids: Sequence[int] | None) -> dict[str, int]:
    """Order lines waiting now for each activity, counted from the orders (``BACKLOG_STATUSES``) within ``scope``
    (re-planning a site's staff reads every merchant's: ``Scope.system``); ship counts orders (one shipment each)."""
    orders = order_list(scope=scope).order_by()
    if merchant_ids is not None:
        orders = orders.filter(merchant_id__in=list(merchant_ids))
    statuses = {status for wanted in BACKLOG_STATUSES.values() for status in wanted}
    lines_by_status = {
        str(status): int(count)
        for status, count in orders.filter(status__in=statuses).values_list("status").annotate(n=Count("lines"))
    }
    orders_by_status = {
        str(status): int(count)
        for status, count in orders.filter(status__in=statuses).values_list("status").annotate(n=Count("id"))
    }
    backlog = {}
    for activity, wanted in BACKLOG_STATUSES.items():
        source = orders_by_status if activity == domain.SHIP else lines_by_status
        backlog[activity] = sum(source.get(status, 0) for status in wanted)
    return backlog


@dataclass(frozen=True)
class StaffingGap:
    hour: datetime
    activity: str
    zone: str
    planned: int
    rostered: int


def rostered_heads(*, site: Site | int, activity: str, at: datetime, zone: Zone | None = None) -> int:
    """People on a shift of ``activity`` at ``at`` (in ``zone``: shifts there or site-wide)."""
    qs = Shift.objects.filter(site=site, activity=activity, starts_at__lte=at, ends_at__gt=at, staff__active=True)
    if zone is not None:
        qs = qs.filter(Q(zone=zone) | Q(zone__isnull=True))
    return qs.values("staff_id").distinct().count()


def staffing_gaps(*, plan: StaffingPlan) -> list[StaffingGap]:
    """Every cell of ``plan`` with work where fewer people are rostered than planned."""
    gaps = []
    for cell in plan_cells(plan=plan):
        if cell.heads <= 0:
            continue
        # The middle of the hour: a shift ending at :30 still covers the hour's first half, not the whole of it.
        rostered = rostered_heads(
            site=plan.site_id, activity=cell.activity, at=cell.hour + timedelta(minutes=30), zone=cell.zone
        )
        if rostered < cell.heads:
            gaps.append(
                StaffingGap(
                    hour=cell.hour,
                    activity=cell.activity,
                    zone=cell.zone.code if cell.zone is not None else "",
                    planned=cell.heads,
                    rostered=rostered,
                )
            )
    return gaps


def rate_for(*, site: Site | int, activity: str, at: datetime, zone: Zone | None = None) -> float | None:
    """Lines per hour per person: measured over ``MEASURED_WINDOW`` when enough was seen, else engineered."""
    site_obj = site if isinstance(site, Site) else Site.objects.get(pk=site)
    measured = measured_rate(site=site_obj, activity=activity, zone=zone, since=at - MEASURED_WINDOW, until=at)
    if measured.lines >= MIN_MEASURED_LINES and measured.lines_per_hour > 0:
        return measured.lines_per_hour
    return _standard_rate(site_id=site_obj.pk, activity=activity, zone=zone)


def _standard_rate(*, site_id: int, activity: str, zone: Zone | None) -> float | None:
    """The engineered standard's lines per hour for ``activity`` (``zone``'s own, else the site-wide one)."""
    standard = (
        Standard.objects.filter(site_id=site_id, activity=activity)
        .filter(Q(zone=zone) | Q(zone__isnull=True) if zone is not None else Q(zone__isnull=True))
        .order_by("zone_id")  # NULL sorts last on PostgreSQL, first on SQLite: pick explicitly below
        .values_list("zone_id", "lines_per_hour")
    )
    rows = list(standard)
    exact = next((rate for zone_id, rate in rows if zone is not None and zone_id == zone.pk), None)
    chosen = exact if exact is not None else next((rate for zone_id, rate in rows if zone_id is None), None)
    return float(chosen) if chosen is not None else None


def plan_work_per_line(plan: StaffingPlan | None, activity: str) -> float:
    """The work one order line is at ``activity`` in ``plan`` (in lines of the activity's standard): what the plan
    was computed with (its ``work_per_line`` input), else one (a pick and a pack per line; a shipment per order)."""
    if plan is None:
        return 1.0
    factor = (plan.inputs or {}).get("work_per_line", {}).get(activity)
    if factor is None and activity == domain.SHIP:
        return 1 / float(plan.lines_per_order) if plan.lines_per_order else 1.0
    return float(factor) if factor else 1.0


def order_line_rate(
    *, site: Site | int, activity: str, at: datetime, work_per_line: float = 1.0, zone: Zone | None = None
) -> float | None:
    """Order lines per hour one person does at ``activity``: the measured rate where there were enough scans (the
    scans count the lines done in the time they took, whatever else the work held), else the engineered standard
    divided by the work a line is there (``work_per_line``: a standard of 90 lines per hour with a parcel's own
    handling making a line 1.7 lines of work is 53 order lines per hour). The promise's backlog is in order lines;
    a capacity in lines of the standard would promise dates the rostered packers cannot keep."""
    # The scans are read once (``rate_for`` would read them again before its standard) and the site by its id.
    site_id = site if isinstance(site, int) else site.pk
    measured = measured_rate(site=site_id, activity=activity, zone=zone, since=at - MEASURED_WINDOW, until=at)
    if measured.lines >= MIN_MEASURED_LINES and measured.lines_per_hour > 0:
        return measured.lines_per_hour
    standard = _standard_rate(site_id=site_id, activity=activity, zone=zone)
    if standard is None:
        return None
    return standard / work_per_line if work_per_line > 0 else standard


def capacity_lines_per_hour(*, site: Site | int, stage: str, at: datetime) -> float | None:
    """Lines per hour the site's ``stage`` ("pick", "pack", …) does at ``at``, for the promise's capacity.

    The heads are the people rostered then (shifts) or, with no shift written for that hour, those of the newest
    staffing plan covering it; each does the stage's rate in order lines (``order_line_rate``: measured, else
    engineered over the plan's work per line) at the plan's utilisation (0.85 with no plan). None when labour knows
    nothing of that hour (no shift, no plan) or has no rate: the promise then keeps its own configured figure.
    """
    site_id = site if isinstance(site, int) else site.pk
    hour = at.replace(minute=0, second=0, microsecond=0)
    plan = (
        StaffingPlan.objects.filter(site_id=site_id, starts_at__lte=at, ends_at__gt=at, cells__activity=stage)
        .order_by("-created_at", "-id")
        .first()
    )
    utilisation = float(plan.utilisation) if plan else 0.85
    heads = rostered_heads(site=site_id, activity=stage, at=at)
    if heads == 0 and plan is not None:
        heads = sum(c.heads for c in plan.cells.filter(hour=hour, activity=stage))
    if heads == 0:
        return None if plan is None else 0.0
    rate = order_line_rate(site=site_id, activity=stage, at=at, work_per_line=plan_work_per_line(plan, stage))
    if rate is None:
        return None
    return domain.capacity_of(heads, lines_per_hour=rate, utilisation=utilisation)


# --- The supervisor's figures (read by quai.analytics) --------------------------------------------------------------

#: Someone who scanned work this recently is counted as active on the floor.
ACTIVE_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class ZoneStaffing:
    """People per zone and activity now: planned (the newest staffing plan covering the hour), rostered (on a shift
    now), active (scanned work in the last ``ACTIVE_WINDOW``), and the lines they did in the last hour."""

    zone_id: int | None
    zone_code: str
    activity: str
    planned: int
    rostered: int
    active: int
    lines_last_hour: int


def zone_staffing(*, site: Site | int, at: datetime) -> list[ZoneStaffing]:
    """Planned, rostered and active heads per (zone, activity) of ``site`` at ``at``, with the lines done in the hour
    before it. Four queries whatever the staff: the plan, its cells for the hour, the shifts, the scans."""
    site_id = site if isinstance(site, int) else site.pk
    hour = at.replace(minute=0, second=0, microsecond=0)
    cells: dict[tuple[int | None, str], int] = {}
    codes: dict[int | None, str] = {None: ""}
    plan = (
        StaffingPlan.objects.filter(site_id=site_id, starts_at__lte=at, ends_at__gt=at, cells__hour=hour)
        .order_by("-created_at", "-id")
        .first()
    )
    if plan is not None:
        for zone_id, code, activity, heads in plan.cells.filter(hour=hour).values_list(
            "zone_id", "zone__code", "activity", "heads"
        ):
            cells[(zone_id, activity)] = cells.get((zone_id, activity), 0) + int(heads)
            codes[zone_id] = code or ""
    rostered: dict[tuple[int | None, str], int] = {}
    shifts = (
        Shift.objects.filter(site_id=site_id, starts_at__lte=at, ends_at__gt=at, staff__active=True)
        .order_by()
        .values_list("zone_id", "zone__code", "activity")
        .annotate(n=Count("staff_id", distinct=True))
    )
    for zone_id, code, activity, n in shifts:
        rostered[(zone_id, activity)] = int(n)
        codes[zone_id] = code or ""
    active: dict[tuple[int | None, str], tuple[int, int]] = {}
    scans = (
        ProductivityEntry.objects.filter(occurred_at__gte=at - timedelta(hours=1), occurred_at__lte=at)
        .filter(Q(site_id=site_id) | Q(site__isnull=True))
        .order_by()
        .values_list("zone_id", "zone__code", "activity")
        .annotate(
            people=Count("operator_label", distinct=True, filter=Q(occurred_at__gte=at - ACTIVE_WINDOW)),
            lines=Sum("lines"),
        )
    )
    for zone_id, code, activity, people, lines in scans:
        active[(zone_id, activity)] = (int(people), int(lines or 0))
        codes[zone_id] = code or ""
    keys = sorted(set(cells) | set(rostered) | set(active), key=lambda k: (codes.get(k[0], ""), k[1]))
    return [
        ZoneStaffing(
            zone_id=zone_id,
            zone_code=codes.get(zone_id, ""),
            activity=activity,
            planned=cells.get((zone_id, activity), 0),
            rostered=rostered.get((zone_id, activity), 0),
            active=active.get((zone_id, activity), (0, 0))[0],
            lines_last_hour=active.get((zone_id, activity), (0, 0))[1],
        )
        for zone_id, activity in keys
    ]
