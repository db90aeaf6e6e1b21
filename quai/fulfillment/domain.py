"""Waves and batches, as rules over plain values (no Django): which orders go to the floor now, and how they are
grouped into carts of totes.

**Waves.** An order waiting on the floor (released, in no batch yet) is ranked by urgency: the cut-off of its
carrier service (the truck that leaves first), its promised date, its priority class, then its age. A wave takes
the orders that match its criteria (carrier services, promised by a date, priorities, zone) in that rank, up to
its capacity: "release the next N" is a wave whose capacity is N.

**Batches (cluster picking).** A cart carries ``totes`` totes, each with a maximum volume and weight. An order's
lines are picked zone by zone: an order whose places lie in several zones is split into one pick list per zone,
each into its own tote, and the totes meet again at packing (``tote_contents`` names the order in each). Orders
of a single unit go together: several share one tote (the packer takes them out one by one). Other orders get
their own tote(s). Orders are grouped so that a cart's orders share aisles: ranked by their first aisle and depth,
each cart starts from the first order left and takes, among the next ``window`` orders, the one whose aisles add
the least to the cart's, until its totes are full.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

PRIORITY_RANK: Mapping[str, int] = {"express": 0, "vip": 1, "marketplace": 2, "standard": 3}
FAR_FUTURE = datetime.max.replace(tzinfo=None)


@dataclass(frozen=True)
class PickLine:
    """Units of one order line to take at one place (an allocation of its reservation)."""

    line_id: int
    reservation_id: int
    sku_id: int
    location_id: int
    zone_id: int
    aisle: str
    y: float
    x: float
    lot: str
    quantity: int
    unit_volume_cm3: int = 0
    unit_weight_g: int = 0


@dataclass(frozen=True)
class FloorOrder:
    """An order waiting on the floor, as waves and batches see it."""

    order_id: int
    carrier_service: str = ""
    cutoff: datetime | None = None
    promised: date | None = None
    priority: str = "standard"
    created: datetime | None = None
    zone_ids: frozenset[int] = frozenset()
    lines: tuple[PickLine, ...] = ()

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True)
class WaveCriteria:
    carrier_services: frozenset[str] = frozenset()
    promised_by: date | None = None
    priorities: frozenset[str] = frozenset()
    zone_id: int | None = None
    capacity: int = 200


def urgency_key(order: FloorOrder) -> tuple[datetime, date, int, datetime, int]:
    naive = [value.replace(tzinfo=None) if value is not None else None for value in (order.cutoff, order.created)]
    return (
        naive[0] or FAR_FUTURE,
        order.promised or date.max,
        PRIORITY_RANK.get(order.priority, len(PRIORITY_RANK)),
        naive[1] or FAR_FUTURE,
        order.order_id,
    )


def wave_rank(orders: Iterable[FloorOrder], criteria: WaveCriteria) -> list[FloorOrder]:
    """The orders matching the criteria known before their places are (carrier services, promised date,
    priorities), most urgent first, without the capacity cap."""
    ranked = [
        order
        for order in orders
        if (not criteria.carrier_services or order.carrier_service in criteria.carrier_services)
        and (criteria.promised_by is None or (order.promised is not None and order.promised <= criteria.promised_by))
        and (not criteria.priorities or order.priority in criteria.priorities)
    ]
    ranked.sort(key=urgency_key)
    return ranked


def wave_select(orders: Iterable[FloorOrder], criteria: WaveCriteria) -> list[FloorOrder]:
    """The orders a wave takes: those with something to pick matching every criterion (the zone too), most urgent
    first, at most ``capacity``."""
    if criteria.capacity < 1:
        raise ValueError("a wave's capacity is at least one order")
    chosen = [
        order
        for order in wave_rank(orders, criteria)
        if order.lines and (criteria.zone_id is None or criteria.zone_id in order.zone_ids)
    ]
    return chosen[: criteria.capacity]


@dataclass(frozen=True)
class Cart:
    totes: int = 8
    tote_volume_cm3: int = 40_000
    tote_weight_g: int = 15_000
    window: int = 40


@dataclass
class ToteLoad:
    """What one tote of a batch receives: several single-unit orders, or (part of) one order."""

    order_ids: list[int] = field(default_factory=list)
    lines: list[PickLine] = field(default_factory=list)
    volume_cm3: int = 0
    weight_g: int = 0


@dataclass
class PlannedBatch:
    zone_id: int
    single_units: bool
    totes: list[ToteLoad] = field(default_factory=list)

    @property
    def order_ids(self) -> list[int]:
        return list(dict.fromkeys(order_id for tote in self.totes for order_id in tote.order_ids))

    @property
    def lines(self) -> list[PickLine]:
        return [line for tote in self.totes for line in tote.lines]


@dataclass(frozen=True)
class _ZonePart:
    order_id: int
    zone_id: int
    lines: tuple[PickLine, ...]

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def aisles(self) -> frozenset[str]:
        return frozenset(line.aisle for line in self.lines)

    @property
    def volume(self) -> int:
        return sum(line.unit_volume_cm3 * line.quantity for line in self.lines)

    @property
    def weight(self) -> int:
        return sum(line.unit_weight_g * line.quantity for line in self.lines)


def _tote_split(part: _ZonePart, cart: Cart) -> list[ToteLoad]:
    """First fit of one order's units into as few totes as its volume and weight need (a unit never splits)."""
    totes: list[ToteLoad] = [ToteLoad(order_ids=[part.order_id])]
    for line in sorted(part.lines, key=lambda pl: (pl.aisle, pl.y, pl.line_id)):
        left = line.quantity
        while left:
            tote = totes[-1]
            fits = left
            if line.unit_volume_cm3:
                fits = min(fits, max(0, (cart.tote_volume_cm3 - tote.volume_cm3) // line.unit_volume_cm3))
            if line.unit_weight_g:
                fits = min(fits, max(0, (cart.tote_weight_g - tote.weight_g) // line.unit_weight_g))
            if fits == 0 and tote.lines:
                totes.append(ToteLoad(order_ids=[part.order_id]))
                continue
            fits = max(fits, 1)  # a unit larger than a tote still travels (alone)
            taken = PickLine(**{**line.__dict__, "quantity": fits})
            tote.lines.append(taken)
            tote.volume_cm3 += fits * line.unit_volume_cm3
            tote.weight_g += fits * line.unit_weight_g
            left -= fits
    return totes


def batch_plan(orders: Sequence[FloorOrder], cart: Cart) -> list[PlannedBatch]:
    """Group a wave's orders into carts (see the module doc). Every pick line lands in exactly one tote."""
    if cart.totes < 1:
        raise ValueError("a cart carries at least one tote")
    parts_by_zone: dict[int, list[_ZonePart]] = {}
    for order in orders:
        by_zone: dict[int, list[PickLine]] = {}
        for line in order.lines:
            by_zone.setdefault(line.zone_id, []).append(line)
        for zone_id, lines in sorted(by_zone.items()):
            parts_by_zone.setdefault(zone_id, []).append(_ZonePart(order.order_id, zone_id, tuple(lines)))
    batches: list[PlannedBatch] = []
    for zone_id, parts in sorted(parts_by_zone.items()):
        singles = [part for part in parts if part.units == 1]
        others = [part for part in parts if part.units > 1]
        batches.extend(_single_unit_batches(zone_id, singles, cart))
        batches.extend(_cluster_batches(zone_id, others, cart))
    return batches


def _position(part: _ZonePart) -> tuple[str, float]:
    first = min(part.lines, key=lambda line: (line.aisle, line.y))
    return (first.aisle, first.y)


def _single_unit_batches(zone_id: int, parts: Sequence[_ZonePart], cart: Cart) -> list[PlannedBatch]:
    batches: list[PlannedBatch] = []
    current = PlannedBatch(zone_id=zone_id, single_units=True)
    for part in sorted(parts, key=_position):
        line = part.lines[0]
        tote = current.totes[-1] if current.totes else None
        if (
            tote is None
            or (tote.volume_cm3 + line.unit_volume_cm3 > cart.tote_volume_cm3 and tote.lines)
            or (tote.weight_g + line.unit_weight_g > cart.tote_weight_g and tote.lines)
        ):
            if len(current.totes) == cart.totes:
                batches.append(current)
                current = PlannedBatch(zone_id=zone_id, single_units=True)
            tote = ToteLoad()
            current.totes.append(tote)
        tote.order_ids.append(part.order_id)
        tote.lines.append(line)
        tote.volume_cm3 += line.unit_volume_cm3
        tote.weight_g += line.unit_weight_g
    if current.totes:
        batches.append(current)
    return batches


def _cluster_batches(zone_id: int, parts: Sequence[_ZonePart], cart: Cart) -> list[PlannedBatch]:
    pending = sorted(parts, key=_position)
    batches: list[PlannedBatch] = []
    while pending:
        seed = pending.pop(0)
        batch = PlannedBatch(zone_id=zone_id, single_units=False, totes=_tote_split(seed, cart))
        aisles = set(seed.aisles)
        while len(batch.totes) < cart.totes and pending:
            window = pending[: cart.window]
            best = min(
                range(len(window)),
                key=lambda k: (len(window[k].aisles - aisles), -len(window[k].aisles & aisles), k),
            )
            candidate = _tote_split(window[best], cart)
            if len(batch.totes) + len(candidate) > cart.totes:
                break
            pending.pop(best)
            batch.totes.extend(candidate)
            aisles |= window[best].aisles
        batches.append(batch)
    return batches


# --- Release limits (throttle) ----------------------------------------------------------------------------------

#: A release limit counts what went to the floor in the last hour: a sliding window, not the clock's hour, so a
#: burst just before 10:00 does not let a second burst through at 10:00.
RELEASE_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class LimitFigures:
    """One release limit in force: at most so many orders and/or order lines per sliding hour since ``valid_from``."""

    orders_per_hour: int | None
    lines_per_hour: int | None
    valid_from: datetime
    source: str = ""


@dataclass(frozen=True)
class Release:
    """What one wave sent to the floor of one merchant's orders."""

    at: datetime
    orders: int
    lines: int


@dataclass
class ReleaseRoom:
    """What one merchant may still send to the floor now: the strictest figure of each kind over its limits.

    ``orders_left`` / ``lines_left`` are None when no limit names that kind. An order bigger than the whole hourly
    line figure would never fit: it goes alone when nothing was released in the window yet (``lines_fresh``)."""

    merchant_id: int
    orders_per_hour: int | None
    lines_per_hour: int | None
    orders_left: int | None
    lines_left: int | None
    lines_fresh: bool
    sources: tuple[str, ...]
    next_room_at: datetime | None
    held: int = 0

    def fits(self, *, lines: int) -> bool:
        if self.orders_left is not None and self.orders_left < 1:
            return False
        if self.lines_left is None:
            return True
        return lines <= self.lines_left or self.lines_fresh

    def take(self, *, lines: int) -> None:
        if self.orders_left is not None:
            self.orders_left -= 1
        if self.lines_left is not None:
            self.lines_left = max(0, self.lines_left - lines)
            self.lines_fresh = False


def release_room(
    merchant_id: int, limits: Sequence[LimitFigures], releases: Sequence[Release], *, now: datetime
) -> ReleaseRoom:
    """The room left under ``limits`` (all in force at ``now``) given the merchant's ``releases``: each limit counts
    the releases of the last hour made since its own start; the smallest room of each kind applies."""
    if not limits:
        raise ValueError("a release room needs at least one limit")
    orders_left: int | None = None
    lines_left: int | None = None
    lines_fresh = True
    counted_at: list[datetime] = []
    for limit in limits:
        since = max(limit.valid_from, now - RELEASE_WINDOW)
        counted = [r for r in releases if since <= r.at <= now]
        counted_at.extend(r.at for r in counted)
        if limit.orders_per_hour is not None:
            left = max(0, limit.orders_per_hour - sum(r.orders for r in counted))
            orders_left = left if orders_left is None else min(orders_left, left)
        if limit.lines_per_hour is not None:
            used = sum(r.lines for r in counted)
            left = max(0, limit.lines_per_hour - used)
            lines_left = left if lines_left is None else min(lines_left, left)
            lines_fresh = lines_fresh and used == 0
    orders_figures = [limit.orders_per_hour for limit in limits if limit.orders_per_hour is not None]
    lines_figures = [limit.lines_per_hour for limit in limits if limit.lines_per_hour is not None]
    return ReleaseRoom(
        merchant_id=merchant_id,
        orders_per_hour=min(orders_figures) if orders_figures else None,
        lines_per_hour=min(lines_figures) if lines_figures else None,
        orders_left=orders_left,
        lines_left=lines_left,
        lines_fresh=lines_fresh,
        sources=tuple(sorted({limit.source for limit in limits})),
        next_room_at=min(counted_at) + RELEASE_WINDOW if counted_at else None,
    )
