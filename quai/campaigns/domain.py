"""Pure rules of event sales: the campaign's state table, its order curve, and the same-day cut-off at the peak.

The capacity check answers the supervisor's question before a campaign opens: "on the busiest day, until what time
does an order still ship the same day?" The floor is a queue of lines: orders arrive hour by hour (evenly inside the
hour), the site works them off at ``capacity`` lines per hour from opening, and an order ships today when the lines
ahead of it and its own are done by the carrier's cut-off. The latest such arrival time is the answer; every order
after it ships the next working day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

DRAFT: Final = "draft"
PLANNED: Final = "planned"
OPEN: Final = "open"
CLOSING: Final = "closing"
CLOSED: Final = "closed"

CAMPAIGN_TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    DRAFT: (PLANNED,),
    PLANNED: (OPEN, DRAFT),
    OPEN: (CLOSING,),
    CLOSING: (CLOSED,),
    CLOSED: (),
}
CAMPAIGN_TRANSITION_NAMES: Final[dict[tuple[str, str], str]] = {
    (DRAFT, PLANNED): "plan",
    (PLANNED, DRAFT): "unplan",
    (PLANNED, OPEN): "open",
    (OPEN, CLOSING): "close_out",
    (CLOSING, CLOSED): "close",
}

MAX_ORDERS_PER_HOUR: Final = 200_000.0
#: A campaign lasts at most this long: longer is not an event sale.
MAX_DAYS: Final = 62


class CurveError(ValueError):
    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code, params)
        self.code = code
        self.params: dict[str, object] = dict(params)


@dataclass(frozen=True)
class CurvePoint:
    hour: datetime
    orders: float


def curve_check(curve: Sequence[CurvePoint], *, starts_at: datetime, ends_at: datetime) -> None:
    """The curve's hours lie inside the campaign, once each, with sane volumes."""
    if ends_at <= starts_at:
        raise CurveError("invalid_window", starts_at=starts_at.isoformat(), ends_at=ends_at.isoformat())
    if ends_at - starts_at > timedelta(days=MAX_DAYS):
        raise CurveError("campaign_too_long", days=MAX_DAYS)
    seen: set[datetime] = set()
    for point in curve:
        if point.hour.tzinfo is None:
            raise CurveError("invalid_instant", hour=point.hour.isoformat())
        if point.hour in seen:
            raise CurveError("duplicate_hour", hour=point.hour.isoformat())
        seen.add(point.hour)
        if math.isnan(point.orders) or point.orders < 0:
            raise CurveError("negative_volume", hour=point.hour.isoformat(), orders=point.orders)
        if point.orders > MAX_ORDERS_PER_HOUR:
            raise CurveError("absurd_volume", hour=point.hour.isoformat(), orders=point.orders)
        if not starts_at - timedelta(hours=1) < point.hour < ends_at:
            raise CurveError("hour_outside_campaign", hour=point.hour.isoformat())


def peak_day(curve: Sequence[CurvePoint], tz: tzinfo) -> list[CurvePoint]:
    """The points of the local day with the most orders (the earliest such day on a tie)."""
    days: dict[date, list[CurvePoint]] = {}
    for point in curve:
        days.setdefault(point.hour.astimezone(tz).date(), []).append(point)
    if not days:
        return []
    best = max(sorted(days), key=lambda day: sum(p.orders for p in days[day]))
    return sorted(days[best], key=lambda p: p.hour)


def last_same_day_arrival(
    arrivals: Sequence[CurvePoint],
    *,
    lines_per_order: float,
    capacity_lines_per_hour: float,
    opens_at: datetime,
    cutoff: datetime,
    backlog_lines: float = 0.0,
    step: timedelta = timedelta(minutes=1),
) -> datetime | None:
    """The latest arrival time (to ``step``) of an order that still ships by ``cutoff``; None if every order of the
    day does. Orders before ``opens_at`` wait for it; ``backlog_lines`` are waiting at opening.

    Fluid queue: the backlog at t is what arrived minus what was done (never below 0); an order arriving at t is
    done at ``max(t, opens_at) + (backlog(t) + its lines) / capacity``.
    """
    if capacity_lines_per_hour <= 0:
        return arrivals[0].hour if arrivals else None
    start = min([opens_at, *(p.hour for p in arrivals)]) if arrivals else opens_at
    end = max([cutoff, *(p.hour + timedelta(hours=1) for p in arrivals)]) if arrivals else cutoff
    rate_per_step = capacity_lines_per_hour * step / timedelta(hours=1)
    arrivals_by_hour = {p.hour: p.orders * lines_per_order for p in arrivals}
    backlog = backlog_lines
    last_ok: datetime | None = None
    missed = False
    moment = start
    while moment < end:
        hour = moment.replace(minute=0, second=0, microsecond=0)
        arriving = arrivals_by_hour.get(hour, 0.0) * (step / timedelta(hours=1))
        if arriving > 0:
            begins = max(moment, opens_at)
            done = begins + timedelta(hours=(backlog + lines_per_order) / capacity_lines_per_hour)
            if done <= cutoff:
                last_ok = moment
            else:
                missed = True
                break
        backlog += arriving
        if moment >= opens_at:
            backlog = max(0.0, backlog - rate_per_step)
        moment += step
    if not missed:
        return None
    return last_ok if last_ok is not None else start


def hhmm(moment: datetime) -> str:
    return time(moment.hour, moment.minute).strftime("%H:%M")
