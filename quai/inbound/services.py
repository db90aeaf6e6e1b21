"""Inbound writes: ASNs, receiving by scan, discrepancy reports, putaway, pick faces and replenishment.

Every function here owns its transaction. Checks come first, then the ledger is written through inventory's
services: a refused scan or putaway leaves the stock ledger exactly as it was.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import F, Q, Sum

from quai.catalog.models import Sku
from quai.catalog.selectors import scan_resolve
from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.outbox import event_record
from quai.inbound import domain
from quai.inbound.events import (
    AsnAnnounced,
    AsnCancelled,
    AsnDiscrepancyReported,
    AsnReceived,
    ReplenishmentRequested,
)
from quai.inbound.models import (
    Asn,
    AsnLine,
    AsnStatus,
    AsnStatusChange,
    DiscrepancyLine,
    DiscrepancyReport,
    HandlingUnit,
    HandlingUnitKind,
    PickFace,
    PutawayStatus,
    PutawayTask,
    Receipt,
    ReplenishmentStatus,
    ReplenishmentTask,
)
from quai.inventory.models import MovementKind, StockStatus
from quai.inventory.selectors import location_contents, location_load, stock_list
from quai.inventory.services import stock_move, stock_receive
from quai.tenants.models import Merchant
from quai.warehouse.models import Location, LocationStatus, Site, ZoneKind
from quai.warehouse.selectors import location_get_by_code, zone_active_q

DOCUMENT_ASN = "inbound.asn"
DOCUMENT_PUTAWAY = "inbound.putaway"

# Zones a putaway may end in, by the status of the stock put away.
PUTAWAY_ZONES: dict[str, tuple[str, ...]] = {
    StockStatus.SELLABLE: (ZoneKind.STORAGE, ZoneKind.PICKING),
    StockStatus.DAMAGED: (ZoneKind.QUARANTINE,),
    StockStatus.QUARANTINE: (ZoneKind.QUARANTINE,),
}


# --- ASN -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AsnLineInput:
    sku_code: str
    quantity: int
    lot: str = ""
    expiry: date | None = None
    sscc: str = ""


@dataclass(frozen=True)
class HandlingUnitInput:
    sscc: str
    kind: str = HandlingUnitKind.CARTON


def _line_error(index: int, field: str, code: str, message: str) -> dict[str, Any]:
    return {"line": index, "field": field, "code": code, "message": message}


@transaction.atomic
def asn_create(
    *,
    merchant: Merchant,
    reference: str,
    site: Site,
    lines: Sequence[AsnLineInput],
    supplier: str = "",
    expected_at: date | None = None,
    handling_units: Sequence[HandlingUnitInput] = (),
    notes: str = "",
    actor: Any = None,
) -> Asn:
    """Announce an ASN. Every line is checked and every problem reported at once (``details.errors``)."""
    reference = reference.strip()
    if not reference:
        raise ValidationFailed("An ASN needs a reference.", code="reference_required", details={"field": "reference"})
    if Asn.objects.for_merchant(merchant).filter(reference=reference).exists():
        raise Conflict(
            f"An ASN with reference '{reference}' already exists.",
            code="duplicate_asn_reference",
            details={"field": "reference", "value": reference},
        )
    if not lines:
        raise ValidationFailed("An ASN needs at least one line.", code="lines_required", details={"field": "lines"})

    errors: list[dict[str, Any]] = []
    units: dict[str, str] = {}
    for index, unit in enumerate(handling_units):
        sscc = domain.sscc_normalize(unit.sscc)
        if sscc is None:
            errors.append(
                _line_error(index, "handling_units.sscc", "invalid_sscc", f"'{unit.sscc}' is not a valid SSCC.")
            )
        elif sscc in units:
            errors.append(_line_error(index, "handling_units.sscc", "duplicate_sscc", f"SSCC {sscc} is listed twice."))
        else:
            units[sscc] = unit.kind
        if unit.kind not in HandlingUnitKind.values:
            errors.append(
                _line_error(index, "handling_units.kind", "invalid_kind", f"'{unit.kind}' is not carton or pallet.")
            )
    taken = set(HandlingUnit.objects.for_merchant(merchant).filter(sscc__in=units).values_list("sscc", flat=True))
    errors += [
        _line_error(0, "handling_units.sscc", "duplicate_sscc", f"SSCC {sscc} is already on another ASN.")
        for sscc in sorted(taken)
    ]

    skus = {sku.code: sku for sku in Sku.objects.for_merchant(merchant).filter(code__in={li.sku_code for li in lines})}
    today = clock.today()
    for index, line in enumerate(lines):
        sku = skus.get(line.sku_code)
        if sku is None:
            errors.append(_line_error(index, "sku", "unknown_sku", f"SKU '{line.sku_code}' is not in your catalogue."))
        if line.quantity <= 0:
            errors.append(
                _line_error(index, "quantity", "invalid_quantity", "The quantity must be a whole number above zero.")
            )
        if line.lot and sku is not None and not sku.lot_tracked:
            errors.append(
                _line_error(index, "lot", "lot_not_tracked", f"SKU '{sku.code}' is not lot-tracked: it takes no lot.")
            )
        if line.expiry is not None and sku is not None and not sku.expiry_tracked:
            errors.append(
                _line_error(
                    index, "expiry", "expiry_not_tracked", f"SKU '{sku.code}' has no expiry date: leave it empty."
                )
            )
        if line.expiry is not None and line.expiry < today:
            errors.append(
                _line_error(
                    index, "expiry", "expiry_in_past", f"The expiry date {line.expiry.isoformat()} is already past."
                )
            )
        if line.sscc:
            sscc = domain.sscc_normalize(line.sscc)
            if sscc is None or sscc not in units:
                errors.append(
                    _line_error(
                        index,
                        "sscc",
                        "unknown_sscc",
                        f"SSCC '{line.sscc}' is not one of this ASN's cartons or pallets.",
                    )
                )
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ValidationFailed(
            f"Line {first['line'] + 1}: {first['message']}{more}", code=first["code"], details={"errors": errors}
        )

    asn = Asn.objects.create(
        merchant=merchant, reference=reference, site=site, supplier=supplier, expected_at=expected_at, notes=notes
    )
    unit_rows = {
        sscc: HandlingUnit.objects.create(merchant=merchant, asn=asn, sscc=sscc, kind=kind)
        for sscc, kind in units.items()
    }
    AsnLine.objects.bulk_create(
        AsnLine(
            asn=asn,
            sku=skus[line.sku_code],
            expected_quantity=line.quantity,
            lot=line.lot,
            expiry=line.expiry,
            handling_unit=unit_rows.get(domain.sscc_normalize(line.sscc) or "") if line.sscc else None,
        )
        for line in lines
    )
    event_record(
        AsnAnnounced(
            asn_id=asn.pk,
            reference=asn.reference,
            expected_at=expected_at.isoformat() if expected_at else None,
            line_count=len(lines),
            expected_units=sum(line.quantity for line in lines),
        ),
        merchant_id=merchant.pk,
    )
    return asn


def _user(actor: Any) -> Any:
    """The Django user behind ``actor`` (a user, or nothing for API keys and system work)."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    return actor


def _asn_locked(asn: Asn | int) -> Asn:
    asn_id = asn if isinstance(asn, int) else asn.pk
    return Asn.objects.select_for_update().get(pk=asn_id)


@transaction.atomic
def asn_transition(*, asn: Asn, to_status: str, actor: Any = None, reason: str = "") -> Asn:
    """Move an ASN along its one transition table (``domain.ASN_TRANSITIONS``), with its audit row."""
    locked = _asn_locked(asn)
    from_status = locked.status
    if not domain.asn_can_move(from_status, to_status):
        raise Conflict(
            f"ASN {locked.reference} is {locked.get_status_display()}: it cannot become {to_status}.",
            code="invalid_transition",
            details={"from": from_status, "to": to_status},
        )
    now = clock.now()
    locked.status = to_status
    fields = ["status"]
    if to_status == AsnStatus.RECEIVING:
        locked.receiving_started_at = now
        fields.append("receiving_started_at")
    if to_status in (AsnStatus.CLOSED, AsnStatus.CANCELLED):
        locked.closed_at = now
        fields.append("closed_at")
    locked.save(update_fields=fields)
    AsnStatusChange.objects.create(
        asn=locked,
        from_status=from_status,
        to_status=to_status,
        actor=_user(actor),
        reason=reason[:255],
        changed_at=now,
    )
    if isinstance(asn, Asn):
        for name in ("status", "receiving_started_at", "closed_at", "updated_at"):
            setattr(asn, name, getattr(locked, name))
    return locked


@transaction.atomic
def asn_cancel(*, asn: Asn, actor: Any = None, reason: str = "") -> Asn:
    """Cancel an ASN that nothing was received against yet."""
    cancelled = asn_transition(asn=asn, to_status=AsnStatus.CANCELLED, actor=actor, reason=reason or "cancelled")
    event_record(
        AsnCancelled(asn_id=cancelled.pk, reference=cancelled.reference, reason=reason),
        merchant_id=cancelled.merchant_id,
    )
    return cancelled


# --- Receiving -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReceivingStarted:
    asn: Asn
    handling_unit: HandlingUnit | None


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
            f"Site {site.code} has no open receiving location: create one in a receiving zone.",
            code="no_receiving_location",
        )
    return location


def _open_asn_by_code(code: str, merchant: Merchant | None) -> tuple[Asn, HandlingUnit | None]:
    open_states = (AsnStatus.ANNOUNCED, AsnStatus.RECEIVING)
    sscc = domain.sscc_normalize(code)
    if sscc is not None:
        units = HandlingUnit.objects.filter(sscc=sscc, asn__status__in=open_states).select_related("asn")
        if merchant is not None:
            units = units.filter(merchant=merchant)
        found_units = list(units[:2])
        if len(found_units) == 1:
            return found_units[0].asn, found_units[0]
    asns = Asn.objects.filter(reference=code.strip(), status__in=open_states)
    if merchant is not None:
        asns = asns.filter(merchant=merchant)
    found = list(asns[:2])
    if len(found) > 1:
        raise Conflict(
            f"Several merchants have an open ASN '{code}': scan one of its cartons (SSCC) instead.",
            code="ambiguous_asn",
        )
    if not found:
        raise NotFound(f"No open ASN or carton matches '{code}'.", code="unknown_asn", details={"code": code})
    return found[0], None


@transaction.atomic
def receiving_start(
    *, code: str, actor: Any = None, merchant: Merchant | None = None, location_code: str = ""
) -> ReceivingStarted:
    """Open (or resume) the receiving of the ASN whose reference, or one of whose SSCCs, was scanned."""
    asn, unit = _open_asn_by_code(code, merchant)
    asn = _asn_locked(asn)
    if asn.status == AsnStatus.ANNOUNCED:
        location = (
            location_get_by_code(site=asn.site, code=location_code)
            if location_code
            else receiving_location_default(site=asn.site)
        )
        asn = asn_transition(asn=asn, to_status=AsnStatus.RECEIVING, actor=actor, reason="receiving started")
        asn.receiving_location = location
        asn.save(update_fields=["receiving_location"])
    if unit is not None and unit.received_at is None:
        unit.received_at = clock.now()
        unit.save(update_fields=["received_at"])
    return ReceivingStarted(asn=asn, handling_unit=unit)


@dataclass(frozen=True)
class ScanOutcome:
    kind: str  # "item" | "handling_unit"
    receipt: Receipt | None = None
    line: AsnLine | None = None
    handling_unit: HandlingUnit | None = None


def _pick_line(lines: Iterable[AsnLine], sku_id: int, lot: str) -> AsnLine | None:
    same_sku = [line for line in lines if line.sku_id == sku_id]
    for wanted in (lambda li: li.lot == lot, lambda li: li.lot == "", lambda li: True):
        for line in same_sku:
            if wanted(line):
                return line
    return None


@transaction.atomic
def receiving_scan(
    *,
    asn: Asn,
    code: str,
    quantity: int = 1,
    damaged: bool = False,
    unexpected: bool = False,
    handling_unit: HandlingUnit | None = None,
    actor: Any = None,
) -> ScanOutcome:
    """Count what was scanned into the ASN's receiving location.

    An SSCC of this ASN switches the carton or pallet being unpacked. An item (GTIN, GS1-128 with lot and expiry,
    internal code) is received ``quantity`` times (times the GS1 count (30) when the label carries one); damaged
    units are received with the damaged status, to be put away to quarantine. A SKU that is not on the ASN is
    refused unless the operator says it is ``unexpected``.
    """
    asn = _asn_locked(asn)
    if asn.status != AsnStatus.RECEIVING:
        raise Conflict(
            f"ASN {asn.reference} is {asn.get_status_display()}: start receiving it first.", code="asn_not_receiving"
        )
    code = code.strip()
    if not code:
        raise ValidationFailed("Scan a code.", code="empty_scan")
    if quantity <= 0:
        raise ValidationFailed(
            "The quantity must be a whole number above zero.", code="invalid_quantity", details={"quantity": quantity}
        )
    sscc = domain.sscc_normalize(code)
    if sscc is not None:
        unit = HandlingUnit.objects.filter(asn=asn, sscc=sscc).first()
        if unit is None:
            raise NotFound(f"Carton or pallet {sscc} is not on ASN {asn.reference}.", code="unknown_handling_unit")
        if unit.received_at is None:
            unit.received_at = clock.now()
            unit.save(update_fields=["received_at"])
        return ScanOutcome(kind="handling_unit", handling_unit=unit)

    scan = scan_resolve(merchant=asn.merchant_id, code=code)
    if scan.sku is None:
        raise NotFound(
            f"Carton or pallet {scan.sscc or code} is not on ASN {asn.reference}.", code="unknown_handling_unit"
        )
    sku: Sku = scan.sku
    lines = list(asn.lines.select_for_update().order_by("id"))
    lot = scan.lot or ""
    # A supplier's label may carry a best-before date the merchant does not track: it is not kept then.
    expiry = scan.expiry if sku.expiry_tracked else None
    serial = (scan.serial or "") if sku.serial_tracked else ""
    if lot and not sku.lot_tracked:
        raise ValidationFailed(
            f"SKU {sku.code} is not lot-tracked, but the label carries lot {lot}.", code="lot_not_tracked"
        )
    announced = [line for line in lines if line.sku_id == sku.pk]
    if sku.lot_tracked and not lot:
        known = {line.lot for line in announced if line.lot}
        if len(known) != 1:
            raise ValidationFailed(f"SKU {sku.code} is lot-tracked: scan the label with its lot.", code="lot_required")
        lot = known.pop()
    if expiry is None and sku.expiry_tracked:
        expiry = next((line.expiry for line in announced if line.lot == lot and line.expiry), None)
    if expiry is None and sku.expiry_tracked:
        raise ValidationFailed(
            f"SKU {sku.code} has an expiry date: scan the label that carries it.", code="expiry_required"
        )
    if expiry is not None and expiry < clock.today():
        raise ValidationFailed(
            f"Expiry date {expiry.isoformat()} is already past: this cannot be received as stock.",
            code="expiry_in_past",
            details={"expiry": expiry.isoformat()},
        )
    units = quantity * (scan.quantity or 1)
    line = _pick_line(lines, sku.pk, lot)
    if line is None:
        if not unexpected:
            raise Conflict(
                f"SKU {sku.code} is not on ASN {asn.reference}. Confirm it as unexpected to receive it.",
                code="sku_not_on_asn",
                details={"sku": sku.code},
            )
        line = AsnLine.objects.create(asn=asn, sku=sku, expected_quantity=0, lot=lot, expiry=expiry, unexpected=True)
    location = asn.receiving_location or receiving_location_default(site=asn.site)
    status = StockStatus.DAMAGED if damaged else StockStatus.SELLABLE
    movement = stock_receive(
        sku=sku,
        location=location,
        quantity=units,
        lot=lot,
        expiry=expiry,
        serial=serial,
        status=status,
        actor=_user(actor),
        reason="damaged at receiving" if damaged else "receiving",
        document_type=DOCUMENT_ASN,
        document_id=str(asn.pk),
    )
    if handling_unit is not None and handling_unit.asn_id != asn.pk:
        handling_unit = None
    receipt = Receipt.objects.create(
        asn=asn,
        line=line,
        handling_unit=handling_unit,
        sku=sku,
        code=code[:200],
        quantity=units,
        lot=lot,
        expiry=expiry,
        damaged=damaged,
        location=location,
        received_by=_user(actor),
        received_at=clock.now(),
        movement_id=getattr(movement, "pk", None),
    )
    AsnLine.objects.filter(pk=line.pk).update(
        received_quantity=F("received_quantity") + units,
        damaged_quantity=F("damaged_quantity") + (units if damaged else 0),
    )
    line.refresh_from_db()
    _putaway_add(asn=asn, line=line, sku=sku, lot=lot, expiry=expiry, status=status, quantity=units, location=location)
    return ScanOutcome(kind="item", receipt=receipt, line=line, handling_unit=handling_unit)


def _putaway_add(
    *, asn: Asn, line: AsnLine, sku: Sku, lot: str, expiry: date | None, status: str, quantity: int, location: Location
) -> PutawayTask:
    """Add received units to the open putaway task of the same line, lot and status (or open one)."""
    task = (
        PutawayTask.objects.select_for_update()
        .filter(
            line=line, lot=lot, expiry=expiry, stock_status=status, from_location=location, status=PutawayStatus.OPEN
        )
        .order_by("id")
        .first()
    )
    if task is not None:
        PutawayTask.objects.filter(pk=task.pk).update(quantity=F("quantity") + quantity)
        task.refresh_from_db()
        return task
    return PutawayTask.objects.create(
        merchant_id=asn.merchant_id,
        asn=asn,
        line=line,
        sku=sku,
        lot=lot,
        expiry=expiry,
        stock_status=status,
        quantity=quantity,
        from_location=location,
    )


@transaction.atomic
def receiving_close(*, asn: Asn, actor: Any = None) -> DiscrepancyReport:
    """Close receiving: write the discrepancy report and tell the merchant (AsnReceived, AsnDiscrepancyReported)."""
    asn = _asn_locked(asn)
    if asn.status != AsnStatus.RECEIVING:
        raise Conflict(
            f"ASN {asn.reference} is {asn.get_status_display()}: only an ASN being received can be closed.",
            code="asn_not_receiving",
        )
    lines = list(asn.lines.select_related("sku").order_by("id"))
    counted = [
        domain.CountedLine(
            sku_id=line.sku_id,
            expected=line.expected_quantity,
            received=line.received_quantity,
            damaged=line.damaged_quantity,
            unexpected=line.unexpected,
        )
        for line in lines
    ]
    found = domain.discrepancies(counted)
    closed = asn_transition(asn=asn, to_status=AsnStatus.CLOSED, actor=actor, reason="receiving closed")
    report = DiscrepancyReport.objects.create(
        asn=closed,
        closed_by=_user(actor),
        created_at=closed.closed_at or clock.now(),
        expected_total=sum(c.expected for c in counted),
        received_total=sum(c.received for c in counted),
        damaged_total=sum(c.damaged for c in counted),
    )
    DiscrepancyLine.objects.bulk_create(
        DiscrepancyLine(
            report=report,
            sku_id=d.sku_id,
            kind=d.kind,
            expected_quantity=d.expected,
            received_quantity=d.received,
            damaged_quantity=d.damaged,
            difference=d.difference,
        )
        for d in found
    )
    codes = {line.sku_id: line.sku.code for line in lines}
    event_record(
        AsnReceived(
            asn_id=closed.pk,
            reference=closed.reference,
            closed_at=report.created_at.isoformat(),
            expected_units=report.expected_total,
            received_units=report.received_total,
            damaged_units=report.damaged_total,
            lines=[
                {
                    "sku_id": line.sku_id,
                    "sku": codes[line.sku_id],
                    "lot": line.lot,
                    "expiry": line.expiry.isoformat() if line.expiry else None,
                    "expected": line.expected_quantity,
                    "received": line.received_quantity,
                    "damaged": line.damaged_quantity,
                    "unexpected": line.unexpected,
                }
                for line in lines
            ],
        ),
        merchant_id=closed.merchant_id,
    )
    if found:
        event_record(
            AsnDiscrepancyReported(
                asn_id=closed.pk,
                reference=closed.reference,
                report_id=report.pk,
                discrepancies=[{**asdict(d), "sku": codes[d.sku_id]} for d in found],
            ),
            merchant_id=closed.merchant_id,
        )
    return report


# --- Putaway -------------------------------------------------------------------------------------------------------
@dataclass
class _Load:
    volume_mm3: int = 0
    weight_g: int = 0
    sku_ids: set[int] = field(default_factory=set)


def _loads_in_zones(zone_ids: Iterable[int]) -> dict[int, _Load]:
    """What every location of these zones holds, from inventory's stock list: one query per zone, not per place."""
    loads: dict[int, _Load] = {}
    for zone_id in sorted(set(zone_ids)):
        for row in stock_list(merchant_id=None, zone_id=zone_id):
            load = loads.setdefault(row.location_id, _Load())
            load.volume_mm3 += (row.sku.volume_mm3 or 0) * row.on_hand
            load.weight_g += (row.sku.weight_g or 0) * row.on_hand
            load.sku_ids.add(row.sku_id)
    return loads


def _location_snapshot(location: Location, load: _Load | None = None) -> domain.LocationSnapshot:
    if load is None:
        found = location_load(location=location)
        load = _Load(volume_mm3=found.volume_mm3, weight_g=found.weight_g, sku_ids=set(found.sku_ids))
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


def _snapshots(locations: list[Location]) -> list[domain.LocationSnapshot]:
    loads = _loads_in_zones(location.zone_id for location in locations)
    return [_location_snapshot(location, loads.get(location.pk, _Load())) for location in locations]


def _item_of(task: PutawayTask) -> domain.PutawayItem:
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


def _packing_point(site_id: int) -> tuple[float, float] | None:
    points = list(
        Location.objects.filter(site_id=site_id, zone__kind=ZoneKind.PACKING)
        .filter(zone_active_q(clock.now(), prefix="zone__"))
        .values_list("x_m", "y_m")
    )
    if not points:
        return None
    return (sum(float(x) for x, _y in points) / len(points), sum(float(y) for _x, y in points) / len(points))


def _putaway_candidates(site_id: int, zone_kinds: Iterable[str], merchant_id: int) -> list[Location]:
    return list(
        Location.objects.filter(site_id=site_id, zone__kind__in=list(zone_kinds), status=LocationStatus.ACTIVE)
        .filter(zone_active_q(clock.now(), prefix="zone__"))
        .filter(Q(zone__merchant__isnull=True) | Q(zone__merchant_id=merchant_id))
        .select_related("zone")
        .order_by("code", "id")
    )


@transaction.atomic
def putaway_suggest(*, task: PutawayTask) -> Location | None:
    """Work out (again) where a putaway task's goods should go, and remember it on the task."""
    task = PutawayTask.objects.select_for_update().select_related("sku", "from_location").get(pk=task.pk)
    if task.status != PutawayStatus.OPEN:
        return task.confirmed_location
    item = _item_of(task)
    origin = (float(task.from_location.x_m), float(task.from_location.y_m))
    site_id = task.from_location.site_id
    faces: list[domain.PickFaceSnapshot] = []
    if task.stock_status == StockStatus.SELLABLE:
        storage = _snapshots(_putaway_candidates(site_id, (ZoneKind.STORAGE,), task.merchant_id))
        open_faces = (
            PickFace.objects.filter(sku=task.sku, location__site_id=site_id)
            .filter(zone_active_q(clock.now(), prefix="location__zone__"))
            .select_related("location", "location__zone")
        )
        for face in open_faces:
            faces.append(
                domain.PickFaceSnapshot(
                    location=_location_snapshot(face.location),
                    sku_id=face.sku_id,
                    max_quantity=face.max_quantity,
                    on_hand=sku_on_hand_at(location=face.location, sku_id=face.sku_id),
                )
            )
    else:
        storage = _snapshots(_putaway_candidates(site_id, (ZoneKind.QUARANTINE,), task.merchant_id))
    suggestion = domain.putaway_suggest(
        item,
        pick_faces=faces,
        storage=storage,
        origin=origin,
        packing_point=_packing_point(site_id) if task.stock_status == StockStatus.SELLABLE else None,
    )
    location = Location.objects.get(pk=suggestion.location_id) if suggestion else None
    task.suggested_location = location
    task.suggestion_reason = suggestion.reason if suggestion else "none_fits"
    task.save(update_fields=["suggested_location", "suggestion_reason"])
    return location


_REFUSALS = {
    domain.BLOCKED: ("location_blocked", "Location {code} is blocked: choose another one."),
    domain.TOO_LITTLE_VOLUME: ("location_full", "Location {code} is full: {quantity} more units do not fit in it."),
    domain.TOO_HEAVY: ("location_full", "Location {code} cannot carry the weight of {quantity} more units."),
    domain.OTHER_SKU: ("location_other_sku", "Location {code} holds another SKU and takes one SKU only."),
}


def putaway_check(*, task: PutawayTask, location: Location) -> None:
    """Refuse (with a clear error) a location that cannot take this task's goods."""
    if location.site_id != task.from_location.site_id:
        raise ValidationFailed(f"Location {location.code} is in another site.", code="location_other_site")
    if location.status == LocationStatus.BLOCKED:
        raise Conflict(_REFUSALS[domain.BLOCKED][1].format(code=location.code), code="location_blocked")
    allowed = PUTAWAY_ZONES.get(task.stock_status, (ZoneKind.STORAGE, ZoneKind.PICKING))
    if location.zone.kind not in allowed:
        if task.stock_status == StockStatus.SELLABLE:
            message = f"Location {location.code} is not a storage or pick location."
        else:
            message = f"Damaged goods go to quarantine: {location.code} is not a quarantine location."
        raise ValidationFailed(message, code="location_wrong_zone", details={"zone_kind": location.zone.kind})
    if not Location.objects.filter(pk=location.pk).filter(zone_active_q(clock.now(), prefix="zone__")).exists():
        raise Conflict(f"Location {location.code} is in a zone that is closed.", code="location_blocked")
    if location.zone.merchant_id is not None and location.zone.merchant_id != task.merchant_id:
        raise Conflict(f"Location {location.code} is kept for another merchant.", code="location_other_merchant")
    face = PickFace.objects.filter(location=location).first()
    if face is not None:
        if face.sku_id != task.sku_id:
            raise Conflict(f"Location {location.code} is the pick face of another SKU.", code="location_other_sku")
        if sku_on_hand_at(location=location, sku_id=face.sku_id) + task.quantity > face.max_quantity:
            raise Conflict(
                f"Pick face {location.code} would go above its max of {face.max_quantity} units.",
                code="location_full",
            )
    refusal = domain.location_refusal(_location_snapshot(location), _item_of(task))
    if refusal is not None:
        code, message = _REFUSALS[refusal]
        raise Conflict(message.format(code=location.code, quantity=task.quantity), code=code)


@transaction.atomic
def putaway_confirm(*, task: PutawayTask, location_code: str, actor: Any = None) -> PutawayTask:
    """Put a task's goods where the operator scanned: the suggested location, or any other one that fits."""
    task = PutawayTask.objects.select_for_update().select_related("sku", "from_location").get(pk=task.pk)
    if task.status != PutawayStatus.OPEN:
        raise Conflict(f"Putaway task {task.code} is already done.", code="putaway_done")
    location = location_get_by_code(site=task.from_location.site_id, code=location_code.strip())
    putaway_check(task=task, location=location)
    movement = stock_move(
        sku=task.sku,
        from_location=task.from_location,
        to_location=location,
        quantity=task.quantity,
        lot=task.lot,
        expiry=task.expiry,
        status=task.stock_status,
        kind=MovementKind.PUTAWAY,
        actor=_user(actor),
        reason="putaway",
        document_type=DOCUMENT_PUTAWAY,
        document_id=str(task.pk),
    )
    task.confirmed_location = location
    task.confirmed_by = _user(actor)
    task.confirmed_at = clock.now()
    task.status = PutawayStatus.DONE
    task.movement_id = getattr(movement, "pk", None)
    task.save(update_fields=["confirmed_location", "confirmed_by", "confirmed_at", "status", "movement_id"])
    return task


# --- Pick faces and replenishment ----------------------------------------------------------------------------------
@transaction.atomic
def pick_face_set(
    *, merchant: Merchant, location: Location, sku: Sku, min_quantity: int, max_quantity: int
) -> PickFace:
    """Make ``location`` the pick face of ``sku`` with its min/max (or change them)."""
    if sku.merchant_id != merchant.pk:
        raise NotFound("SKU not found.", code="unknown_sku")
    if min_quantity < 0 or max_quantity <= 0 or min_quantity > max_quantity:
        raise ValidationFailed(
            "A pick face needs 0 ≤ min ≤ max and a max above zero.",
            code="invalid_min_max",
            details={"min_quantity": min_quantity, "max_quantity": max_quantity},
        )
    if location.zone.kind != ZoneKind.PICKING:
        raise ValidationFailed(f"Location {location.code} is not in a picking zone.", code="location_wrong_zone")
    existing = PickFace.objects.select_for_update().filter(location=location).first()
    if existing is not None and (existing.merchant_id != merchant.pk or existing.sku_id != sku.pk):
        raise Conflict(f"Location {location.code} is already the pick face of another SKU.", code="pick_face_taken")
    if existing is None:
        return PickFace.objects.create(
            merchant=merchant, location=location, sku=sku, min_quantity=min_quantity, max_quantity=max_quantity
        )
    existing.min_quantity = min_quantity
    existing.max_quantity = max_quantity
    existing.save(update_fields=["min_quantity", "max_quantity", "updated_at"])
    return existing


def _replenishment_source(face: PickFace) -> Location | None:
    """Where to take the units from: sellable stock of the SKU in a storage zone, earliest expiry, then oldest."""
    rows = [
        row
        for row in stock_list(merchant_id=face.merchant_id, sku_id=face.sku_id, status=StockStatus.SELLABLE)
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


@transaction.atomic
def replenishment_check(
    *, location_ids: Iterable[int] | None = None, sku_ids: Iterable[int] | None = None
) -> list[ReplenishmentTask]:
    """Open a replenishment task for every pick face below its min (one open task per face at most)."""
    faces = PickFace.objects.select_related("location")
    if location_ids is not None:
        faces = faces.filter(location_id__in=list(location_ids))
    if sku_ids is not None:
        faces = faces.filter(sku_id__in=list(sku_ids))
    open_faces = set(
        ReplenishmentTask.objects.filter(status=ReplenishmentStatus.OPEN, pick_face__in=faces).values_list(
            "pick_face_id", flat=True
        )
    )
    created: list[ReplenishmentTask] = []
    for face in faces.order_by("id"):
        if face.pk in open_faces:
            continue
        on_hand = sku_on_hand_at(location=face.location, sku_id=face.sku_id)
        need = domain.replenishment_need(
            on_hand=on_hand, min_quantity=face.min_quantity, max_quantity=face.max_quantity
        )
        if need <= 0:
            continue
        task = ReplenishmentTask.objects.create(
            merchant_id=face.merchant_id,
            pick_face=face,
            from_location=_replenishment_source(face),
            sku_id=face.sku_id,
            to_location=face.location,
            quantity=need,
            on_hand_at_creation=on_hand,
        )
        event_record(
            ReplenishmentRequested(
                task_id=task.pk,
                pick_face_id=face.pk,
                sku_id=face.sku_id,
                location_id=face.location_id,
                quantity=need,
            ),
            merchant_id=face.merchant_id,
        )
        created.append(task)
    return created


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


# --- CSV import (management command and back office) --------------------------------------------------------------
IMPORT_REQUIRED_COLUMNS = ("reference", "sku", "quantity")
IMPORT_ASN_COLUMNS = ("supplier", "expected_at", "site")


@dataclass(frozen=True)
class AsnImported:
    asns: list[Asn]


def asn_csv_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of an ASN CSV (comma, semicolon or tab separated, header row) with their line numbers in the file."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        raise ValidationFailed("The file is empty.", code="empty_file")
    try:
        dialect: Any = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(lines, dialect=dialect)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in IMPORT_REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ValidationFailed(
            f"Missing column(s): {', '.join(missing)}.", code="missing_columns", details={"missing": missing}
        )
    rows = []
    for number, raw in enumerate(reader, start=2):
        row = {(key or "").strip(): (value or "").strip() for key, value in raw.items() if isinstance(value, str)}
        if any(row.values()):
            rows.append((number, row))
    return rows


def _import_date(value: str, column: str, problems: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{column}: '{value}' is not a date (YYYY-MM-DD)")
        return None


@transaction.atomic
def asn_import(
    *,
    merchant: Merchant,
    rows: Sequence[tuple[int, dict[str, str]]],
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda items: items,
    actor: Any = None,
) -> AsnImported:
    """Create one ASN per reference from CSV rows, all or nothing.

    Any problem refuses the whole file with ``import_failed`` and ``details.rows``: ``{row number: [problems]}``.
    """
    errors: dict[int, list[str]] = defaultdict(list)
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, row in rows:
        if not row.get("reference"):
            errors[number].append("reference: required")
            continue
        groups.setdefault(row["reference"], []).append((number, row))
    sites = {site.code: site for site in Site.objects.all()}
    created: list[Asn] = []
    for reference, group in progress(list(groups.items())):
        first_number, first = group[0]
        problems_before = sum(len(found) for found in errors.values())
        lines: list[AsnLineInput] = []
        units: dict[str, str] = {}
        for number, row in group:
            for name in IMPORT_ASN_COLUMNS:
                if row.get(name, "") != first.get(name, ""):
                    errors[number].append(f"{name}: differs from row {first_number} of ASN {reference}")
            try:
                quantity = int(row.get("quantity", ""))
            except ValueError:
                errors[number].append(f"quantity: '{row.get('quantity', '')}' is not a whole number")
                quantity = 0
            expiry = _import_date(row.get("expiry", ""), "expiry", errors[number])
            sscc = row.get("sscc", "")
            if sscc:
                units.setdefault(sscc, row.get("unit_kind", "") or HandlingUnitKind.CARTON)
            lines.append(
                AsnLineInput(
                    sku_code=row.get("sku", ""), quantity=quantity, lot=row.get("lot", ""), expiry=expiry, sscc=sscc
                )
            )
        expected_at = _import_date(first.get("expected_at", ""), "expected_at", errors[first_number])
        site_code = first.get("site", "")
        site = sites.get(site_code) if site_code else (next(iter(sites.values())) if len(sites) == 1 else None)
        if site is None:
            errors[first_number].append(f"site: '{site_code}' is not a site" if site_code else "site: required")
        if site is None or sum(len(found) for found in errors.values()) > problems_before:
            continue
        try:
            with transaction.atomic():
                created.append(
                    asn_create(
                        merchant=merchant,
                        reference=reference,
                        site=site,
                        supplier=first.get("supplier", ""),
                        expected_at=expected_at,
                        lines=lines,
                        handling_units=[HandlingUnitInput(sscc=sscc, kind=kind) for sscc, kind in units.items()],
                        actor=actor,
                    )
                )
        except (ValidationFailed, Conflict) as exc:
            line_errors = exc.details.get("errors")
            if not line_errors:
                errors[first_number].append(exc.message)
            for problem in line_errors or []:
                index = int(problem.get("line", 0))
                number = group[index][0] if index < len(group) else first_number
                field = str(problem.get("field", "")).replace("handling_units.", "")
                errors[number].append(f"{field}: {problem['message']}")
    found = {number: problems for number, problems in sorted(errors.items()) if problems}
    if found:
        count = sum(len(problems) for problems in found.values())
        first_row = next(iter(found))
        raise ValidationFailed(
            f"{count} problem(s), first on row {first_row}: {found[first_row][0]}. Nothing was imported.",
            code="import_failed",
            details={"rows": found},
        )
    return AsnImported(asns=created)
