"""Inbound reads: ASNs, their lines and reports, putaway and replenishment tasks, pick faces.

Also the reads the services decide with (what a location holds, where receiving lands, what a scan points at):
they only read, so they live here, and this module never imports ``quai.inbound.services`` (an import-linter
contract keeps it so).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from django.db.models import F, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from quai.catalog.selectors import scan_resolve_among
from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.inbound import domain
from quai.inbound.models import (
    Asn,
    AsnLine,
    AsnStatus,
    DiscrepancyReport,
    HandlingUnit,
    PickFace,
    PutawayStatus,
    PutawayTask,
    Receipt,
    ReplenishmentTask,
)
from quai.inventory.models import StockStatus
from quai.inventory.selectors import location_contents, location_load, stock_list
from quai.tenants.scope import Scope
from quai.warehouse.models import Location, LocationStatus, Site, ZoneKind
from quai.warehouse.selectors import location_get_by_code, zone_active_q


def asn_list(
    *,
    scope: Scope,
    status: str | None = None,
    q: str | None = None,
) -> QuerySet[Asn]:
    qs = Asn.objects.within(scope)
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(reference__icontains=q) | qs.filter(supplier__icontains=q)
    return qs.select_related("site").order_by("-created_at", "-id")


def asn_get(*, scope: Scope, asn_id: int) -> Asn:
    """One ASN inside ``scope`` (another merchant's answers like a missing one)."""
    asn = Asn.objects.within(scope).select_related("site", "receiving_location").filter(pk=asn_id).first()
    if asn is None:
        raise NotFound(_("ASN not found."), code="asn_not_found", details={"asn_id": asn_id})
    return asn


def asn_lines(*, asn: Asn) -> QuerySet[AsnLine]:
    return asn.lines.select_related("sku", "handling_unit").order_by("id")


def asn_counted_lines(*, lines: Iterable[AsnLine]) -> list[domain.CountedLine]:
    """An ASN's lines as the discrepancy rule (``domain.discrepancies``) counts them.

    The close service writes its report from these and the close screen previews it from these: one translation,
    so the preview says what the report will.
    """
    return [
        domain.CountedLine(
            sku_id=line.sku_id,
            expected=line.expected_quantity,
            received=line.received_quantity,
            damaged=line.damaged_quantity,
            unexpected=line.unexpected,
            lot=line.lot,
        )
        for line in lines
    ]


def asn_recent_receipts(*, asn: Asn, limit: int = 8) -> list[Receipt]:
    return list(asn.receipts.select_related("sku").order_by("-received_at", "-id")[:limit])


def discrepancy_report_get(*, scope: Scope, asn_id: int) -> DiscrepancyReport:
    asn = asn_get(scope=scope, asn_id=asn_id)
    report = DiscrepancyReport.objects.filter(asn=asn).select_related("asn").first()
    if report is None:
        raise NotFound(_("This ASN has no discrepancy report yet: receiving is not closed."), code="report_not_found")
    return report


def putaway_task_list(
    *,
    scope: Scope,
    status: str | None = None,
    asn_id: int | None = None,
) -> QuerySet[PutawayTask]:
    qs = PutawayTask.objects.within(scope)
    if status:
        qs = qs.filter(status=status)
    if asn_id is not None:
        qs = qs.filter(asn_id=asn_id)
    return qs.select_related("sku", "from_location", "suggested_location", "confirmed_location").order_by(
        "created_at", "id"
    )


def putaway_task_get(*, scope: Scope, putaway_task_id: int) -> PutawayTask:
    task = putaway_task_list(scope=scope).filter(pk=putaway_task_id).first()
    if task is None:
        raise NotFound(_("Putaway task not found."), code="putaway_task_not_found")
    return task


def putaway_open_tasks(*, scope: Scope, site_id: int | None = None) -> QuerySet[PutawayTask]:
    qs = PutawayTask.objects.within(scope).filter(status=PutawayStatus.OPEN)
    if site_id is not None:
        qs = qs.filter(from_location__site_id=site_id)
    return qs.select_related("sku", "asn", "from_location", "suggested_location").order_by("created_at", "id")


def putaway_task_for_scan(*, scope: Scope, code: str) -> PutawayTask:
    """The open putaway task a scan points at: a task label (PT…), or the oldest open task of the scanned item.

    The item is resolved among the merchants with open tasks in one query (``scan_resolve_among``). Nothing to put
    away is ``no_putaway_task`` when the code is a known item or location; a code that is neither stays
    ``unknown_code``, so an operator is never told "nothing to put away" for a place that does not exist.
    """
    cleaned = code.strip()
    raw = cleaned.upper()
    open_tasks = putaway_open_tasks(scope=scope)
    if raw.startswith("PT") and raw[2:].isdecimal():
        task = open_tasks.filter(pk=int(raw[2:])).first()
        if task is None:
            raise NotFound(
                _("No open putaway task %(task)s.") % {"task": raw}, code="no_putaway_task", details={"code": raw}
            )
        return task
    nothing = NotFound(
        _("Nothing to put away for %(code)s.") % {"code": cleaned}, code="no_putaway_task", details={"code": cleaned}
    )
    merchant_ids = sorted(open_tasks.order_by().values_list("merchant_id", flat=True).distinct())
    try:
        # Staff screen: another merchant's item is known, it simply has nothing waiting here.
        scans = scan_resolve_among(merchant_ids=merchant_ids, code=cleaned, tell_other_merchants=scope.is_all)
    except NotFound as exc:
        if exc.code == "unknown_code" and exc.details.get("reason") == "other_merchant":
            raise nothing from exc
        if exc.code == "unknown_code" and Location.objects.filter(code=raw).exists():
            raise nothing from exc
        raise NotFound(
            _("Unknown code %(code)s: it is neither an item, a putaway task label nor a location.") % {"code": cleaned},
            code="unknown_code",
            details={**exc.details, "code": cleaned},
        ) from exc
    wanted = Q(pk__in=[])
    for scan in scans:
        if scan.sku is not None:
            wanted |= Q(merchant_id=scan.merchant_id, sku_id=scan.sku.pk, **({"lot": scan.lot} if scan.lot else {}))
    matches = list(open_tasks.filter(wanted))
    if len({task.merchant_id for task in matches}) > 1:
        raise Conflict(
            _("%(code)s is waiting for several merchants: scan the task label (PT…).") % {"code": cleaned},
            code="ambiguous_item",
        )
    if not matches:
        raise nothing
    return matches[0]


@dataclass(frozen=True)
class PutawayScan:
    """What a scan means on the putaway screen: a task to work on, or the location to put the current task in."""

    task: PutawayTask | None = None
    location: Location | None = None


def putaway_scan_target(*, scope: Scope, code: str, task: PutawayTask | None = None) -> PutawayScan:
    """Read a putaway scan. With no task chosen it picks the task; with one, it is the location (or another task).

    With a task chosen the operator was asked for a location: a code that matches nothing is a location that does
    not exist (``location_not_found``), never "nothing to put away".
    """
    cleaned = code.strip()
    if not cleaned:
        raise ValidationFailed(_("Scan a code."), code="empty_scan")
    if task is None:
        return PutawayScan(task=putaway_task_for_scan(scope=scope, code=cleaned))
    site_id = task.from_location.site_id
    try:
        return PutawayScan(location=location_get_by_code(site=site_id, code=cleaned))
    except NotFound:
        pass  # not a location of this site: perhaps the operator scanned another item or task label
    try:
        return PutawayScan(task=putaway_task_for_scan(scope=scope, code=cleaned))
    except NotFound as exc:
        if exc.code != "unknown_code":
            raise
        raise NotFound(
            _("Location %(code)s does not exist on this site.") % {"code": cleaned.upper()},
            code="location_not_found",
            details={"code": cleaned.upper(), "site_id": site_id},
        ) from exc


def pick_face_list(*, scope: Scope, sku_id: int | None = None) -> QuerySet[PickFace]:
    qs = PickFace.objects.within(scope)
    if sku_id is not None:
        qs = qs.filter(sku_id=sku_id)
    return qs.select_related("location", "sku").order_by("location__code", "id")


def pick_face_get(*, scope: Scope, pick_face_id: int) -> PickFace:
    face = pick_face_list(scope=scope).filter(pk=pick_face_id).first()
    if face is None:
        raise NotFound(_("Pick face not found."), code="pick_face_not_found")
    return face


def replenishment_task_list(*, scope: Scope, status: str | None = None) -> QuerySet[ReplenishmentTask]:
    qs = ReplenishmentTask.objects.within(scope)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("sku", "from_location", "to_location").order_by("created_at", "id")


def incoming_stock(merchant_id: int, sku_ids: list[int]) -> dict[int, list[tuple[date | None, int]]]:
    """What open ASNs still bring, per SKU and expected date (the source inventory shows as incoming stock)."""
    rows = (
        AsnLine.objects.filter(
            asn__merchant_id=merchant_id,
            asn__status__in=(AsnStatus.ANNOUNCED, AsnStatus.RECEIVING),
            sku_id__in=sku_ids,
            expected_quantity__gt=F("received_quantity"),
        )
        .values("sku_id", "asn__expected_at")
        .annotate(expected=Sum("expected_quantity"), received=Sum("received_quantity"))
        .order_by("sku_id", "asn__expected_at")
    )
    incoming: dict[int, list[tuple[date | None, int]]] = {}
    for row in rows:
        remaining = int(row["expected"]) - int(row["received"])
        if remaining > 0:
            incoming.setdefault(row["sku_id"], []).append((row["asn__expected_at"], remaining))
    return incoming


# --- Receiving -----------------------------------------------------------------------------------------------------
def receiving_location_default(*, site: Site) -> Location:
    """The first active location of an open receiving zone of ``site`` (by pick sequence, then code)."""
    location = (
        Location.objects.filter(site=site, zone__kind=ZoneKind.RECEIVING, status=LocationStatus.ACTIVE)
        .filter(zone_active_q(clock.now(), prefix="zone__"))
        .order_by("pick_sequence", "code", "id")
        .first()
    )
    if location is None:
        raise ValidationFailed(
            _("Site %(site)s has no open receiving location: create one in a receiving zone.") % {"site": site.code},
            code="no_receiving_location",
        )
    return location


def asn_open_by_code(*, scope: Scope, code: str) -> tuple[Asn, HandlingUnit | None]:
    """The open ASN a scan names: one of its cartons or pallets (SSCC, symbology prefix allowed), or its reference.

    The warehouse floor receives for every merchant: it passes a system scope.
    """
    open_states = (AsnStatus.ANNOUNCED, AsnStatus.RECEIVING)
    sscc = domain.sscc_normalize(code)
    if sscc is not None:
        units = HandlingUnit.objects.within(scope).filter(sscc=sscc, asn__status__in=open_states).select_related("asn")
        found_units = list(units[:2])
        if len(found_units) == 1:
            return found_units[0].asn, found_units[0]
    asns = Asn.objects.within(scope).filter(reference=code.strip(), status__in=open_states)
    found = list(asns[:2])
    if len(found) > 1:
        raise Conflict(
            _("Several merchants have an open ASN '%(code)s': scan one of its cartons (SSCC) instead.")
            % {"code": code},
            code="ambiguous_asn",
        )
    if not found:
        raise NotFound(
            _("No open ASN or carton matches '%(code)s'.") % {"code": code},
            code="asn_not_found",
            details={"code": code},
        )
    return found[0], None


# --- Putaway -------------------------------------------------------------------------------------------------------
@dataclass
class LocationLoadTotal:
    """What a location holds, added up: volume, weight and which SKUs."""

    volume_mm3: int = 0
    weight_g: int = 0
    sku_ids: set[int] = field(default_factory=set)


# A location's load is physical: every merchant's goods in it take room, whoever's task is being put away.
_EVERY_OWNER = Scope.system("putaway: a location's load counts every merchant's goods")


def _loads_in_zones(zone_ids: Iterable[int]) -> dict[int, LocationLoadTotal]:
    """What every location of these zones holds, from inventory's stock list: one query per zone, not per place."""
    loads: dict[int, LocationLoadTotal] = {}
    for zone_id in sorted(set(zone_ids)):
        for row in stock_list(scope=_EVERY_OWNER, zone_id=zone_id):
            load = loads.setdefault(row.location_id, LocationLoadTotal())
            load.volume_mm3 += (row.sku.volume_mm3 or 0) * row.on_hand
            load.weight_g += (row.sku.weight_g or 0) * row.on_hand
            load.sku_ids.add(row.sku_id)
    return loads


def location_snapshot(location: Location, load: LocationLoadTotal | None = None) -> domain.LocationSnapshot:
    """A location as putaway's pure rules see it (its load read from inventory unless given)."""
    if load is None:
        found = location_load(location=location)
        load = LocationLoadTotal(volume_mm3=found.volume_mm3, weight_g=found.weight_g, sku_ids=set(found.sku_ids))
    active = location.status == LocationStatus.ACTIVE and location.zone.status == "open"
    return domain.LocationSnapshot(
        location_id=location.pk,
        code=location.code,
        x=float(location.x_m),
        y=float(location.y_m),
        active=active,
        max_volume_mm3=location.max_volume_cm3 * 1000 if location.max_volume_cm3 is not None else None,
        max_weight_g=location.max_weight_g,
        used_volume_mm3=load.volume_mm3,
        used_weight_g=load.weight_g,
        sku_ids=frozenset(load.sku_ids),
        mixed_sku=location.mixed_sku,
    )


def location_snapshots(locations: list[Location]) -> list[domain.LocationSnapshot]:
    loads = _loads_in_zones(location.zone_id for location in locations)
    return [location_snapshot(location, loads.get(location.pk, LocationLoadTotal())) for location in locations]


def putaway_item(task: PutawayTask) -> domain.PutawayItem:
    """A putaway task's goods as the pure rules see them (a SKU with a pick face somewhere is a fast mover)."""
    sku = task.sku
    return domain.PutawayItem(
        sku_id=sku.pk,
        quantity=task.quantity,
        unit_volume_mm3=sku.volume_mm3,
        unit_weight_g=sku.weight_g,
        fast_mover=PickFace.objects.filter(sku=sku).exists(),
    )


def sku_on_hand_at(*, location: Location, sku_id: int) -> int:
    """Sellable units of a SKU in one location, read from inventory."""
    return sum(
        row.on_hand
        for row in location_contents(location=location)
        if row.sku_id == sku_id and row.status == StockStatus.SELLABLE
    )


def packing_point(*, site_id: int) -> tuple[float, float] | None:
    """The middle of the site's open packing locations (where fast movers should land near), if it has any."""
    points = list(
        Location.objects.filter(site_id=site_id, zone__kind=ZoneKind.PACKING)
        .filter(zone_active_q(clock.now(), prefix="zone__"))
        .values_list("x_m", "y_m")
    )
    if not points:
        return None
    return (sum(float(x) for x, _y in points) / len(points), sum(float(y) for _x, y in points) / len(points))


def putaway_candidates(*, site_id: int, zone_kinds: Iterable[str], merchant_id: int) -> list[Location]:
    """Active locations of open zones of these kinds that the merchant may use (shared zones or its own)."""
    return list(
        Location.objects.filter(site_id=site_id, zone__kind__in=list(zone_kinds), status=LocationStatus.ACTIVE)
        .filter(zone_active_q(clock.now(), prefix="zone__"))
        .filter(Q(zone__merchant__isnull=True) | Q(zone__merchant_id=merchant_id))
        .select_related("zone")
        .order_by("code", "id")
    )


def open_pick_faces_of(*, sku_id: int, site_id: int) -> QuerySet[PickFace]:
    """The SKU's pick faces in the site's open zones."""
    return (
        PickFace.objects.filter(sku_id=sku_id, location__site_id=site_id)
        .filter(zone_active_q(clock.now(), prefix="location__zone__"))
        .select_related("location", "location__zone")
    )


def location_is_in_open_zone(*, location: Location) -> bool:
    return Location.objects.filter(pk=location.pk).filter(zone_active_q(clock.now(), prefix="zone__")).exists()


# --- Replenishment -------------------------------------------------------------------------------------------------
def replenishment_source(*, face: PickFace) -> Location | None:
    """Where to take the units from: sellable stock of the SKU in a storage zone, earliest expiry, then oldest."""
    rows = [
        row
        for row in stock_list(scope=Scope.merchant(face.merchant_id), sku_id=face.sku_id, status=StockStatus.SELLABLE)
        if row.location.zone_id != face.location.zone_id and row.location_id != face.location_id
    ]
    storage_zone_ids = set(
        Location.objects.filter(pk__in=[row.location_id for row in rows], zone__kind=ZoneKind.STORAGE).values_list(
            "zone_id", flat=True
        )
    )
    rows = [row for row in rows if row.location.zone_id in storage_zone_ids]
    if not rows:
        return None
    best = min(rows, key=lambda row: (row.expiry is None, row.expiry or date.max, row.received_at, row.pk))
    return best.location
