"""The supervisor's figures as rules over plain values (no Django): which merchants a site works for, the backlog
per stage, the day's backlog curve rebuilt from the status steps, and whether each of today's cut-offs will be made
at the current throughput.

**Stages.** An order waits in one stage of the floor: ``received`` (received or allocated: not yet released to the
warehouse), ``released`` (released, waiting for a wave and a picker), ``picking`` and ``packed`` (awaiting the
truck). Backordered orders and orders on hold are shown beside them, not in the flow.

**The curve.** Only the current counts are stored; the day's curve is rebuilt backwards from them: every status step
of the day (``core.StateTransition``) moved one order from one stage to another, and every order received added one
to ``received``. The count of a stage at the start of an hour is today's count minus what entered it since, plus
what left it since.

**Cut-offs.** The orders promised to ship at each of today's cut-offs (the promise's ``ship_by``) are worked in
cut-off order, so the orders still to pack for a cut-off are its own plus those of every earlier one. At the
current throughput (orders packed in the last hour), they take ``left ÷ rate`` hours: made when that ends before the
cut-off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

RECEIVED, RELEASED, PICKING, PACKED = "received", "released", "picking", "packed"

#: Stage → the order statuses waiting in it, in the order of the floor.
STAGES: dict[str, tuple[str, ...]] = {
    RECEIVED: ("received", "allocated"),
    RELEASED: ("released",),
    PICKING: ("picking",),
    PACKED: ("packed",),
}
#: Statuses shown beside the flow: waiting for stock, or stopped.
ASIDE: tuple[str, ...] = ("backordered", "on_hold")
STAGE_OF: dict[str, str] = {status: stage for stage, statuses in STAGES.items() for status in statuses}

#: Throughput: orders that reached each step in the last hour (status reached → the step's name).
STEPS: dict[str, tuple[str, ...]] = {
    "allocated": ("allocated",),
    "released": ("released",),
    "picking": ("picking",),
    "packed": ("packed",),
    "shipped": ("shipped", "partially_shipped"),
}


# --- Which merchants a site works for -------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteServing:
    """The promise's site configurations as the rule needs them: a site's code and the merchants it names."""

    site_code: str
    merchant_ids: frozenset[int]  # empty: every merchant not named by another site


@dataclass(frozen=True)
class MerchantFilter:
    """``include``: only these merchants (None: every one); ``exclude``: except these."""

    include: frozenset[int] | None
    exclude: frozenset[int]

    def allows(self, merchant_id: int) -> bool:
        return (self.include is None or merchant_id in self.include) and merchant_id not in self.exclude


def site_merchants(site_code: str, configs: Sequence[SiteServing]) -> MerchantFilter:
    """Orders carry no site: a merchant's orders are worked at the site that ships for it, as the promise reads it
    (``site_config_for``): the site naming the merchant, else the first site naming none. With no configuration at
    all every site shows every merchant; a site without one shows the merchants no site names."""
    named = frozenset(m for config in configs for m in config.merchant_ids)
    mine = next((config for config in configs if config.site_code == site_code), None)
    if mine is not None and mine.merchant_ids:
        return MerchantFilter(include=mine.merchant_ids, exclude=frozenset())
    catch_all = next((config for config in configs if not config.merchant_ids), None)
    if catch_all is None or catch_all.site_code == site_code:
        return MerchantFilter(include=None, exclude=named)
    return MerchantFilter(include=frozenset(), exclude=frozenset())  # another site ships the merchants it names not


# --- Backlog, throughput and the day's curve ----------------------------------------------------------------------


def backlog_by_stage(counts: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """(orders, lines) per stage and per aside status, from (orders, lines) per order status."""
    found: dict[str, tuple[int, int]] = {}
    for name, statuses in [*STAGES.items(), *((status, (status,)) for status in ASIDE)]:
        found[name] = (
            sum(counts.get(status, (0, 0))[0] for status in statuses),
            sum(counts.get(status, (0, 0))[1] for status in statuses),
        )
    return found


def throughput(steps: Mapping[tuple[datetime | None, str, str], int], received: int) -> dict[str, int]:
    """Orders per step over the window the ``steps`` were counted in ((…, from, to) → n), ``received`` first."""
    found = {"received": received}
    for name, targets in STEPS.items():
        found[name] = sum(n for (_key, _source, target), n in steps.items() if target in targets)
    return found


@dataclass(frozen=True)
class CurvePoint:
    at: datetime
    stages: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.stages.values())


def _delta(source: str, target: str) -> dict[str, int]:
    change: dict[str, int] = {}
    if source in STAGE_OF:
        change[STAGE_OF[source]] = change.get(STAGE_OF[source], 0) - 1
    if target in STAGE_OF:
        change[STAGE_OF[target]] = change.get(STAGE_OF[target], 0) + 1
    return change


def backlog_curve(
    *,
    now: datetime,
    hours: Sequence[datetime],
    current: Mapping[str, int],
    steps_by_hour: Mapping[tuple[datetime | None, str, str], int],
    received_by_hour: Mapping[datetime, int],
) -> list[CurvePoint]:
    """The backlog per stage at the start of each of ``hours`` (local hour starts, oldest first) and ``now``, rebuilt
    backwards from ``current`` with the steps and receipts counted per hour since the first of ``hours``."""
    change_by_hour: dict[datetime, dict[str, int]] = {}
    for (hour, source, target), n in steps_by_hour.items():
        if hour is None:
            continue
        bucket = change_by_hour.setdefault(hour, {})
        for stage, delta in _delta(source, target).items():
            bucket[stage] = bucket.get(stage, 0) + delta * n
    for hour, n in received_by_hour.items():
        bucket = change_by_hour.setdefault(hour, {})
        bucket[RECEIVED] = bucket.get(RECEIVED, 0) + n
    counts = {stage: int(current.get(stage, 0)) for stage in STAGES}
    points = [CurvePoint(at=now, stages=dict(counts))]
    for hour in sorted(hours, reverse=True):
        for stage, delta in change_by_hour.get(hour, {}).items():
            counts[stage] -= delta
        points.append(CurvePoint(at=hour, stages={stage: max(0, n) for stage, n in counts.items()}))
    return list(reversed(points))


def hours_between(start: datetime, now: datetime) -> list[datetime]:
    """The hour starts from ``start`` (itself an hour start) up to ``now``."""
    hours = []
    hour = start
    while hour <= now:
        hours.append(hour)
        hour = (hour + timedelta(hours=1, minutes=5)).replace(minute=0, second=0, microsecond=0)
    return hours


# --- Today's cut-offs -----------------------------------------------------------------------------------------

ON_TRACK, AT_RISK, STALLED, READY, MADE, MISSED, NONE = (
    "on_track",
    "at_risk",
    "stalled",
    "ready",
    "made",
    "missed",
    "none",
)


@dataclass(frozen=True)
class CutoffTally:
    """The orders promised to ship at one cut-off: how many, how many packed (or further), how many shipped."""

    service: str
    name: str
    cutoff: datetime
    due: int
    packed: int
    shipped: int


@dataclass(frozen=True)
class CutoffOutlook:
    service: str
    name: str
    cutoff: datetime
    due: int
    packed: int
    shipped: int
    left: int  # still to pack for this cut-off
    ahead: int  # still to pack for this cut-off and every earlier one
    verdict: str
    finish_at: datetime | None  # when the packing of ``ahead`` ends at the current rate
    short: int  # orders of this cut-off that will not be packed in time at that rate


def cutoff_outlook(tallies: Iterable[CutoffTally], *, now: datetime, packed_per_hour: float) -> list[CutoffOutlook]:
    """Each cut-off's verdict: ``none`` when no order is due at it, ``made`` / ``missed`` once it passed (every due
    order shipped or not), ``ready`` when nothing is left to pack, else ``on_track`` or ``at_risk`` from the work
    ahead at ``packed_per_hour`` (``stalled`` when nothing was packed in the last hour)."""
    outlooks = []
    ahead = 0
    for tally in sorted(tallies, key=lambda t: (t.cutoff, t.service)):
        left = max(0, tally.due - tally.packed)
        finish_at: datetime | None = None
        short = 0
        if tally.due == 0:
            verdict = NONE
        elif tally.cutoff <= now:
            verdict = MADE if tally.shipped >= tally.due else MISSED
            short = max(0, tally.due - tally.shipped)
        else:
            ahead += left
            if left == 0:
                verdict = READY
            elif packed_per_hour <= 0:
                verdict, short = STALLED, left
            else:
                finish_at = now + timedelta(hours=ahead / packed_per_hour)
                can = int(packed_per_hour * (tally.cutoff - now).total_seconds() / 3600)
                short = min(left, max(0, ahead - can))
                verdict = ON_TRACK if finish_at <= tally.cutoff else AT_RISK
        outlooks.append(
            CutoffOutlook(
                service=tally.service,
                name=tally.name,
                cutoff=tally.cutoff,
                due=tally.due,
                packed=tally.packed,
                shipped=tally.shipped,
                left=left,
                ahead=ahead if tally.cutoff > now else 0,
                verdict=verdict,
                finish_at=finish_at,
                short=short,
            )
        )
    return outlooks


# --- The curve as a small inline SVG --------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    stage: str
    points: str  # an SVG polygon's points


def stacked_bands(
    points: Sequence[CurvePoint], *, width: float, height: float, pad: float
) -> tuple[list[Band], int, list[tuple[float, str]]]:
    """The curve as stacked bands (one polygon per stage, ``received`` at the bottom), the scale's top, and the
    x of each hour's tick with its label (every hour on a short day, every second or third on a long one)."""
    if not points:
        return [], 0, []
    top = max(1, max(point.total for point in points))
    first, last = points[0].at, points[-1].at
    span = max((last - first).total_seconds(), 1.0)
    inner_w, inner_h = width - 2 * pad, height - 2 * pad

    def x(at: datetime) -> float:
        return round(pad + inner_w * (at - first).total_seconds() / span, 1)

    def y(value: float) -> float:
        return round(height - pad - inner_h * value / top, 1)

    bands = []
    below = [0] * len(points)
    for stage in STAGES:
        above = [b + point.stages.get(stage, 0) for b, point in zip(below, points, strict=True)]
        upper = [f"{x(p.at)},{y(v)}" for p, v in zip(points, above, strict=True)]
        lower = [f"{x(p.at)},{y(v)}" for p, v in reversed(list(zip(points, below, strict=True)))]
        bands.append(Band(stage=stage, points=" ".join(upper + lower)))
        below = above
    step = 1 if len(points) <= 9 else 2 if len(points) <= 15 else 3
    ticks = [(x(p.at), f"{p.at:%H}h") for p in points[:-1] if p.at.hour % step == 0]
    return bands, top, ticks
