"""Packing HTTP API: the parcels of an order and their photo, read by staff and by the order's merchant (scoped),
the scan burst of a batch-mode scanner and the close of many weighed parcels (packers only, as the pack station
screen). Packing itself happens at the pack station screen (/ops/packing/)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Router

from quai.core.errors import Forbidden, NotFound
from quai.orders.selectors import order_get
from quai.packing import selectors, services
from quai.packing.models import PACK_STATION_ROLES
from quai.packing.schemas import ParcelOut, ParcelScansIn, ParcelScansOut, ParcelsCloseIn, ParcelsCloseOut
from quai.tenants.access import user_has_staff_role
from quai.tenants.auth import principal_of

router = Router(tags=["packing"])

_IMAGE = {
    200: {
        "description": "The photo of the open parcel taken at the pack station.",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get("/orders/{order_id}/parcels", response=list[ParcelOut])
def order_parcels(request: HttpRequest, order_id: int) -> Any:
    scope = principal_of(request).scope()
    order_get(scope=scope, order_id=order_id)  # another merchant's order: order_not_found
    return list(selectors.parcels_of_order(scope=scope, order_id=order_id))


@router.post("/parcels/close", response=ParcelsCloseOut)
def parcels_close(request: HttpRequest, payload: ParcelsCloseIn) -> Any:
    """Label and close many weighed parcels in one go (an auto-packing line, a supervisor's batch at a pack table):
    each closed as if closed one by one, a refused one answered with its reason (a hold placed meanwhile, a weight
    not checked, the carrier down: it waits for its label) and the others closed. Packers, supervisors and admins
    only, as at the pack station screen; a parcel outside the caller's scope is ``parcel_not_found``."""
    principal = principal_of(request)
    principal.require_staff()
    if not user_has_staff_role(principal.user, PACK_STATION_ROLES):
        raise Forbidden(_("Closing parcels at the pack station is for packers."), code="packer_only")
    scope = principal.scope()
    asked = sorted(set(payload.parcel_ids))
    within = selectors.parcels_within(scope=scope, parcel_ids=asked)
    outcomes = (
        {
            o.parcel_id: o
            for o in services.parcels_close_many(
                parcels=sorted(within), actor=principal.user, label_format=payload.label_format
            )
        }
        if within
        else {}
    )
    after = selectors.parcels_within(scope=scope, parcel_ids=asked)
    results = []
    for pk in asked:
        outcome = outcomes.get(pk)
        error = outcome.error if outcome is not None else NotFound(_("Parcel not found."), code="parcel_not_found")
        results.append(
            {
                "parcel_id": pk,
                "result": "closed" if error is None else "refused",
                "reason": "" if error is None else error.code,
                "message": "" if error is None else str(error.message),
                "parcel": after.get(pk),
            }
        )
    return {"results": results}


@router.get("/parcels/{parcel_id}", response=ParcelOut)
def parcel_detail(request: HttpRequest, parcel_id: int) -> Any:
    return selectors.parcel_get(scope=principal_of(request).scope(), parcel_id=parcel_id)


@router.get("/parcels/{parcel_id}/photo", openapi_extra={"responses": _IMAGE})
def parcel_photo(request: HttpRequest, parcel_id: int) -> HttpResponse:
    """Evidence for customer service: what went into the box."""
    parcel = selectors.parcel_get(scope=principal_of(request).scope(), parcel_id=parcel_id)
    if not parcel.photo:
        raise NotFound(_("This parcel has no photo."), code="parcel_photo_not_found", details={"parcel_id": parcel_id})
    return HttpResponse(bytes(parcel.photo), content_type=parcel.photo_type or "image/jpeg")


@router.post("/parcels/{parcel_id}/scans", response=ParcelScansOut)
def parcel_scans(request: HttpRequest, parcel_id: int, payload: ParcelScansIn) -> Any:
    """A scan burst: every code applied in order as if scanned one by one (a refused code is recorded and answered
    with its reason, the others counted). Packers, supervisors and admins only, as at the pack station screen."""
    principal = principal_of(request)
    principal.require_staff()
    if not user_has_staff_role(principal.user, PACK_STATION_ROLES):
        raise Forbidden(_("Scanning at the pack station is for packers."), code="packer_only")
    parcel = selectors.parcel_get(scope=principal.scope(), parcel_id=parcel_id)
    outcomes = services.parcel_scans_record(parcel=parcel.pk, codes=payload.codes, actor=principal.user)
    return {
        "parcel": selectors.parcel_get(scope=principal.scope(), parcel_id=parcel_id),
        "scans": [
            {
                "code": o.code,
                "result": "ok" if o.error is None else "refused",
                "reason": "" if o.error is None else o.error.code,
                "message": "" if o.error is None else str(o.error.message),
                "sku_code": o.sku_code,
            }
            for o in outcomes
        ],
    }
