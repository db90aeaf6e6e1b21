"""The world a simulated flash-sale day runs in, built through the apps' own services (as the demo is).

A site near Lyon with a picking zone, a reserve, pack stations; one merchant with its API key and 200 SKUs (40 of
them in the sale); stock on every pick face, enough for the day's orders plus a margin (the orders are drawn
first, so the stock is sized on them); the promise's calendar, cut-offs and transit times (the demo's
configuration); a sandbox carrier account standing in for each of Colissimo, Chronopost and Mondial Relay, so each
has its own manifest closed at its own cut-off; the campaign with its temporary zone and its staffing plan
(labour's, from the flow of the order curve's work at the site's standards, a parcel's pack handling counted);
staff, skills and shifts that follow the plan (with ``staff-30``, 30 % of its people missing on the floor); the
contact centre's plan by Erlang C for the expected tickets.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from stdnum import ean

from quai.campaigns import domain as campaign_domain
from quai.campaigns import services as campaign_services
from quai.campaigns.simulation.orders import CAMPAIGN_CODES, OTHER_CODES, PlannedOrder
from quai.campaigns.simulation.params import SimulationParams
from quai.catalog.services import packaging_type_create, sku_bulk_upsert
from quai.core import clock
from quai.inventory.services import stock_receive
from quai.labor import services as labor_services
from quai.labor.models import Activity
from quai.promise import selectors as promise_selectors
from quai.promise.services import promise_config_load
from quai.shipping.services import sandbox_carrier_ensure
from quai.tenants.services import api_key_create, merchant_create
from quai.warehouse.models import Location, Site, Zone, ZoneKind
from quai.warehouse.services import location_create, rack_bulk_create, site_create, zone_create

TIME_ZONE = "Europe/Paris"
#: A Tuesday with no public holiday in the week that follows (deliveries land on working days).
SIM_DAY = date(2027, 3, 16)
SITE_CODE = "SIM1"
MERCHANT_CODE = "flash"
PACK_STATIONS = 40
#: Engineered standards (lines per hour per person). Picking in the event zone is faster than in the reserve.
STANDARDS = {Activity.PICK: 120, Activity.PACK: 90, Activity.SHIP: 600}
ZONE_PICK_RATE = {"EVT": 150.0, "PCK": 120.0, "STO": 60.0}
#: Carrier account code → (the promise's service code, the name printed on manifests).
CARRIERS = {
    "colissimo": ("colissimo_home", "Colissimo (sandbox)"),
    "chronopost": ("chronopost_13h", "Chronopost (sandbox)"),
    "mondial_relay": ("mondial_relay", "Mondial Relay (sandbox)"),
}
STAFF_CUT = {"staff-30": 0.7}
#: Average handling time of a ticket an agent answers (seconds), for Erlang C.
TICKET_AHT_SECONDS = 240


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(TIME_ZONE))


@dataclass
class Roster:
    """Who works when: per activity, each person's user and shift window."""

    shifts: dict[str, list[tuple[Any, datetime, datetime]]] = field(default_factory=dict)

    def on_shift(self, activity: str, at: datetime) -> list[Any]:
        return [user for user, start, end in self.shifts.get(activity, []) if start <= at < end]


@dataclass
class World:
    site: Site
    merchant_id: int
    api_key: str
    campaign_id: int
    plan_id: int
    zones: dict[str, Zone]
    stations: list[Location]
    carriers: dict[str, Any]  # service code → CarrierAccount
    cutoffs: dict[str, datetime]  # service code → today's cut-off
    plan_heads: dict[tuple[datetime, str], int]  # (hour, activity) → heads the plan asks for
    roster: Roster
    agents_per_hour: dict[datetime, int]
    gtins: dict[str, str]  # SKU code → GTIN scanned at the pack station
    sku_zone: dict[str, str]  # SKU code → zone code of its pick face
    transit: dict[tuple[str, str], Any]  # (service, destination zone code) → promise.domain.Transit
    delivery_weekdays: dict[str, frozenset[int]]
    first_hour: datetime
    last_hour: datetime


def _gtin(n: int) -> str:
    body = f"376{n:09d}"
    return body + ean.calc_check_digit(body)


def _site() -> tuple[Site, dict[str, Zone], list[Location]]:
    site = site_create(
        code=SITE_CODE,
        name="Flash-sale simulation",
        address_line1="1 quai du Port",
        postal_code="69002",
        city="Lyon",
        country="FR",
        time_zone=TIME_ZONE,
        opening_days=[1, 2, 3, 4, 5, 6],
        opens_at=time(6, 0),
        closes_at=time(22, 0),
    )
    zones = {
        "PCK": zone_create(site=site, code="PCK", name="Picking", kind=ZoneKind.PICKING),
        "STO": zone_create(site=site, code="STO", name="Reserve", kind=ZoneKind.STORAGE),
        "PAK": zone_create(site=site, code="PAK", name="Pack stations", kind=ZoneKind.PACKING),
    }
    rack_bulk_create(site=site, zone=zones["PCK"], aisles="M-P", bays=20, levels=3, origin_x_m=50, origin_y_m=20)
    rack_bulk_create(site=site, zone=zones["STO"], aisles="A-D", bays=20, levels=3, origin_x_m=10, origin_y_m=20)
    stations = [
        location_create(site=site, zone=zones["PAK"], code=f"PAK-{n:02d}", x_m=70 + n % 5 * 2, y_m=20 + n // 5 * 2)
        for n in range(1, PACK_STATIONS + 1)
    ]
    return site, zones, stations


def _catalogue(merchant: Any) -> dict[str, str]:
    rows = []
    for n, code in enumerate(CAMPAIGN_CODES + OTHER_CODES):
        in_sale = code in CAMPAIGN_CODES
        rows.append(
            {
                "code": code,
                "name": f"{'Article vente flash' if in_sale else 'Article'} {n}",
                "gtin": _gtin(n + 1),
                "length_mm": 200 + n % 5 * 20,
                "width_mm": 150 + n % 3 * 10,
                "height_mm": 20 + n % 4 * 10,
                "weight_g": 150 + n % 7 * 50,
                "hs_code": "610910",
                "country_of_origin": "PT",
            }
        )
    sku_bulk_upsert(merchant=merchant, rows=rows)
    return {str(row["code"]): str(row["gtin"]) for row in rows}


def _packaging() -> None:
    for code, dims, max_weight, tare in (
        ("SIM-S", (250, 180, 100), 5_000, 120),
        ("SIM-M", (350, 250, 150), 10_000, 210),
        ("SIM-L", (450, 350, 250), 20_000, 380),
        ("SIM-XL", (600, 400, 400), 30_000, 650),
    ):
        packaging_type_create(
            merchant=None,
            code=code,
            name=code,
            kind="box",
            inner_length_mm=dims[0],
            inner_width_mm=dims[1],
            inner_height_mm=dims[2],
            max_weight_g=max_weight,
            tare_weight_g=tare,
            cost="0.50",
        )


def _promise_config() -> None:
    path = Path(__file__).resolve().parents[2] / "promise" / "config" / "demo.json"
    document = copy.deepcopy(json.loads(path.read_text(encoding="utf-8")))
    site = document["sites"][0]
    site["site"] = SITE_CODE
    site["closures"] = []
    # The pack line works 06:00-22:00; the promise's own rate capacity is the plan's job (labour), not a guess.
    site["calendar"].update(opens_at="06:00", closes_at="22:00")
    promise_config_load(document=document)
    promise_selectors.snapshot_invalidate()


def _roster(
    site: Site, plan_heads: Mapping[tuple[datetime, str], int], factor: float, hours: Sequence[datetime]
) -> Roster:
    """People and shifts that follow the plan: the k-th person of an activity works the hours whose planned heads
    exceed k (one window from the first such hour to the last, at most 16 hours; longer needs are split).

    With a ``factor`` under 1 (``staff-30``) the shifts are still written for the whole plan — labour, and so the
    promise, count on them — but only that share of the people turns up on the floor (rounded down, never nobody in
    an hour with work): the what-if is the plan's people missing on the day, and shows what breaks first."""
    user_model = get_user_model()
    roster = Roster()
    for activity in (Activity.PICK, Activity.PACK):
        planned = {hour: plan_heads.get((hour, activity), 0) for hour in hours}
        present = {hour: math.floor(planned[hour] * factor + 1e-9) for hour in hours}
        if factor < 1:
            present = {h: max(v, 1 if planned[h] else 0) for h, v in present.items()}
        people = max(planned.values(), default=0)
        for k in range(people):
            working = [hour for hour in hours if planned[hour] > k]
            windows: list[tuple[datetime, datetime]] = []
            start = working[0]
            for hour in working:
                if hour + timedelta(hours=1) - start > timedelta(hours=16):
                    windows.append((start, hour))
                    start = hour
            windows.append((start, working[-1] + timedelta(hours=1)))
            for w, (begins, ends) in enumerate(windows):
                username = f"sim-{activity}-{k + 1:03d}-{w + 1}"
                user = user_model.objects.create_user(username=username, password=None)
                staff = labor_services.staff_create(user=user, site=site)
                labor_services.skill_add(staff=staff, activity=activity)
                labor_services.shift_create(staff=staff, activity=activity, starts_at=begins, ends_at=ends)
                if factor >= 1:
                    roster.shifts.setdefault(activity, []).append((user, begins, ends))
                    continue
                # On the floor: the hours of the window where this person is among those who turned up.
                for hour in working:
                    if begins <= hour < ends and present[hour] > k:
                        roster.shifts.setdefault(activity, []).append((user, hour, hour + timedelta(hours=1)))
    return roster


def _work_per_line(lines_per_order: float) -> dict[str, float]:
    """Labour's work per order line on this floor: a pick, a pack plus the parcel's own handling (open, box, weigh,
    close: the engine's ``PACK_OVERHEAD_LINES`` per order, in lines of the pack standard), a shipment per order.
    A plan that counted one pack per line would staff the pack line for two thirds of its real work."""
    from quai.campaigns.simulation.engine import PACK_OVERHEAD_LINES  # the engine imports this module

    return {
        Activity.PICK: 1.0,
        Activity.PACK: 1.0 + PACK_OVERHEAD_LINES / lines_per_order,
        Activity.SHIP: 1.0 / lines_per_order,
    }


def curve_hours(params: SimulationParams) -> list[datetime]:
    """The simulated hours: a full day from midnight, or a window that ends at 18:00 (after the last cut-off)."""
    start_hour = 0 if params.hours == 24 else max(0, 18 - params.hours)
    first = local(SIM_DAY, time(start_hour))
    return [first + timedelta(hours=h) for h in range(params.hours)]


def _api_load() -> None:
    """Import the API's modules (the URLconf) with the world, as a server does before its first request: the day's
    first order would otherwise pay for it (0.4 s of CPU, once per process, counted as the intake's)."""
    from django.urls import get_resolver

    _patterns = get_resolver().url_patterns


def world_build(*, params: SimulationParams, orders: Sequence[PlannedOrder], curve: Mapping[datetime, int]) -> World:
    """Build the world (the clock stands just before the first simulated hour)."""
    _api_load()
    hours = sorted(curve)
    first_hour = hours[0]
    clock.set_now(first_hour - timedelta(hours=2))
    site, zones, stations = _site()
    merchant = merchant_create(code=MERCHANT_CODE, name="Maison Éclair", legal_name="Maison Éclair SAS")
    secret = api_key_create(merchant=merchant, name="simulation shop").secret
    gtins = _catalogue(merchant)
    campaign_codes, other_codes = list(CAMPAIGN_CODES), list(OTHER_CODES)
    _packaging()
    _promise_config()
    carriers = {service: sandbox_carrier_ensure(code=code, name=name) for code, (service, name) in CARRIERS.items()}
    for activity, rate in STANDARDS.items():
        labor_services.standard_set(site=site, activity=activity, lines_per_hour=Decimal(rate))
    demand: Counter[str] = Counter()
    lines = 0
    for order in orders:
        for sku, quantity in order.lines:
            demand[sku] += quantity
            lines += 1
    campaign = campaign_services.campaign_create(
        merchant=merchant,
        site=site,
        code="flash-sale",
        name="Vente flash",
        starts_at=first_hour,
        ends_at=hours[-1] + timedelta(hours=1),
        skus=[campaign_services.SkuLine(sku_code=code, expected_units=max(1, demand[code])) for code in campaign_codes],
        order_curve=[campaign_domain.CurvePoint(hour=hour, orders=float(curve[hour])) for hour in hours],
        lines_per_order=round(lines / max(1, len(orders)), 2),
    )
    campaign = campaign_services.campaign_plan(
        campaign=campaign,
        zone_code="EVT",
        racks=campaign_services.RackPattern(aisles="Q-R", bays=12, levels=2),
        work_per_line=_work_per_line(float(campaign.lines_per_order)),
    )
    assert campaign.zone is not None
    zones["EVT"] = campaign.zone
    # Stock on the pick faces: the sale's SKUs in the event zone (or the reserve when that zone is closed),
    # the others on the picking racks; the day's demand plus a fifth, plus a few.
    sale_zone = "STO" if params.what_if == "zone-closed" else "EVT"
    faces: dict[str, list[Location]] = {
        code: list(Location.objects.filter(zone=zone).order_by("pick_sequence", "pk")) for code, zone in zones.items()
    }
    sku_zone: dict[str, str] = {}
    from quai.catalog.models import Sku

    skus = {sku.code: sku for sku in Sku.objects.for_merchant(merchant)}
    for code in campaign_codes:
        sku_zone[code] = sale_zone
    for code in other_codes:
        sku_zone[code] = "PCK"
    used: Counter[str] = Counter()
    for code in campaign_codes + other_codes:
        zone_code = sku_zone[code]
        place = faces[zone_code][used[zone_code] % len(faces[zone_code])]
        used[zone_code] += 1
        stock_receive(
            sku=skus[code],
            location=place,
            quantity=math.ceil(demand[code] * 1.2) + 5,
            reason="simulation opening stock",
            document_type="simulation",
            document_id="opening",
        )
    if params.what_if == "zone-closed":
        # The event zone is closed before the sale (its racks unused): the sale is picked from the reserve.
        from quai.warehouse.services import zone_close

        zone_close(zone=zones["EVT"])
    campaign_services.campaign_open(campaign=campaign, acknowledge_warnings=True)
    plan = campaign.staffing_plan
    assert plan is not None
    plan_heads = {(cell.hour, cell.activity): cell.heads for cell in plan.cells.all()}
    plan_heads = {(hour.astimezone(ZoneInfo(TIME_ZONE)), activity): n for (hour, activity), n in plan_heads.items()}
    roster = _roster(site, plan_heads, STAFF_CUT.get(params.what_if, 1.0), hours)
    ticket_forecast = [
        labor_services.TicketHour(hour=hour, tickets=max(0.0, curve[hour] * params.ticket_share * 0.3))
        for hour in hours
    ]
    agents: dict[datetime, int] = {}
    if any(t.tickets > 0 for t in ticket_forecast):
        centre = labor_services.contact_centre_plan_create(
            site=site, forecast=ticket_forecast, aht_seconds=TICKET_AHT_SECONDS, name="Simulation contact centre"
        )
        for cell in centre.cells.all():
            agents[cell.hour.astimezone(ZoneInfo(TIME_ZONE))] = agents.get(cell.hour, 0) + cell.heads
    config = promise_selectors.site_config_for(merchant.pk)
    assert config is not None
    transit = {}
    weekdays = {}
    cutoffs = {}
    for service in config.snapshot.services:
        weekdays[service.code] = frozenset(service.delivery_weekdays)
        for zone_code, lane in service.transit.items():
            transit[(service.code, zone_code)] = lane
        cut = service.cutoffs.get(SIM_DAY.isoweekday())
        if cut is not None:
            cutoffs[service.code] = local(SIM_DAY, cut)
    return World(
        site=site,
        merchant_id=merchant.pk,
        api_key=secret,
        campaign_id=campaign.pk,
        plan_id=plan.pk,
        zones=zones,
        stations=stations,
        carriers=carriers,
        cutoffs=cutoffs,
        plan_heads=plan_heads,
        roster=roster,
        agents_per_hour=agents,
        gtins=gtins,
        sku_zone=sku_zone,
        transit=transit,
        delivery_weekdays=weekdays,
        first_hour=first_hour,
        last_hour=hours[-1],
    )
