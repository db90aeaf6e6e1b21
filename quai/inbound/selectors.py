"""Inbound reads: ASNs, their lines and reports, putaway and replenishment tasks, pick faces."""

from __future__ import annotations

from django.db.models import QuerySet

from quai.core.errors import NotFound
from quai.inbound.models import (
    Asn,
    AsnLine,
    DiscrepancyReport,
    PickFace,
    PutawayStatus,
    PutawayTask,
    Receipt,
    ReplenishmentTask,
)
from quai.tenants.principal import Principal


def asn_list(
    *,
    principal: Principal,
    merchant_id: int | None = None,
    status: str | None = None,
    q: str | None = None,
) -> QuerySet[Asn]:
    qs = Asn.objects.visible_to(principal)
    scope = principal.merchant_filter(merchant_id)
    if scope is not None:
        qs = qs.filter(merchant_id=scope)
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(reference__icontains=q) | qs.filter(supplier__icontains=q)
    return qs.select_related("site").order_by("-created_at", "-id")


def asn_get(*, principal: Principal, asn_id: int) -> Asn:
    """One ASN the principal may see (another merchant's answers like a missing one)."""
    asn = Asn.objects.visible_to(principal).select_related("site", "receiving_location").filter(pk=asn_id).first()
    if asn is None:
        raise NotFound("ASN not found.", code="asn_not_found", details={"asn_id": asn_id})
    return asn


def asn_lines(*, asn: Asn) -> QuerySet[AsnLine]:
    return asn.lines.select_related("sku", "handling_unit").order_by("id")


def asn_recent_receipts(*, asn: Asn, limit: int = 8) -> list[Receipt]:
    return list(asn.receipts.select_related("sku").order_by("-received_at", "-id")[:limit])


def discrepancy_report_get(*, principal: Principal, asn_id: int) -> DiscrepancyReport:
    asn = asn_get(principal=principal, asn_id=asn_id)
    report = DiscrepancyReport.objects.filter(asn=asn).select_related("asn").first()
    if report is None:
        raise NotFound("This ASN has no discrepancy report yet: receiving is not closed.", code="report_not_found")
    return report


def putaway_task_list(
    *,
    principal: Principal,
    merchant_id: int | None = None,
    status: str | None = None,
    asn_id: int | None = None,
) -> QuerySet[PutawayTask]:
    qs = PutawayTask.objects.visible_to(principal)
    scope = principal.merchant_filter(merchant_id)
    if scope is not None:
        qs = qs.filter(merchant_id=scope)
    if status:
        qs = qs.filter(status=status)
    if asn_id is not None:
        qs = qs.filter(asn_id=asn_id)
    return qs.select_related("sku", "from_location", "suggested_location", "confirmed_location").order_by(
        "created_at", "id"
    )


def putaway_task_get(*, principal: Principal, putaway_task_id: int) -> PutawayTask:
    task = putaway_task_list(principal=principal).filter(pk=putaway_task_id).first()
    if task is None:
        raise NotFound("Putaway task not found.", code="putaway_task_not_found")
    return task


def putaway_open_tasks(*, site_id: int | None = None) -> QuerySet[PutawayTask]:
    qs = PutawayTask.objects.filter(status=PutawayStatus.OPEN)
    if site_id is not None:
        qs = qs.filter(from_location__site_id=site_id)
    return qs.select_related("sku", "asn", "from_location", "suggested_location").order_by("created_at", "id")


def pick_face_list(
    *, principal: Principal, merchant_id: int | None = None, sku_id: int | None = None
) -> QuerySet[PickFace]:
    qs = PickFace.objects.visible_to(principal)
    scope = principal.merchant_filter(merchant_id)
    if scope is not None:
        qs = qs.filter(merchant_id=scope)
    if sku_id is not None:
        qs = qs.filter(sku_id=sku_id)
    return qs.select_related("location", "sku").order_by("location__code", "id")


def pick_face_get(*, principal: Principal, pick_face_id: int) -> PickFace:
    face = pick_face_list(principal=principal).filter(pk=pick_face_id).first()
    if face is None:
        raise NotFound("Pick face not found.", code="pick_face_not_found")
    return face


def replenishment_task_list(
    *, principal: Principal, merchant_id: int | None = None, status: str | None = None
) -> QuerySet[ReplenishmentTask]:
    qs = ReplenishmentTask.objects.visible_to(principal)
    scope = principal.merchant_filter(merchant_id)
    if scope is not None:
        qs = qs.filter(merchant_id=scope)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("sku", "from_location", "to_location").order_by("created_at", "id")
