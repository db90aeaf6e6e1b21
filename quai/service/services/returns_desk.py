"""The returns desk (DESIGN.md flow 6): a returned parcel is scanned, each unit scanned into the site's returns zone,
graded, restocked or quarantined, and the refund or the exchange released as its RMA says.

Stock moves only through the inventory's ledger services, never by writing its tables:

- a scanned unit enters the returns zone by ``stock_receive`` (kind ``return``, status ``quarantine``: an ungraded
  unit is never sellable), document ``rma``/<id>;
- grade A: a restock task (``ReturnUnit`` in ``to_restock`` with a suggested storage place); the operator scans the
  place and ``stock_move`` takes the unit from the returns zone to it as ``sellable`` (kind ``putaway``);
- grade B or C: ``stock_move`` to the site's quarantine zone at once, as ``quarantine`` (B, to repair) or
  ``damaged`` (C, to destroy).

When every unit the RMA announced is graded (or the operator finishes a parcel that came back short, every scanned
unit graded), the RMA is ``received`` — which releases an exchange's replacement order — the units received are
refunded at their lines' prices through ``refund_issue`` (bounded by what is left to refund; pushed to the shop),
and the RMA is ``closed``. Each step records its event in the same transaction as its change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _

from quai.catalog.selectors import scan_resolve
from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.outbox import event_record
from quai.core.states import actor_of
from quai.inventory.models import MovementKind, StockStatus
from quai.inventory.selectors import stock_list
from quai.inventory.services import stock_move, stock_receive
from quai.orders import selectors as orders_selectors
from quai.service import domain, warehouse
from quai.service.events import ReturnUnitGraded, ReturnUnitReceived, ReturnUnitRestocked
from quai.service.models import Refund, RefundState, ReturnUnit, ReturnUnitState, Rma, RmaKind, RmaStatus
from quai.service.services.actions import refund_issue, rma_transition
from quai.tenants.scope import Scope
from quai.warehouse.models import Location, LocationStatus, ZoneKind
from quai.warehouse.selectors import location_get_by_code, zone_active_q

DOCUMENT_RMA = "rma"
PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTO_TYPES = ("image/jpeg", "image/png")


def _not_found(code: str) -> NotFound:
    return NotFound(
        _("No open return matches '%(code)s' (RMA number, order number or tracking number).") % {"code": code},
        code="rma_not_found",
        details={"code": code},
    )


def desk_rma_find(*, scope: Scope, code: str) -> Rma:
    """The open return a scanned parcel belongs to: its RMA number, its order's number, or a tracking number of
    the order (the newest open RMA of that order)."""
    cleaned = code.strip()[:100]
    if not cleaned:
        raise _not_found(cleaned)
    rmas = Rma.objects.within(scope).filter(status__in=domain.RMA_OPEN)
    rma_id = domain.rma_reference_id(cleaned)
    if rma_id is not None:
        found = rmas.filter(pk=rma_id).first()
        if found is None:
            raise _not_found(cleaned)
        return found
    order_ids = list(
        orders_selectors.order_list(scope=scope).filter(external_id=cleaned).values_list("pk", flat=True)[:5]
    ) or warehouse.orders_by_tracking(scope=scope, references=[cleaned])
    found = rmas.filter(order_id__in=order_ids).order_by("-id").first()
    if found is None:
        raise _not_found(cleaned)
    return found


def desk_location(*, site_id: int, merchant_id: int, kind: str = ZoneKind.RETURNS) -> Location | None:
    """The first usable place of the site's zone of ``kind`` (returns, the desk's own; quarantine) for this
    merchant."""
    return (
        Location.objects.filter(site_id=site_id, zone__kind=kind, status=LocationStatus.ACTIVE)
        .filter(zone_active_q(clock.now(), prefix="zone__"))
        .filter(Q(zone__merchant__isnull=True) | Q(zone__merchant_id=merchant_id))
        .order_by("pick_sequence", "code", "id")
        .first()
    )


def restock_suggest(*, site_id: int, sku: Any) -> Location | None:
    """Where a unit graded A goes back: a storage place already holding the SKU, else the first storage place."""
    usable = (
        Location.objects.filter(site_id=site_id, status=LocationStatus.ACTIVE, zone__kind=ZoneKind.STORAGE)
        .filter(zone_active_q(clock.now(), prefix="zone__"))
        .filter(Q(zone__merchant__isnull=True) | Q(zone__merchant_id=sku.merchant_id))
    )
    holding = stock_list(scope=Scope.merchant(sku.merchant_id), sku_id=sku.pk, status=StockStatus.SELLABLE).values(
        "location_id"
    )
    return (
        usable.filter(pk__in=holding).order_by("pick_sequence", "code").first()
        or usable.order_by("pick_sequence", "code").first()
    )


def _rma_locked(scope: Scope, rma_id: int) -> Rma:
    rma = Rma.objects.within(scope).select_for_update().filter(pk=rma_id).first()
    if rma is None:
        raise NotFound(_("Return not found."), code="rma_not_found", details={"rma_id": rma_id})
    return rma


def _open_check(rma: Rma) -> None:
    if rma.status not in domain.RMA_OPEN:
        raise Conflict(
            _("Return %(rma)s is %(status)s: no more units can be scanned in.")
            % {"rma": rma.reference, "status": rma.get_status_display()},
            code="rma_not_open",
            details={"rma_id": rma.pk, "status": rma.status},
        )


def return_unit_receive(*, scope: Scope, rma_id: int, code: str, location: Location, actor: Any) -> ReturnUnit:
    """Scan one unit of a return into the returns zone: it must be a SKU the RMA announced, not yet all received."""
    if location.zone.kind != ZoneKind.RETURNS:
        raise ValidationFailed(
            _("Returned units are scanned into a returns zone, not %(code)s.") % {"code": location.code},
            code="returns_zone_required",
            details={"location_id": location.pk},
        )
    with transaction.atomic():
        rma = _rma_locked(scope, rma_id)
        _open_check(rma)
        scanned = scan_resolve(merchant=rma.merchant_id, code=code)
        sku = scanned.sku
        lines = list(rma.lines.annotate(received=Count("units")).order_by("id"))
        matching = [line for line in lines if sku is not None and line.sku_code == sku.code]
        line = next((candidate for candidate in matching if candidate.received < candidate.quantity), None)
        if sku is None or line is None:
            if matching:
                message = _("All %(quantity)d unit(s) of %(sku)s on %(rma)s are already received.") % {
                    "quantity": sum(m.quantity for m in matching),
                    "sku": matching[0].sku_code,
                    "rma": rma.reference,
                }
            else:
                message = _("%(code)s is not on return %(rma)s.") % {"code": code.strip(), "rma": rma.reference}
            raise ValidationFailed(
                message,
                code="return_unit_not_expected",
                details={"rma_id": rma.pk, "code": code.strip(), "expected": [m.sku_code for m in lines]},
            )
        lot = scanned.lot or ""
        stock_receive(
            sku=sku,
            location=location,
            quantity=1,
            lot=lot,
            expiry=scanned.expiry,
            serial=scanned.serial or "",
            status=StockStatus.QUARANTINE,
            kind=MovementKind.RETURN,
            actor=actor,
            reason=_("Return %(rma)s") % {"rma": rma.reference},
            document_type=DOCUMENT_RMA,
            document_id=str(rma.pk),
        )
        unit = ReturnUnit.objects.create(
            merchant_id=rma.merchant_id,
            rma=rma,
            rma_line=line,
            sku=sku,
            lot=lot,
            location=location,
            received_at=clock.now(),
            received_by=actor_of(actor).label,
        )
        event_record(
            ReturnUnitReceived(
                rma_id=rma.pk, order_id=rma.order_id, unit_id=unit.pk, sku_code=sku.code, location=location.code
            ),
            merchant_id=rma.merchant_id,
        )
    return unit


def _unit_locked(scope: Scope, unit_id: int) -> ReturnUnit:
    unit = (
        ReturnUnit.objects.within(scope)
        .select_for_update()
        .select_related("sku", "location", "location__zone", "rma")
        .filter(pk=unit_id)
        .first()
    )
    if unit is None:
        raise NotFound(_("Returned unit not found."), code="return_unit_not_found", details={"unit_id": unit_id})
    return unit


def _photo_check(photo: bytes | None, photo_type: str) -> None:
    if photo and (len(photo) > PHOTO_MAX_BYTES or photo_type not in PHOTO_TYPES):
        raise ValidationFailed(_("A photo is a JPEG or PNG of at most 5 MB."), code="photo_invalid")


def return_unit_grade(
    *,
    scope: Scope,
    unit_id: int,
    grade: str,
    actor: Any,
    note: str = "",
    photo: bytes | None = None,
    photo_type: str = "",
) -> ReturnUnit:
    """Grade a received unit: A waits for its restock scan; B and C go to the quarantine zone at once. When the
    RMA's last unit is graded, the return completes (refund or exchange released)."""
    try:
        value = domain.grade_check(grade)
    except ValueError:
        raise ValidationFailed(
            _("Grade a unit A (resell), B (repair) or C (destroy)."),
            code="invalid_grade",
            details={"fields": [{"field": "grade", "message": "A, B, C"}]},
        ) from None
    _photo_check(photo, photo_type)
    with transaction.atomic():
        unit = _unit_locked(scope, unit_id)
        if unit.state != ReturnUnitState.RECEIVED:
            raise Conflict(
                _("This unit is already graded %(grade)s.") % {"grade": unit.grade},
                code="return_unit_graded",
                details={"unit_id": unit.pk, "grade": unit.grade},
            )
        zone_kind, to_status = domain.GRADE_DESTINATIONS[value]
        who = actor_of(actor).label
        if value == domain.GRADE_A:
            destination = restock_suggest(site_id=unit.location.site_id, sku=unit.sku)
            unit.state = ReturnUnitState.TO_RESTOCK
            unit.restock_to = destination
        else:
            destination = desk_location(site_id=unit.location.site_id, kind=zone_kind, merchant_id=unit.merchant_id)
            if destination is None:
                raise ValidationFailed(
                    _("This site has no open quarantine zone to put the unit in."),
                    code="quarantine_zone_missing",
                    details={"site_id": unit.location.site_id},
                )
            stock_move(
                sku=unit.sku,
                from_location=unit.location,
                to_location=destination,
                quantity=1,
                lot=unit.lot,
                status=StockStatus.QUARANTINE,
                to_status=to_status,
                kind=MovementKind.MOVE,
                actor=actor,
                reason=_("Return %(rma)s graded %(grade)s") % {"rma": unit.rma.reference, "grade": value},
                document_type=DOCUMENT_RMA,
                document_id=str(unit.rma_id),
            )
            unit.state = ReturnUnitState.QUARANTINED
            unit.put_at = destination
            unit.done_at = clock.now()
        unit.grade = value
        unit.note = note.strip()[:2000]
        if photo:
            unit.photo, unit.photo_type = photo, photo_type
        unit.graded_at = clock.now()
        unit.graded_by = who
        unit.save()
        event_record(
            ReturnUnitGraded(
                rma_id=unit.rma_id,
                order_id=unit.rma.order_id,
                unit_id=unit.pk,
                sku_code=unit.sku.code,
                grade=value,
                to_status=to_status,
                location=destination.code if destination else "",
            ),
            merchant_id=unit.merchant_id,
        )
        if _all_announced_graded(unit.rma):
            return_complete(scope=scope, rma_id=unit.rma_id, actor=actor)
    return unit


def return_unit_restock(*, scope: Scope, unit_id: int, location_code: str, actor: Any) -> ReturnUnit:
    """The restock scan of a unit graded A: the place scanned must be storage or picking on the unit's site; the
    unit moves there from the returns zone, sellable again."""
    with transaction.atomic():
        unit = _unit_locked(scope, unit_id)
        if unit.state != ReturnUnitState.TO_RESTOCK:
            raise Conflict(
                _("This unit is not waiting to be put back in storage."),
                code="return_unit_not_to_restock",
                details={"unit_id": unit.pk, "state": unit.state},
            )
        place = location_get_by_code(site=unit.location.site_id, code=location_code)
        if place.zone.kind not in (ZoneKind.STORAGE, ZoneKind.PICKING):
            raise ValidationFailed(
                _("%(code)s is not a storage or picking place: a resold unit goes back there.") % {"code": place.code},
                code="restock_location_invalid",
                details={"location_id": place.pk, "zone_kind": place.zone.kind},
            )
        stock_move(
            sku=unit.sku,
            from_location=unit.location,
            to_location=place,
            quantity=1,
            lot=unit.lot,
            status=StockStatus.QUARANTINE,
            to_status=StockStatus.SELLABLE,
            kind=MovementKind.PUTAWAY,
            actor=actor,
            reason=_("Return %(rma)s graded A") % {"rma": unit.rma.reference},
            document_type=DOCUMENT_RMA,
            document_id=str(unit.rma_id),
        )
        unit.state = ReturnUnitState.RESTOCKED
        unit.put_at = place
        unit.done_at = clock.now()
        unit.save(update_fields=["state", "put_at", "done_at"])
        event_record(
            ReturnUnitRestocked(
                rma_id=unit.rma_id,
                order_id=unit.rma.order_id,
                unit_id=unit.pk,
                sku_code=unit.sku.code,
                location=place.code,
            ),
            merchant_id=unit.merchant_id,
        )
    return unit


def _all_announced_graded(rma: Rma) -> bool:
    announced = rma.lines.aggregate(total=Sum("quantity"))["total"] or 0
    graded = rma.units.exclude(state=ReturnUnitState.RECEIVED).count()
    return bool(announced) and graded >= announced


def return_complete(*, scope: Scope, rma_id: int, actor: Any) -> Rma:
    """Finish a returned parcel: every scanned unit graded, at least one. The RMA is received (an exchange's
    replacement is released by that step), the units received are refunded for a return, and the RMA closes."""
    with transaction.atomic():
        rma = _rma_locked(scope, rma_id)
        _open_check(rma)
        units = list(rma.units.select_related("rma_line__order_line"))
        if not units:
            raise Conflict(
                _("No unit of %(rma)s was scanned: scan the units first.") % {"rma": rma.reference},
                code="return_nothing_received",
                details={"rma_id": rma.pk},
            )
        ungraded = [unit.pk for unit in units if unit.state == ReturnUnitState.RECEIVED]
        if ungraded:
            raise Conflict(
                _("%(count)d unit(s) of %(rma)s still to grade.") % {"count": len(ungraded), "rma": rma.reference},
                code="return_units_ungraded",
                details={"rma_id": rma.pk, "unit_ids": ungraded},
            )
        rma_transition(rma=rma, to_status=RmaStatus.RECEIVED, actor=actor)
        if rma.kind == RmaKind.RETURN:
            order = orders_selectors.order_get(scope=Scope.merchant(rma.merchant_id), order_id=rma.order_id)
            refunded = Refund.objects.filter(order_id=order.pk).exclude(state=RefundState.FAILED).aggregate(
                total=Sum("amount")
            )["total"] or Decimal("0")
            amount = domain.return_refund_amount(
                unit_prices=[unit.rma_line.order_line.unit_price for unit in units], left=order.total - refunded
            )
            if amount > 0:
                refund_issue(
                    scope=Scope.merchant(rma.merchant_id),
                    order_id=order.pk,
                    actor=actor,
                    amount=amount,
                    reason=_("Return %(rma)s received: %(count)d unit(s)")
                    % {"rma": rma.reference, "count": len(units)},
                    ticket=rma.ticket,
                    rma=rma,
                )
        rma_transition(rma=rma, to_status=RmaStatus.CLOSED, actor=actor)
    return rma
