"""Reads of the catalog: SKU lists and lookups, what a scan means, packaging types a merchant may use."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, F, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from quai.catalog.domain import GtinInvalid, ParsedScan, ScanKind, gtin_normalize, parse_scan
from quai.catalog.models import Barcode, PackagingType, Sku
from quai.core.errors import NotFound
from quai.core.rows import Among
from quai.tenants.models import Merchant
from quai.tenants.scope import Scope


def sku_list(
    *,
    scope: Scope,
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
    """SKUs inside ``scope`` (one merchant's, or every merchant's for staff), filtered, in code order."""
    qs = Sku.objects.within(scope)
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


def sku_stamp(*, merchant_id: int) -> tuple[int, Any, int]:
    """What changes whenever one of the merchant's SKUs does, in one read of one row: how many there are, their
    latest ``updated_at`` (every save sets it) and the sum of their versions (every edit through the services raises
    it). A cache of the merchant's SKUs that finds the same stamp may keep them (intake's, per process)."""
    found = Sku.objects.within(Scope.merchant(merchant_id)).aggregate(
        count=Count("pk"), latest=Max("updated_at"), versions=Sum("version")
    )
    return (found["count"], found["latest"], found["versions"] or 0)


def _barcode_candidates(code: str) -> list[str]:
    """The stored forms a typed code may have: as typed, and its 14-digit GTIN form if it is a GTIN."""
    candidates = [code.strip()]
    with contextlib.suppress(GtinInvalid):
        candidates.append(gtin_normalize(code))
    return candidates


def sku_get(*, scope: Scope, sku_id: int) -> Sku:
    """One SKU inside ``scope``; another merchant's answers exactly like a missing one."""
    sku = Sku.objects.within(scope).prefetch_related("barcodes").filter(pk=sku_id).first()
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
class CodeHolder:
    """A SKU that answers to a code: by its own SKU code (``is_barcode`` False) or by one of its barcodes."""

    code: str
    sku_id: int
    sku_code: str
    is_barcode: bool


def code_holders(*, merchant_id: int, forms: Iterable[str]) -> list[CodeHolder]:
    """The SKU codes and barcodes of one merchant stored under one of ``forms`` (lower-case), SKU codes first.

    The services ask here before giving a SKU a code, so that a code designates one SKU whatever its kind.
    """
    wanted = sorted(set(forms))
    if not wanted:
        return []
    sku_codes = (
        Sku.objects.alias(code_lower=Lower("code"))
        .filter(merchant_id=merchant_id, code_lower__in=wanted)
        .order_by("pk")
        .values_list("code", "pk")
    )
    barcodes = (
        Barcode.objects.alias(code_lower=Lower("code"))
        .filter(merchant_id=merchant_id, code_lower__in=wanted)
        .order_by("pk")
        .values_list("code", "sku_id", "sku__code")
    )
    return [CodeHolder(code, sku_id, code, is_barcode=False) for code, sku_id in sku_codes] + [
        CodeHolder(code, sku_id, sku_code, is_barcode=True) for code, sku_id, sku_code in barcodes
    ]


@dataclass(frozen=True)
class ScanResult:
    """What a scan means for one merchant.

    ``sku`` and ``merchant_id`` are None only for an SSCC (a logistic unit, not a product: it belongs to no
    merchant's catalogue). Variable-measure goods carry their net weight (310n) and price (392n / 393n, the latter
    with its ISO 4217 numeric currency code) as read from the label.
    """

    code: str
    kind: ScanKind
    merchant_id: int | None
    sku: Sku | None
    gtin: str | None
    lot: str | None
    expiry: date | None
    serial: str | None
    sscc: str | None
    quantity: int
    net_weight_kg: Decimal | None = None
    price: Decimal | None = None
    price_currency_numeric: str | None = None


def scan_resolve(*, merchant: Merchant | int, code: str) -> ScanResult:
    """Resolve what a scanner typed to one of ``merchant``'s SKUs (plus lot, expiry, serial), or ``unknown_code``."""
    merchant_id = merchant if isinstance(merchant, int) else int(merchant.pk)
    return scan_resolve_among(merchant_ids=[merchant_id], code=code)[0]


def scan_resolve_among(
    *, merchant_ids: Sequence[int], code: str, tell_other_merchants: bool = False
) -> list[ScanResult]:
    """What a scanner typed means for each of ``merchant_ids``: one result per merchant whose SKU it designates.

    Warehouse screens scan items of several merchants at once (a location holds stock of many); they ask here in
    one query instead of once per merchant. Results come in the order of ``merchant_ids``; an SSCC gives one
    result without SKU or merchant. Nothing matched raises ``unknown_code`` with a message that says why.

    Within a merchant a code designates one SKU, whatever it is: a barcode (every SKU's primary GTIN is one) or
    the SKU's own code, compared without case. Should old rows still let a code reach two SKUs of one merchant,
    a barcode equal to the scanned GTIN wins over a barcode equal to the code as typed, which wins over a SKU code.

    ``tell_other_merchants`` is for staff screens only, never for a merchant's API key: when the code matches
    nothing among ``merchant_ids`` but is another merchant's, the message names that merchant.
    """
    parsed = parse_scan(code)
    if parsed.kind == "sscc" and parsed.gtin is None:
        return [_scan_result(parsed, merchant_id=None, sku=None)]
    barcode_codes = [candidate.lower() for candidate in (parsed.gtin, _as_typed(parsed)) if candidate]
    sku_codes = [parsed.code.lower()] if _as_typed(parsed) else []
    gtin_lower = (parsed.gtin or "").lower()
    rows: list[Sku] = []
    if barcode_codes and (merchant_ids or tell_other_merchants):
        matching_barcodes = Barcode.objects.alias(code_lower=Lower("code")).filter(code_lower__in=barcode_codes)
        # The barcode that made the SKU match, the scanned GTIN first: it ranks the SKUs of one merchant.
        barcode_hit = (
            matching_barcodes.filter(sku=OuterRef("pk"))
            .order_by(Case(When(code_lower=gtin_lower, then=Value(0)), default=Value(1)), "id")
            .values("code")[:1]
        )
        query = Sku.objects.alias(code_lower=Lower("code")).filter(
            Q(pk__in=matching_barcodes.values("sku_id")) | Q(code_lower__in=sku_codes)
        )
        if tell_other_merchants:
            query = query.select_related("merchant")
        else:
            query = query.filter(merchant_id__in=list(merchant_ids))
        rows = list(query.annotate(barcode_hit=Subquery(barcode_hit)).order_by("merchant_id", "id"))

    def rank(sku: Sku) -> int:
        hit = (getattr(sku, "barcode_hit", None) or "").lower()
        if hit and hit == gtin_lower:
            return 0
        return 1 if hit else 2

    best: dict[int, Sku] = {}
    for sku in rows:
        current = best.get(sku.merchant_id)
        if current is None or rank(sku) < rank(current):
            best[sku.merchant_id] = sku
    results = [
        _scan_result(parsed, merchant_id=merchant_id, sku=best[merchant_id])
        for merchant_id in dict.fromkeys(merchant_ids)
        if merchant_id in best
    ]
    if not results:
        others = [sku for merchant_id, sku in best.items() if merchant_id not in set(merchant_ids)]
        raise _unknown_code(parsed, others=others if tell_other_merchants else [])
    return results


def scans_resolve(*, merchant: Merchant | int, codes: Iterable[str]) -> dict[str, ScanResult | NotFound]:
    """``scan_resolve`` for many codes of one merchant (a pack line's scan bursts, a scanner's buffer): each
    distinct code answered exactly as ``scan_resolve`` answers it, the same SKU or the same ``unknown_code``
    refusal (returned, not raised), in two reads whatever their number — the merchant's barcodes under any of
    the codes' forms, then the SKUs they or a SKU code designate — where one by one costs a read per code.

    The forms are compared as ``scan_resolve_among`` compares them: lower-cased by the database on the stored
    side (``Lower``), by Python on the scanned side, so both forms agree on what matches."""
    merchant_id = merchant if isinstance(merchant, int) else int(merchant.pk)
    parsed = {code: parse_scan(code) for code in dict.fromkeys(codes)}
    forms: dict[str, tuple[list[str], list[str]]] = {}  # code → (barcode forms, SKU code forms), lower-cased
    for code, scan in parsed.items():
        if scan.kind == "sscc" and scan.gtin is None:
            continue
        typed = _as_typed(scan)
        forms[code] = (
            [candidate.lower() for candidate in (scan.gtin, typed) if candidate],
            [scan.code.lower()] if typed else [],
        )
    barcode_forms = sorted({form for wanted, _sku in forms.values() for form in wanted})
    sku_forms = sorted({form for _barcode, wanted in forms.values() for form in wanted})
    hits: dict[str, list[tuple[int, int, str, str]]] = {}  # a stored form → its barcodes (id, SKU, code, form)
    if barcode_forms:
        for barcode_id, sku_id, code, lowered in (
            Barcode.objects.annotate(code_lower=Lower("code"))
            .filter(Among(F("code_lower"), barcode_forms, texts=True), sku__merchant_id=merchant_id)
            .values_list("id", "sku_id", "code", "code_lower")
        ):
            hits.setdefault(lowered, []).append((barcode_id, sku_id, code, lowered))
    skus: dict[int, Sku] = {}
    by_code: dict[str, list[int]] = {}  # a SKU code as the database lowers it → its SKUs
    if barcode_forms:
        sku_ids = sorted({row[1] for rows in hits.values() for row in rows})
        for sku in (
            Sku.objects.alias(code_lower=Lower("code"))
            .filter(merchant_id=merchant_id)
            .filter(Q(Among(F("pk"), sku_ids)) | Q(Among(F("code_lower"), sku_forms, texts=True)))
            .annotate(scan_code_lower=Lower("code"))
            .order_by("id")
        ):
            by_code.setdefault(sku.scan_code_lower, []).append(sku.pk)
            del sku.scan_code_lower
            skus[sku.pk] = sku
    found: dict[str, ScanResult | NotFound] = {}
    for code, scan in parsed.items():
        if code not in forms:
            found[code] = _scan_result(scan, merchant_id=None, sku=None)
            continue
        barcode_wanted, sku_wanted = forms[code]
        gtin_lower = (scan.gtin or "").lower()
        own: dict[int, list[tuple[int, int, str, str]]] = {}
        for form in dict.fromkeys(barcode_wanted):
            for row in hits.get(form, []):
                own.setdefault(row[1], []).append(row)
        candidates = set(own) | {pk for form in sku_wanted for pk in by_code.get(form, [])}
        best: Sku | None = None
        best_rank = 3
        for pk in sorted(candidates):
            if pk not in skus:
                continue
            # The barcode that made the SKU match, the scanned GTIN first (``scan_resolve_among``'s barcode_hit),
            # then ranked as ``scan_resolve_among`` ranks it: the scanned GTIN, another barcode, the SKU's code.
            rows = own.get(pk)
            hit = min(rows, key=lambda row: (0 if row[3] == gtin_lower else 1, row[0]))[2] if rows else ""
            rank = (0 if hit.lower() == gtin_lower else 1) if hit else 2
            if rank < best_rank:
                best, best_rank = skus[pk], rank
        if best is None:
            found[code] = _unknown_code(scan, others=[])
        else:
            found[code] = _scan_result(scan, merchant_id=merchant_id, sku=best)
    return found


def _as_typed(parsed: ParsedScan) -> str | None:
    """The scan as typed, when it may be a code in its own right (a GS1 element string never is)."""
    return parsed.code if parsed.kind in ("gtin", "internal") and parsed.code else None


def _scan_result(parsed: ParsedScan, *, merchant_id: int | None, sku: Sku | None) -> ScanResult:
    return ScanResult(
        code=parsed.code,
        kind=parsed.kind,
        merchant_id=merchant_id,
        sku=sku,
        gtin=parsed.gtin or (sku.gtin if sku is not None and sku.gtin else None),
        lot=parsed.lot,
        expiry=parsed.expiry,
        serial=parsed.serial,
        sscc=parsed.sscc,
        quantity=parsed.quantity,
        net_weight_kg=parsed.net_weight_kg,
        price=parsed.price,
        price_currency_numeric=parsed.price_currency_numeric,
    )


def _unknown_code(parsed: ParsedScan, *, others: list[Sku]) -> NotFound:
    """``unknown_code``, with a message that says why nothing matched; ``details["reason"]`` says it for programs.

    Reasons: ``check_digit`` and ``date`` (the scan looks like a GTIN or a GS1 barcode but is not a valid one: a
    misread or a misprinted label), ``other_merchant`` (staff screens only), ``unknown`` and ``empty``.
    """
    details: dict[str, object] = {"code": parsed.code, "kind": parsed.kind, "gtin": parsed.gtin}
    problem = parsed.problem
    if others:
        owner = others[0].merchant
        details.update(reason="other_merchant", merchant_id=owner.pk)
        message = _("The code '%(code)s' is a code of another merchant (%(merchant)s): SKU %(sku)s.") % {
            "code": parsed.code,
            "merchant": owner.name,
            "sku": others[0].code,
        }
    elif problem is not None and problem.reason == "check_digit":
        details.update(reason="check_digit", ai=problem.ai, expected_check_digit=problem.expected_check_digit)
        message = _(
            "The code '%(code)s' is unknown, and its check digit is wrong: %(value)s should end with %(digit)s. "
            "Scan it again or check the label."
        ) % {"code": parsed.code, "value": problem.value, "digit": problem.expected_check_digit}
    elif problem is not None and problem.reason == "date":
        details.update(reason="date", ai=problem.ai)
        message = _(
            "The code '%(code)s' holds an impossible date: (%(ai)s) %(value)s is not a date (YYMMDD). Check the label."
        ) % {"code": parsed.code, "ai": problem.ai, "value": problem.value}
    elif problem is not None:
        details.update(reason="format", ai=problem.ai)
        message = _(
            "The code '%(code)s' is not a valid GS1 barcode: (%(ai)s) %(value)s does not follow its format."
        ) % {"code": parsed.code, "ai": problem.ai, "value": problem.value}
    elif parsed.gtin:
        details["reason"] = "unknown"
        message = _("No SKU of this merchant has the GTIN %(gtin)s read from the code '%(code)s'.") % {
            "gtin": parsed.gtin,
            "code": parsed.code,
        }
    elif parsed.code:
        details["reason"] = "unknown"
        message = _("The code '%(code)s' is unknown: it is neither a barcode nor a SKU code of this merchant.") % {
            "code": parsed.code
        }
    else:
        details["reason"] = "empty"
        message = _("The scan is empty.")
    return NotFound(message, code="unknown_code", details=details)


def packaging_type_list(
    *,
    scope: Scope,
    q: str | None = None,
    kind: str | None = None,
    active: bool | None = None,
    operator_only: bool = False,
) -> QuerySet[PackagingType]:
    """The operator's packaging types (shared by every merchant) plus those of the merchants inside ``scope``."""
    qs = PackagingType.objects.filter(Q(merchant__isnull=True) if operator_only else _packaging_usable(scope))
    if q:
        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q))
    if kind:
        qs = qs.filter(kind=kind)
    if active is not None:
        qs = qs.filter(active=active)
    return qs.order_by("code", "id")


def packaging_type_get(*, scope: Scope, packaging_type_id: int) -> PackagingType:
    """One packaging type usable inside ``scope`` (the operator's, or a merchant's own)."""
    packaging = PackagingType.objects.filter(_packaging_usable(scope)).filter(pk=packaging_type_id).first()
    if packaging is None:
        raise NotFound(
            _("Packaging type not found."),
            code="packaging_type_not_found",
            details={"packaging_type_id": packaging_type_id},
        )
    return packaging


def _packaging_usable(scope: Scope) -> Q:
    """Packaging types have no ``MerchantScopedQuerySet``: a row of no merchant is the operator's, for everyone."""
    if scope.is_all:
        return Q()
    return Q(merchant__isnull=True) | scope.q()
