"""Every write of the picking floor: waves, batches and their routes, totes, scans, shortages.

A wave picks released orders (``domain.wave_select``), pins their reservations to places (``reservation_allocate``'s
many form, ``AllocationRun``: a wave's queries grow with its chunks of orders, not its orders), groups them into
carts (``domain.batch_plan``) and orders each cart's stops along its route (``routing.plan_route``). A batch is
picked one task at a time by one operator: scan the location, the item,
then the tote (with the quantity); each accepted pick moves the units, still reserved, from the shelf into the
tote's location (``reservation_pick_to``). Every scan, accepted or refused, is a ``PickScan`` row written even when
the step is refused (in its own transaction, after the refused one rolled back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from quai.catalog.selectors import scan_resolve_among
from quai.core import clock
from quai.core.errors import Conflict, Forbidden, InsufficientStock, NotFound, QuaiError, ValidationFailed
from quai.core.outbox import event_record, events_record_many
from quai.core.rows import Among, model_rows_insert, rows_update
from quai.core.states import StateMachine, Step, transition, transitions_many
from quai.fulfillment import domain, routing, statements
from quai.fulfillment.events import BatchStatusChanged, PickConfirmed, PickShort, ToteCompleted, WaveReleased
from quai.fulfillment.models import (
    BatchStatus,
    PickBatch,
    PickScan,
    PickShortage,
    PickTask,
    ReleaseLimit,
    ScanKind,
    ShortageStatus,
    TaskStatus,
    Tote,
    Wave,
)
from quai.fulfillment.selectors import in_a_batch, release_rooms
from quai.inventory.models import ReservationAllocation, StockQuantity
from quai.inventory.selectors import is_supervisor
from quai.inventory.services import ALLOCATABLE_ZONE_KINDS, reservation_move, reservation_pick_to
from quai.inventory.services.allocations import AllocationRun
from quai.inventory.services.totes import PickToLine, reservation_pick_to_many
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services.floor_picking import (
    PickingStart,
    order_line_short_backorder,
    order_picking_check,
    orders_picking_start_each,
    orders_picking_start_many,
)
from quai.promise.selectors import ship_by_for_orders
from quai.tenants.models import Merchant
from quai.tenants.scope import Scope
from quai.warehouse.models import Location, Site, Zone, ZoneKind
from quai.warehouse.selectors import zone_active_q
from quai.warehouse.services import NewLocation, location_create, locations_create_many, zone_create

TOTE_ZONE_CODE = "TOTES"

BATCH_MACHINE = StateMachine.from_table(
    "pick_batch",
    {
        BatchStatus.OPEN: (BatchStatus.PICKING, BatchStatus.CANCELLED),
        BatchStatus.PICKING: (BatchStatus.PAUSED, BatchStatus.DONE, BatchStatus.CANCELLED),
        BatchStatus.PAUSED: (BatchStatus.PICKING, BatchStatus.CANCELLED),
        BatchStatus.DONE: (),
        BatchStatus.CANCELLED: (),
    },
    names={
        (BatchStatus.OPEN, BatchStatus.PICKING): "start",
        (BatchStatus.PICKING, BatchStatus.PAUSED): "pause",
        (BatchStatus.PAUSED, BatchStatus.PICKING): "resume",
        (BatchStatus.PICKING, BatchStatus.DONE): "finish",
    },
)


def batch_transition(
    *, batch: PickBatch, to_status: str, actor: Any = None, values: Mapping[str, Any] | None = None
) -> PickBatch:
    """The one writer of a batch's status: guarded update, audit row ("pick_batch") and its event."""
    transition(
        batch,
        machine=BATCH_MACHINE,
        to_status=to_status,
        actor=actor,
        values=values,
        merchant_id=None,
        event=_batch_status_changed(batch),
    )
    return batch


def _batch_status_changed(batch: PickBatch) -> Any:
    return lambda step: BatchStatusChanged(
        batch_id=batch.pk, from_status=step.from_status, to_status=step.to_status, operator_id=batch.operator_id
    )


def _locked_batch_transition(
    *, batch: PickBatch, to_status: str, actor: Any = None, values: Mapping[str, Any] | None = None
) -> PickBatch:
    """``batch_transition`` for a batch this transaction has locked and read (``_batch_locked``): the same row,
    audit row and event, without locking and reading it a second time (a batch's start and finish are per batch
    on the picking floor's hot path)."""
    (outcome,) = transitions_many(
        [Step(obj=batch, to_status=to_status, event=_batch_status_changed(batch), actor=actor, values=values)],
        machine=BATCH_MACHINE,
        locked=True,
    )
    if outcome.error is not None:
        raise outcome.error
    return batch


# --- Layout and routes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneLayout:
    """A zone's walking layout: its aisles (centre lines), the depot, and each location's place on it."""

    layout: routing.Layout
    places: Mapping[int, routing.Place]


def zone_layout(*, zone_id: int) -> ZoneLayout:
    """Aisles from the zone's rack locations (centre line between the two faces; ends one metre past the first and
    last slots, where the cross-aisles run); the depot on the front cross-aisle in front of the site's pack
    stations (or of the first aisle when the site has none). Locations without an aisle are loose places."""
    zone = Zone.objects.get(pk=zone_id)
    rows = Location.objects.filter(zone_id=zone_id).values_list("pk", "aisle", "x_m", "y_m")
    packing = list(
        Location.objects.filter(site_id=zone.site_id, zone__kind=ZoneKind.PACKING).values_list("x_m", flat=True)
    )
    layout, places = routing.layout_of_locations(
        [(pk, aisle, float(x), float(y)) for pk, aisle, x, y in rows],
        depot_x=sum(float(x) for x in packing) / len(packing) if packing else None,
    )
    return ZoneLayout(layout=layout, places=places)


def zone_layouts(*, zone_ids: Sequence[int]) -> dict[int, ZoneLayout]:
    """``zone_layout`` for several zones (a wave's batches), in three reads whatever their number (it was three per
    zone): the zones' sites, their locations, the sites' pack stations. Each layout is built from the same rows, in
    the same order, as ``zone_layout`` builds it. A zone not found is absent."""
    ids = list(dict.fromkeys(zone_ids))
    site_of = dict(Zone.objects.filter(pk__in=ids).values_list("pk", "site_id"))
    rows: dict[int, list[tuple[int, str, float, float]]] = {pk: [] for pk in site_of}
    for zone_id, pk, aisle, x, y in Location.objects.filter(zone_id__in=list(site_of)).values_list(
        "zone_id", "pk", "aisle", "x_m", "y_m"
    ):
        rows[zone_id].append((pk, aisle, float(x), float(y)))
    packing: dict[int, list[Any]] = {site_id: [] for site_id in site_of.values()}
    for site_id, x in Location.objects.filter(site_id__in=list(packing), zone__kind=ZoneKind.PACKING).values_list(
        "site_id", "x_m"
    ):
        packing[site_id].append(x)
    found: dict[int, ZoneLayout] = {}
    for zone_id in ids:
        if zone_id not in site_of:
            continue
        stations = packing[site_of[zone_id]]
        layout, places = routing.layout_of_locations(
            rows[zone_id], depot_x=sum(float(x) for x in stations) / len(stations) if stations else None
        )
        found[zone_id] = ZoneLayout(layout=layout, places=places)
    return found


def wave_layouts(*, site_id: int, lines: Sequence[domain.PickLine]) -> dict[int, ZoneLayout]:
    """``zone_layouts`` for a wave's zones at ``site_id`` (its lines': their zones are the site's), each with the
    places of those lines only, in two reads that return an aisle's worth of rows, not a location's: each aisle's
    ends and centre line as ``routing.layout_of_locations`` draws them from its locations (the smallest and
    largest x and y: the same figures, computed by the database), the site's pack stations. A line carries its
    place's aisle and coordinates (the allocation read them), so the places need no read."""
    zone_ids = sorted({line.zone_id for line in lines})
    if not zone_ids:
        return {}
    spans: dict[int, list[tuple[str, float, float, float, float]]] = {zone_id: [] for zone_id in zone_ids}
    loose_front: dict[int, float] = {}
    for zone_id, aisle, min_x, max_x, min_y, max_y in statements.aisle_spans(zone_ids):  # both written once
        if aisle:
            spans[zone_id].append((aisle, float(min_x), float(max_x), float(min_y), float(max_y)))
        else:
            loose_front[zone_id] = min(loose_front.get(zone_id, float(min_y)), float(min_y))
    stations = statements.station_xs(site_id)
    depot_x = sum(float(x) for x in stations) / len(stations) if stations else None
    found: dict[int, ZoneLayout] = {}
    for zone_id in zone_ids:
        named = sorted(spans[zone_id], key=lambda span: (span[1], span[0]))
        aisles = tuple(
            routing.AisleSpan(x=(min_x + max_x) / 2, y_low=min_y - 1.0, y_high=max_y + 1.0)
            for _name, min_x, max_x, min_y, max_y in named
        )
        index = {span[0]: k for k, span in enumerate(named)}
        if aisles:
            front = min(a.y_low for a in aisles)
        else:
            front = min((loose_front[zone_id],) if zone_id in loose_front else (), default=0.0)
        places = {
            line.location_id: routing.Place(x=aisles[index[line.aisle]].x, y=line.y, aisle=index[line.aisle])
            if line.aisle
            else routing.Place(x=line.x, y=line.y)
            for line in lines
            if line.zone_id == zone_id
        }
        chosen_x = depot_x if depot_x is not None else (aisles[0].x if aisles else 0.0)
        found[zone_id] = ZoneLayout(layout=routing.Layout(aisles=aisles, depot=(chosen_x, front)), places=places)
    return found


def _route_of(zone_layout_: ZoneLayout, location_ids: Sequence[int]) -> tuple[routing.RoutePlan, list[int]]:
    """The route through these locations (each once) and the locations in visiting order (planned once per layout
    and places: ``routing.plan_route_kept``)."""
    unique = list(dict.fromkeys(location_ids))
    plan = routing.plan_route_kept(zone_layout_.layout, [zone_layout_.places[pk] for pk in unique])
    return plan, [unique[i] for i in plan.order]


# --- Totes ----------------------------------------------------------------------------------------------------


def _tote_zone(site: Site) -> Zone:
    zone = Zone.objects.filter(site=site, code=TOTE_ZONE_CODE).first()
    if zone is None:
        zone = zone_create(site=site, code=TOTE_ZONE_CODE, name=str(_("Totes on carts")), kind=ZoneKind.PROCESSING)
    return zone


def tote_ensure(*, site: Site, code: str) -> Tote:
    """The tote with this code at ``site``, created with its location (in the site's tote zone) if new."""
    cleaned = code.strip().upper()
    tote = Tote.objects.filter(site=site, code=cleaned).first()
    if tote is not None:
        return tote
    location = Location.objects.filter(site=site, code=cleaned).first() or location_create(
        site=site, zone=_tote_zone(site), code=cleaned
    )
    return Tote.objects.create(site=site, code=cleaned, location=location)


def _free_totes(site: Site, count: int) -> list[Tote]:
    """``count`` free totes of ``site``: the free ones first (by code), then new ones numbered after the site's
    tote count (a code some tote already has is skipped), each with its location (an existing location of that
    code, or one created in the tote zone). The new ones are written in a few queries whatever their number, the
    same rows as ``tote_ensure`` one code after another."""
    totes = list(Tote.objects.select_for_update().filter(site=site, batch__isnull=True).order_by("code")[:count])
    if len(totes) >= count:
        return totes
    number = Tote.objects.filter(site=site).count()
    codes: list[str] = []
    while len(totes) + len(codes) < count:
        window = [f"TOTE-{n:04d}" for n in range(number + 1, number + 1 + count - len(totes) - len(codes))]
        number += len(window)
        taken = set(Tote.objects.filter(site=site, code__in=window).values_list("code", flat=True))
        codes.extend(code for code in window if code not in taken)
    return totes + _totes_create(site, codes)


def _totes_create(site: Site, codes: Sequence[str]) -> list[Tote]:
    """New totes with these (cleaned, unused) codes, in order, each on the location of its code (created in the
    site's tote zone when there is none)."""
    places = {loc.code: loc for loc in Location.objects.filter(site=site, code__in=list(codes))}
    missing = [code for code in codes if code not in places]
    if missing:
        zone = _tote_zone(site)
        for created in locations_create_many(site=site, zone=zone, locations=[NewLocation(code=c) for c in missing]):
            places[created.code] = created
    return Tote.objects.bulk_create([Tote(site=site, code=code, location=places[code]) for code in codes])


@transaction.atomic
def tote_release(*, site: Site, tote_code: str) -> Tote:
    """Give an emptied tote back to the pool (the packer, once its units are in parcels). A tote that still holds
    stock is refused (``tote_not_empty``): its units must go somewhere first."""
    tote = Tote.objects.select_for_update().filter(site=site, code=tote_code.strip().upper()).first()
    if tote is None:
        raise NotFound(_("Tote not found."), code="tote_not_found", details={"tote_code": tote_code})
    holding = StockQuantity.objects.filter(location_id=tote.location_id, on_hand__gt=0).exists()
    if holding:
        raise Conflict(
            _("Tote %(code)s still holds units: empty it before giving it back.") % {"code": tote.code},
            code="tote_not_empty",
            details={"tote_code": tote.code},
        )
    tote.batch = None
    tote.slot = 0
    tote.save(update_fields=["batch", "slot"])
    return tote


def totes_release_many(*, releases: Sequence[tuple[Site, str]]) -> list[QuaiError | None]:
    """``tote_release`` for each (site, tote code) in turn (the totes a round of parcels emptied), in three
    statements for all: the totes locked and read at once, whether their locations hold units read at once, the
    ones given back written by one update. Each answer: None (given back), or the refusal one by one raises
    (``tote_not_found``, ``tote_not_empty``), with nothing written for it."""
    if not releases:
        return []
    wanted = [(site.pk, code.strip().upper()) for site, code in releases]
    with transaction.atomic():
        found = {
            (tote.site_id, tote.code): tote
            for tote in Tote.objects.select_for_update()
            .filter(
                Among(F("site_id"), {site_id for site_id, _code in wanted}),
                Among(F("code"), {code for _site, code in wanted}, texts=True),
            )
            .order_by("pk")
        }
        holding = set(
            StockQuantity.objects.filter(
                Among(F("location_id"), [t.location_id for t in found.values()]), on_hand__gt=0
            )
            .order_by()
            .values_list("location_id", flat=True)
            .distinct()
        )
        answers: list[QuaiError | None] = []
        freed: dict[int, Tote] = {}
        for (_site, code), key in zip(releases, wanted, strict=True):
            tote = found.get(key)
            if tote is None:
                answers.append(NotFound(_("Tote not found."), code="tote_not_found", details={"tote_code": code}))
            elif tote.location_id in holding:
                answers.append(
                    Conflict(
                        _("Tote %(code)s still holds units: empty it before giving it back.") % {"code": tote.code},
                        code="tote_not_empty",
                        details={"tote_code": tote.code},
                    )
                )
            else:
                tote.batch, tote.slot = None, 0
                freed[tote.pk] = tote
                answers.append(None)
        if freed:
            Tote.objects.filter(Among(F("pk"), freed)).update(batch=None, slot=0)
    return answers


# --- Waves ----------------------------------------------------------------------------------------------------


def _cutoffs() -> Mapping[str, time]:
    """Carrier service → the local time its truck leaves (``QUAI_FULFILMENT_CUTOFFS``, "HH:MM"); others last."""
    raw = getattr(settings, "QUAI_FULFILMENT_CUTOFFS", {}) or {}
    return {service: time.fromisoformat(value) for service, value in raw.items()}


#: What a wave reads of each waiting order: its rank (``_floor_order``), its merchant's release room, its reference
#: for a refusal. Every waiting order is read to rank them, so the rest of the row is left in the table.
_WAVE_FIELDS = (
    "id",
    "merchant_id",
    "external_id",
    "carrier_service",
    "promised_from",
    "promised_to",
    "priority",
    "created_at",
)


class _Waiting(NamedTuple):
    """A waiting order as a wave reads it (``_WAVE_FIELDS``, ``pk`` first): a tuple, not a model instance — every
    waiting order is read at every wave, hundreds at a sale's peak."""

    pk: int
    merchant_id: int
    external_id: str
    carrier_service: str
    promised_from: Any
    promised_to: Any
    priority: str
    created_at: datetime


def _waiting_orders(*, site: Site | None = None, limit: int | None = None) -> list[_Waiting]:
    """Released orders not yet in a batch (a cancelled task does not count: its order waits again), with the fields
    a wave reads of them; with ``site``, only those a wave there can take (``_site_merchants``)."""
    qs = Order.objects.filter(status=OrderStatus.RELEASED)
    if site is not None:
        merchants = _site_merchants(site)
        if not merchants:
            return []
        qs = qs.filter(merchant_id__in=merchants)
    rows = qs.exclude(in_a_batch()).order_by("created_at", "pk").values_list(*_WAVE_FIELDS)
    return [_Waiting(*row) for row in (rows[:limit] if limit else rows)]


def _site_merchants(site: Site) -> list[int]:
    """The merchants with units on hand at the pickable places of ``site`` (one small read). Orders carry no site:
    a wave pins every unit of an order to this site's pickable places or leaves the order out, so an order of a
    merchant with nothing there can never be taken — reading, ranking and trying it (as every wave of every site
    did) only cost time and listed it as skipped at each site it is not stocked at. An order pinned before keeps
    its units on hand where they were pinned, so it still counts for its merchant."""
    return sorted(
        set(
            StockQuantity.objects.filter(
                location__site_id=site.pk, location__zone__kind__in=ALLOCATABLE_ZONE_KINDS, on_hand__gt=0
            )
            .order_by()  # the model's ordering would make the DISTINCT one of (merchant, place, SKU, lot): 200 rows
            .values_list("merchant_id", flat=True)
            .distinct()
        )
    )


def _floor_order(
    order: Order | _Waiting,
    lines: Sequence[domain.PickLine],
    cutoffs: Mapping[str, time],
    today: Any,
    ship_by: datetime | None = None,
) -> domain.FloorOrder:
    """``ship_by``: the cut-off of the order's promised ship date (quai.promise), which outranks the service's
    daily cut-off: an order promised for tomorrow does not go before one promised for today."""
    cut = cutoffs.get(order.carrier_service)
    return domain.FloorOrder(
        order_id=order.pk,
        carrier_service=order.carrier_service,
        cutoff=timezone.localtime(ship_by) if ship_by else (datetime.combine(today, cut) if cut else None),
        promised=order.promised_from or order.promised_to,
        priority=order.priority,
        created=order.created_at,
        zone_ids=frozenset(line.zone_id for line in lines),
        lines=tuple(lines),
    )


def _allocated_lines(
    order: Order | _Waiting, lines: Sequence[OrderLine | _OpenLine], *, site: Site, run: AllocationRun
) -> list[domain.PickLine]:
    """Pin every open reservation of the order's lines to places (FEFO/FIFO, in ``run``: call it inside
    ``run.group()``, which undoes them all if one fails) and return the picks they make. Raises
    ``InsufficientStock`` when a line's units are not all at pickable places of ``site``."""
    picks: list[domain.PickLine] = []
    for line in lines:
        assert line.reservation_id is not None
        placements = run.allocate(line.reservation_id)
        sku = line.sku
        for placement in placements:
            if placement.site_id != site.pk or placement.zone_kind not in ALLOCATABLE_ZONE_KINDS:
                raise InsufficientStock(
                    _("Some units of order %(order)s are not on the shelves of this site.")
                    % {"order": order.external_id}
                )
            picks.append(
                domain.PickLine(
                    line_id=line.pk,
                    reservation_id=line.reservation_id,
                    sku_id=line.sku_id,
                    location_id=placement.location_id,
                    zone_id=placement.zone_id,
                    aisle=placement.aisle,
                    x=placement.x_m,
                    y=placement.y_m,
                    lot=placement.lot,
                    quantity=placement.quantity,
                    unit_volume_cm3=_unit_volume(sku),
                    unit_weight_g=int(getattr(sku, "weight_g", 0) or 0),
                )
            )
    return picks


class _Dims(NamedTuple):
    """What a wave reads of a line's SKU: its size and weight (a tote's load)."""

    length_mm: Any
    width_mm: Any
    height_mm: Any
    weight_g: Any


@dataclass(frozen=True, slots=True)
class _OpenLine:
    """An order line still to pin, as a wave reads it (a tuple's worth, not two model instances)."""

    pk: int
    order_id: int
    reservation_id: int | None
    sku_id: int
    sku: _Dims


def _open_lines(order_ids: Sequence[int], run: AllocationRun) -> dict[int, list[_OpenLine]]:
    """The lines still to pin of these orders (with their SKUs' size and weight), by order, in one read; their
    reservations are locked and read into ``run`` at once."""
    found: dict[int, list[_OpenLine]] = {order_id: [] for order_id in order_ids}
    # In the model's order (order, position), as the lines were read before; the statement written once.
    for row in statements.open_lines(order_ids):
        found[row[1]].append(_OpenLine(row[0], row[1], row[2], row[3], _Dims(*row[4:])))
    run.load(line.reservation_id for group in found.values() for line in group if line.reservation_id is not None)
    return found


def _held_report(rooms: Mapping[int, domain.ReleaseRoom]) -> list[dict[str, Any]]:
    report = []
    for room in sorted(rooms.values(), key=lambda r: r.merchant_id):
        if not room.held:
            continue
        figures = []
        if room.orders_per_hour is not None:
            figures.append(_("%(count)d orders per hour") % {"count": room.orders_per_hour})
        if room.lines_per_hour is not None:
            figures.append(_("%(count)d order lines per hour") % {"count": room.lines_per_hour})
        report.append(
            {
                "merchant_id": room.merchant_id,
                "orders": room.held,
                "code": "release_limit_reached",
                "message": _("%(count)d order(s) held back: the release limit (%(limit)s) is reached for this hour.")
                % {"count": room.held, "limit": ", ".join(str(f) for f in figures)},
                "orders_per_hour": room.orders_per_hour,
                "lines_per_hour": room.lines_per_hour,
                "sources": list(room.sources),
                "next_room_at": room.next_room_at.isoformat() if room.next_room_at else None,
            }
        )
    return report


def _unit_volume(sku: Any) -> int:
    length, width, height = (getattr(sku, name, None) for name in ("length_mm", "width_mm", "height_mm"))
    if not (length and width and height):
        return 0
    return int(length * width * height / 1000)


def wave_release(
    *,
    site: Site,
    criteria: domain.WaveCriteria,
    cart: domain.Cart | None = None,
    actor: Any = None,
    scheduled: bool = False,
) -> Wave:
    """Send the most urgent waiting orders matching ``criteria`` to the floor, at most ``criteria.capacity``.

    Each chosen order's reservations are pinned to places first (each order in its own savepoint: an order whose
    units are not all on this site's shelves is left out, with the reason, and waits). The kept orders are grouped
    into batches whose tasks follow each batch's route. Orders stay ``released`` until their batch starts.

    Release limits (``ReleaseLimit``, e.g. an event sale's throttle) apply to every release, the supervisor's and
    the schedule's: an order whose merchant has no room left in the sliding hour waits, and ``wave.held`` says how
    many were held back per merchant, under which limit, and when room comes back.
    """
    cart = cart or domain.Cart()
    cutoffs = _cutoffs()
    today = clock.today()
    with transaction.atomic():
        Site.objects.select_for_update().filter(pk=site.pk).first()  # one wave at a time per site
        waiting = _waiting_orders(site=site)
        by_id = {order.pk: order for order in waiting}
        ship_by = ship_by_for_orders(scope=Scope.system("wave release"), order_ids=by_id)
        ranked = [
            floor.order_id
            for floor in domain.wave_rank(
                [_floor_order(order, [], cutoffs, today, ship_by.get(order.pk)) for order in waiting], criteria
            )
        ]
        rooms = release_rooms(scope=Scope.system("wave release"), site_id=site.pk, at=clock.now())
        chosen: list[domain.FloorOrder] = []
        skipped: list[dict[str, Any]] = []
        # The orders are taken in rank order, each all or nothing, as before; what they need is read a chunk of
        # orders at a time (the chunk: as many as the wave still has room for), and the allocations kept are
        # written once, after the last: the queries grow with the chunks, not with the orders.
        run = AllocationRun()
        lines_of: dict[int, list[_OpenLine]] = {}
        for position, order_id in enumerate(ranked):
            if len(chosen) >= criteria.capacity:
                break
            order = by_id[order_id]
            room = rooms.get(order.merchant_id)
            if room is not None and not room.fits(lines=1):
                room.held += 1  # its merchant's limit is reached: the order waits, nothing pinned
                continue
            if order_id not in lines_of:
                lines_of.update(
                    _open_lines(_next_chunk(ranked, position, by_id, rooms, criteria.capacity - len(chosen)), run)
                )
            try:
                with run.group():
                    lines = _allocated_lines(order, lines_of[order_id], site=site, run=run)
            except QuaiError as error:
                skipped.append({"order_id": order.pk, "code": error.code, "message": str(error.message)})
                continue
            floor = _floor_order(order, lines, cutoffs, today, ship_by.get(order.pk))
            if not lines or (criteria.zone_id is not None and criteria.zone_id not in floor.zone_ids):
                continue
            if room is not None:
                line_count = len({line.line_id for line in lines})
                if not room.fits(lines=line_count):
                    room.held += 1
                    continue
                room.take(lines=line_count)
            chosen.append(floor)
        # The allocations' events are recorded with the wave's own, in one insert (theirs first, as before).
        events: list[tuple[Any, int | None]] = []
        run.write(events=events)
        held = _held_report(rooms)
        wave = Wave.objects.create(
            site=site,
            criteria={
                "carrier_services": sorted(criteria.carrier_services),
                "promised_by": criteria.promised_by.isoformat() if criteria.promised_by else None,
                "priorities": sorted(criteria.priorities),
                "zone_id": criteria.zone_id,
                "totes": cart.totes,
            },
            capacity=criteria.capacity,
            order_count=len(chosen),
            skipped=skipped,
            held=held,
            scheduled=scheduled,
            created_by=actor if getattr(actor, "pk", None) else None,
        )
        plans = domain.batch_plan(chosen, cart)
        layouts = wave_layouts(site_id=site.pk, lines=[line for planned in plans for line in planned.lines])
        totes = iter(_free_totes(site, sum(len(planned.totes) for planned in plans)))
        batch_ids = [batch.pk for batch in _batches_create(wave, plans, by_id, layouts, totes)]
        events.append(
            (
                WaveReleased(
                    wave_id=wave.pk, site_id=site.pk, order_count=len(chosen), batch_ids=batch_ids, skipped=skipped
                ),
                None,
            )
        )
        events_record_many(events)
    return wave


def _next_chunk(
    ranked: Sequence[int], start: int, orders: Mapping[int, Order | _Waiting], rooms: Mapping[int, Any], size: int
) -> list[int]:
    """The next ``size`` ranked orders from ``start`` that their merchant's release room still lets through (it
    only shrinks during a wave: one it stops now stays stopped)."""
    chunk: list[int] = []
    for order_id in ranked[start:]:
        if len(chunk) >= size:
            break
        room = rooms.get(orders[order_id].merchant_id)
        if room is None or room.fits(lines=1):
            chunk.append(order_id)
    return chunk


def _batches_create(
    wave: Wave,
    plans: Sequence[domain.PlannedBatch],
    orders: Mapping[int, Order | _Waiting],
    layouts: Mapping[int, ZoneLayout],
    free: Iterator[Tote],
) -> list[PickBatch]:
    """``_batch_create`` for every batch of a wave, in three statements whatever their number (the batches, the
    totes, the tasks): the same rows, in the same order, as one batch after another."""
    made = [_batch_planned(wave, planned, orders, layouts[planned.zone_id], free) for planned in plans]
    batches = [batch for batch, _totes, _tasks in made]
    model_rows_insert(batches)
    for batch, totes, tasks in made:  # the batch has its id now: its totes and tasks take it
        for tote in totes:
            tote.batch = batch
        for task in tasks:
            task.batch = batch
    rows_update([tote for _batch, totes, _tasks in made for tote in totes], ["batch", "slot"])
    # The batches and the tasks through ``quai.core.rows`` (one statement compiled once, values prepared as the
    # ORM prepares them): ``bulk_create`` compiled it again and prepared every value through its compiler.
    model_rows_insert([task for _batch, _totes, tasks in made for task in tasks])
    return batches


def _batch_create(
    wave: Wave,
    planned: domain.PlannedBatch,
    orders: Mapping[int, Order | _Waiting],
    layout: ZoneLayout,
    free: Iterator[Tote],
) -> PickBatch:
    """The batch, its totes (the next of the wave's ``free`` ones, in order) and its tasks along its route."""
    batch, totes, tasks = _batch_planned(wave, planned, orders, layout, free)
    batch.save(force_insert=True)
    for tote in totes:
        tote.batch = batch
    for task in tasks:
        task.batch = batch
    rows_update(totes, ["batch", "slot"])
    PickTask.objects.bulk_create(tasks)
    return batch


def _batch_planned(
    wave: Wave,
    planned: domain.PlannedBatch,
    orders: Mapping[int, Order | _Waiting],
    layout: ZoneLayout,
    free: Iterator[Tote],
) -> tuple[PickBatch, list[Tote], list[PickTask]]:
    """The batch (unsaved), its totes (the next of the wave's ``free`` ones, in order, their slots set) and its
    tasks along its route (unsaved)."""
    plan, ordered = _route_of(layout, [line.location_id for line in planned.lines])
    per_order: dict[int, list[int]] = {}
    for load in planned.totes:
        for k, line in enumerate(load.lines):
            per_order.setdefault(_order_of_line(load, k), []).append(line.location_id)
    order_by_order = sum(_route_of(layout, ids)[0].length for ids in per_order.values())
    batch = PickBatch(
        wave=wave,
        site=wave.site,
        zone_id=planned.zone_id,
        single_units=planned.single_units,
        routing=plan.routing,
        route_m=round(plan.length, 2),
        s_shape_m=round(plan.s_shape, 2) if plan.s_shape is not None else None,
        largest_gap_m=round(plan.largest_gap, 2) if plan.largest_gap is not None else None,
        order_by_order_m=round(order_by_order, 2),
        route=[[round(x, 2), round(y, 2)] for x, y in plan.path],
    )
    totes = [next(free) for _load in planned.totes]
    rank = {location_id: k for k, location_id in enumerate(ordered)}
    tasks: list[PickTask] = []
    for slot, (tote, load) in enumerate(zip(totes, planned.totes, strict=True), start=1):
        tote.batch, tote.slot = batch, slot
        for k, line in enumerate(load.lines):
            order = orders[_order_of_line(load, k)]
            tasks.append(
                PickTask(
                    batch=batch,
                    sequence=0,
                    merchant_id=order.merchant_id,
                    order_id=order.pk,
                    line_id=line.line_id,
                    reservation_id=line.reservation_id,
                    sku_id=line.sku_id,
                    location_id=line.location_id,
                    lot=line.lot,
                    tote=tote,
                    quantity=line.quantity,
                )
            )
    tasks.sort(key=lambda task: (rank[task.location_id], task.tote.slot, task.line_id))
    for sequence, task in enumerate(tasks, start=1):
        task.sequence = sequence
    return batch, totes, tasks


def _order_of_line(load: domain.ToteLoad, k: int) -> int:
    """The order of a tote's ``k``-th line: a tote of single-unit orders lists one order per line, in step."""
    return load.order_ids[0] if len(load.order_ids) == 1 else load.order_ids[k]


# --- Picking --------------------------------------------------------------------------------------------------


def _batch_locked(batch_id: int) -> PickBatch:
    batch = PickBatch.objects.select_for_update().filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(_("Pick batch not found."), code="pick_batch_not_found", details={"batch_id": batch_id})
    return batch


def _operator_check(batch: PickBatch, operator: Any) -> None:
    if batch.operator_id is not None and batch.operator_id != getattr(operator, "pk", None):
        raise Conflict(
            _("Batch %(batch)s is being picked by someone else.") % {"batch": batch},
            code="pick_batch_taken",
            details={"batch_id": batch.pk},
        )


@transaction.atomic
def batch_start(*, batch_id: int, operator: Any) -> PickBatch:
    """Take a batch: one at a time per operator (``operator_busy``). Its orders move released → picking; a held or
    cancelled one has its tasks cancelled (the screen says so) and the rest goes on."""
    batch = _batch_locked(batch_id)
    busy = (
        PickBatch.objects.filter(operator_id=operator.pk, status__in=[BatchStatus.PICKING, BatchStatus.PAUSED])
        .exclude(pk=batch.pk)
        .first()
    )
    if busy is not None:
        raise Conflict(
            _("You are already picking batch %(batch)s: finish or pause it… one batch at a time.") % {"batch": busy},
            code="operator_busy",
            details={"batch_id": busy.pk},
        )
    _operator_check(batch, operator)
    _locked_batch_transition(
        batch=batch,
        to_status=BatchStatus.PICKING,
        actor=operator,
        values={"operator": operator, "started_at": clock.now()},
    )
    batch.operator = operator
    open_orders = sorted(set(batch.tasks.filter(status=TaskStatus.OPEN).values_list("order_id", flat=True)))
    cancelled = 0
    answers = orders_picking_start_many(
        order_ids=open_orders, actor=operator, reason=str(_("Batch %(batch)s started") % {"batch": batch})
    )
    for order_id in open_orders:
        refusal = answers[order_id]
        if refusal is not None:
            _order_tasks_cancel(batch, order_id, str(refusal.message))
            cancelled += 1
    _scan_record(batch, None, operator, ScanKind.ACTION, "start", accepted=True)
    if cancelled == len(open_orders):  # otherwise an order kept its open tasks: the batch goes on (no read)
        _batch_maybe_done(batch, operator)
    return batch


@transaction.atomic
def batch_pause(*, batch_id: int, operator: Any) -> PickBatch:
    batch = _batch_locked(batch_id)
    _operator_check(batch, operator)
    batch_transition(batch=batch, to_status=BatchStatus.PAUSED, actor=operator)
    _scan_record(batch, None, operator, ScanKind.ACTION, "pause", accepted=True)
    return batch


@transaction.atomic
def batch_resume(*, batch_id: int, operator: Any) -> PickBatch:
    batch = _batch_locked(batch_id)
    _operator_check(batch, operator)
    batch_transition(batch=batch, to_status=BatchStatus.PICKING, actor=operator)
    _scan_record(batch, None, operator, ScanKind.ACTION, "resume", accepted=True)
    return batch


def _order_tasks_cancel(batch: PickBatch, order_id: int, note: str) -> None:
    batch.tasks.filter(order_id=order_id, status=TaskStatus.OPEN).update(status=TaskStatus.CANCELLED, note=note[:255])


def current_task(batch: PickBatch) -> PickTask | None:
    """The next stop: the first open task in route order."""
    return (
        batch.tasks.filter(status=TaskStatus.OPEN)
        .select_related("location", "sku", "tote")
        .order_by("sequence", "pk")
        .first()
    )


def task_step(task: PickTask) -> str:
    """What the picker scans next at this stop: the location, the item, then the tote."""
    if not task.location_ok:
        return "location"
    if not task.item_ok:
        return "item"
    return "tote"


def _scan_record(
    batch: PickBatch,
    task: PickTask | None,
    operator: Any,
    kind: str,
    value: str,
    *,
    accepted: bool,
    quantity: int | None = None,
    error_code: str = "",
) -> None:
    PickScan.objects.create(
        batch=batch,
        task=task,
        operator=operator if getattr(operator, "pk", None) else None,
        kind=kind,
        value=value[:200],
        quantity=quantity,
        accepted=accepted,
        error_code=error_code,
        occurred_at=clock.now(),
    )


T = TypeVar("T")


def _recorded(batch_id: int, operator: Any, kind: str, value: str, quantity: int | None, step: Callable[[], T]) -> T:
    """Run a scan's step; if refused, record the refused scan in its own transaction, then re-raise."""
    try:
        return step()
    except QuaiError as refusal:
        with transaction.atomic():
            batch = PickBatch.objects.filter(pk=batch_id).first()
            if batch is not None:
                task = current_task(batch)
                # A typed quantity below zero is refused (``invalid_quantity``) and kept out of the record, whose
                # column holds none: its check failed the record and answered 500.
                kept = quantity if quantity is None or quantity >= 0 else None
                _scan_record(batch, task, operator, kind, value, accepted=False, quantity=kept, error_code=refusal.code)
                if refusal.code in ("order_on_hold", "order_cancelled"):
                    # The stopped order's tasks leave the route (its units already in a tote stay there, in the
                    # ledger, for the supervisor to put aside); the picker goes on with the other orders.
                    _order_tasks_cancel(batch, int(refusal.details["order_id"]), str(refusal.message))
                    _batch_maybe_done(batch, operator)
        raise


def pick_scan(*, batch_id: int, operator: Any, code: str, quantity: int | None = None) -> PickTask | None:
    """One scan on the pick screen, read according to the current stop's step (location → item → tote).

    Refusals (409/422, nothing moved, the scan recorded as refused): ``pick_batch_not_picking``, ``wrong_location``
    (with the expected code; a location of the batch scanned out of turn or a place outside the route),
    ``unknown_code``, ``wrong_item`` (another SKU — another order's item says so), ``wrong_lot``, ``wrong_tote``,
    ``order_on_hold`` / ``order_cancelled`` (that order's tasks are dropped from the batch; the picker goes on).
    Returns the task now current (None when the batch is done).
    """
    cleaned = code.strip()
    if not cleaned:
        raise ValidationFailed(_("Scan a code."), code="code_required", details={"field": "code"})
    kind_box: dict[str, str] = {"kind": ScanKind.LOCATION}

    def step() -> PickTask | None:
        with transaction.atomic():
            batch = _batch_locked(batch_id)
            _operator_check(batch, operator)
            if batch.status != BatchStatus.PICKING:
                raise Conflict(
                    _("Batch %(batch)s is %(status)s: resume it to pick.")
                    % {"batch": batch, "status": batch.get_status_display()},
                    code="pick_batch_not_picking",
                    details={"batch_id": batch.pk, "status": batch.status},
                )
            task = current_task(batch)
            if task is None:
                return None
            kind_box["kind"] = {"location": ScanKind.LOCATION, "item": ScanKind.ITEM, "tote": ScanKind.TOTE}[
                task_step(task)
            ]
            _order_check(batch, task)
            current = task_step(task)
            if current == "location":
                _scan_location(batch, task, cleaned)
            elif current == "item":
                _scan_item(batch, task, cleaned)
            else:
                _scan_tote(batch, task, cleaned, quantity, operator)
            _scan_record(batch, task, operator, kind_box["kind"], cleaned, accepted=True, quantity=quantity)
            _batch_maybe_done(batch, operator)
            return current_task(batch)

    return _recorded(batch_id, operator, kind_box["kind"], cleaned, quantity, step)


def _order_check(batch: PickBatch, task: PickTask) -> None:
    """A held or cancelled order stops here; ``_recorded`` then drops its tasks from the batch."""
    order_picking_check(order_id=task.order_id)


def _scan_location(batch: PickBatch, task: PickTask, code: str) -> None:
    wanted = task.location.code
    if code.upper() != wanted:
        in_route = batch.tasks.filter(status=TaskStatus.OPEN, location__code=code.upper()).exists()
        message = (
            _("%(code)s comes later in the route: go to %(wanted)s first.")
            if in_route
            else _("%(code)s is not on this route: go to %(wanted)s.")
        )
        raise ValidationFailed(
            message % {"code": code.upper(), "wanted": wanted},
            code="wrong_location",
            details={"expected": wanted, "scanned": code.upper(), "in_route": in_route},
        )
    PickTask.objects.filter(pk=task.pk).update(location_ok=True)


def _scan_item(batch: PickBatch, task: PickTask, code: str) -> None:
    merchant_ids = sorted(set(batch.tasks.values_list("merchant_id", flat=True)))
    results = scan_resolve_among(merchant_ids=merchant_ids, code=code)
    match = next((r for r in results if r.sku is not None and r.sku.pk == task.sku_id), None)
    if match is None:
        other = next((r for r in results if r.sku is not None), None)
        other_order = (
            batch.tasks.filter(sku_id=other.sku.pk)
            .exclude(order_id=task.order_id)
            .values_list("order_id", flat=True)
            .first()
            if other is not None and other.sku is not None
            else None
        )
        if other_order is not None and other is not None and other.sku is not None:
            message = _("That is %(scanned)s, for another order: this stop asks for %(wanted)s.")
        else:
            message = _("That is %(scanned)s: this stop asks for %(wanted)s.")
        scanned = other.sku.code if other is not None and other.sku is not None else code
        raise ValidationFailed(
            message % {"scanned": scanned, "wanted": task.sku.code},
            code="wrong_item",
            details={"expected_sku": task.sku.code, "scanned": code, "other_order": other_order is not None},
        )
    if task.lot and match.lot and match.lot != task.lot:
        raise ValidationFailed(
            _("Lot %(scanned)s is not the one to take: take lot %(wanted)s.")
            % {"scanned": match.lot, "wanted": task.lot},
            code="wrong_lot",
            details={"expected_lot": task.lot, "scanned_lot": match.lot},
        )
    PickTask.objects.filter(pk=task.pk).update(item_ok=True)


def _scan_tote(batch: PickBatch, task: PickTask, code: str, quantity: int | None, operator: Any) -> None:
    if code.upper() != task.tote.code:
        raise ValidationFailed(
            _("Wrong tote: put these units in tote %(wanted)s (slot %(slot)d).")
            % {"wanted": task.tote.code, "slot": task.tote.slot},
            code="wrong_tote",
            details={"expected": task.tote.code, "scanned": code.upper()},
        )
    remaining = task.quantity - task.picked_quantity
    take = remaining if quantity is None else quantity
    if take < 1 or take > remaining:
        raise ValidationFailed(
            _("Between 1 and %(remaining)d unit(s) are to be taken here.") % {"remaining": remaining},
            code="invalid_quantity",
            details={"field": "quantity", "remaining": remaining},
        )
    _pick(batch, task, take, operator)


def _pick(batch: PickBatch, task: PickTask, take: int, operator: Any) -> None:
    reservation_pick_to(
        reservation=task.reservation_id,
        from_location=task.location,
        to_location=task.tote.location,
        quantity=take,
        lot=task.lot,
        actor=operator,
    )
    task.picked_quantity += take
    done = task.picked_quantity == task.quantity
    PickTask.objects.filter(pk=task.pk).update(
        picked_quantity=task.picked_quantity,
        status=TaskStatus.PICKED if done else TaskStatus.OPEN,
        picked_at=clock.now(),
    )
    event_record(_pick_confirmed(batch, task, take, getattr(operator, "pk", None)), merchant_id=task.merchant_id)
    if done:
        _tote_maybe_complete(batch, task.tote)


def _tote_maybe_complete(batch: PickBatch, tote: Tote) -> None:
    tasks = batch.tasks.filter(tote=tote)
    if tasks.filter(status=TaskStatus.OPEN).exists():
        return
    by_merchant: dict[int, set[int]] = {}
    for merchant_id, order_id in tasks.values_list("merchant_id", "order_id"):
        by_merchant.setdefault(merchant_id, set()).add(order_id)
    for merchant_id, order_ids in sorted(by_merchant.items()):
        event_record(
            ToteCompleted(tote_code=tote.code, batch_id=batch.pk, order_ids=sorted(order_ids)),
            merchant_id=merchant_id,
        )


def _batch_maybe_done(batch: PickBatch, operator: Any) -> None:
    if batch.status == BatchStatus.PICKING and not batch.tasks.filter(status=TaskStatus.OPEN).exists():
        batch_transition(batch=batch, to_status=BatchStatus.DONE, actor=operator, values={"done_at": clock.now()})


def pick_short(*, batch_id: int, operator: Any, found_quantity: int, resolution: str) -> PickTask | None:
    """The place holds fewer units than the task asks. ``found_quantity`` go into the tote; the rest is taken from
    another place holding free stock (``other_location``: a new stop in the route) or given back and backordered
    (``backorder``; also when no other place has them). A ``PickShortage`` row and ``fulfilment.pick_short``
    tell the supervisor. The location and the item must have been scanned."""
    if resolution not in ("other_location", "backorder"):
        raise ValidationFailed(
            _("Choose another location or a backorder."),
            code="invalid_short_resolution",
            details={"field": "resolution", "allowed": ["other_location", "backorder"]},
        )

    def step() -> PickTask | None:
        with transaction.atomic():
            batch = _batch_locked(batch_id)
            _operator_check(batch, operator)
            task = current_task(batch)
            if batch.status != BatchStatus.PICKING or task is None or not (task.location_ok and task.item_ok):
                raise Conflict(
                    _("Scan the location and the item before reporting a short pick."),
                    code="pick_not_started",
                    details={"batch_id": batch_id},
                )
            remaining = task.quantity - task.picked_quantity
            if found_quantity < 0 or found_quantity >= remaining:
                raise ValidationFailed(
                    _("A short pick finds fewer than the %(remaining)d unit(s) asked.") % {"remaining": remaining},
                    code="invalid_quantity",
                    details={"field": "found_quantity", "remaining": remaining},
                )
            if found_quantity:
                _pick(batch, task, found_quantity, operator)
            missing = remaining - found_quantity
            new_place = _other_place(task, missing) if resolution == "other_location" else None
            applied = "other_location" if new_place is not None else "backorder"
            if new_place is not None:
                allocation = (
                    ReservationAllocation.objects.filter(
                        reservation_id=task.reservation_id, location_id=task.location_id, quantity__gte=missing
                    )
                    .order_by("pk")
                    .first()
                )
                assert allocation is not None
                reservation_move(
                    reservation=task.reservation_id,
                    allocation=allocation.pk,
                    to_location=new_place,
                    quantity=missing,
                    actor=operator,
                )
                PickTask.objects.create(
                    batch=batch,
                    sequence=task.sequence,
                    merchant_id=task.merchant_id,
                    order_id=task.order_id,
                    line_id=task.line_id,
                    reservation_id=task.reservation_id,
                    sku_id=task.sku_id,
                    location=new_place,
                    lot=task.lot,
                    tote=task.tote,
                    quantity=missing,
                )
                _resequence(batch)
            else:
                order_line_short_backorder(
                    order_id=task.order_id,
                    line_id=task.line_id,
                    location=task.location,
                    quantity=missing,
                    actor=operator,
                )
            PickTask.objects.filter(pk=task.pk).update(
                quantity=task.picked_quantity,
                status=TaskStatus.SHORT,
                note=str(_("%(missing)d missing") % {"missing": missing}),
            )
            PickShortage.objects.create(
                task=task,
                merchant_id=task.merchant_id,
                order_id=task.order_id,
                location=task.location,
                missing_quantity=missing,
                status=ShortageStatus.OTHER_LOCATION if new_place is not None else ShortageStatus.BACKORDERED,
                resolution_location=new_place,
                reported_by=operator if getattr(operator, "pk", None) else None,
            )
            event_record(
                PickShort(
                    order_id=task.order_id,
                    batch_id=batch.pk,
                    task_id=task.pk,
                    sku_code=task.sku.code,
                    location_code=task.location.code,
                    missing_quantity=missing,
                    resolution=applied,
                    new_location_code=new_place.code if new_place is not None else "",
                    operator_id=getattr(operator, "pk", None),
                ),
                merchant_id=task.merchant_id,
            )
            _scan_record(
                batch, task, operator, ScanKind.ACTION, f"short:{applied}", accepted=True, quantity=found_quantity
            )
            _tote_maybe_complete(batch, task.tote)
            _batch_maybe_done(batch, operator)
            return current_task(batch)

    return _recorded(batch_id, operator, ScanKind.ACTION, f"short:{resolution}", found_quantity, step)


def batch_confirm_picked(*, batch_id: int, operator: Any, shorts: Mapping[int, int] | None = None) -> PickBatch:
    """Paper picking: the picker worked from a printed pick list and the supervisor confirms the whole batch as
    picked in one action, the short picks keyed in as exceptions (``shorts``: task id → units found).

    Every remaining task of the started batch is taken in route order as the handheld would take it, scan by scan:
    its planned units (or the units found) move from the planned place into the planned tote through the same
    ledger service (``reservation_pick_to_many``, the many form of ``reservation_pick_to``); a held or cancelled
    order stops at its first remaining task, its open tasks dropped with the picker's sentence, as ``pick_scan``
    drops them; a short pick is backordered (the ``backorder`` resolution of ``pick_short``, the only one here:
    sending the picker to another place is a handheld's walk, not a desk's confirmation). The same task, tote and
    batch states, the same events (``pick_confirmed``, ``pick_short``, ``tote_completed``,
    ``batch_status_changed``) as scan by scan, in one transaction and a bounded number of queries per batch (one
    more per short pick and per stopped order, the exceptions). Events name the batch's picker as the operator
    (labour counts the lines as theirs); the ledger and the audit name the supervisor who confirmed.

    Refused, with nothing written: not a supervisor (``supervisor_only``, 403), an unknown batch
    (``pick_batch_not_found``), a batch not being picked (``pick_batch_not_picking``), a short for a task that is
    not a remaining task of this batch (``short_task_not_in_batch``) or that finds as many units as asked or more
    (``invalid_quantity``). Shorts for a stopped order's tasks are moot: those tasks are dropped.
    """
    if not is_supervisor(operator):
        raise Forbidden(
            _("Only a supervisor can confirm a whole batch as picked."),
            code="supervisor_only",
            details={"batch_id": batch_id},
        )
    found = dict(shorts or {})
    with transaction.atomic():
        batch = _batch_locked(batch_id)
        if batch.status != BatchStatus.PICKING:
            raise Conflict(
                _("Batch %(batch)s is %(status)s: only a batch being picked can be confirmed.")
                % {"batch": batch, "status": batch.get_status_display()},
                code="pick_batch_not_picking",
                details={"batch_id": batch.pk, "status": batch.status},
            )
        tasks = list(batch.tasks.select_related("location", "sku", "tote").order_by("sequence", "pk"))
        status = {task.pk: task.status for task in tasks}
        remaining = [task for task in tasks if task.status == TaskStatus.OPEN]
        by_id = {task.pk: task for task in remaining}
        for task_id, units in sorted(found.items()):
            task = by_id.get(task_id)
            if task is None:
                raise ValidationFailed(
                    _("Task %(task)s is not a remaining task of batch %(batch)s.") % {"task": task_id, "batch": batch},
                    code="short_task_not_in_batch",
                    details={"field": "shorts", "task_id": task_id, "batch_id": batch.pk},
                )
            left = task.quantity - task.picked_quantity
            if isinstance(units, bool) or not isinstance(units, int) or units < 0 or units >= left:
                raise ValidationFailed(
                    _("A short pick finds fewer than the %(remaining)d unit(s) asked.") % {"remaining": left},
                    code="invalid_quantity",
                    details={"field": "found_quantity", "task_id": task_id, "remaining": left},
                )
        stopped = _stopped_orders({task.order_id for task in remaining})

        # Walk the route as the handheld does, deciding in memory; then write everything at once.
        picks: list[tuple[PickTask, int]] = []  # (task, units into the tote)
        done_ids: list[int] = []
        short_ids: list[int] = []
        cancelled: list[tuple[int, str]] = []  # (order id, the sentence the picker would have read)
        events: list[tuple[Any, int | None]] = []
        picker_id = batch.operator_id
        for task in remaining:
            if status[task.pk] != TaskStatus.OPEN:
                continue  # dropped with its stopped order
            if task.order_id in stopped:
                note = stopped[task.order_id]
                cancelled.append((task.order_id, note))
                for other in tasks:
                    if other.order_id == task.order_id and status[other.pk] == TaskStatus.OPEN:
                        status[other.pk] = TaskStatus.CANCELLED
                continue
            left = task.quantity - task.picked_quantity
            take = found.get(task.pk, left)
            if take:
                picks.append((task, take))
                events.append((_pick_confirmed(batch, task, take, picker_id), task.merchant_id))
            if task.pk in found:
                short_ids.append(task.pk)
                status[task.pk] = TaskStatus.SHORT
                events.append(
                    (
                        PickShort(
                            order_id=task.order_id,
                            batch_id=batch.pk,
                            task_id=task.pk,
                            sku_code=task.sku.code,
                            location_code=task.location.code,
                            missing_quantity=left - take,
                            resolution="backorder",
                            new_location_code="",
                            operator_id=picker_id,
                        ),
                        task.merchant_id,
                    )
                )
            else:
                done_ids.append(task.pk)
                status[task.pk] = TaskStatus.PICKED
            tote_tasks = [t for t in tasks if t.tote_id == task.tote_id]
            if all(status[t.pk] != TaskStatus.OPEN for t in tote_tasks):
                events.extend(_tote_completed(batch, task.tote, tote_tasks))

        if picks:
            reservation_pick_to_many(lines=[_pick_line(task, take) for task, take in picks], actor=operator)
        now = clock.now()
        if done_ids:
            PickTask.objects.filter(pk__in=done_ids).update(
                picked_quantity=F("quantity"), status=TaskStatus.PICKED, location_ok=True, item_ok=True, picked_at=now
            )
        for order_id, note in cancelled:
            _order_tasks_cancel(batch, order_id, note)
        shortages: list[PickShortage] = []
        for task_id in short_ids:
            task = by_id[task_id]
            take = found[task_id]
            missing = task.quantity - task.picked_quantity - take
            order_line_short_backorder(
                order_id=task.order_id, line_id=task.line_id, location=task.location, quantity=missing, actor=operator
            )
            PickTask.objects.filter(pk=task.pk).update(
                quantity=task.picked_quantity + take,
                picked_quantity=task.picked_quantity + take,
                status=TaskStatus.SHORT,
                location_ok=True,
                item_ok=True,
                note=str(_("%(missing)d missing") % {"missing": missing}),
                **({"picked_at": now} if take else {}),
            )
            shortages.append(
                PickShortage(
                    task=task,
                    merchant_id=task.merchant_id,
                    order_id=task.order_id,
                    location=task.location,
                    missing_quantity=missing,
                    status=ShortageStatus.BACKORDERED,
                    resolution_location=None,
                    reported_by=operator if getattr(operator, "pk", None) else None,
                )
            )
        PickShortage.objects.bulk_create(shortages)
        events_record_many(events)
        PickScan.objects.create(
            batch=batch,
            task=None,
            operator=operator if getattr(operator, "pk", None) else None,
            kind=ScanKind.ACTION,
            value="confirm" + (f" short:{len(short_ids)}" if short_ids else ""),
            quantity=sum(take for _task, take in picks),
            accepted=True,
            occurred_at=now,
        )
        if not any(s == TaskStatus.OPEN for s in status.values()):
            _locked_batch_transition(batch=batch, to_status=BatchStatus.DONE, actor=operator, values={"done_at": now})
    return batch


@dataclass(frozen=True)
class PaperPick:
    """One batch of ``batches_paper_picked_many``: the batch and the picker who takes it."""

    batch_id: int
    picker: Any


@dataclass(frozen=True)
class PaperPickOutcome:
    """A batch's answer: the batch (done), or the first refusal, as one by one (a start that went through stays)."""

    batch_id: int
    batch: PickBatch | None = None
    error: QuaiError | None = None


class _NotTheUsualDay(Exception):
    """Something the one-statement path does not decide (a refusal, a stopped order…): it goes one by one."""


def batches_paper_picked_many(*, picks: Sequence[PaperPick], supervisor: Any) -> list[PaperPickOutcome]:
    """Paper picking of several batches (a tick of the simulated floor, a shift's pick lists confirmed together):
    for each in turn, ``batch_start`` by its picker then ``batch_confirm_picked`` by ``supervisor`` (no shorts),
    each answered, not raised. The same batch, task, order, ledger, scan, audit and outbox rows as those calls one
    batch after another; the events keep each aggregate's order (a batch's start before its finish, an order's
    move to picking before its picks, a tote's completions in batch order), those of different aggregates written
    kind by kind.

    The usual case — every batch open and free, no picker busy elsewhere, every order still released or picking,
    a supervisor confirming — is written in a bounded number of statements for all the batches: one lock of the
    batches, one read of their tasks, one start of their orders (``orders_picking_start_each``), one ledger move
    (``reservation_pick_to_many``), one update of the tasks, one insert each of events, scans and audit rows, one
    ``transitions_many`` for the batches. Anything else (a refusal to answer, a stopped order whose tasks drop)
    rolls that attempt back and goes one batch after another through the one-by-one services themselves."""
    if not picks:
        return []
    try:
        with transaction.atomic():
            return _paper_picked_together(picks, supervisor)
    except _NotTheUsualDay:
        pass
    outcomes: list[PaperPickOutcome] = []
    for pick in picks:
        try:
            batch_start(batch_id=pick.batch_id, operator=pick.picker)
            batch = batch_confirm_picked(batch_id=pick.batch_id, operator=supervisor)
        except QuaiError as refusal:
            outcomes.append(PaperPickOutcome(batch_id=pick.batch_id, error=refusal))
        else:
            outcomes.append(PaperPickOutcome(batch_id=pick.batch_id, batch=batch))
    return outcomes


def _paper_picked_together(picks: Sequence[PaperPick], supervisor: Any) -> list[PaperPickOutcome]:
    """``batches_paper_picked_many``'s usual case; raises ``_NotTheUsualDay`` (inside its savepoint) otherwise."""
    ids = [pick.batch_id for pick in picks]
    if len(set(ids)) != len(ids) or not is_supervisor(supervisor):
        raise _NotTheUsualDay
    batches = {b.pk: b for b in PickBatch.objects.select_for_update().filter(Among(F("pk"), ids)).order_by("pk")}
    pickers = {getattr(pick.picker, "pk", None) for pick in picks}
    if (
        len(batches) != len(ids)
        or None in pickers
        or any(b.status != BatchStatus.OPEN or b.operator_id is not None for b in batches.values())
        or PickBatch.objects.filter(
            Among(F("operator_id"), pickers), status__in=[BatchStatus.PICKING, BatchStatus.PAUSED]
        )
        .exclude(Among(F("pk"), ids))
        .exists()
    ):
        raise _NotTheUsualDay
    tasks_of: dict[int, list[_TaskRow]] = {pk: [] for pk in ids}
    for task in _task_rows(ids):
        tasks_of[task.batch_id].append(task)
    if any(not any(t.status == TaskStatus.OPEN for t in tasks) for tasks in tasks_of.values()):
        raise _NotTheUsualDay  # a batch with nothing to pick is done at its start, and its confirmation refused
    now = clock.now()
    starts = [
        PickingStart(order_id, pick.picker, str(_("Batch %(batch)s started") % {"batch": batches[pick.batch_id]}))
        for pick in picks
        for order_id in sorted({t.order_id for t in tasks_of[pick.batch_id] if t.status == TaskStatus.OPEN})
    ]
    if any(answer is not None for answer in orders_picking_start_each(starts=starts).values()):
        raise _NotTheUsualDay  # a held or cancelled order: its tasks drop, batch by batch
    lines: list[PickToLine] = []
    events: list[tuple[Any, int | None]] = []
    done_ids: list[int] = []
    scans: list[PickScan] = []
    steps: list[Step] = []
    for pick in picks:
        batch = batches[pick.batch_id]
        tasks = tasks_of[batch.pk]
        picker_id = pick.picker.pk
        remaining = [task for task in tasks if task.status == TaskStatus.OPEN]
        # Each tote's tasks, and how many are still open: a tote completes at its last open task (every open task
        # is picked here, in route order), without scanning the batch's tasks at each one.
        of_tote: dict[int | None, list[_TaskRow]] = {}
        for task in tasks:
            of_tote.setdefault(task.tote_id, []).append(task)
        still_open = {tote_id: sum(t.status == TaskStatus.OPEN for t in group) for tote_id, group in of_tote.items()}
        units = 0
        for task in remaining:
            take = task.quantity - task.picked_quantity
            if take:
                lines.append(_pick_line(task, take))
                events.append((_pick_confirmed(batch, task, take, picker_id), task.merchant_id))
                units += take
            done_ids.append(task.pk)
            still_open[task.tote_id] -= 1
            if not still_open[task.tote_id]:
                events.extend(_tote_completed(batch, task.tote, of_tote[task.tote_id]))
        for who, value, quantity in (
            (pick.picker, "start", None),
            (supervisor, "confirm", units),
        ):
            scans.append(
                PickScan(
                    batch=batch,
                    task=None,
                    operator=who if getattr(who, "pk", None) else None,
                    kind=ScanKind.ACTION,
                    value=value,
                    quantity=quantity,
                    accepted=True,
                    occurred_at=now,
                )
            )
        steps.append(
            Step(
                obj=batch,
                to_status=BatchStatus.PICKING,
                event=_batch_event(batch.pk, None),
                actor=pick.picker,
                values={"operator": pick.picker, "started_at": now},
            )
        )
        steps.append(
            Step(
                obj=batch,
                to_status=BatchStatus.DONE,
                event=_batch_event(batch.pk, picker_id),
                actor=supervisor,
                values={"done_at": now},
            )
        )
    # The ledger's ``StockChanged`` events go first, in the same insert as the picks' own (as they went before it).
    recorded: list[tuple[Any, int | None]] = []
    if lines:
        # No savepoints of their own (two statements each a tick): a refusal undoes this whole attempt anyway.
        reservation_pick_to_many(lines=lines, actor=supervisor, events=recorded, savepoint=False)
    if done_ids:
        PickTask.objects.filter(Among(F("pk"), done_ids)).update(
            picked_quantity=F("quantity"), status=TaskStatus.PICKED, location_ok=True, item_ok=True, picked_at=now
        )
    events_record_many(recorded + events)
    PickScan.objects.bulk_create(scans)
    for outcome in transitions_many(steps, machine=BATCH_MACHINE, locked=True, savepoint=False):
        if outcome.error is not None:
            raise _NotTheUsualDay
    return [PaperPickOutcome(batch_id=pk, batch=batches[pk]) for pk in ids]


class _Code(NamedTuple):
    code: str


class _ToteOf(NamedTuple):
    code: str
    location_id: int


@dataclass(frozen=True, slots=True)
class _TaskRow:
    """What the paper pick of a tick reads of a task (with its SKU's and place's codes and its tote): a tuple's
    worth, not three model instances per task."""

    pk: int
    batch_id: int
    status: str
    order_id: int
    merchant_id: int
    quantity: int
    picked_quantity: int
    sku_id: int
    reservation_id: int
    location_id: int
    lot: str
    tote_id: int | None
    sku: _Code
    location: _Code
    tote: _ToteOf


def _task_rows(batch_ids: Sequence[int]) -> list[_TaskRow]:
    """The batches' tasks in route order (sequence, then id), as ``batch.tasks`` with their SKU, place and tote."""
    rows = statements.task_rows(batch_ids)  # written once: its ORM form's joins were compiled at every tick
    return [_TaskRow(*row[:12], _Code(row[12]), _Code(row[13]), _ToteOf(row[14], row[15])) for row in rows]


def _pick_line(task: PickTask | _TaskRow, take: int) -> PickToLine:
    """A task's ``take`` units from its place into its tote, as the ledger's many form takes them."""
    return PickToLine(
        reservation=task.reservation_id,
        from_location_id=task.location_id,
        to_location_id=task.tote.location_id,
        quantity=take,
        lot=task.lot,
    )


def _batch_event(batch_id: int, operator_id: int | None) -> Any:
    return lambda step: BatchStatusChanged(
        batch_id=batch_id, from_status=step.from_status, to_status=step.to_status, operator_id=operator_id
    )


def _stopped_orders(order_ids: set[int]) -> dict[int, str]:
    """The held or cancelled orders among ``order_ids``, each with the sentence ``pick_scan`` refuses it with (one
    query for all; the sentence read again only for the stopped ones, through the orders' own check)."""
    stopped: dict[int, str] = {}
    candidates = Order.objects.filter(
        pk__in=order_ids, status__in=[OrderStatus.ON_HOLD, OrderStatus.CANCELLED]
    ).values_list("pk", flat=True)
    for order_id in sorted(candidates):
        try:
            order_picking_check(order_id=order_id)
        except Conflict as refusal:
            stopped[order_id] = str(refusal.message)
    return stopped


def _pick_confirmed(batch: PickBatch, task: PickTask | _TaskRow, take: int, operator_id: int | None) -> PickConfirmed:
    return PickConfirmed(
        order_id=task.order_id,
        batch_id=batch.pk,
        task_id=task.pk,
        sku_id=task.sku_id,
        sku_code=task.sku.code,
        quantity=take,
        lot=task.lot,
        from_location_code=task.location.code,
        tote_code=task.tote.code,
        operator_id=operator_id,
    )


def _tote_completed(
    batch: PickBatch, tote: Tote | _ToteOf, tasks: Sequence[PickTask | _TaskRow]
) -> list[tuple[Any, int | None]]:
    """``_tote_maybe_complete``'s events for a tote all of whose ``tasks`` are no longer open (read in memory)."""
    by_merchant: dict[int, set[int]] = {}
    for task in tasks:
        by_merchant.setdefault(task.merchant_id, set()).add(task.order_id)
    return [
        (ToteCompleted(tote_code=tote.code, batch_id=batch.pk, order_ids=sorted(order_ids)), merchant_id)
        for merchant_id, order_ids in sorted(by_merchant.items())
    ]


def _other_place(task: PickTask, missing: int) -> Location | None:
    """Another active place of the batch's zone kinds holding ``missing`` free sellable units of the task's SKU
    and lot (the nearest in pick sequence), or None."""
    from django.db.models import F

    row = (
        StockQuantity.objects.filter(
            sku_id=task.sku_id,
            lot=task.lot,
            status="sellable",
            counted=True,
            on_hand__gte=F("reserved") + missing,
            location__site_id=task.location.site_id,
            location__status="active",
            location__zone__kind__in=ALLOCATABLE_ZONE_KINDS,
        )
        .filter(zone_active_q(clock.now(), prefix="location__zone__"))
        .exclude(location_id=task.location_id)
        .select_related("location")
        .order_by("location__pick_sequence", "pk")
        .first()
    )
    return row.location if row is not None else None


def _resequence(batch: PickBatch) -> None:
    """Re-plan the open stops after a change of place (a short pick sent elsewhere), after the stops done."""
    open_tasks = list(batch.tasks.filter(status=TaskStatus.OPEN).select_related("location", "tote"))
    if not open_tasks:
        return
    by_zone: dict[int, list[PickTask]] = {}
    for task in open_tasks:
        by_zone.setdefault(task.location.zone_id, []).append(task)
    start = (
        batch.tasks.exclude(status=TaskStatus.OPEN).order_by("-sequence").values_list("sequence", flat=True).first()
        or 0
    )
    ordered: list[PickTask] = []
    for zone_id, tasks in sorted(by_zone.items()):
        layout = zone_layout(zone_id=zone_id)
        _plan, locations = _route_of(layout, [task.location_id for task in tasks])
        rank = {location_id: k for k, location_id in enumerate(locations)}
        ordered.extend(sorted(tasks, key=lambda task: (rank[task.location_id], task.tote.slot, task.pk)))
    for offset, task in enumerate(ordered, start=1):
        PickTask.objects.filter(pk=task.pk).update(sequence=start + offset)


# --- Release limits ---------------------------------------------------------------------------------------------

#: Beyond this many orders or lines per hour a figure is a typo, not a limit.
RELEASE_LIMIT_MAX = 1_000_000


def _limit_figure(value: int | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= RELEASE_LIMIT_MAX:
        message = (
            _("A release limit of zero would stop every release: hold the orders instead, or clear the limit.")
            if value == 0 and not isinstance(value, bool)
            else _("A release limit is a whole number between 1 and 1,000,000 per hour.")
        )
        raise ValidationFailed(message, code="invalid_release_limit", details={"field": field, "value": value})
    return value


@transaction.atomic
def release_limit_set(
    *,
    merchant: Merchant,
    site: Site,
    source: str,
    orders_per_hour: int | None = None,
    lines_per_hour: int | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> ReleaseLimit:
    """At most ``orders_per_hour`` orders and/or ``lines_per_hour`` order lines of ``merchant`` go to the floor of
    ``site`` per sliding hour, from ``valid_from`` (now when empty) until ``valid_until`` (open-ended when empty).
    ``source`` names who sets it ("campaign:12"); setting again from the same source replaces its limit.

    Refused before anything is written: no figure or a figure out of 1..1,000,000 (``invalid_release_limit``; zero
    included: a limit that lets nothing through is a hold, not a throttle), a naive instant (``invalid_instant``), a
    window that ends before it starts or is already over (``invalid_release_window``)."""
    source = source.strip()
    if not source:
        raise ValidationFailed(
            _("Say who sets the release limit."), code="source_required", details={"field": "source"}
        )
    orders = _limit_figure(orders_per_hour, "orders_per_hour")
    lines = _limit_figure(lines_per_hour, "lines_per_hour")
    if orders is None and lines is None:
        raise ValidationFailed(
            _("A release limit needs orders per hour, order lines per hour, or both."),
            code="invalid_release_limit",
            details={"field": "orders_per_hour"},
        )
    now = clock.now()
    start = valid_from or now
    for name, instant in (("valid_from", start), ("valid_until", valid_until)):
        if instant is not None and timezone.is_naive(instant):
            raise ValidationFailed(
                _("A release limit's window needs instants with their time zone."),
                code="invalid_instant",
                details={"field": name},
            )
    if valid_until is not None and (valid_until <= start or valid_until <= now):
        raise ValidationFailed(
            _("A release limit's window must end after it starts, and not in the past."),
            code="invalid_release_window",
            details={"valid_from": start.isoformat(), "valid_until": valid_until.isoformat()},
        )
    limit, _created = ReleaseLimit.objects.update_or_create(
        merchant=merchant,
        site=site,
        source=source[:60],
        defaults={
            "orders_per_hour": orders,
            "lines_per_hour": lines,
            "valid_from": start,
            "valid_until": valid_until,
        },
    )
    return limit


@transaction.atomic
def release_limit_clear(*, merchant: Merchant, site: Site, source: str) -> int:
    """Lift the limit ``source`` set for ``merchant`` at ``site`` (none: nothing to do). Returns how many went."""
    deleted, _detail = ReleaseLimit.objects.filter(merchant=merchant, site=site, source=source.strip()).delete()
    return deleted


def waves_release_scheduled(*, size: int | None = None) -> list[int]:
    """The schedule (beat): one wave per site of the next ``size`` waiting orders (default
    ``QUAI_FULFILMENT_SCHEDULED_WAVE_SIZE``, 0 = the schedule is off), when some wait. Returns the waves' ids."""
    size = int(getattr(settings, "QUAI_FULFILMENT_SCHEDULED_WAVE_SIZE", 0)) if size is None else size
    released: list[int] = []
    if size < 1 or not _waiting_orders(limit=1):
        return released
    for site in Site.objects.order_by("pk"):
        wave = wave_release(site=site, criteria=domain.WaveCriteria(capacity=size), actor=None, scheduled=True)
        if wave.order_count:
            released.append(wave.pk)
    return released
