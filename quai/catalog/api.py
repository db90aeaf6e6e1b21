"""Catalog API: SKUs, their barcodes, scan resolution and packaging types. Handlers parse, call one service, shape.

A merchant (API key or portal user) only ever reaches its own SKUs: another merchant's answers 404 exactly like a
missing one. Staff act across merchants and say which one with ``merchant_id`` when creating.
"""

# No "from __future__ import annotations" here: Ninja reads Query[...] annotations at runtime, under @paginate.
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from quai.catalog import selectors, services
from quai.catalog.models import Barcode, PackagingKind, PackagingType, Sku, SkuStatus
from quai.catalog.schemas import (
    BarcodeCreateIn,
    BarcodeOut,
    PackagingTypeCreateIn,
    PackagingTypeOut,
    PackagingTypeUpdateIn,
    ScanResultOut,
    SkuBulkIn,
    SkuBulkOut,
    SkuCreateIn,
    SkuOut,
    SkuUpdateIn,
)
from quai.core.errors import Forbidden
from quai.tenants.auth import principal_of
from quai.tenants.scope import Scope

router = Router(tags=["catalog"])


class SkuFilters(Schema):
    merchant_id: int | None = None
    q: str | None = None
    status: SkuStatus | None = None
    code: str | None = None
    gtin: str | None = None
    barcode: str | None = None
    lot_tracked: bool | None = None
    expiry_tracked: bool | None = None
    serial_tracked: bool | None = None
    fragile: bool | None = None
    hazmat: bool | None = None


class PackagingTypeFilters(Schema):
    merchant_id: int | None = None
    q: str | None = None
    kind: PackagingKind | None = None
    active: bool | None = None


def _sku_for(request: HttpRequest, sku_id: int) -> Sku:
    return selectors.sku_get(scope=principal_of(request).scope(), sku_id=sku_id)


@router.get("/skus", response=list[SkuOut])
@paginate
def sku_list(request: HttpRequest, filters: Query[SkuFilters]):
    values = filters.dict()
    return selectors.sku_list(scope=principal_of(request).scope(values.pop("merchant_id")), **values)


@router.post("/skus", response={201: SkuOut})
def sku_create(request: HttpRequest, payload: SkuCreateIn) -> Status[Sku]:
    merchant = principal_of(request).merchant_for(payload.merchant_id)
    sku = services.sku_create(merchant=merchant, **payload.dict(exclude={"merchant_id"}))
    return Status(201, selectors.sku_get(scope=Scope.merchant(merchant), sku_id=sku.pk))


@router.post("/skus/bulk", response=SkuBulkOut)
def sku_bulk_upsert(request: HttpRequest, payload: SkuBulkIn) -> dict[str, object]:
    merchant = principal_of(request).merchant_for(payload.merchant_id)
    result = services.sku_bulk_upsert(merchant=merchant, rows=payload.rows)
    return {
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "items": [
            {"index": index, "id": sku.pk, "code": sku.code, "action": action} for index, sku, action in result.items
        ],
    }


@router.get("/skus/{sku_id}", response=SkuOut)
def sku_detail(request: HttpRequest, sku_id: int) -> Sku:
    return _sku_for(request, sku_id)


@router.patch("/skus/{sku_id}", response=SkuOut)
def sku_update(request: HttpRequest, sku_id: int, payload: SkuUpdateIn) -> Sku:
    sku = _sku_for(request, sku_id)
    data = payload.dict(exclude_unset=True)
    version = data.pop("version")
    services.sku_update(sku=sku, version=version, data=data)
    return _sku_for(request, sku_id)


@router.get("/skus/{sku_id}/barcodes", response=list[BarcodeOut])
@paginate
def barcode_list(request: HttpRequest, sku_id: int):
    return selectors.barcode_list(sku=_sku_for(request, sku_id))


@router.post("/skus/{sku_id}/barcodes", response={201: BarcodeOut})
def barcode_add(request: HttpRequest, sku_id: int, payload: BarcodeCreateIn) -> Status[Barcode]:
    sku = _sku_for(request, sku_id)
    return Status(201, services.barcode_add(sku=sku, code=payload.code, kind=payload.kind))


@router.delete("/skus/{sku_id}/barcodes/{barcode_id}", response={204: None})
def barcode_remove(request: HttpRequest, sku_id: int, barcode_id: int) -> Status[None]:
    barcode = selectors.barcode_get(sku=_sku_for(request, sku_id), barcode_id=barcode_id)
    services.barcode_remove(barcode=barcode)
    return Status(204, None)


@router.get("/scan", response=ScanResultOut)
def scan(request: HttpRequest, code: str, merchant_id: int | None = None) -> selectors.ScanResult:
    """What a scanner typed (GTIN, GS1-128 / DataMatrix element string, internal code) → SKU, lot, expiry, serial.

    Send the group separator (FNC1) as ``%1D``. An unknown code answers 404 ``unknown_code``.
    """
    merchant = principal_of(request).merchant_for(merchant_id)
    return selectors.scan_resolve(merchant=merchant, code=code)


@router.get("/packaging-types", response=list[PackagingTypeOut])
@paginate
def packaging_type_list(request: HttpRequest, filters: Query[PackagingTypeFilters]):
    values = filters.dict()
    return selectors.packaging_type_list(scope=principal_of(request).scope(values.pop("merchant_id")), **values)


@router.post("/packaging-types", response={201: PackagingTypeOut})
def packaging_type_create(request: HttpRequest, payload: PackagingTypeCreateIn) -> Status[PackagingType]:
    principal = principal_of(request)
    # Staff create the operator's packaging by leaving merchant_id empty; a merchant always creates its own.
    merchant = (
        None if principal.is_staff and payload.merchant_id is None else principal.merchant_for(payload.merchant_id)
    )
    packaging = services.packaging_type_create(merchant=merchant, **payload.dict(exclude={"merchant_id"}))
    return Status(201, packaging)


@router.get("/packaging-types/{packaging_type_id}", response=PackagingTypeOut)
def packaging_type_detail(request: HttpRequest, packaging_type_id: int) -> PackagingType:
    return selectors.packaging_type_get(scope=principal_of(request).scope(), packaging_type_id=packaging_type_id)


@router.patch("/packaging-types/{packaging_type_id}", response=PackagingTypeOut)
def packaging_type_update(
    request: HttpRequest, packaging_type_id: int, payload: PackagingTypeUpdateIn
) -> PackagingType:
    principal = principal_of(request)
    packaging = selectors.packaging_type_get(scope=principal.scope(), packaging_type_id=packaging_type_id)
    if packaging.merchant_id is None and not principal.is_staff:
        raise Forbidden(
            _("The operator's packaging types are shared by every merchant: only the warehouse staff change them."),
            code="staff_only",
        )
    data = payload.dict(exclude_unset=True)
    version = data.pop("version")
    return services.packaging_type_update(packaging_type=packaging, version=version, data=data)
