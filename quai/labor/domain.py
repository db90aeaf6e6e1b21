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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
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
    flow: Flow | None = None,
) -> list[PlanCell]:
    """Heads per hour, zone and activity for ``forecast``.

    With ``flow`` (the flow model, see ``Flow``), the heads follow the work rather than the orders' arrival hour:
    each stage's work is workable when the order is released and the stage before is done, is due by the cut-off
    its order can make (or within ``max_wait``), and each hour is staffed so that worked earliest-due first nothing
    is late; the plan then runs past the forecast's last hour while work is left. Without it, each hour's arrivals
    are planned in that very hour (the arrival-hour plan, for callers that know nothing of the flow).

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
    if flow is not None:
        return _flow_cells(
            hours,
            lines_per_order=lines_per_order,
            per_line=per_line,
            shares=shares,
            standards=standards,
            utilisation=utilisation,
            flow=flow,
            backlog=backlog,
            catch_up_hours=catch_up_hours,
        )
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


def _flow_cells(
    hours: Sequence[HourForecast],
    *,
    lines_per_order: float,
    per_line: Mapping[str, float],
    shares: Mapping[str, float],
    standards: Mapping[tuple[str, str], float],
    utilisation: float,
    flow: Flow,
    backlog: Mapping[str, float],
    catch_up_hours: int,
) -> list[PlanCell]:
    """``staffing_plan`` with the flow model: each zone's share of the work planned along the chain at its rates."""
    if not hours:
        return []
    cells: list[PlanCell] = []
    for zone, share in shares.items():
        active = {a: f for a, f in per_line.items() if f * share > 0 and any(h.orders > 0 for h in hours)}
        busy = {a for a, lines in backlog.items() if lines * share > 0}
        rates = {a: rate_for(standards, a, zone) for a in set(active) | busy}
        first, heads, done = flow_plan(
            hours,
            lines_per_order=lines_per_order,
            per_line={a: active.get(a, 0.0) * share for a in per_line},
            rates={a: rates.get(a, standards.get((a, zone), 0.0)) for a in per_line},
            utilisation=utilisation,
            flow=flow,
            backlog_lines={a: lines * share for a, lines in backlog.items()},
            catch_up_hours=catch_up_hours,
        )
        zone_hours = len(next(iter(heads.values()), []))
        for n in range(zone_hours):
            hour = (first + timedelta(hours=n)).astimezone(hours[0].hour.tzinfo)
            for activity in per_line:
                cells.append(
                    PlanCell(
                        hour=hour,
                        zone=zone,
                        activity=activity,
                        workload_lines=done[activity][n],
                        lines_per_hour=rates.get(activity, standards.get((activity, zone), 0.0)),
                        heads=heads[activity][n],
                    )
                )
    return cells


# --- Plans from the flow of work -----------------------------------------------------------------------------------

#: The flow model follows arrivals, releases and the work done in steps of this length.
FLOW_STEP: Final = timedelta(minutes=5)
#: The stages an order goes through, in order: each one's work becomes workable when the one before is done.
FLOW_CHAIN: Final = (PICK, PACK, SHIP)
#: Past this many heads added one by one to meet the deadlines, the inputs are wrong (it never happens with sane ones).
_MAX_REPAIRS: Final = 100_000


@dataclass(frozen=True)
class Flow:
    """How an order's work flows through the floor, for ``staffing_plan``'s flow model.

    - ``release_delay``: an order may be worked this long after it arrives (the merchant's release buffer).
    - ``handoff``: between one stage's end and the next one's start (tote travel, the next wave).
    - ``cutoffs``: the carriers' pick-ups (aware instants). An order's work is due at the first one it can still
      make (its release plus a step per stage and the handoffs before it): the promise gives it that one.
    - ``max_wait``: the bounded carry-over: no order's work is due later than this after its release, cut-off or
      not (the night's orders are not all left for the morning, the plan never lets a backlog grow without end).

    Each stage gets its part of the order's window (release to due), in proportion to its time per line, so an
    upstream stage is done early enough for the next to finish by the cut-off.
    """

    release_delay: timedelta = timedelta(0)
    handoff: timedelta = timedelta(0)
    cutoffs: tuple[datetime, ...] = ()
    max_wait: timedelta = timedelta(hours=2)


@dataclass(frozen=True)
class FlowWork:
    """Lines of one activity (in one zone) that become workable at step ``release`` and are due by step ``due``
    (steps of ``FLOW_STEP`` from the plan's first hour; the work done in step k is done at k + 1)."""

    release: int
    due: int
    lines: float
    #: The work of the same lines at the next stage of ``FLOW_CHAIN`` (index into the next stage's list), if any.
    follows: int | None = None


def _flow_check(flow: Flow) -> None:
    if flow.release_delay < timedelta(0) or flow.handoff < timedelta(0):
        raise PlanError("invalid_flow_delay", release_delay=str(flow.release_delay), handoff=str(flow.handoff))
    if flow.max_wait < FLOW_STEP or flow.max_wait > timedelta(days=7):
        raise PlanError("invalid_max_wait", max_wait=str(flow.max_wait))
    for cutoff in flow.cutoffs:
        if cutoff.tzinfo is None or cutoff.utcoffset() is None:
            raise PlanError("invalid_instant", hour=cutoff.isoformat())


def _steps(delta: timedelta) -> int:
    """``delta`` in whole steps, rounded up (work is never workable earlier than it is)."""
    return math.ceil(delta / FLOW_STEP - _EPSILON)


def flow_simulate(works: Sequence[FlowWork], capacity: Sequence[float]) -> list[int]:
    """The step each work is done at (its last line done in step k: k + 1), worked earliest-due first with
    ``capacity[k]`` lines in step k (fluid: a work may be split over steps). A work not done within ``capacity``'s
    steps is done "never": ``len(capacity) + 1``."""
    import heapq

    order = sorted(range(len(works)), key=lambda i: (works[i].release, i))
    done = [len(capacity) + 1] * len(works)
    waiting: list[tuple[int, int]] = []
    left = [w.lines for w in works]
    nxt = 0
    for step, room in enumerate(capacity):
        while nxt < len(order) and works[order[nxt]].release <= step:
            i = order[nxt]
            if left[i] <= _EPSILON:
                done[i] = works[i].release
            else:
                heapq.heappush(waiting, (works[i].due, i))
            nxt += 1
        while waiting and room > _EPSILON:
            _due, i = waiting[0]
            used = min(room, left[i])
            left[i] -= used
            room -= used
            if left[i] <= _EPSILON:
                heapq.heappop(waiting)
                done[i] = step + 1
    return done


def _paced_heads(works: Sequence[FlowWork], hours: int, per_head: float, steps_per_hour: int) -> list[int]:
    """Heads hour by hour, each hour paced for the work it can see: what is waiting at its start and what is
    released during it, at the steadiest rate that still has each of those lines done by its due step (the most
    any group of works due by the same step asks: their lines over the steps left until then). Work not yet
    released is not staffed for (nobody idles before a spike), work waiting is spread up to its due step (a spike
    is staffed over the hours after it, not in its arrival hour); the hour then runs, earliest due first."""
    import heapq

    order = sorted(range(len(works)), key=lambda i: (works[i].release, i))
    left = [w.lines for w in works]
    waiting: list[tuple[int, int]] = []
    heads: list[int] = []
    nxt = 0
    for hour in range(hours):
        start, end = hour * steps_per_hour, (hour + 1) * steps_per_hour
        coming = nxt
        seen = [(works[i].due, left[i]) for _due, i in waiting]
        while coming < len(order) and works[order[coming]].release < end:
            seen.append((works[order[coming]].due, left[order[coming]]))
            coming += 1
        need = 0.0
        total = 0.0
        for due, lines in sorted(seen):
            total += lines
            need = max(need, total / max(due - start, 1))
        count = math.ceil(need / per_head - _EPSILON) if need > _EPSILON and per_head > 0 else 0
        heads.append(count)
        for step in range(start, end):
            while nxt < len(order) and works[order[nxt]].release <= step:
                heapq.heappush(waiting, (works[order[nxt]].due, order[nxt]))
                nxt += 1
            room = count * per_head
            while waiting and room > _EPSILON:
                i = waiting[0][1]
                used = min(room, left[i])
                left[i] -= used
                room -= used
                if left[i] <= _EPSILON:
                    heapq.heappop(waiting)
    return heads


def flow_heads(
    works: Sequence[FlowWork], *, hours: int, lines_per_hour: float, utilisation: float
) -> tuple[list[int], list[int]]:
    """Heads per hour that get every work done by its due step, worked earliest-due first at ``lines_per_hour``
    each and ``utilisation``; and the step each work is then done at. Each hour is paced (``_paced_heads``),
    then, while a work would still be late (work released late in an hour and due early in the next), one head is
    added to the least staffed hour of its window (the latest on a tie); last, each hour keeps only the heads its
    busiest step used."""
    steps_per_hour = round(timedelta(hours=1) / FLOW_STEP)
    per_head = capacity_of(1, lines_per_hour=lines_per_hour, utilisation=utilisation) / steps_per_hour
    heads = _paced_heads(works, hours, per_head, steps_per_hour)
    for _ in range(_MAX_REPAIRS):
        capacity = [heads[step // steps_per_hour] * per_head for step in range(hours * steps_per_hour)]
        done = flow_simulate(works, capacity)
        late = [i for i, work in enumerate(works) if done[i] > work.due]
        if not late:
            # Rounded up hour by hour, a paced rate leaves people idle once the work is done (a few orders spread
            # over a long window staff every hour of it): each hour keeps the heads its busiest step used.
            # The schedule is the same step for step (each step still has the room for what it did).
            used = _used_per_step(works, capacity)
            trimmed = [
                min(heads[h], math.ceil(max(used[h * steps_per_hour : (h + 1) * steps_per_hour]) / per_head - 1e-6))
                if per_head > 0
                else heads[h]
                for h in range(hours)
            ]
            trimmed_done = flow_simulate(
                works, [trimmed[step // steps_per_hour] * per_head for step in range(len(capacity))]
            )
            if all(trimmed_done[i] <= work.due for i, work in enumerate(works)):
                return trimmed, trimmed_done
            return heads, done
        work = works[min(late, key=lambda i: (works[i].due, i))]
        window = range(work.release // steps_per_hour, min(hours, math.ceil(work.due / steps_per_hour)))
        hour = min(window, key=lambda h: (heads[h], -h))
        heads[hour] += 1
    raise PlanError("plan_not_found", hours=hours)


def flow_plan(
    forecast: Sequence[HourForecast],
    *,
    lines_per_order: float,
    per_line: Mapping[str, float],
    rates: Mapping[str, float],
    utilisation: float,
    flow: Flow,
    backlog_lines: Mapping[str, float] | None = None,
    catch_up_hours: int = 1,
) -> tuple[datetime, dict[str, list[int]], dict[str, list[float]]]:
    """The flow model for one zone: (the first hour, heads per activity and hour, lines done per activity and hour).

    Orders arrive evenly inside their hour and are workable ``release_delay`` after the step they arrive in; the
    first stage of ``FLOW_CHAIN`` works them from then, each next stage from when the one before is done (plus the
    ``handoff``); the other activities (receiving, returns, ...) from the release. ``backlog_lines`` are workable
    at once, due within ``catch_up_hours``. The hours run past the forecast's last until the work is done.
    """
    _flow_check(flow)
    ordered = sorted(forecast, key=lambda entry: entry.hour)
    first = ordered[0].hour.astimezone(UTC)
    steps_per_hour = round(timedelta(hours=1) / FLOW_STEP)
    release = _steps(flow.release_delay)
    handoff = _steps(flow.handoff)
    max_wait = _steps(flow.max_wait)
    cutoffs = sorted({_steps(c.astimezone(UTC) - first) for c in flow.cutoffs if c.astimezone(UTC) > first})
    chain = [a for a in FLOW_CHAIN if per_line.get(a, 0) > 0]
    backlog = {a: lines for a, lines in (backlog_lines or {}).items() if lines > 0 and a in per_line}
    others = [a for a, factor in per_line.items() if a not in chain and (factor > 0 or a in backlog)]
    # Time per line of each chained stage: its share of the order's window.
    weights = [per_line[a] / rates[a] for a in chain]
    total_weight = sum(weights) or 1.0
    works: dict[str, list[FlowWork]] = {a: [] for a in per_line}
    for entry in ordered:
        hour_step = _steps(entry.hour.astimezone(UTC) - first)
        lines = entry.orders * lines_per_order / steps_per_hour
        if lines <= 0:
            continue
        for k in range(steps_per_hour):
            # Orders arriving in step k are all there at its end; then the release buffer.
            starts = hour_step + k + 1 + release
            shortest = len(chain) * (1 + handoff)
            due = starts + max_wait
            reachable = next((c for c in cutoffs if c >= starts + shortest), None)
            if reachable is not None:
                due = min(due, reachable)
            due = max(due, starts + max(1, len(chain)))
            _chain_works(works, chain, weights, total_weight, lines, per_line, starts=starts, due=due, handoff=handoff)
            for activity in others:
                works[activity].append(FlowWork(starts, due, lines * per_line[activity]))
    for activity, lines in backlog.items():
        if activity in chain or activity in others:
            works[activity].append(FlowWork(0, catch_up_hours * steps_per_hour, float(lines)))
    last_due = max((w.due for ws in works.values() for w in ws), default=0)
    hours = max(len(ordered), _steps(ordered[-1].hour.astimezone(UTC) - first) // steps_per_hour + 1)
    hours = max(hours, math.ceil(last_due / steps_per_hour))
    heads: dict[str, list[int]] = {}
    done_lines: dict[str, list[float]] = {}
    done_at: dict[str, list[int]] = {}
    for activity in [*chain, *others]:
        own = works[activity]
        if activity in chain and chain.index(activity) > 0:
            # Workable once the stage before has done the same lines (and the handoff): the plan's own schedule.
            before = chain[chain.index(activity) - 1]
            upstream = works[before]
            for i, work in enumerate(upstream):
                if work.follows is not None:
                    own[work.follows] = replace(
                        own[work.follows], release=max(own[work.follows].release, done_at[before][i] + handoff)
                    )
        heads[activity], done_at[activity] = flow_heads(
            own, hours=hours, lines_per_hour=rates[activity], utilisation=utilisation
        )
        done_lines[activity] = _lines_per_hour_done(own, heads[activity], rates[activity], utilisation, hours)
    for activity in per_line:
        heads.setdefault(activity, [0] * hours)
        done_lines.setdefault(activity, [0.0] * hours)
    return first, heads, done_lines


def _chain_works(
    works: dict[str, list[FlowWork]],
    chain: Sequence[str],
    weights: Sequence[float],
    total_weight: float,
    lines: float,
    per_line: Mapping[str, float],
    *,
    starts: int,
    due: int,
    handoff: int,
) -> None:
    """The works of one step's arrivals along the chain: each stage due at the end of its part of the window."""
    span = due - starts - handoff * (len(chain) - 1)
    cumulative = 0.0
    for index, activity in enumerate(chain):
        cumulative += weights[index]
        stage_due = starts + handoff * index + math.floor(span * cumulative / total_weight + _EPSILON)
        if index == len(chain) - 1:
            stage_due = due
        stage_due = max(stage_due, starts + handoff * index + index + 1)
        follows = len(works[chain[index + 1]]) if index + 1 < len(chain) else None
        works[activity].append(FlowWork(starts + handoff * index, stage_due, lines * per_line[activity], follows))


def _used_per_step(works: Sequence[FlowWork], capacity: Sequence[float]) -> list[float]:
    """Lines done in each step with ``capacity``: whatever is waiting, up to the room (the same in any order the
    works are taken, as long as nobody idles with work waiting)."""
    arrivals = [0.0] * (len(capacity) + 1)
    for work in works:
        if work.release < len(arrivals):
            arrivals[work.release] += work.lines
    used = []
    waiting = 0.0
    for step, room in enumerate(capacity):
        waiting += arrivals[step]
        done = min(room, waiting)
        waiting -= done
        used.append(done)
    return used


def _lines_per_hour_done(
    works: Sequence[FlowWork], heads: Sequence[int], rate: float, utilisation: float, hours: int
) -> list[float]:
    """Lines done in each hour when ``works`` are worked by ``heads``."""
    steps_per_hour = round(timedelta(hours=1) / FLOW_STEP)
    per_head = capacity_of(1, lines_per_hour=rate, utilisation=utilisation) / steps_per_hour
    used = _used_per_step(works, [heads[step // steps_per_hour] * per_head for step in range(hours * steps_per_hour)])
    return [sum(used[h * steps_per_hour : (h + 1) * steps_per_hour]) for h in range(hours)]


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


_MICROSECOND = timedelta(microseconds=1)
MICROSECONDS_PER_HOUR = 3_600_000_000
IDLE_AFTER = timedelta(minutes=10)


def measured_rate(scans: Sequence[Scan], *, idle_after: timedelta = IDLE_AFTER) -> MeasuredRate:
    """Lines per active hour from scans: per person, the time between consecutive scans is work, unless longer than
    ``idle_after`` (a break, another task: it is not counted, nor is the scan that ends it, whose work started at
    an unknown time). A person's first scan has no start either. So the rate is the lines done inside counted gaps
    over the counted time — neither the breaks nor the first scans flatter or spoil it."""
    by_operator: dict[str, list[Scan]] = {}
    for scan in scans:
        by_operator.setdefault(scan.operator, []).append(scan)
    lines = 0
    # Whole microseconds, not float seconds: the sum is exact whatever order the gaps come in, so a running total
    # kept per person (``quai.labor.selectors``' cache of the scans) gives exactly this figure.
    microseconds = 0
    for own in by_operator.values():
        own.sort(key=lambda s: s.at)
        for previous, current in itertools.pairwise(own):
            gap = current.at - previous.at
            if gap <= idle_after:
                microseconds += gap // _MICROSECOND
                lines += current.lines
    return MeasuredRate(lines=lines, active_hours=microseconds / MICROSECONDS_PER_HOUR)


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
