"""The delivery promise as a pure function of a snapshot: no database, no clock, no translation.

``promise_compute(snapshot, lines=…, zone=…, at=…)`` answers, for each carrier service of a site, when the cart can
ship and when it arrives. Everything it needs is in the arguments (site calendar, carrier services with cut-offs and
transit distributions, the capacity backlog, the stock of each line), so the hundreds of calendar cases are tested in
milliseconds and a replay of an old promise gives the same answer.

The rules, each chosen to keep the promise rather than to flatter it:

- **Time.** Every instant is compared as an instant: the order's ``at`` (any UTC offset, even a stale one) is moved
  into the site's time zone first, and a cut-off is the local wall time of that day in that zone, so both clock
  changes land on the right side. An order placed exactly at a cut-off misses it: only strictly before is before.
- **Ship days.** A cut-off exists on a weekday the service picks up (a weekday absent from ``cutoffs`` has no
  pick-up) and on a day the site works: one of its opening days, not an exceptional closure, and not a public
  holiday of the site's country and subdivision unless the site works them.
- **Stock.** A line covered by stock on hand is ready now. A line that needs an ASN is ready once the ASN that
  covers it is expected: ASN dates carry no hour, so the goods count as received at the close of that day, plus the
  putaway time in working hours, and the cart ships at the first cut-off after that.
- **Release buffer.** The merchant's orders wait ``release_buffer`` after intake (the shopper may still edit or
  cancel) before the warehouse may release them, so the cart's work starts at ``release_starts_at(at, buffer)``
  (``at`` plus the buffer, never before ``at``): a cut-off must fall strictly after that start as it must after
  the stock is ready. An order placed 10 minutes before a cut-off with a 15-minute buffer ships at the next one.
  The at-risk watch applies the same test (``makes_cutoff``) with each order's own release instant.
- **Capacity.** The work already waiting at each stage (pick, pack) drains at its lines per hour, in opening hours
  only, hour by hour: labour's figure for the hours it knows (people rostered, else the staffing plan), the
  configured one for the others; the stages run side by side, so the slowest one says when the backlog ahead is
  done. The cart makes a cut-off only if that backlog is done by it; otherwise it moves to the next one.
- **Transit.** A distribution per service and zone: the share of parcels delivered within n delivery days. The
  earliest date uses the smallest n; the latest the smallest n whose share reaches the confidence (95 % unless the
  lane was widened). Delivery days are the service's delivery weekdays that are not public holidays at the
  destination (a parcel to La Réunion does not arrive on 20 December). A zone the service has no transit for is
  not served.
- **Zones.** From the country, and in France from the postcode, through ``quai.orders.domain``'s postcode rules:
  mainland, Corsica (20xxx, 2A/2B), each overseas department 971–976 (975, Saint-Pierre-et-Miquelon, has its own
  zone too), the other overseas collectivities (977–988); outside France the country itself is the zone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

import holidays

from quai.orders.domain import AddressProblem, country_normalise, postcode_normalise

#: The share of parcels a promised latest date must cover, unless the lane says otherwise.
DEFAULT_CONFIDENCE: Final = 0.95

#: The stages whose backlog delays a cart; the configuration may hold others, these are the usual ones.
STAGES: Final = ("pick", "pack")

#: How far ahead a date is searched before the answer is "never" (a service with no cut-off left, a closed site).
HORIZON_DAYS: Final = 400


# --- Zones --------------------------------------------------------------------------------------------------------

MAINLAND: Final = "FR-MAINLAND"
CORSICA: Final = "FR-CORSICA"
OVERSEAS_COLLECTIVITIES: Final = "FR-COM"
#: Overseas departments (and Saint-Pierre-et-Miquelon, 975), each its own zone, with its holidays' subdivision.
OVERSEAS: Final[Mapping[str, str]] = {
    "971": "971",  # Guadeloupe
    "972": "972",  # Martinique
    "973": "973",  # Guyane
    "974": "974",  # La Réunion
    "975": "PM",  # Saint-Pierre-et-Miquelon
    "976": "976",  # Mayotte
}
#: Mainland departments whose local law adds public holidays (Good Friday, 26 December): Moselle, Alsace.
_LOCAL_LAW: Final[Mapping[str, str]] = {"57": "57", "67": "6AE", "68": "6AE"}


@dataclass(frozen=True)
class DestinationZone:
    """Where a parcel goes, as the carriers price and time it; ``holiday_*`` say which days nobody delivers there."""

    code: str
    country: str
    postcode: str
    holiday_country: str
    holiday_subdivision: str = ""


def destination_zone(country: str, postcode: str) -> DestinationZone | AddressProblem:
    """The zone of a destination, or why it is no address (an unknown country, a postcode not of that country)."""
    normalised_country = country_normalise(country)
    if isinstance(normalised_country, AddressProblem):
        return normalised_country
    normalised = postcode_normalise(normalised_country, postcode)
    if isinstance(normalised, AddressProblem):
        return normalised
    if normalised_country != "FR":
        return DestinationZone(normalised_country, normalised_country, normalised, normalised_country)
    department = normalised[:2]
    if department == "20":
        return DestinationZone(CORSICA, "FR", normalised, "FR")
    if department in ("97", "98"):
        prefix = normalised[:3]
        if prefix in OVERSEAS:
            return DestinationZone(f"FR-{prefix}", "FR", normalised, "FR", OVERSEAS[prefix])
        return DestinationZone(OVERSEAS_COLLECTIVITIES, "FR", normalised, "FR")
    return DestinationZone(MAINLAND, "FR", normalised, "FR", _LOCAL_LAW.get(department, ""))


# --- Calendars ----------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def public_holidays(country: str, subdivision: str, year: int) -> frozenset[date]:
    """The public holidays of ``country`` (and ``subdivision``) in ``year``, from the ``holidays`` library.

    Raises ``ValueError`` for a country or subdivision the library does not know (configuration checks it first).
    """
    try:
        found = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError as error:
        raise ValueError(f"no public holidays known for {country!r}/{subdivision!r}: {error}") from None
    return frozenset(found.keys())


def is_public_holiday(day: date, country: str, subdivision: str = "") -> bool:
    return day in public_holidays(country, subdivision, day.year)


@dataclass(frozen=True)
class SiteCalendar:
    """When a site works: ISO weekdays (1 = Monday), opening hours, public holidays of its place, closures."""

    time_zone: str
    opening_days: frozenset[int]
    opens_at: time
    closes_at: time
    holiday_country: str
    holiday_subdivision: str = ""
    works_public_holidays: bool = False
    closures: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return _zone_info(self.time_zone)

    def works_on(self, day: date) -> bool:
        if day.isoweekday() not in self.opening_days or day in self.closures:
            return False
        return self.works_public_holidays or not is_public_holiday(day, self.holiday_country, self.holiday_subdivision)

    def local(self, day: date, at: time) -> datetime:
        """The instant of local wall time ``at`` on ``day`` at the site (a time skipped by a clock change falls
        after the change, as ``zoneinfo`` reads it)."""
        return datetime.combine(day, at, tzinfo=self.zone)


@functools.lru_cache(maxsize=64)
def _zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def add_working_time(calendar: SiteCalendar, start: datetime, hours: float) -> datetime:
    """The instant ``hours`` of opening time after ``start`` (nights, closed days and holidays do not count).

    Zero hours is ``start`` itself, even outside opening hours: nothing waits, so nothing moves.
    """
    if hours <= 0:
        return start
    remaining = timedelta(hours=hours)
    cursor = start.astimezone(calendar.zone)
    day = cursor.date()
    for _ in range(HORIZON_DAYS):
        if calendar.works_on(day):
            opens, closes = calendar.local(day, calendar.opens_at), calendar.local(day, calendar.closes_at)
            begin = max(cursor, opens)
            if begin < closes:
                available = _elapsed(begin, closes)
                if remaining <= available:
                    return (begin.astimezone(UTC) + remaining).astimezone(calendar.zone)
                remaining -= available
        day += timedelta(days=1)
    raise NoDate("the site does not open within the horizon")


def _elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two instants (aware datetimes of one ``tzinfo`` would subtract as wall times)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


class NoDate(Exception):
    """No date within the horizon: the configuration leaves no ship or delivery day."""


# --- Transit ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transit:
    """Share of parcels delivered within n delivery days, cumulative: ``((1, 0.80), (2, 0.97), (3, 1.0))``."""

    steps: tuple[tuple[int, float], ...]

    def __post_init__(self) -> None:
        problem = transit_problem(self.steps)
        if problem:
            raise ValueError(problem)

    @property
    def earliest_days(self) -> int:
        return self.steps[0][0]

    def days_at(self, confidence: float) -> int:
        """The fewest delivery days that cover ``confidence`` of parcels (the last step when none reaches it)."""
        for days, share in self.steps:
            if share + 1e-9 >= confidence:
                return days
        return self.steps[-1][0]

    def share_within(self, days: int) -> float:
        share = 0.0
        for step_days, step_share in self.steps:
            if step_days <= days:
                share = step_share
        return share


def transit_problem(steps: Sequence[tuple[int, float]]) -> str:
    """Why ``steps`` is no transit distribution ("" when it is one): days rising, shares rising within (0, 1]."""
    if not steps:
        return "a transit distribution needs at least one step"
    previous_days, previous_share = -1, 0.0
    for days, share in steps:
        if not isinstance(days, int) or days < 0:
            return f"transit days must be whole and not negative, not {days!r}"
        if days <= previous_days:
            return "transit days must rise from step to step"
        if not 0 < share <= 1 or share < previous_share:
            return "transit shares must rise within (0, 1]"
        previous_days, previous_share = days, share
    return ""


def transit_observed(seed: Transit, observed: Mapping[int, int], *, min_observations: int = 20) -> Transit:
    """The lane's transit once tracking events have shown enough deliveries; the configured seed until then.

    ``observed`` counts parcels by delivery days. The observed shares replace the seed (parcels, not opinions),
    except that the seed's earliest day stays possible: a handful of fast parcels would not be a new promise.
    """
    total = sum(count for count in observed.values() if count > 0)
    if total < min_observations:
        return seed
    steps: list[tuple[int, float]] = []
    running = 0
    for days in sorted(d for d, count in observed.items() if count > 0):
        running += observed[days]
        steps.append((days, round(running / total, 4)))
    steps[-1] = (steps[-1][0], 1.0)
    return Transit(tuple(steps))


def transit_days_between(
    shipped: date, delivered: date, *, delivery_weekdays: frozenset[int], zone: DestinationZone
) -> int:
    """Delivery days from ship date to delivery date (what ``delivery_date`` would have needed)."""
    days, day = 0, shipped
    while day < delivered:
        day += timedelta(days=1)
        if _delivers_on(day, delivery_weekdays, zone):
            days += 1
    return days


def _delivers_on(day: date, delivery_weekdays: frozenset[int], zone: DestinationZone) -> bool:
    return day.isoweekday() in delivery_weekdays and not is_public_holiday(
        day, zone.holiday_country, zone.holiday_subdivision
    )


def delivery_date(ship_day: date, days: int, *, delivery_weekdays: frozenset[int], zone: DestinationZone) -> date:
    """The ``days``-th delivery day after ``ship_day`` (0: the ship day itself, for a same-day service)."""
    if not delivery_weekdays:
        raise NoDate("the service delivers on no weekday")
    day, left = ship_day, days
    for _ in range(HORIZON_DAYS):
        if left == 0:
            return day
        day += timedelta(days=1)
        if _delivers_on(day, delivery_weekdays, zone):
            left -= 1
    raise NoDate("no delivery day within the horizon")


# --- Snapshot -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierService:
    """A carrier service as one site uses it. ``cutoffs``: ISO weekday → local cut-off (absent: no pick-up)."""

    code: str
    name: str
    cutoffs: Mapping[int, time]
    delivery_weekdays: frozenset[int]
    transit: Mapping[str, Transit]
    carrier: str = ""
    pickup_point: bool = False
    price: Decimal | None = None
    currency: str = "EUR"
    #: Lanes whose kept rate fell under the threshold: zone → the widened confidence.
    lane_confidence: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Capacity:
    """Per stage: lines per hour of opening time, and the lines already waiting (released and not yet done).

    ``hourly``: per stage, the lines per hour labour knows for some clock hours (key: the hour's start, aware), from
    the people rostered then or the staffing plan; those hours run at that figure, the others at ``lines_per_hour``
    (the configured one)."""

    lines_per_hour: Mapping[str, float]
    backlog_lines: Mapping[str, int]
    hourly: Mapping[str, Mapping[datetime, float]] = field(default_factory=dict)

    def hours_ahead(self) -> float:
        """Opening hours until the backlog is done: the slowest stage's (stages work side by side)."""
        hours = 0.0
        for stage, lines in self.backlog_lines.items():
            if lines <= 0:
                continue
            rate = self.lines_per_hour.get(stage, 0)
            if rate <= 0:
                continue  # a stage with no configured rate is not measured, so it cannot delay
            hours = max(hours, lines / rate)
        return hours


def backlog_done_at(calendar: SiteCalendar, capacity: Capacity, start: datetime) -> datetime:
    """When the work waiting at every stage is done, starting at ``start``: each stage drains its lines hour by hour
    of opening time at that hour's rate (labour's where it knows the hour, else the configured one); the stages work
    side by side, so the last one to finish says when. Without any hour from labour this is exactly
    ``add_working_time(calendar, start, capacity.hours_ahead())``.

    A stage with neither a configured rate nor a positive hour from labour is not measured and cannot delay; one
    with labour's hours but no configured rate runs the hours labour does not know at the mean of those it does."""
    waiting = {stage: lines for stage, lines in capacity.backlog_lines.items() if lines > 0}
    if not any(capacity.hourly.get(stage) for stage in waiting):
        return add_working_time(calendar, start, capacity.hours_ahead())
    done = start
    for stage, lines in waiting.items():
        rate = _stage_rate(capacity, stage)
        if rate > 0:
            done = max(done, _drained(calendar, start, float(lines), rate, capacity.hourly.get(stage, {})))
    return done


def _stage_rate(capacity: Capacity, stage: str) -> float:
    """The rate of the hours labour does not know: the configured one, else the mean of labour's positive hours
    (0: the stage is not measured and cannot delay)."""
    rate = float(capacity.lines_per_hour.get(stage, 0))
    if rate > 0:
        return rate
    known = [figure for figure in capacity.hourly.get(stage, {}).values() if figure > 0]
    return sum(known) / len(known) if known else 0.0


def _drained(
    calendar: SiteCalendar, start: datetime, lines: float, rate: float, hourly: Mapping[datetime, float]
) -> datetime:
    return _drain_times(calendar, start, [lines], rate, hourly)[0]


def _drain_times(
    calendar: SiteCalendar, start: datetime, thresholds: Sequence[float], rate: float, hourly: Mapping[datetime, float]
) -> list[datetime]:
    """When the work done since ``start`` reaches each of ``thresholds`` (ascending lines), hour by hour of opening
    time at labour's figure for the hour, else ``rate``: one walk along the calendar for all of them."""
    times: list[datetime] = []
    done = 0.0
    cursor = start.astimezone(calendar.zone)
    day = cursor.date()
    for _ in range(HORIZON_DAYS):
        if calendar.works_on(day):
            begin = max(cursor, calendar.local(day, calendar.opens_at)).astimezone(UTC)
            closes = calendar.local(day, calendar.closes_at).astimezone(UTC)
            while begin < closes:
                hour = begin.replace(minute=0, second=0, microsecond=0)
                end = min(closes, hour + timedelta(hours=1))
                figure = hourly.get(hour, rate)
                if figure > 0:
                    doable = figure * (end - begin) / timedelta(hours=1)
                    while len(times) < len(thresholds) and thresholds[len(times)] - done <= doable:
                        hours = (thresholds[len(times)] - done) / figure
                        times.append((begin + timedelta(hours=max(hours, 0.0))).astimezone(calendar.zone))
                    if len(times) == len(thresholds):
                        return times
                    done += doable
                begin = end
        day += timedelta(days=1)
    raise NoDate("the backlog is not done within the horizon")


@dataclass(frozen=True)
class Snapshot:
    calendar: SiteCalendar
    services: tuple[CarrierService, ...]
    capacity: Capacity
    putaway_hours: float = 0.0
    confidence: float = DEFAULT_CONFIDENCE
    #: The merchant's release buffer (``quai.orders``' policy): how long an order waits after intake before the
    #: warehouse may start it. The site's snapshot has none; ``quai.promise.selectors.snapshot_for`` adds it.
    release_buffer: timedelta = timedelta(0)


@dataclass(frozen=True)
class CartLine:
    """A line of the cart with the stock that may cover it: free stock on hand, then ASNs by expected date."""

    sku_code: str
    quantity: int
    on_hand: int
    incoming: tuple[tuple[date, int], ...] = ()


# --- Results ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Why no promise can be made; ``code`` is the API's error code, ``params`` say about what."""

    code: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class Stock:
    available_now: bool
    #: The site-local date the last missing line is expected on an ASN (None when all is on hand).
    available_from: date | None
    ready_at: datetime


@dataclass(frozen=True)
class ServiceOption:
    service: str
    name: str
    carrier: str
    pickup_point: bool
    cutoff: datetime
    seconds_to_cutoff: int
    ship_date: date
    delivery_earliest: date
    delivery_latest: date
    confidence: float
    price: Decimal | None
    currency: str


@dataclass(frozen=True)
class Unserved:
    service: str
    code: str  # zone_not_served, no_ship_date


@dataclass(frozen=True)
class PromiseResult:
    at: datetime
    zone: DestinationZone
    stock: Stock
    options: tuple[ServiceOption, ...]
    unserved: tuple[Unserved, ...]


# --- The rule -----------------------------------------------------------------------------------------------------


def stock_ready(snapshot: Snapshot, lines: Iterable[CartLine], at: datetime) -> Stock | Problem:
    """When the whole cart can be picked: now when stock on hand covers it, else when its ASNs are put away."""
    calendar = snapshot.calendar
    needed: date | None = None
    for line in lines:
        if line.quantity <= 0:
            return Problem("invalid_quantity", {"sku": line.sku_code})
        short = line.quantity - max(line.on_hand, 0)
        if short <= 0:
            continue
        covered_on: date | None = None
        for expected, quantity in sorted(line.incoming):
            short -= quantity
            if short <= 0:
                covered_on = expected
                break
        if covered_on is None:
            return Problem("out_of_stock", {"sku": line.sku_code})
        needed = covered_on if needed is None else max(needed, covered_on)
    local_at = at.astimezone(calendar.zone)
    if needed is None:
        return Stock(available_now=True, available_from=None, ready_at=local_at)
    # An ASN date has no hour: the goods count as received when that day closes, then are put away.
    received = max(calendar.local(needed, calendar.closes_at), local_at)
    return Stock(
        available_now=False,
        available_from=needed,
        ready_at=add_working_time(calendar, received, snapshot.putaway_hours),
    )


def cart_done_at(
    calendar: SiteCalendar, capacity: Capacity, *, cart_lines: int, now: datetime, starts_at: datetime
) -> datetime:
    """When a cart's own lines are through every stage: behind the backlog (the backlog and the cart drain from
    ``now``, the cart last), and not before its own work, begun at ``starts_at`` (stock ready, release buffer over),
    is done. Queued last, the cart finishes at whichever is later: the floor reaching its end of the queue, or its
    own lines worked from the moment it may start."""
    stages = set(capacity.lines_per_hour) | set(capacity.backlog_lines) | set(capacity.hourly)
    queued = replace(
        capacity, backlog_lines={stage: capacity.backlog_lines.get(stage, 0) + cart_lines for stage in stages}
    )
    alone = replace(capacity, backlog_lines=dict.fromkeys(stages, cart_lines))
    return max(backlog_done_at(calendar, queued, now), backlog_done_at(calendar, alone, starts_at))


class CartDrains:
    """``cart_done_at`` remembered for one calendar and capacity, recognised by identity (a relay batch's snapshots
    share the site's calendar, its backlog and labour's hours): the orders of a batch placed at the same instant
    with as many lines get the same answer without walking the calendar again. Bound to other ones, it starts
    again empty."""

    def __init__(self) -> None:
        self._bound: tuple[object, ...] = ()
        self._done: dict[tuple[object, ...], datetime] = {}

    def done_at(
        self, calendar: SiteCalendar, capacity: Capacity, *, cart_lines: int, now: datetime, starts_at: datetime
    ) -> datetime:
        bound = (calendar, capacity.lines_per_hour, capacity.backlog_lines, capacity.hourly)
        if len(self._bound) != len(bound) or any(a is not b for a, b in zip(bound, self._bound, strict=True)):
            self._bound, self._done = bound, {}
        key = (cart_lines, now, now.tzinfo, starts_at, starts_at.tzinfo)
        done = self._done.get(key)
        if done is None:
            done = cart_done_at(calendar, capacity, cart_lines=cart_lines, now=now, starts_at=starts_at)
            self._done[key] = done
        return done


def release_starts_at(at: datetime, release_buffer: timedelta) -> datetime:
    """The earliest instant an order placed at ``at`` may be worked on: once its release buffer is over (a negative
    buffer counts as none: the work never starts before the order exists). The buffer is real time, added in UTC:
    a buffer across a clock change ends that many minutes later, not at that wall time."""
    buffer = max(release_buffer, timedelta(0))
    return (at.astimezone(UTC) + buffer).astimezone(at.tzinfo)


def makes_cutoff(cutoff: datetime, *, starts_at: datetime, done_by: datetime) -> bool:
    """Whether an order whose work may start at ``starts_at`` (stock ready, release buffer over) and whose work
    ahead is done by ``done_by`` ships at ``cutoff``: strictly after the start (an order released exactly at a
    cut-off misses it, as one placed exactly at it does), and not before the work is done. The promise picks its
    cut-off with it and the at-risk watch checks the promised one with it: one rule for both."""
    return cutoff > starts_at and cutoff >= done_by


def next_cutoff(calendar: SiteCalendar, service: CarrierService, *, after: datetime, done_by: datetime) -> datetime:
    """The first cut-off of ``service`` that ``makes_cutoff`` with work starting at ``after`` and done by
    ``done_by``, on a day the site works."""
    day = min(after, done_by).astimezone(calendar.zone).date()
    for _ in range(HORIZON_DAYS):
        cutoff_time = service.cutoffs.get(day.isoweekday())
        if cutoff_time is not None and calendar.works_on(day):
            cutoff = calendar.local(day, cutoff_time)
            if makes_cutoff(cutoff, starts_at=after, done_by=done_by):
                return cutoff
        day += timedelta(days=1)
    raise NoDate("no cut-off within the horizon")


def promise_compute(
    snapshot: Snapshot,
    *,
    lines: Sequence[CartLine],
    zone: DestinationZone,
    at: datetime,
    services: Sequence[str] | None = None,
    drains: CartDrains | None = None,
) -> PromiseResult | Problem:
    """The promise of every service (or of ``services``) for the cart, placed at instant ``at`` (aware).
    ``drains``: where the carts' drains of a batch of orders are remembered (the same answer, computed once)."""
    if at.tzinfo is None or at.utcoffset() is None:
        return Problem("invalid_instant", {"at": at.isoformat()})
    if not lines:
        return Problem("empty_cart", {})
    chosen = snapshot.services
    if services is not None:
        known = {s.code: s for s in snapshot.services}
        for code in services:
            if code not in known:
                return Problem("service_unavailable", {"service": code})
        chosen = tuple(known[code] for code in dict.fromkeys(services))
    stock = stock_ready(snapshot, lines, at)
    if isinstance(stock, Problem):
        return stock
    calendar = snapshot.calendar
    local_at = at.astimezone(calendar.zone)
    # The backlog ahead drains from now (the floor works during the buffer); the cart itself waits for both its
    # stock and its release, and its own lines take their time at every stage after both.
    starts_at = max(stock.ready_at, release_starts_at(local_at, snapshot.release_buffer))
    done_at = cart_done_at if drains is None else drains.done_at
    backlog_done = done_at(calendar, snapshot.capacity, cart_lines=len(lines), now=local_at, starts_at=starts_at)
    options: list[ServiceOption] = []
    unserved: list[Unserved] = []
    for service in chosen:
        transit = service.transit.get(zone.code)
        if transit is None:
            unserved.append(Unserved(service.code, "zone_not_served"))
            continue
        confidence = max(snapshot.confidence, service.lane_confidence.get(zone.code, 0.0))
        try:
            cutoff = next_cutoff(calendar, service, after=starts_at, done_by=backlog_done)
            ship_day = cutoff.date()
            earliest = delivery_date(
                ship_day, transit.earliest_days, delivery_weekdays=service.delivery_weekdays, zone=zone
            )
            latest = delivery_date(
                ship_day, transit.days_at(confidence), delivery_weekdays=service.delivery_weekdays, zone=zone
            )
        except NoDate:
            unserved.append(Unserved(service.code, "no_ship_date"))
            continue
        options.append(
            ServiceOption(
                service=service.code,
                name=service.name,
                carrier=service.carrier,
                pickup_point=service.pickup_point,
                cutoff=cutoff,
                seconds_to_cutoff=max(0, math.floor(_elapsed(local_at, cutoff).total_seconds())),
                ship_date=ship_day,
                delivery_earliest=earliest,
                delivery_latest=latest,
                confidence=confidence,
                price=service.price,
                currency=service.currency,
            )
        )
    options.sort(key=lambda o: (o.delivery_latest, o.delivery_earliest, o.price is None, o.price or 0, o.service))
    return PromiseResult(at=local_at, zone=zone, stock=stock, options=tuple(options), unserved=tuple(unserved))


# --- Watching promises --------------------------------------------------------------------------------------------

PENDING: Final = "pending"
AT_RISK: Final = "at_risk"
KEPT: Final = "kept"
BROKEN: Final = "broken"


class Cause:
    """Why a promise broke (or is at risk): the codes stored and sent."""

    WAREHOUSE_LATE: Final = "warehouse_late"
    CARRIER_LATE: Final = "carrier_late"
    STOCK_SHORT: Final = "stock_short"
    ADDRESS_PROBLEM: Final = "address_problem"
    CUSTOMER_HOLD: Final = "customer_hold"
    FORCE_MAJEURE: Final = "force_majeure"

    ALL: Final = (WAREHOUSE_LATE, CARRIER_LATE, STOCK_SHORT, ADDRESS_PROBLEM, CUSTOMER_HOLD, FORCE_MAJEURE)


#: An order held for these reasons (``quai.orders.domain.HoldReason``) is late because of who held it.
HOLD_CAUSES: Final[Mapping[str, str]] = {
    "address": Cause.ADDRESS_PROBLEM,
    "payment": Cause.CUSTOMER_HOLD,
    "fraud": Cause.CUSTOMER_HOLD,
    "customer_service": Cause.CUSTOMER_HOLD,
    "merchant": Cause.CUSTOMER_HOLD,
}


def shipped_on_time(*, shipped_at: datetime, ship_date: date, time_zone: str) -> bool:
    """Shipped on or before the promised ship day at the site (the carrier collects after the cut-off)."""
    return shipped_at.astimezone(_zone_info(time_zone)).date() <= ship_date


def delivery_outcome(
    *, delivered_on: date, promised_by: date, shipped_on_time: bool, hold_reason: str = "", stock_short: bool = False
) -> tuple[str, str]:
    """``(kept | broken, cause)`` of a delivered promise; a late delivery's cause is the first thing that slipped."""
    if delivered_on <= promised_by:
        return KEPT, ""
    if hold_reason:
        return BROKEN, HOLD_CAUSES.get(hold_reason, Cause.CUSTOMER_HOLD)
    if stock_short:
        return BROKEN, Cause.STOCK_SHORT
    if not shipped_on_time:
        return BROKEN, Cause.WAREHOUSE_LATE
    return BROKEN, Cause.CARRIER_LATE


@dataclass(frozen=True)
class OpenOrder:
    """An order not yet shipped, as the at-risk watch sees it (in the warehouse's work order). ``release_at``: the
    end of its release buffer (None: released, or no buffer known), before which its work cannot start."""

    order_id: int
    lines: int
    ship_by: datetime
    release_at: datetime | None = None

    def starts_at(self, now: datetime) -> datetime:
        return now if self.release_at is None else max(now, self.release_at)


def orders_at_risk(calendar: SiteCalendar, capacity: Capacity, orders: Sequence[OpenOrder], now: datetime) -> list[int]:
    """The orders that will miss their ship-by cut-off given the work ahead of each (in ``orders``' order).

    Each order waits for the lines before it and its own: the slowest stage's rate says when it is done — with
    labour's hours (``capacity.hourly``), each stage drains them hour by hour as ``backlog_done_at`` does, so the
    watch and the promise read the same capacity. An order is at risk when its ship-by cut-off fails
    ``makes_cutoff`` (the promise's own test) with its work starting once its release buffer is over.
    """
    if any(capacity.hourly.values()):
        return _orders_at_risk_by_hour(calendar, capacity, orders, now)
    rates = [rate for rate in capacity.lines_per_hour.values() if rate > 0]
    rate = min(rates) if rates else 0.0
    at_risk: list[int] = []
    ahead = 0
    for order in orders:
        ahead += order.lines
        done = add_working_time(calendar, now, ahead / rate) if rate else now
        if not makes_cutoff(order.ship_by, starts_at=order.starts_at(now), done_by=done):
            at_risk.append(order.order_id)
    return at_risk


def _orders_at_risk_by_hour(
    calendar: SiteCalendar, capacity: Capacity, orders: Sequence[OpenOrder], now: datetime
) -> list[int]:
    ahead: list[float] = []
    total = 0
    for order in orders:
        total += order.lines
        ahead.append(float(total))
    done = [now] * len(orders)
    for stage in capacity.lines_per_hour.keys() | capacity.hourly.keys():
        rate = _stage_rate(capacity, stage)
        if rate <= 0 or not orders:
            continue
        times = _drain_times(calendar, now, ahead, rate, capacity.hourly.get(stage, {}))
        done = [max(a, b) for a, b in zip(done, times, strict=True)]
    return [
        order.order_id
        for order, finished in zip(orders, done, strict=True)
        if not makes_cutoff(order.ship_by, starts_at=order.starts_at(now), done_by=finished)
    ]


def lane_confidence(
    *, kept: int, total: int, threshold: float, base: float, widened: float, min_outcomes: int = 20
) -> float:
    """The confidence a lane promises at: ``widened`` while its kept rate is under ``threshold``, else ``base``."""
    if total < min_outcomes:
        return base
    return widened if kept / total < threshold else base
