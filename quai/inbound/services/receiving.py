"""Receiving by scan: opening an ASN's receiving, counting what is scanned, closing it with a discrepancy report.

Every function here owns its transaction and locks the ASN first, so two handhelds on one ASN queue up. Checks come
first, then the ledger is written through inventory's services: a refused scan leaves the stock ledger exactly as
it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.catalog.models import Sku
from quai.catalog.selectors import scan_resolve
from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.outbox import event_record
from quai.inbound import domain, selectors
from quai.inbound.events import AsnDiscrepancyReported, AsnReceived
from quai.inbound.models import (
    Asn,
    AsnLine,
    AsnStatus,
    DiscrepancyLine,
    DiscrepancyReport,
    HandlingUnit,
    Receipt,
)
from quai.inbound.services._shared import DOCUMENT_ASN, asn_locked, user_of
from quai.inbound.services.asns import asn_transition
from quai.inbound.services.putaway import putaway_task_add
from quai.inventory.models import StockStatus
from quai.inventory.services import stock_receive
from quai.tenants.models import Merchant
from quai.tenants.scope import Scope
from quai.warehouse.selectors import location_get_by_code


@dataclass(frozen=True)
class ReceivingStarted:
    asn: Asn
    handling_unit: HandlingUnit | None


@transaction.atomic
def receiving_start(
    *, code: str, actor: Any = None, merchant: Merchant | None = None, location_code: str = ""
) -> ReceivingStarted:
    """Open (or resume) the receiving of the ASN whose reference, or one of whose SSCCs, was scanned."""
    # ``merchant`` None is the warehouse floor, which receives for every merchant.
    scope = Scope.merchant(merchant) if merchant is not None else Scope.system("receiving on the warehouse floor")
    asn, unit = selectors.asn_open_by_code(scope=scope, code=code)
    asn = asn_locked(asn)
    if asn.status == AsnStatus.ANNOUNCED:
        location = (
            location_get_by_code(site=asn.site, code=location_code)
            if location_code
            else selectors.receiving_location_default(site=asn.site)
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
    """What a scan did. ``announced_lots`` is set when the lot received is not one the ASN announced for the SKU:
    the units are received (they are here), on a line of their own, and the report will show the difference."""

    kind: str  # "item" | "handling_unit"
    receipt: Receipt | None = None
    line: AsnLine | None = None
    handling_unit: HandlingUnit | None = None
    announced_lots: tuple[str, ...] = ()

    @property
    def lot_mismatch(self) -> bool:
        return bool(self.announced_lots)


def _pick_line(lines: Iterable[AsnLine], sku_id: int, lot: str) -> AsnLine | None:
    """The ASN line a received unit counts on: the one of its lot, else one announced without a lot.

    A lot that the ASN does not announce never lands on another lot's line: that would hide the difference.
    """
    same_sku = [line for line in lines if line.sku_id == sku_id]
    for wanted in (lambda li: li.lot == lot, lambda li: li.lot == ""):
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
    asn = asn_locked(asn)
    if asn.status != AsnStatus.RECEIVING:
        raise Conflict(
            _("ASN %(reference)s is %(status)s: start receiving it first.")
            % {"reference": asn.reference, "status": asn.get_status_display()},
            code="asn_not_receiving",
        )
    code = code.strip()
    if not code:
        raise ValidationFailed(_("Scan a code."), code="empty_scan")
    if quantity <= 0:
        raise ValidationFailed(
            _("The quantity must be a whole number above zero."),
            code="invalid_quantity",
            details={"quantity": quantity},
        )
    sscc = domain.sscc_normalize(code)
    if sscc is not None:
        unit = HandlingUnit.objects.filter(asn=asn, sscc=sscc).first()
        if unit is None:
            raise NotFound(
                _("Carton or pallet %(sscc)s is not on ASN %(reference)s.")
                % {"sscc": sscc, "reference": asn.reference},
                code="unknown_handling_unit",
            )
        if unit.received_at is None:
            unit.received_at = clock.now()
            unit.save(update_fields=["received_at"])
        return ScanOutcome(kind="handling_unit", handling_unit=unit)

    scan = scan_resolve(merchant=asn.merchant_id, code=code)
    if scan.sku is None:
        raise NotFound(
            _("Carton or pallet %(sscc)s is not on ASN %(reference)s.")
            % {"sscc": scan.sscc or code, "reference": asn.reference},
            code="unknown_handling_unit",
        )
    sku: Sku = scan.sku
    lines = list(asn.lines.select_for_update().order_by("id"))
    lot = scan.lot or ""
    # A supplier's label may carry a best-before date the merchant does not track: it is not kept then.
    expiry = scan.expiry if sku.expiry_tracked else None
    serial = (scan.serial or "") if sku.serial_tracked else ""
    if lot and not sku.lot_tracked:
        raise ValidationFailed(
            _("SKU %(sku)s is not lot-tracked, but the label carries lot %(lot)s.") % {"sku": sku.code, "lot": lot},
            code="lot_not_tracked",
        )
    announced = [line for line in lines if line.sku_id == sku.pk]
    if sku.lot_tracked and not lot:
        known = {line.lot for line in announced if line.lot}
        if len(known) != 1:
            raise ValidationFailed(
                _("SKU %(sku)s is lot-tracked: scan the label with its lot.") % {"sku": sku.code}, code="lot_required"
            )
        lot = known.pop()
    if expiry is None and sku.expiry_tracked:
        expiry = next((line.expiry for line in announced if line.lot == lot and line.expiry), None)
    if expiry is None and sku.expiry_tracked:
        raise ValidationFailed(
            _("SKU %(sku)s has an expiry date: scan the label that carries it.") % {"sku": sku.code},
            code="expiry_required",
        )
    if expiry is not None and expiry < clock.today():
        raise ValidationFailed(
            _("Expiry date %(date)s is already past: this cannot be received as stock.") % {"date": expiry.isoformat()},
            code="expiry_in_past",
            details={"expiry": expiry.isoformat()},
        )
    units = quantity * (scan.quantity or 1)
    line = _pick_line(lines, sku.pk, lot)
    announced_lots: tuple[str, ...] = ()
    if line is None and any(not other.unexpected for other in announced):
        # The SKU is announced, but under other lots: the units are here, so they are received, on a line of
        # their own that was not on the ASN, which the discrepancy report shows against the announced lots.
        announced_lots = tuple(sorted({other.lot for other in announced if other.lot and not other.unexpected}))
        line = AsnLine.objects.create(asn=asn, sku=sku, expected_quantity=0, lot=lot, expiry=expiry, unexpected=True)
    if line is None:
        if not unexpected:
            raise Conflict(
                _("SKU %(sku)s is not on ASN %(reference)s. Confirm it as unexpected to receive it.")
                % {"sku": sku.code, "reference": asn.reference},
                code="sku_not_on_asn",
                details={"sku": sku.code},
            )
        line = AsnLine.objects.create(asn=asn, sku=sku, expected_quantity=0, lot=lot, expiry=expiry, unexpected=True)
    location = asn.receiving_location or selectors.receiving_location_default(site=asn.site)
    status = StockStatus.DAMAGED if damaged else StockStatus.SELLABLE
    movement = stock_receive(
        sku=sku,
        location=location,
        quantity=units,
        lot=lot,
        expiry=expiry,
        serial=serial,
        status=status,
        actor=user_of(actor),
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
        received_by=user_of(actor),
        received_at=clock.now(),
        movement_id=getattr(movement, "pk", None),
    )
    AsnLine.objects.filter(pk=line.pk).update(
        received_quantity=F("received_quantity") + units,
        damaged_quantity=F("damaged_quantity") + (units if damaged else 0),
    )
    line.refresh_from_db()
    putaway_task_add(
        asn=asn, line=line, sku=sku, lot=lot, expiry=expiry, status=status, quantity=units, location=location
    )
    return ScanOutcome(
        kind="item", receipt=receipt, line=line, handling_unit=handling_unit, announced_lots=announced_lots
    )


@transaction.atomic
def receiving_close(*, asn: Asn, actor: Any = None) -> DiscrepancyReport:
    """Close receiving: write the discrepancy report and tell the merchant (AsnReceived, AsnDiscrepancyReported)."""
    asn = asn_locked(asn)
    if asn.status != AsnStatus.RECEIVING:
        raise Conflict(
            _("ASN %(reference)s is %(status)s: only an ASN being received can be closed.")
            % {"reference": asn.reference, "status": asn.get_status_display()},
            code="asn_not_receiving",
        )
    lines = list(asn.lines.select_related("sku").order_by("id"))
    counted = selectors.asn_counted_lines(lines=lines)
    found = domain.discrepancies(counted)
    closed = asn_transition(asn=asn, to_status=AsnStatus.CLOSED, actor=actor, reason="receiving closed")
    report = DiscrepancyReport.objects.create(
        asn=closed,
        closed_by=user_of(actor),
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
            lot=d.lot,
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
