"""Inbound HTTP API: ASNs, discrepancy reports, putaway tasks, pick faces and replenishment tasks."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Status
from ninja.pagination import paginate

from quai.catalog.selectors import sku_list
from quai.core.errors import NotFound, ValidationFailed
from quai.inbound import selectors, services
from quai.inbound.models import Asn, DiscrepancyReport, PickFace, PutawayTask
from quai.inbound.schemas import (
    AsnCancelIn,
    AsnCreateIn,
    AsnDetailOut,
    AsnOut,
    DiscrepancyReportOut,
    PickFaceIn,
    PickFaceOut,
    PutawayTaskOut,
    ReplenishmentTaskOut,
)
from quai.tenants.auth import principal_of
from quai.tenants.scope import Scope
from quai.warehouse.selectors import location_get_by_code, site_list

router = Router(tags=["inbound"])


def site_for(code: str | None) -> Any:
    """The site named by ``code``, or the only site when the warehouse has one."""
    if code:
        site = site_list().filter(code=code).first()
        if site is None:
            raise NotFound(
                _("Site '%(site)s' not found.") % {"site": code}, code="site_not_found", details={"site": code}
            )
        return site
    sites = list(site_list().order_by("id")[:2])
    if len(sites) != 1:
        raise ValidationFailed(_("Say which site the goods go to (site)."), code="site_required")
    return sites[0]


@router.post("/asns", response={201: AsnDetailOut})
def asn_create(request: HttpRequest, payload: AsnCreateIn) -> Status[Asn]:
    principal = principal_of(request)
    merchant = principal.merchant_for(payload.merchant_id)
    asn = services.asn_create(
        merchant=merchant,
        reference=payload.reference,
        site=site_for(payload.site),
        supplier=payload.supplier,
        expected_at=payload.expected_at,
        notes=payload.notes,
        lines=[
            services.AsnLineInput(
                sku_code=line.sku, quantity=line.quantity, lot=line.lot, expiry=line.expiry, sscc=line.sscc
            )
            for line in payload.lines
        ],
        handling_units=[services.HandlingUnitInput(sscc=u.sscc, kind=u.kind) for u in payload.handling_units],
        actor=principal.user,
    )
    return Status(201, selectors.asn_get(scope=principal.scope(), asn_id=asn.pk))


@router.get("/asns", response=list[AsnOut])
@paginate
def asn_list(request: HttpRequest, merchant_id: int | None = None, status: str | None = None, q: str | None = None):
    return selectors.asn_list(scope=principal_of(request).scope(merchant_id), status=status, q=q)


@router.get("/asns/{asn_id}", response=AsnDetailOut)
def asn_detail(request: HttpRequest, asn_id: int) -> Asn:
    return selectors.asn_get(scope=principal_of(request).scope(), asn_id=asn_id)


@router.post("/asns/{asn_id}/cancel", response=AsnDetailOut)
def asn_cancel(request: HttpRequest, asn_id: int, payload: AsnCancelIn) -> Asn:
    principal = principal_of(request)
    asn = selectors.asn_get(scope=principal.scope(), asn_id=asn_id)
    services.asn_cancel(asn=asn, actor=principal.user, reason=payload.reason)
    return selectors.asn_get(scope=principal.scope(), asn_id=asn_id)


@router.get("/asns/{asn_id}/discrepancy-report", response=DiscrepancyReportOut)
def asn_discrepancy_report(request: HttpRequest, asn_id: int) -> DiscrepancyReport:
    return selectors.discrepancy_report_get(scope=principal_of(request).scope(), asn_id=asn_id)


@router.get("/putaway-tasks", response=list[PutawayTaskOut])
@paginate
def putaway_task_list(
    request: HttpRequest, merchant_id: int | None = None, status: str | None = None, asn_id: int | None = None
):
    return selectors.putaway_task_list(scope=principal_of(request).scope(merchant_id), status=status, asn_id=asn_id)


@router.get("/putaway-tasks/{putaway_task_id}", response=PutawayTaskOut)
def putaway_task_detail(request: HttpRequest, putaway_task_id: int) -> PutawayTask:
    return selectors.putaway_task_get(scope=principal_of(request).scope(), putaway_task_id=putaway_task_id)


@router.get("/pick-faces", response=list[PickFaceOut])
@paginate
def pick_face_list(request: HttpRequest, merchant_id: int | None = None, sku_id: int | None = None):
    return selectors.pick_face_list(scope=principal_of(request).scope(merchant_id), sku_id=sku_id)


@router.get("/pick-faces/{pick_face_id}", response=PickFaceOut)
def pick_face_detail(request: HttpRequest, pick_face_id: int) -> PickFace:
    return selectors.pick_face_get(scope=principal_of(request).scope(), pick_face_id=pick_face_id)


@router.post("/pick-faces", response={201: PickFaceOut})
def pick_face_set(request: HttpRequest, payload: PickFaceIn) -> Status[PickFace]:
    """Staff only: make a location the pick face of a SKU, with its min/max (sent again, it changes them)."""
    principal = principal_of(request)
    principal.require_staff()
    merchant = principal.merchant_for(payload.merchant_id)
    sku = sku_list(scope=Scope.merchant(merchant), code=payload.sku).first()
    if sku is None:
        raise NotFound(
            _("SKU '%(sku)s' not found.") % {"sku": payload.sku}, code="sku_not_found", details={"sku": payload.sku}
        )
    location = location_get_by_code(site=site_for(payload.site), code=payload.location)
    face = services.pick_face_set(
        merchant=merchant,
        location=location,
        sku=sku,
        min_quantity=payload.min_quantity,
        max_quantity=payload.max_quantity,
    )
    services.replenishment_check(location_ids=[face.location_id])
    return Status(201, selectors.pick_face_get(scope=principal.scope(), pick_face_id=face.pk))


@router.get("/replenishment-tasks", response=list[ReplenishmentTaskOut])
@paginate
def replenishment_task_list(request: HttpRequest, merchant_id: int | None = None, status: str | None = None):
    return selectors.replenishment_task_list(scope=principal_of(request).scope(merchant_id), status=status)
