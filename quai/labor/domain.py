"""Pure rules of labour planning: workload from a forecast, heads from standards, measured rates, Erlang C.

Plans are computed, never typed: the heads an hour needs are the hour's workload (orders × work per order, split over
zones) divided by the rate one person keeps (lines per hour, engineered or measured) times the utilisation target —
nobody is planned at 100 %, walking, breaks and the unexpected take the rest. Rounded up: half a picker is a picker.

The contact centre is a queue, not a pile of lines: its agents come from Erlang C (Poisson arrivals, exponential
handle times, nobody hangs up), the smallest head count whose service level meets the target ("80 % answered within
20 s"), then grossed up for shrinkage (breaks, training, absence).

Bad input fails here with a ``PlanError`` (code and parameters), before anything is written.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

RECEIVE: Final = "receive"
PUTAWAY: Final = "putaway"
PICK: Final = "pick"
PACK: Final = "pack"
SHIP: Final = "ship"
RETURNS: Final = "returns"
CUSTOMER_SERVICE: Final = "customer_service"
ACTIVITIES: Final = (RECEIVE, PUTAWAY, PICK, PACK, SHIP, RETURNS, CUSTOMER_SERVICE)

#: Past these, a forecast is a typing error rather than a flash sale (the biggest sites ship ~1M orders a day).
MAX_ORDERS_PER_HOUR: Final = 200_000.0
MAX_LINES_PER_ORDER: Final = 200.0
MAX_TICKETS_PER_HOUR: Final = 50_000.0
#: A head count past this is refused rather than computed: it means the inputs are wrong.
MAX_AGENTS: Final = 5_000
#: Two floats that differ by less than this are equal (7.000000001 heads is 7 heads).
_EPSILON: Final = 1e-9


class PlanError(ValueError):
    """A forecast or a parameter that cannot be planned; ``code`` is the API's error code."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code, params)
        self.code = code
        self.params: dict[str, object] = dict(params)


# --- Workload and heads -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourForecast:
    """Orders expected to drop into the warehouse's work in the hour starting at ``hour`` (aware)."""

    hour: datetime
    orders: float


@dataclass(frozen=True)
class PlanCell:
    """One hour, zone ("" = the whole site) and activity: the work and the heads it needs."""

    hour: datetime
    zone: str
    activity: str
    workload_lines: float
    lines_per_hour: float
    heads: int


def heads_for(workload_lines: float, *, lines_per_hour: float, utilisation: float) -> int:
    """People for ``workload_lines`` in one hour at ``lines_per_hour`` each, busy ``utilisation`` of the time."""
    if workload_lines < 0:
        raise PlanError("negative_workload", workload=workload_lines)
    if workload_lines == 0:
        return 0
    if lines_per_hour <= 0:
        raise PlanError("invalid_standard", lines_per_hour=lines_per_hour)
    if not 0 < utilisation <= 1:
        raise PlanError("invalid_utilisation", utilisation=utilisation)
    # Any work needs someone; the epsilon keeps 20.000000001 heads (a float's last bit) at 20.
    return max(1, math.ceil(workload_lines / (lines_per_hour * utilisation) - _EPSILON))


def forecast_check(forecast: Sequence[HourForecast], *, lines_per_order: float) -> None:
    """Refuse what cannot be a forecast: negative or absurd volumes, naive or repeated hours."""
    if not 0 < lines_per_order <= MAX_LINES_PER_ORDER:
        raise PlanError("invalid_lines_per_order", lines_per_order=lines_per_order, maximum=MAX_LINES_PER_ORDER)
    seen: set[datetime] = set()
    for entry in forecast:
        if entry.hour.tzinfo is None or entry.hour.utcoffset() is None:
            raise PlanError("invalid_instant", hour=entry.hour.isoformat())
        if entry.hour in seen:
            raise PlanError("duplicate_hour", hour=entry.hour.isoformat())
        seen.add(entry.hour)
        if math.isnan(entry.orders) or entry.orders < 0:
            raise PlanError("negative_volume", hour=entry.hour.isoformat(), orders=entry.orders)
        if entry.orders > MAX_ORDERS_PER_HOUR:
            raise PlanError(
                "absurd_volume", hour=entry.hour.isoformat(), orders=entry.orders, maximum=MAX_ORDERS_PER_HOUR
            )


def rate_for(standards: Mapping[tuple[str, str], float], activity: str, zone: str) -> float:
    """The standard of ``activity`` in ``zone``, else the activity's site-wide one (zone ""); PlanError if none."""
    rate = standards.get((activity, zone))
    if rate is None:
        rate = standards.get((activity, ""))
    if rate is None or rate <= 0:
        raise PlanError("standard_missing", activity=activity, zone=zone)
    return rate


def staffing_plan(
    forecast: Sequence[HourForecast],
    *,
    lines_per_order: float,
    standards: Mapping[tuple[str, str], float],
    utilisation: float,
    work_per_line: Mapping[str, float] | None = None,
    zone_shares: Mapping[str, float] | None = None,
    backlog_lines: Mapping[str, float] | None = None,
    catch_up_hours: int = 1,
) -> list[PlanCell]:
    """Heads per hour, zone and activity for ``forecast``.

    - An order brings ``lines_per_order`` lines; ``work_per_line`` says how many units of each activity's work a line
      is (default: one pick and one pack per line, a shipment per order, i.e. ``1 / lines_per_order`` per line).
    - ``zone_shares`` splits the lines over zones (shares summing to 1; default: the whole site, zone "").
    - ``backlog_lines`` (activity → lines already waiting) is re-planning during the day: that work is spread over
      the first ``catch_up_hours`` hours of the forecast, on top of the new orders.
    - ``standards``: (activity, zone) → lines per hour per person; (activity, "") is the site-wide fallback.
    """
    forecast_check(forecast, lines_per_order=lines_per_order)
    if not 0 < utilisation <= 1:
        raise PlanError("invalid_utilisation", utilisation=utilisation)
    if catch_up_hours < 1:
        raise PlanError("invalid_catch_up_hours", catch_up_hours=catch_up_hours)
    per_line = dict(work_per_line) if work_per_line is not None else {PICK: 1.0, PACK: 1.0, SHIP: 1 / lines_per_order}
    for activity, factor in per_line.items():
        if activity not in ACTIVITIES:
            raise PlanError("unknown_activity", activity=activity)
        if factor < 0:
            raise PlanError("negative_workload", activity=activity, workload=factor)
    shares = dict(zone_shares) if zone_shares else {"": 1.0}
    if any(share < 0 for share in shares.values()) or abs(sum(shares.values()) - 1) > 1e-6:
        raise PlanError("invalid_zone_shares", total=sum(shares.values()))
    backlog = dict(backlog_lines or {})
    for activity, lines in backlog.items():
        if lines < 0:
            raise PlanError("negative_volume", activity=activity, lines=lines)
    hours = sorted(forecast, key=lambda entry: entry.hour)
    cells: list[PlanCell] = []
    for index, entry in enumerate(hours):
        lines = entry.orders * lines_per_order
        for activity, factor in per_line.items():
            work = lines * factor
            if index < catch_up_hours:
                work += backlog.get(activity, 0.0) / min(catch_up_hours, len(hours))
            for zone, share in shares.items():
                zone_work = work * share
                rate = rate_for(standards, activity, zone) if zone_work > 0 else standards.get((activity, zone), 0.0)
                cells.append(
                    PlanCell(
                        hour=entry.hour,
                        zone=zone,
                        activity=activity,
                        workload_lines=zone_work,
                        lines_per_hour=rate,
                        heads=heads_for(zone_work, lines_per_hour=rate or 1.0, utilisation=utilisation),
                    )
                )
    return cells


def capacity_of(heads: int, *, lines_per_hour: float, utilisation: float) -> float:
    """Lines one hour of ``heads`` people does, at the planned utilisation (the inverse of ``heads_for``)."""
    return max(heads, 0) * max(lines_per_hour, 0.0) * utilisation


# --- Measured rates ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scan:
    """One confirmed unit of work by one person: when, and how many lines it counted."""

    operator: str
    at: datetime
    lines: int = 1


@dataclass(frozen=True)
class MeasuredRate:
    lines: int
    active_hours: float

    @property
    def lines_per_hour(self) -> float:
        return self.lines / self.active_hours if self.active_hours > 0 else 0.0


def measured_rate(scans: Sequence[Scan], *, idle_after: timedelta = timedelta(minutes=10)) -> MeasuredRate:
    """Lines per active hour from scans: per person, the time between consecutive scans is work, unless longer than
    ``idle_after`` (a break, another task: it is not counted, nor is the scan that ends it, whose work started at
    an unknown time). A person's first scan has no start either. So the rate is the lines done inside counted gaps
    over the counted time — neither the breaks nor the first scans flatter or spoil it."""
    by_operator: dict[str, list[Scan]] = {}
    for scan in scans:
        by_operator.setdefault(scan.operator, []).append(scan)
    lines = 0
    seconds = 0.0
    for own in by_operator.values():
        own.sort(key=lambda s: s.at)
        for previous, current in itertools.pairwise(own):
            gap = current.at - previous.at
            if gap <= idle_after:
                seconds += gap.total_seconds()
                lines += current.lines
    return MeasuredRate(lines=lines, active_hours=seconds / 3600)


# --- Erlang C ---------------------------------------------------------------------------------------------------


def erlang_c(traffic: float, agents: int) -> float:
    """Probability an arriving contact waits (Erlang C) with ``traffic`` Erlangs offered to ``agents`` agents.

    Computed through the Erlang B recursion (B(0) = 1, B(n) = A·B(n-1) / (n + A·B(n-1))), which never forms A^N or
    N! and so stays exact for hundreds of agents; C = N·B / (N − A·(1 − B)). 1 when the agents cannot keep up.
    """
    if traffic < 0 or agents < 0:
        raise PlanError("negative_volume", traffic=traffic, agents=agents)
    if traffic == 0:
        return 0.0
    if agents <= traffic:
        return 1.0
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = traffic * blocking / (n + traffic * blocking)
    return agents * blocking / (agents - traffic * (1 - blocking))


def service_level(*, traffic: float, agents: int, aht_seconds: float, answer_within_seconds: float) -> float:
    """Share of contacts answered within ``answer_within_seconds``: 1 − C · e^(−(N − A)·t / AHT)."""
    if traffic == 0:
        return 1.0
    if agents <= traffic:
        return 0.0
    waits = erlang_c(traffic, agents)
    return 1 - waits * math.exp(-(agents - traffic) * answer_within_seconds / aht_seconds)


@dataclass(frozen=True)
class AgentsNeeded:
    traffic: float  # Erlangs
    agents: int  # answering at once, before shrinkage
    service_level: float  # reached with ``agents``
    occupancy: float
    rostered: int  # with shrinkage: the heads to put on the shift


def agents_needed(
    *,
    contacts_per_hour: float,
    aht_seconds: float,
    target_service_level: float = 0.8,
    answer_within_seconds: float = 20,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> AgentsNeeded:
    """The fewest agents that answer ``target_service_level`` of contacts within ``answer_within_seconds``."""
    if math.isnan(contacts_per_hour) or contacts_per_hour < 0:
        raise PlanError("negative_volume", contacts_per_hour=contacts_per_hour)
    if contacts_per_hour > MAX_TICKETS_PER_HOUR:
        raise PlanError("absurd_volume", contacts_per_hour=contacts_per_hour, maximum=MAX_TICKETS_PER_HOUR)
    if not 0 < aht_seconds <= 24 * 3600:
        raise PlanError("invalid_handle_time", aht_seconds=aht_seconds)
    if not 0 < target_service_level < 1:
        raise PlanError("invalid_service_level", target_service_level=target_service_level)
    if answer_within_seconds < 0:
        raise PlanError("invalid_answer_time", answer_within_seconds=answer_within_seconds)
    if not 0 < max_occupancy <= 1:
        raise PlanError("invalid_occupancy", max_occupancy=max_occupancy)
    if not 0 <= shrinkage < 1:
        raise PlanError("invalid_shrinkage", shrinkage=shrinkage)
    traffic = contacts_per_hour * aht_seconds / 3600
    if traffic == 0:
        return AgentsNeeded(traffic=0.0, agents=0, service_level=1.0, occupancy=0.0, rostered=0)
    agents = max(1, math.floor(traffic) + 1, math.ceil(traffic / max_occupancy - _EPSILON))
    while True:
        if agents > MAX_AGENTS:
            raise PlanError("absurd_volume", contacts_per_hour=contacts_per_hour, maximum_agents=MAX_AGENTS)
        level = service_level(
            traffic=traffic, agents=agents, aht_seconds=aht_seconds, answer_within_seconds=answer_within_seconds
        )
        if level >= target_service_level - _EPSILON:
            break
        agents += 1
    return AgentsNeeded(
        traffic=traffic,
        agents=agents,
        service_level=level,
        occupancy=traffic / agents,
        rostered=math.ceil(agents / (1 - shrinkage) - _EPSILON),
    )
