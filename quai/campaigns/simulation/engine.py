"""The simulated day: a frozen clock moved tick by tick drives Quai's real services.

Each tick (10 simulated minutes by default):

1. **Intake**: the orders of the tick are posted to ``POST /api/v1/orders/batch`` (the Ninja API in process
   through Django's test ``Client``, authenticated with the merchant's real API key, 500 orders a request); the
   orders services validate, allocate and write them.
2. **Relay**: ``outbox_sweep`` runs the real handlers (the promise recorded per order, backlog tallies, labour's
   productivity from the scans, ...). The nudge after commit is off: the relay runs here, at each tick, so the run
   does not depend on a worker's timing.
3. **Release**: ``orders_release_due`` hands the orders whose buffer is over to the warehouse.
4. **Waves**: ``wave_release`` sends the most urgent waiting orders to the floor when the open batches hold less
   than half an hour of the pickers' work.
5. **Picking**: the rostered pickers (the staffing plan's heads, or 70 % of them) have ``heads × tick`` hours of
   work, times a seeded variation (±10 %); each batch is started (``batch_start``) by a picker who works from the
   printed pick list, at the zone's standard, and a supervisor confirms it as picked in one action
   (``batch_confirm_picked``, paper picking: the same ledger moves, states and events as scanning every stop).
6. **Packing**: the packers likewise take the fully picked orders, most urgent first, and the round's parcels go
   through every step together (``parcels_pack_many``: each as the steps' batch forms, each as its one-by-one
   service): opened, every unit scanned (the station's batch-mode scanner uploading them as one burst), the box
   cartonization suggests, the weight (in the packer's name), the label and the close (a ZPL label from the
   sandbox carrier), in the order the parcels were opened.
7. **Trucks**: at each carrier's cut-off its manifest is opened, every labelled parcel scanned onto the truck in
   one burst (``manifest_scans_record``) and the manifest closed (``manifest_close``: the orders are shipped).
8. **Tickets**: shoppers who ask "where is my order?" open a ticket (``ticket_open``, answered automatically when
   the order is on time); agents (the Erlang C plan) answer the escalated ones.

After the last hour the clock moves day by day: the carriers' tracking files (``tracking_record_many``: the
"collected" scans, then the "delivered" ones between the shoppers' tickets) deliver each parcel after a number of
delivery days drawn from the promise's own transit distribution for its lane (seeded), and the promise handlers
decide kept or broken, with the cause.

Time in the run is simulated time only; the figures never read the wall clock (``wall_seconds`` is reported apart).
"""

from __future__ import annotations

import gc
import itertools
import json
import math
import random
import sys
import time as wall
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Count, Max, Subquery
from django.test import Client
from django.test.utils import override_settings

from quai.campaigns.simulation import scratch
from quai.campaigns.simulation import world as world_mod
from quai.campaigns.simulation.orders import (
    CAMPAIGN_CODES,
    OTHER_CODES,
    PlannedOrder,
    order_body,
    order_curve,
    orders_draw,
)
from quai.campaigns.simulation.params import SimulationParams, params_check
from quai.core import clock
from quai.core.outbox import outbox_sweep
from quai.core.runtime import PROCESS_GC_THRESHOLDS
from quai.fulfillment import domain as fulfillment_domain
from quai.fulfillment import selectors as fulfillment_selectors
from quai.fulfillment import services as fulfillment
from quai.labor.models import Activity
from quai.orders import domain as orders_domain
from quai.orders.selectors import order_list
from quai.orders.services import orders_release_due
from quai.orders.services.intake_batched import intake_committer
from quai.packing import services as packing
from quai.promise import domain as promise_domain
from quai.promise import selectors as promise_selectors
from quai.shipping import domain as shipping_domain
from quai.shipping import selectors as shipping_selectors
from quai.shipping import services as shipping
from quai.shipping.carriers.base import TrackingEvent
from quai.tenants.models import StaffRole
from quai.tenants.scope import Scope

SCOPE = Scope.system("flash-sale simulation")
BATCH_SIZE = 500
#: The pack standard counts lines; a parcel's open, box, weigh and close cost about one more line's time.
PACK_OVERHEAD_LINES = 1.0
STAGES = ("released", "picking", "packed", "shipped")
#: The order statuses the ``shipped`` stage counts; ``_stages`` reads the others (the orders not shipped yet).
SHIPPED_STATUSES = (orders_domain.PARTIALLY_SHIPPED, orders_domain.SHIPPED, orders_domain.DELIVERED)
NOT_SHIPPED_STATUSES = tuple(s for s in orders_domain.ORDER_TRANSITIONS if s not in SHIPPED_STATUSES)
#: Who boxes and closes the tick's parcels together (the line's cartonizer and label printer).
PACK_LINE = "pack line"


@dataclass
class Tick:
    at: datetime
    orders_in: int
    intake: int
    stages: dict[str, int]
    pick_heads: int
    pack_heads: int
    #: orders the tick's wave sent to the floor (0: no wave)
    waved: int = 0
    #: part → (CPU seconds, SQL statements) of this tick (``_Timer``): how a part's cost per tick grows with the day
    costs: dict[str, tuple[float, int]] = field(default_factory=dict)


@dataclass
class OrderTrace:
    """What the simulation saw of one order (simulated times)."""

    pk: int
    external_id: str
    service: str
    lines: int
    units: int
    received_at: datetime
    waved_at: datetime | None = None
    picked_at: datetime | None = None
    packed_at: datetime | None = None
    shipped_at: datetime | None = None
    ship_by: datetime | None = None
    #: (SKU code, units) as drawn: what the packer finds in the tote and scans
    drawn: tuple[tuple[str, int], ...] = ()


@dataclass
class Run:
    params: SimulationParams
    world: Any = None
    curve: dict[datetime, int] = field(default_factory=dict)
    traces: dict[int, OrderTrace] = field(default_factory=dict)
    by_external: dict[str, int] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    ticks: list[Tick] = field(default_factory=list)
    #: (activity, zone) → [available person-hours, used person-hours]
    effort: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))
    #: stage → the first simulated time its queue of today's work exceeded what it could still do before the cut-off
    behind_at: dict[str, datetime] = field(default_factory=dict)
    tickets_opened: int = 0
    tickets_answered_by_agents: int = 0
    manifests: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: the process's CPU seconds per part (the intake committer's thread included): unlike the wall seconds, not
    #: moved by the other work of a shared machine
    cpu_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    queries: Counter[str] = field(default_factory=Counter)
    #: the current tick's part → [CPU seconds, SQL statements], moved to its ``Tick`` at the tick's end
    tick_costs: dict[str, list[float]] = field(default_factory=dict)
    delivered_days: Counter[int] = field(default_factory=Counter)
    supervisor: Any = None  # the floor supervisor who confirms the paper-picked batches
    #: the traces whose promised ship-by is not known yet (``_ship_by_learn``), and how many traces it has seen
    ship_by_missing: dict[int, None] = field(default_factory=dict)
    ship_by_seen: int = 0
    #: the traces due by the day's last cut-off and not packed yet (``_behind_check``'s queues), and the traces
    #: whose ship-by was learned since it last looked
    due_unpacked: list[OrderTrace] = field(default_factory=list)
    ship_by_learned: list[OrderTrace] = field(default_factory=list)
    #: the orders ``_stages`` has counted so far, and the last id among them
    orders_counted: int = 0
    orders_last_pk: int = 0


class _SimulatedMonotonic:
    """``time``'s ``monotonic`` read from the simulated clock: the promise's caches (backlog, stock, config) then
    expire after simulated seconds, as they would in a real day, and the run does not depend on the machine's
    speed (a run on a slow machine would otherwise quote from older backlogs)."""

    def monotonic(self) -> float:
        return clock.now().timestamp()


@contextmanager
def _intake_waits_for_commit() -> Iterator[None]:
    """The day's intake requests wait for their orders' commit however long it takes: the committer's wait (30
    wall-clock seconds) withdraws an order still queued then and answers it ``overloaded``, which the day counts as
    refused and never sends again, so a machine slow enough would have lost orders a fast one keeps."""
    committer = intake_committer()
    saved = committer.wait_timeout
    committer.wait_timeout = None
    try:
        yield
    finally:
        committer.wait_timeout = saved


#: The cyclic garbage collector's thresholds during a day (Python's: 700, 10, 10): the long-running processes' own.
DAY_GC_THRESHOLDS = PROCESS_GC_THRESHOLDS


@contextmanager
def _collector_for_a_day() -> Iterator[None]:
    """The collector tuned for one long batch of work, then put back. At Python's thresholds a full collection runs
    each time the long-lived objects grew by a quarter, and each walks them all (the Django process, the day's
    traces and plans): 44 full collections took 5.3 of the 5,000-order SQLite day's 34.9 s of CPU, and they grow
    with the day. What the day keeps is frozen out of the collector's walks (``gc.freeze``) and a collection waits
    for 50,000 new objects: the day's garbage is mostly freed by reference counting, cycles are rare."""
    saved = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*DAY_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


@contextmanager
def _simulated_world() -> Iterator[None]:
    saved = promise_selectors.monotonic
    promise_selectors.monotonic = _SimulatedMonotonic()  # type: ignore[assignment]
    promise_selectors.snapshot_invalidate()
    try:
        with (
            override_settings(QUAI_OUTBOX_NUDGE=False, QUAI_FULFILMENT_SCHEDULED_WAVE_SIZE=0),
            _intake_waits_for_commit(),
            _collector_for_a_day(),
        ):
            yield
    finally:
        promise_selectors.monotonic = saved
        promise_selectors.snapshot_invalidate()
        clock.reset()


class _Timer:
    """Wall seconds, the process's CPU seconds and SQL statements of one part of the run (statements on this
    thread's connection: the intake committer's own thread is not counted), for the bench's hot spots; the CPU and
    the statements are also kept per tick (``Tick.costs``)."""

    def __init__(self, run: Run, name: str) -> None:
        self.run, self.name = run, name
        self.wrapper: Any = None
        self.statements = 0

    def _count(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.statements += 1
        return execute(sql, params, many, context)

    def __enter__(self) -> None:
        self.started = wall.perf_counter()
        self.cpu_started = wall.process_time()
        self.wrapper = connection.execute_wrapper(self._count)
        self.wrapper.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.wrapper.__exit__(*exc)
        cpu = wall.process_time() - self.cpu_started
        self.run.wall_seconds[self.name] += wall.perf_counter() - self.started
        self.run.cpu_seconds[self.name] += cpu
        self.run.queries[self.name] += self.statements
        tick = self.run.tick_costs.setdefault(self.name, [0.0, 0])
        tick[0] += cpu
        tick[1] += self.statements


def _hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _heads(run: Run, activity: str, at: datetime) -> list[Any]:
    return run.world.roster.on_shift(activity, at)


# --- Intake -----------------------------------------------------------------------------------------------------


def _intake(run: Run, client: Client, orders: list[PlannedOrder]) -> None:
    for start in range(0, len(orders), BATCH_SIZE):
        chunk = orders[start : start + BATCH_SIZE]
        response = client.post(
            "/api/v1/orders/batch",
            data=json.dumps({"orders": [order_body(o) for o in chunk]}),
            content_type="application/json",
            secure=True,  # production settings redirect plain HTTP
        )
        if response.status_code != 200:
            raise RuntimeError(f"the batch intake answered {response.status_code}: {response.content[:300]!r}")
        for result, planned in zip(response.json()["results"], chunk, strict=True):
            if result["status"] not in (200, 201):
                run.refused[result.get("code", str(result["status"]))] += 1
                continue
            pk = int(result["order"]["id"])
            run.by_external[planned.external_id] = pk
            run.traces[pk] = OrderTrace(
                pk=pk,
                external_id=planned.external_id,
                service=planned.service,
                lines=len(planned.lines),
                units=sum(q for _s, q in planned.lines),
                received_at=clock.now(),
                drawn=planned.lines,
            )


def _ship_by_learn(run: Run) -> None:
    # Only the traces still without a ship-by are looked at (the new ones since the last tick, and those whose
    # promise was not recorded yet): walking every trace of the day at each of its 144 ticks grew with the day.
    for pk in itertools.islice(run.traces, run.ship_by_seen, None):
        run.ship_by_missing[pk] = None
    run.ship_by_seen = len(run.traces)
    missing = list(run.ship_by_missing)
    for start in range(0, len(missing), 2000):
        found = promise_selectors.ship_by_for_orders(scope=SCOPE, order_ids=missing[start : start + 2000])
        for pk, ship_by in found.items():
            trace = run.traces[pk]
            trace.ship_by = ship_by
            run.ship_by_learned.append(trace)
            del run.ship_by_missing[pk]


# --- Floor ------------------------------------------------------------------------------------------------------


class Crew:
    """Person-hours of one activity within a tick: debt carries over (a batch started finishes), idle time does not."""

    def __init__(self) -> None:
        self.budget = 0.0
        self.people: list[Any] = []
        self.turn = 0

    def start_tick(self, people: list[Any], hours: float) -> float:
        self.people = people
        self.budget = min(self.budget, 0.0) + hours
        return hours

    def next_person(self) -> Any:
        self.turn += 1
        return self.people[self.turn % len(self.people)]


def _variation(rng: random.Random) -> float:
    return max(0.5, rng.gauss(1.0, 0.1))


def _waves(run: Run, pickers: float, now: datetime) -> int:
    """Release a wave when the open batches hold less than half an hour of the pickers' work; the orders it sent
    to the floor (0: no wave)."""
    if pickers <= 0:
        return 0
    open_lines = fulfillment_selectors.site_open_pick_lines(scope=SCOPE, site_id=run.world.site.pk)
    wanted = pickers * world_mod.STANDARDS[Activity.PICK] * 0.5 - open_lines
    if wanted <= 0:
        return 0
    if not fulfillment_selectors.orders_awaiting_wave_exist(scope=SCOPE):
        return 0  # nothing waits: no empty wave
    # As many orders as the half hour of work asks (about 1.5 lines an order), however many pickers the plan has:
    # a fixed ceiling (500 orders a tick) fed the floor 3,000 orders an hour whatever its crew, and at the peak of a
    # 10,000-order day left the plan's 79 pickers 60 % idle while the spike waited for a wave, to be picked by the
    # few the plan keeps after it.
    capacity = max(20, math.ceil(wanted / 1.5))
    wave = fulfillment.wave_release(site=run.world.site, criteria=fulfillment_domain.WaveCriteria(capacity=capacity))
    # The wave's own orders: those of the earlier waves' open batches were marked when they were released.
    for order_id in fulfillment_selectors.wave_order_ids(scope=SCOPE, wave_id=wave.pk):
        trace = run.traces.get(order_id)
        if trace is not None and trace.waved_at is None:
            trace.waved_at = now
    return int(wave.order_count)


def _floor_supervisor(run: Run) -> Any:
    """The supervisor who confirms the batches picked from paper (a staff user in the supervisor role)."""
    if run.supervisor is None:
        user = get_user_model().objects.create_user(username="sim-supervisor", password=None, is_staff=True)
        group, _created = Group.objects.get_or_create(name=StaffRole.SUPERVISOR)
        user.groups.add(group)
        run.supervisor = user
    return run.supervisor


def _pick(run: Run, crew: Crew, rng: random.Random, now: datetime, to_pack: list[int]) -> None:
    """Paper picking: the picker takes the batch (``batch_start``) and works from its pick list; the supervisor
    confirms it as picked in one action (``batch_confirm_picked``: the same ledger moves, states and events as the
    handheld's three scans per stop). The run draws no short picks.

    The tick's batches are taken in turn while the pickers have time, each costing its lines once started (its
    stopped orders' tasks dropped: ``batches_tasks_to_pick`` reads them before); the batches taken are then started
    and confirmed together (``batches_paper_picked_many``: each as ``batch_start`` then ``batch_confirm_picked``).
    An order picked is handed to the packers after the last of the tick's batches holding it, as one batch after
    another would find it done."""
    supervisor = _floor_supervisor(run)
    batches = list(fulfillment_selectors.batch_list(site_id=run.world.site.pk, status="open"))
    to_pick = fulfillment_selectors.batches_tasks_to_pick(scope=SCOPE, batch_ids=[batch.pk for batch in batches])
    picks: list[fulfillment.PaperPick] = []
    for batch in batches:
        if crew.budget <= 0 or not crew.people:
            break
        zone_code = batch.zone.code
        rate = world_mod.ZONE_PICK_RATE.get(zone_code, world_mod.STANDARDS[Activity.PICK]) * _variation(rng)
        picks.append(fulfillment.PaperPick(batch_id=batch.pk, picker=crew.next_person()))
        hours = len(to_pick[batch.pk]) / rate
        crew.budget -= hours
        run.effort[(Activity.PICK, zone_code)][1] += hours
    if not picks:
        return
    for outcome in fulfillment.batches_paper_picked_many(picks=picks, supervisor=supervisor):
        if outcome.error is not None:
            raise outcome.error  # one batch after another, the run stops at it
    last_of: dict[int, int] = {}
    for k, pick in enumerate(picks):
        for order_id in to_pick[pick.batch_id]:
            last_of[order_id] = k
    done = fulfillment_selectors.orders_picking_done(scope=SCOPE, order_ids=sorted(last_of))
    for k, pick in enumerate(picks):
        for order_id in sorted(set(to_pick[pick.batch_id])):
            trace = run.traces.get(order_id)
            if order_id in done and last_of[order_id] == k and trace is not None and trace.picked_at is None:
                trace.picked_at = now
                to_pack.append(order_id)


def _urgency(run: Run, order_id: int) -> tuple[datetime, int]:
    trace = run.traces[order_id]
    return (trace.ship_by or datetime.max.replace(tzinfo=ZoneInfo("UTC")), order_id)


def _pack(run: Run, crew: Crew, rng: random.Random, now: datetime, to_pack: list[int]) -> None:
    """The packers open each parcel at their stations and scan every unit (one burst per parcel); the round's
    parcels are then boxed as cartonization suggests, weighed (each in its packer's name), labelled and closed —
    every step of the round in one ``parcels_pack_many``, each what the one-by-one services do to every parcel, with
    the reads and writes made once per round. The run expects no refusal: one stops it."""
    to_pack.sort(key=lambda order_id: _urgency(run, order_id))
    stations = run.world.stations
    taken: list[tuple[OrderTrace, Any, Any]] = []  # (order, packer, station) in the order the packers take them
    for order_id in to_pack:
        if crew.budget <= 0 or not crew.people:
            break
        trace = run.traces[order_id]
        packer = crew.next_person()
        taken.append((trace, packer, stations[crew.turn % len(stations)]))
        hours = (trace.lines + PACK_OVERHEAD_LINES) / (world_mod.STANDARDS[Activity.PACK] * _variation(rng))
        crew.budget -= hours
        run.effort[(Activity.PACK, "PAK")][1] += hours
    if not taken:
        return
    # The round's parcels, every step together (``parcels_pack_many``: each as the steps' batch forms, each as its
    # one-by-one service): each packer opens the order's parcel and scans every unit (the units the order was drawn
    # with: the run draws no short picks), the station's batch-mode scanner uploading them as one burst; the line
    # boxes them as cartonization suggests, the scale reads what went into the box (the items and the box's tare,
    # the weight the parcel expects), each in its packer's name, and the line's label printer labels and closes
    # them, most urgent first.
    packed = packing.parcels_pack_many(
        packs=[
            packing.ParcelPack(
                code=trace.external_id,
                station=station,
                actor=packer,
                codes=[run.world.gtins[sku_code] for sku_code, units in trace.drawn for _ in range(units)],
            )
            for trace, packer, station in taken
        ],
        scale=lambda parcel: parcel.expected_weight_g,
        actor=PACK_LINE,
        label_format="zpl",
    )
    refused = [(o.code, step, e.code) for o in packed for step, e in o.refusals.items()]
    if refused:
        raise RuntimeError(f"orders refused at the pack station: {refused}")
    scanned = [(o.parcel, trace, packer) for o, (trace, packer, _station) in zip(packed, taken, strict=True)]
    for _parcel, trace, _packer in scanned:
        trace.packed_at = now
    del to_pack[: len(scanned)]


def _trucks(run: Run, previous: datetime, now: datetime) -> None:
    for service, cutoff in sorted(run.world.cutoffs.items(), key=lambda item: item[1]):
        if not previous < cutoff <= now:
            continue
        carrier = run.world.carriers[service]
        manifest = shipping.manifest_open(carrier=carrier, actor="simulation dock")
        on_manifest = shipping_selectors.manifest_shipments(scope=SCOPE, manifest=manifest)
        codes = list(on_manifest.order_by("pk").values_list("sscc", flat=True))
        # Every parcel is scanned onto the truck; the driver's batch-mode scanner uploads the scans as one burst.
        loads = shipping.manifest_scans_record(manifest=manifest, codes=codes, actor="driver")
        refused = [(o.code, o.error.code) for o in loads if o.error is not None]
        if refused:
            raise RuntimeError(f"parcels refused at the truck: {refused}")
        closed = shipping.manifest_close(manifest=manifest, actor="simulation dock")
        shipped = list(
            shipping_selectors.manifest_shipments(scope=SCOPE, manifest=closed).values_list("order_id", flat=True)
        )
        for order_id in shipped:
            trace = run.traces.get(order_id)
            if trace is not None:
                trace.shipped_at = now
        run.manifests.append({"service": service, "at": now, "parcels": len(shipped), "missing": len(closed.missing)})


# --- Tickets ----------------------------------------------------------------------------------------------------


def _tickets_open(run: Run, due: list[PlannedOrder]) -> None:
    from quai.service.services import IncomingMessage, ticket_open

    for planned in due:
        pk = run.by_external.get(planned.external_id)
        if pk is None:
            continue
        first = planned.name.split(" ", 1)[0].lower()
        ticket_open(
            merchant_id=run.world.merchant_id,
            channel="email",
            message=IncomingMessage(
                subject="Où est ma commande ?",
                body=f"Bonjour, où en est ma commande {planned.external_id} ? Merci.",
                email=f"{first}.{planned.index}@example.fr",
                name=planned.name,
                order_ids=(pk,),
            ),
        )
        run.tickets_opened += 1


def _agents_answer(run: Run, now: datetime, tick_hours: float) -> None:
    from quai.service.selectors import tickets_unanswered
    from quai.service.services import ticket_reply

    hour = _hour_of(now).replace(day=world_mod.SIM_DAY.day, month=world_mod.SIM_DAY.month, year=world_mod.SIM_DAY.year)
    agents = run.world.agents_per_hour.get(hour, 0)
    if agents <= 0:
        return
    capacity = int(agents * tick_hours * 3600 / world_mod.TICKET_AHT_SECONDS)
    waiting = tickets_unanswered(merchant_id=run.world.merchant_id, limit=capacity)
    for ticket in waiting:
        ticket_reply(ticket=ticket, body="Bonjour, votre commande est en cours de traitement. Belle journée !")
        run.tickets_answered_by_agents += 1


# --- Measures ---------------------------------------------------------------------------------------------------


def _stages(run: Run) -> dict[str, int]:
    """The orders at each stage at the tick's end. Counting every order by status at each of the day's 144 ticks
    read the whole table each time (7 million rows over a 100,000-order day); the orders not shipped yet are
    read by status (the status index: the backlog), the shipped ones are the others, and the orders are counted
    as they arrive (by id: orders are never deleted, and a tick's intake has committed its orders)."""
    orders = order_list(scope=SCOPE).order_by()
    arrived = orders.filter(pk__gt=run.orders_last_pk).aggregate(n=Count("pk"), last=Max("pk"))
    if arrived["n"]:
        run.orders_counted += arrived["n"]
        run.orders_last_pk = arrived["last"]
    counts = dict(
        orders.filter(status__in=NOT_SHIPPED_STATUSES)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {
        "received": counts.get("received", 0) + counts.get("allocated", 0) + counts.get("backordered", 0),
        "released": counts.get("released", 0),
        "picking": counts.get("picking", 0),
        "packed": counts.get("packed", 0),
        "shipped": run.orders_counted - sum(counts.values()),
    }


def _remaining_capacity(run: Run, activity: str, now: datetime, until: datetime, rate: float) -> float:
    """Lines the rostered people of ``activity`` can still do between ``now`` and ``until``."""
    total, at = 0.0, now
    while at < until:
        step_end = min(until, _hour_of(at) + timedelta(hours=1))
        total += len(_heads(run, activity, at)) * (step_end - at).total_seconds() / 3600 * rate
        at = step_end
    return total


def _behind_check(run: Run, now: datetime, to_pack: list[int]) -> None:
    """A stage falls behind when today's work waiting for it exceeds what its people can still do before today's
    last cut-off (the work that reaches it later only adds to that)."""
    if not run.world.cutoffs:
        return
    last_cutoff = max(run.world.cutoffs.values())
    if now >= last_cutoff:
        return
    day_end = last_cutoff
    # The queues are those of every trace due by the day's end; a packed one leaves them for good, so only the
    # unpacked due ones are kept from tick to tick (the day's traces were walked at every tick).
    run.due_unpacked.extend(t for t in run.ship_by_learned if t.ship_by is not None and t.ship_by <= day_end)
    run.ship_by_learned.clear()
    due = run.due_unpacked = [t for t in run.due_unpacked if t.packed_at is None]
    pick_queue = sum(t.lines for t in due if t.picked_at is None)
    pack_queue = sum(t.lines + PACK_OVERHEAD_LINES for t in due if t.picked_at is not None and t.packed_at is None)
    for stage, queue, activity, rate in (
        ("picking", pick_queue, Activity.PICK, float(world_mod.STANDARDS[Activity.PICK])),
        ("packing", pack_queue, Activity.PACK, float(world_mod.STANDARDS[Activity.PACK])),
    ):
        if stage in run.behind_at or queue <= 0:
            continue
        if queue > _remaining_capacity(run, activity, now, day_end, rate):
            run.behind_at[stage] = now


# --- The day ----------------------------------------------------------------------------------------------------


def _progress_line(run: Run, now: datetime, stages: dict[str, int]) -> str:
    backlog = stages["received"] + stages["released"] + stages["picking"] + stages["packed"]
    return (
        f"\r{now:%a %H:%M}  orders in {len(run.traces):>7,}  shipped {stages['shipped']:>7,}  backlog {backlog:>7,}  "
    )


def simulate(params: SimulationParams, *, progress: Callable[[str], None] | None = None) -> Run:
    """Run the day in the current database (which must be migrated and hold nothing else: the command checks)."""
    params_check(params)
    run = Run(params=params)
    started = wall.perf_counter()
    rng_floor = random.Random(params.seed * 7919 + 1)
    rng_transit = random.Random(params.seed * 7919 + 2)
    hours = world_mod.curve_hours(params)
    run.curve = order_curve(hours, orders=params.orders, spike=params.spike)
    planned = orders_draw(
        curve=run.curve,
        seed=params.seed,
        campaign_skus=CAMPAIGN_CODES,
        other_skus=OTHER_CODES,
        ticket_share=params.ticket_share,
    )
    with _simulated_world():
        with _Timer(run, "world"):
            run.world = world_mod.world_build(params=params, orders=planned, curve=run.curve)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {run.world.api_key}", HTTP_HOST="localhost")
        tick = timedelta(minutes=params.tick_minutes)
        tick_hours = params.tick_minutes / 60
        now = run.world.first_hour
        end = run.world.last_hour + timedelta(hours=1)
        clock.set_now(now)
        pickers, packers = Crew(), Crew()
        to_pack: list[int] = []
        # The orders and the tickets are in time order: each tick takes the next ones by position (popping the
        # head of the list moved every later entry, per order: quadratic in the day's orders).
        arrived = 0
        tickets = sorted((o for o in planned if o.ticket_at is not None), key=lambda o: (o.ticket_at, o.index))
        tickets_opened = 0
        while now < end:
            previous, now = now, now + tick
            first = arrived
            while arrived < len(planned) and planned[arrived].at < now:
                arrived += 1
            arriving = planned[first:arrived]
            run.tick_costs = {}
            clock.set_now(now)
            with _Timer(run, "intake"):
                _intake(run, client, arriving)
            with _Timer(run, "relay"):
                outbox_sweep(batch=500, max_batches=1000)
                _ship_by_learn(run)
            with _Timer(run, "release"):
                while orders_release_due(now=now, limit=500) == 500:
                    pass
            pick_people = _heads(run, Activity.PICK, previous)
            pack_people = _heads(run, Activity.PACK, previous)
            available = pickers.start_tick(pick_people, len(pick_people) * tick_hours * _variation(rng_floor))
            run.effort[(Activity.PICK, "all")][0] += available
            available = packers.start_tick(pack_people, len(pack_people) * tick_hours * _variation(rng_floor))
            run.effort[(Activity.PACK, "PAK")][0] += available
            with _Timer(run, "waves"):
                waved = _waves(run, len(pick_people), now)
            with _Timer(run, "picking"):
                _pick(run, pickers, rng_floor, now, to_pack)
            with _Timer(run, "packing"):
                _pack(run, packers, rng_floor, now, to_pack)
            with _Timer(run, "trucks"):
                _trucks(run, previous, now)
            with _Timer(run, "relay"):
                outbox_sweep(batch=500, max_batches=1000)
            with _Timer(run, "tickets"):
                first = tickets_opened
                while (
                    tickets_opened < len(tickets) and (at := tickets[tickets_opened].ticket_at) is not None and at < now
                ):
                    tickets_opened += 1
                _tickets_open(run, tickets[first:tickets_opened])
                _agents_answer(run, now, tick_hours)
            with _Timer(run, "engine"):  # its own bookkeeping
                _behind_check(run, now, to_pack)
                stages = _stages(run)
                scratch.statistics_refresh()
            with _Timer(run, "vacuum"):  # autovacuum's work, in a scratch database on PostgreSQL (else nothing)
                scratch.tables_vacuum()
            run.ticks.append(
                Tick(
                    at=now,
                    orders_in=len(run.traces),
                    intake=len(arriving),
                    stages=stages,
                    pick_heads=len(pick_people),
                    pack_heads=len(pack_people),
                    waved=waved,
                    costs={part: (cpu, int(statements)) for part, (cpu, statements) in run.tick_costs.items()},
                )
            )
            if progress is not None:
                progress(_progress_line(run, now, stages))
        run.tick_costs = {}
        with _Timer(run, "deliveries"):
            _deliveries(run, rng_transit, tickets[tickets_opened:])
    run.wall_seconds["total"] = wall.perf_counter() - started
    return run


def _deliveries(run: Run, rng: random.Random, tickets: list[PlannedOrder]) -> None:
    """The days after: each shipped parcel is delivered after delivery days drawn from its lane's transit."""
    handed_over = shipping_selectors.shipments_handed_over(scope=Scope.merchant(run.world.merchant_id))
    shipments = list(handed_over.values_list("pk", "order_id", "shipped_at", "tracking_number", "service"))
    traces = run.traces
    # The orders through a subquery on the same shipments: a list of every shipped order's id was a parameter per
    # order (100,000 at a 100,000-order day; SQLite's default limit is 32,766 a statement, this build's 250,000).
    addresses = {
        pk: (country, postcode)
        for pk, country, postcode in order_list(scope=SCOPE)
        .filter(pk__in=Subquery(handed_over.order_by().values("order_id")))
        .values_list("pk", "country", "postcode")
    }
    plan: dict[date, list[tuple[int, datetime]]] = defaultdict(list)
    collected: list[tuple[int, list[TrackingEvent]]] = []
    zone_of: dict[tuple[str, str], promise_domain.DestinationZone] = {}
    for pk, order_id, shipped_at, _number, _service in shipments:
        trace = traces.get(order_id)
        if trace is None:
            continue
        key = addresses[order_id]
        if key not in zone_of:
            found = promise_domain.destination_zone(*key)
            assert isinstance(found, promise_domain.DestinationZone), found
            zone_of[key] = found
        zone = zone_of[key]
        assert shipped_at is not None
        lane = run.world.transit.get((trace.service, zone.code))
        if lane is None:
            continue
        draw = rng.random()
        days = next((d for d, share in lane.steps if draw <= share + 1e-12), lane.steps[-1][0])
        if run.params.what_if == "carrier-late" and trace.service == "colissimo_home":
            days += 1
        run.delivered_days[days] += 1
        ship_day = shipped_at.astimezone(ZoneInfo(world_mod.TIME_ZONE)).date()
        day = promise_domain.delivery_date(
            ship_day, days, delivery_weekdays=run.world.delivery_weekdays[trace.service], zone=zone
        )
        at = world_mod.local(day, datetime.min.time()) + timedelta(hours=9, minutes=rng.randrange(0, 480))
        plan[day].append((pk, at))
        in_transit = shipped_at + timedelta(hours=2)
        collected.append(
            (pk, [TrackingEvent(in_transit, "SIM-TRANSIT", "Parcel collected", shipping_domain.IN_TRANSIT)])
        )
    # The carriers' "collected" scans arrive as one tracking file: recorded together, as one by one.
    for start in range(0, len(collected), BATCH_SIZE):
        shipping.tracking_record_many(updates=collected[start : start + BATCH_SIZE])
    outbox_sweep(batch=500, max_batches=1000)
    for day in sorted(plan):
        # The carrier's "delivered" scans come as tracking files: each holds the deliveries until a shopper writes
        # (the ticket must see the deliveries made before it, and none after), recorded together at its last one.
        waiting: list[tuple[int, datetime]] = []
        for pk, at in sorted(plan[day], key=lambda item: (item[1], item[0])):
            # The tickets are in time order: those due are the first ones (walking all of them at every delivery
            # grew as the deliveries times the tickets, both a share of the day's orders).
            due = 0
            for ticket in tickets:
                if ticket.ticket_at is None or ticket.ticket_at >= at:
                    break
                due += 1
            pending = tickets[:due]
            if pending:
                _delivered_record(waiting)
                waiting = []
                clock.set_now(at)
                del tickets[: len(pending)]
                _tickets_open(run, pending)
            waiting.append((pk, at))
        _delivered_record(waiting)
        clock.set_now(world_mod.local(day, datetime.min.time()) + timedelta(hours=20))
        outbox_sweep(batch=500, max_batches=1000)


def _delivered_record(deliveries: list[tuple[int, datetime]]) -> None:
    """One tracking file of deliveries (shipment, when), recorded at its last one (``tracking_record_many``: each
    as ``tracking_record``, the event keeping its own time)."""
    if not deliveries:
        return
    clock.set_now(deliveries[-1][1])
    for start in range(0, len(deliveries), BATCH_SIZE):
        shipping.tracking_record_many(
            updates=[
                (pk, [TrackingEvent(at, "SIM-DELIVERED", "Delivered", shipping_domain.DELIVERED)])
                for pk, at in deliveries[start : start + BATCH_SIZE]
            ]
        )


def progress_to(stream: Any = None) -> Callable[[str], None]:
    out = stream or sys.stdout

    def write(line: str) -> None:
        out.write(line)
        out.flush()

    return write
