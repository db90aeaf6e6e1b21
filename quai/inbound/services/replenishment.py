"""Pick faces (a location kept for one SKU, with a min and a max) and their replenishment from storage."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils.translation import gettext as _

from quai.catalog.models import Sku
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.outbox import event_record
from quai.inbound import domain, selectors
from quai.inbound.events import ReplenishmentRequested
from quai.inbound.models import PickFace, ReplenishmentStatus, ReplenishmentTask
from quai.tenants.models import Merchant
from quai.warehouse.models import Location, ZoneKind


@transaction.atomic
def pick_face_set(
    *, merchant: Merchant, location: Location, sku: Sku, min_quantity: int, max_quantity: int
) -> PickFace:
    """Make ``location`` the pick face of ``sku`` with its min/max (or change them)."""
    if sku.merchant_id != merchant.pk:
        raise NotFound(_("SKU not found."), code="sku_not_found", details={"sku_id": sku.pk})
    if min_quantity < 0 or max_quantity <= 0 or min_quantity > max_quantity:
        raise ValidationFailed(
            _("A pick face needs 0 ≤ min ≤ max and a max above zero."),
            code="invalid_min_max",
            details={"min_quantity": min_quantity, "max_quantity": max_quantity},
        )
    if location.zone.kind != ZoneKind.PICKING:
        raise ValidationFailed(
            _("Location %(code)s is not in a picking zone.") % {"code": location.code}, code="location_wrong_zone"
        )
    existing = PickFace.objects.select_for_update().filter(location=location).first()
    if existing is not None and (existing.merchant_id != merchant.pk or existing.sku_id != sku.pk):
        raise Conflict(
            _("Location %(code)s is already the pick face of another SKU.") % {"code": location.code},
            code="pick_face_taken",
        )
    if existing is None:
        return PickFace.objects.create(
            merchant=merchant, location=location, sku=sku, min_quantity=min_quantity, max_quantity=max_quantity
        )
    existing.min_quantity = min_quantity
    existing.max_quantity = max_quantity
    existing.save(update_fields=["min_quantity", "max_quantity", "updated_at"])
    return existing


@transaction.atomic
def replenishment_check(
    *, location_ids: Iterable[int] | None = None, sku_ids: Iterable[int] | None = None
) -> list[ReplenishmentTask]:
    """Open a replenishment task for every pick face below its min (one open task per face at most)."""
    faces = PickFace.objects.select_related("location", "sku")  # the SKU for its code, in the event
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
        on_hand = selectors.sku_on_hand_at(location=face.location, sku_id=face.sku_id)
        need = domain.replenishment_need(
            on_hand=on_hand, min_quantity=face.min_quantity, max_quantity=face.max_quantity
        )
        if need <= 0:
            continue
        task = ReplenishmentTask.objects.create(
            merchant_id=face.merchant_id,
            pick_face=face,
            from_location=selectors.replenishment_source(face=face),
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
                sku_code=face.sku.code,
                location_code=face.location.code,
            ),
            merchant_id=face.merchant_id,
        )
        created.append(task)
    return created
