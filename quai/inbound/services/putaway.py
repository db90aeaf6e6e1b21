"""Putaway: received goods wait in putaway tasks, get a suggested location, and move there on the operator's scan."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from quai.catalog.models import Sku
from quai.core import clock
from quai.core.errors import Conflict, ValidationFailed
from quai.inbound import domain, selectors
from quai.inbound.models import Asn, AsnLine, PickFace, PutawayStatus, PutawayTask
from quai.inbound.services._shared import DOCUMENT_PUTAWAY, user_of
from quai.inventory.models import MovementKind, StockStatus
from quai.inventory.services import stock_move
from quai.warehouse.models import Location, LocationStatus, ZoneKind
from quai.warehouse.selectors import location_get_by_code

# Zones a putaway may end in, by the status of the stock put away.
PUTAWAY_ZONES: dict[str, tuple[str, ...]] = {
    StockStatus.SELLABLE: (ZoneKind.STORAGE, ZoneKind.PICKING),
    StockStatus.DAMAGED: (ZoneKind.QUARANTINE,),
    StockStatus.QUARANTINE: (ZoneKind.QUARANTINE,),
}


def putaway_task_add(
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
def putaway_suggest(*, task: PutawayTask) -> Location | None:
    """Work out (again) where a putaway task's goods should go, and remember it on the task."""
    task = PutawayTask.objects.select_for_update().select_related("sku", "from_location").get(pk=task.pk)
    if task.status != PutawayStatus.OPEN:
        return task.confirmed_location
    item = selectors.putaway_item(task)
    origin = (float(task.from_location.x_m), float(task.from_location.y_m))
    site_id = task.from_location.site_id
    faces: list[domain.PickFaceSnapshot] = []
    if task.stock_status == StockStatus.SELLABLE:
        storage = selectors.location_snapshots(
            selectors.putaway_candidates(site_id=site_id, zone_kinds=(ZoneKind.STORAGE,), merchant_id=task.merchant_id)
        )
        for face in selectors.open_pick_faces_of(sku_id=task.sku_id, site_id=site_id):
            faces.append(
                domain.PickFaceSnapshot(
                    location=selectors.location_snapshot(face.location),
                    sku_id=face.sku_id,
                    max_quantity=face.max_quantity,
                    on_hand=selectors.sku_on_hand_at(location=face.location, sku_id=face.sku_id),
                )
            )
    else:
        storage = selectors.location_snapshots(
            selectors.putaway_candidates(
                site_id=site_id, zone_kinds=(ZoneKind.QUARANTINE,), merchant_id=task.merchant_id
            )
        )
    suggestion = domain.putaway_suggest(
        item,
        pick_faces=faces,
        storage=storage,
        origin=origin,
        packing_point=selectors.packing_point(site_id=site_id) if task.stock_status == StockStatus.SELLABLE else None,
    )
    location = Location.objects.get(pk=suggestion.location_id) if suggestion else None
    task.suggested_location = location
    task.suggestion_reason = suggestion.reason if suggestion else "none_fits"
    task.save(update_fields=["suggested_location", "suggestion_reason"])
    return location


_REFUSALS = {
    domain.BLOCKED: ("location_blocked", gettext_lazy("Location %(code)s is blocked: choose another one.")),
    domain.TOO_LITTLE_VOLUME: (
        "location_full",
        gettext_lazy("Location %(code)s is full: %(quantity)s more units do not fit in it."),
    ),
    domain.TOO_HEAVY: (
        "location_full",
        gettext_lazy("Location %(code)s cannot carry the weight of %(quantity)s more units."),
    ),
    domain.OTHER_SKU: (
        "location_other_sku",
        gettext_lazy("Location %(code)s holds another SKU and takes one SKU only."),
    ),
}


def putaway_check(*, task: PutawayTask, location: Location) -> None:
    """Refuse (with a clear error) a location that cannot take this task's goods."""
    code = location.code
    if location.site_id != task.from_location.site_id:
        raise ValidationFailed(_("Location %(code)s is in another site.") % {"code": code}, code="location_other_site")
    if location.status == LocationStatus.BLOCKED:
        raise Conflict(str(_REFUSALS[domain.BLOCKED][1]) % {"code": code}, code="location_blocked")
    allowed = PUTAWAY_ZONES.get(task.stock_status, (ZoneKind.STORAGE, ZoneKind.PICKING))
    if location.zone.kind not in allowed:
        if task.stock_status == StockStatus.SELLABLE:
            message = _("Location %(code)s is not a storage or pick location.") % {"code": code}
        else:
            message = _("Damaged goods go to quarantine: %(code)s is not a quarantine location.") % {"code": code}
        raise ValidationFailed(message, code="location_wrong_zone", details={"zone_kind": location.zone.kind})
    if not selectors.location_is_in_open_zone(location=location):
        raise Conflict(_("Location %(code)s is in a zone that is closed.") % {"code": code}, code="location_blocked")
    if location.zone.merchant_id is not None and location.zone.merchant_id != task.merchant_id:
        raise Conflict(
            _("Location %(code)s is kept for another merchant.") % {"code": code}, code="location_other_merchant"
        )
    face = PickFace.objects.filter(location=location).first()
    if face is not None:
        if face.sku_id != task.sku_id:
            raise Conflict(
                _("Location %(code)s is the pick face of another SKU.") % {"code": code}, code="location_other_sku"
            )
        if selectors.sku_on_hand_at(location=location, sku_id=face.sku_id) + task.quantity > face.max_quantity:
            raise Conflict(
                _("Pick face %(code)s would go above its max of %(max)s units.")
                % {"code": code, "max": face.max_quantity},
                code="location_full",
            )
    refusal = domain.location_refusal(selectors.location_snapshot(location), selectors.putaway_item(task))
    if refusal is not None:
        error_code, text = _REFUSALS[refusal]
        raise Conflict(str(text) % {"code": code, "quantity": task.quantity}, code=error_code)


@transaction.atomic
def putaway_confirm(*, task: PutawayTask, location_code: str, actor: Any = None) -> PutawayTask:
    """Put a task's goods where the operator scanned: the suggested location, or any other one that fits."""
    task = PutawayTask.objects.select_for_update().select_related("sku", "from_location").get(pk=task.pk)
    if task.status != PutawayStatus.OPEN:
        raise Conflict(_("Putaway task %(task)s is already done.") % {"task": task.code}, code="putaway_done")
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
        actor=user_of(actor),
        reason="putaway",
        document_type=DOCUMENT_PUTAWAY,
        document_id=str(task.pk),
    )
    task.confirmed_location = location
    task.confirmed_by = user_of(actor)
    task.confirmed_at = clock.now()
    task.status = PutawayStatus.DONE
    task.movement_id = getattr(movement, "pk", None)
    task.save(update_fields=["confirmed_location", "confirmed_by", "confirmed_at", "status", "movement_id"])
    return task
