"""Reads of the catalog: SKU lists and lookups, what a scan means, packaging types a merchant may use."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from quai.catalog.domain import GtinInvalid, ScanKind, gtin_normalize, parse_scan
from quai.catalog.models import Barcode, PackagingType, Sku
from quai.core.errors import NotFound
from quai.tenants.models import Merchant


def _merchant_id(merchant: Merchant | int | None) -> int | None:
    if merchant is None or isinstance(merchant, int):
        return merchant
    return int(merchant.pk)


def sku_list(
    *,
    merchant_id: int | None,
    q: str | None = None,
    status: str | None = None,
    code: str | None = None,
    gtin: str | None = None,
    barcode: str | None = None,
    lot_tracked: bool | None = None,
    expiry_tracked: bool | None = None,
    serial_tracked: bool | None = None,
    fragile: bool | None = None,
    hazmat: bool | None = None,
) -> QuerySet[Sku]:
    """SKUs of one merchant (``merchant_id`` None: every merchant, for staff), filtered, in code order."""
    qs = Sku.objects.all()
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    if q:
        # "q" also finds a SKU by any of its barcodes, so a code read off a parcel finds the product.
        matching = Barcode.objects.filter(code__icontains=q.strip()).values("sku_id")
        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(gtin__icontains=q) | Q(pk__in=matching))
    if status:
        qs = qs.filter(status=status)
    if code:
        qs = qs.filter(code=code)
    if gtin:
        try:
            qs = qs.filter(gtin=gtin_normalize(gtin))
        except GtinInvalid:
            qs = qs.none()  # no SKU can carry an invalid GTIN
    if barcode:
        qs = qs.filter(barcodes__code__in=_barcode_candidates(barcode))
    for name, flag in (
        ("lot_tracked", lot_tracked),
        ("expiry_tracked", expiry_tracked),
        ("serial_tracked", serial_tracked),
        ("fragile", fragile),
        ("hazmat", hazmat),
    ):
        if flag is not None:
            qs = qs.filter(**{name: flag})
    return qs.prefetch_related("barcodes").distinct().order_by("merchant_id", "code", "id")


def _barcode_candidates(code: str) -> list[str]:
    """The stored forms a typed code may have: as typed, and its 14-digit GTIN form if it is a GTIN."""
    candidates = [code.strip()]
    with contextlib.suppress(GtinInvalid):
        candidates.append(gtin_normalize(code))
    return candidates


def sku_get(*, merchant: Merchant | int | None, sku_id: int) -> Sku:
    """One SKU; another merchant's answers exactly like a missing one. ``merchant`` None: staff, any merchant."""
    qs = Sku.objects.prefetch_related("barcodes")
    merchant_id = _merchant_id(merchant)
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    sku = qs.filter(pk=sku_id).first()
    if sku is None:
        raise NotFound(_("SKU not found."), code="sku_not_found", details={"sku_id": sku_id})
    return sku


def barcode_list(*, sku: Sku) -> QuerySet[Barcode]:
    return Barcode.objects.filter(sku=sku).order_by("-is_primary", "code", "id")


def barcode_get(*, sku: Sku, barcode_id: int) -> Barcode:
    barcode = Barcode.objects.filter(sku=sku, pk=barcode_id).first()
    if barcode is None:
        raise NotFound(_("Barcode not found."), code="barcode_not_found", details={"barcode_id": barcode_id})
    return barcode


@dataclass(frozen=True)
class ScanResult:
    """What a scan means for one merchant. ``sku`` is None only for an SSCC (a logistic unit, not a product)."""

    code: str
    kind: ScanKind
    sku: Sku | None
    gtin: str | None
    lot: str | None
    expiry: date | None
    serial: str | None
    sscc: str | None
    quantity: int


def scan_resolve(*, merchant: Merchant | int, code: str) -> ScanResult:
    """Resolve what a scanner typed to one of ``merchant``'s SKUs (plus lot, expiry, serial), or ``unknown_code``.

    Barcodes come first (they include every SKU's primary GTIN); an internal code may also be the SKU code itself.
    A GTIN that matches no barcode is tried as typed too, for merchants who registered it as an internal code.
    """
    merchant_id = merchant if isinstance(merchant, int) else int(merchant.pk)
    parsed = parse_scan(code)
    if parsed.kind == "sscc" and parsed.gtin is None:
        return ScanResult(
            code=parsed.code,
            kind="sscc",
            sku=None,
            gtin=None,
            lot=parsed.lot,
            expiry=parsed.expiry,
            serial=parsed.serial,
            sscc=parsed.sscc,
            quantity=parsed.quantity,
        )
    candidates = [parsed.gtin] if parsed.gtin else []
    if parsed.kind in ("gtin", "internal"):
        candidates.append(parsed.code)
    candidates = [candidate for candidate in candidates if candidate]
    sku: Sku | None = None
    if candidates:
        found = {
            barcode.code: barcode.sku
            for barcode in Barcode.objects.filter(merchant_id=merchant_id, code__in=candidates).select_related("sku")
        }
        sku = next((found[candidate] for candidate in candidates if candidate in found), None)
        if sku is None and parsed.kind == "internal":
            sku = Sku.objects.filter(merchant_id=merchant_id, code=parsed.code).first()
    if sku is None:
        if parsed.gtin:
            message = _("No SKU of this merchant has the GTIN %(gtin)s read from the code '%(code)s'.") % {
                "gtin": parsed.gtin,
                "code": parsed.code,
            }
        elif parsed.code:
            message = _("The code '%(code)s' is unknown: it is neither a barcode nor a SKU code of this merchant.") % {
                "code": parsed.code
            }
        else:
            message = _("The scan is empty.")
        raise NotFound(
            message,
            code="unknown_code",
            details={"code": parsed.code, "kind": parsed.kind, "gtin": parsed.gtin},
        )
    return ScanResult(
        code=parsed.code,
        kind=parsed.kind,
        sku=sku,
        gtin=parsed.gtin or (sku.gtin or None),
        lot=parsed.lot,
        expiry=parsed.expiry,
        serial=parsed.serial,
        sscc=parsed.sscc,
        quantity=parsed.quantity,
    )


def packaging_type_list(
    *,
    merchant_id: int | None,
    staff: bool = False,
    q: str | None = None,
    kind: str | None = None,
    active: bool | None = None,
    operator_only: bool = False,
) -> QuerySet[PackagingType]:
    """The operator's packaging types plus ``merchant_id``'s own. Staff without a merchant see every row."""
    qs = PackagingType.objects.all()
    if operator_only:
        qs = qs.filter(merchant__isnull=True)
    elif merchant_id is not None:
        qs = qs.filter(Q(merchant__isnull=True) | Q(merchant_id=merchant_id))
    elif not staff:
        qs = qs.filter(merchant__isnull=True)
    if q:
        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q))
    if kind:
        qs = qs.filter(kind=kind)
    if active is not None:
        qs = qs.filter(active=active)
    return qs.order_by("code", "id")


def packaging_type_get(*, merchant_id: int | None, packaging_type_id: int) -> PackagingType:
    """One packaging type the merchant may use (the operator's or its own); ``merchant_id`` None: staff, any."""
    qs = PackagingType.objects.filter(pk=packaging_type_id)
    if merchant_id is not None:
        qs = qs.filter(Q(merchant__isnull=True) | Q(merchant_id=merchant_id))
    packaging = qs.first()
    if packaging is None:
        raise NotFound(
            _("Packaging type not found."),
            code="packaging_type_not_found",
            details={"packaging_type_id": packaging_type_id},
        )
    return packaging
