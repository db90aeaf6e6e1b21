"""Writes for SKUs and their barcodes.

One planning routine (``_sku_plan``) checks a batch of SKU rows against each other and against the database and
decides what to write; ``sku_create``, ``sku_update`` and ``sku_bulk_upsert`` are that routine with one row or
many, so a GTIN, a duplicate code or a barcode clash is judged the same way whichever door it comes through.
Field cleaning (pure) lives in ``quai.catalog.cleaning``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from quai.catalog import selectors
from quai.catalog.cleaning import SKU_FIELDS, FieldError, barcode_clean, code_forms, sku_values_clean
from quai.catalog.events import SkuCreated, SkuUpdated
from quai.catalog.models import Barcode, BarcodeKind, Sku, SkuStatus
from quai.core import clock
from quai.core.errors import Conflict, NotFound, QuaiError, ValidationFailed
from quai.core.outbox import event_record
from quai.tenants.models import Merchant

BULK_MAX_ROWS = 1000
_CONFLICT_CODES = {"duplicate_sku_code", "duplicate_gtin", "duplicate_barcode", "code_taken"}


# --- Planning a batch of SKU writes ---------------------------------------------------------------------------


@dataclass
class _Row:
    index: int
    values: dict[str, Any]
    sku: Sku | None = None  # the existing SKU this row updates, None for a new one
    errors: list[FieldError] = field(default_factory=list)
    desired: dict[str, tuple[str, bool]] = field(default_factory=dict)  # code -> (kind, is_primary)
    changed_fields: list[str] = field(default_factory=list)
    is_new: bool = False

    @property
    def changed(self) -> bool:
        return self.is_new or bool(self.changed_fields)

    @property
    def label(self) -> str:
        return str(self.values.get("code") or (self.sku.code if self.sku else ""))


@dataclass(frozen=True)
class SkuUpsertResult:
    """What a bulk upsert did, row by row, in the order of the rows (``action``: created, updated, unchanged)."""

    items: list[tuple[int, Sku, str]]

    @property
    def created(self) -> int:
        return sum(1 for _index, _sku, action in self.items if action == "created")

    @property
    def updated(self) -> int:
        return sum(1 for _index, _sku, action in self.items if action == "updated")

    @property
    def unchanged(self) -> int:
        return sum(1 for _index, _sku, action in self.items if action == "unchanged")


def _duplicate_code_error(code: str, sku_id: int | None = None) -> FieldError:
    return FieldError(
        "code",
        "duplicate_sku_code",
        _("A SKU with code '%(code)s' already exists for this merchant.") % {"code": code},
        sku_id=sku_id,
    )


def _add_error(row: _Row, error: FieldError) -> None:
    """Record ``error`` unless the row already has one of the same code on the same field (two checks, one fault)."""
    if not any(existing.field == error.field and existing.code == error.code for existing in row.errors):
        row.errors.append(error)


def _merchant_lock(merchant_id: int) -> None:
    """Queue the catalog writes of one merchant: "one code, one SKU" spans SKU codes and barcodes, two tables that
    no database constraint can hold together, so two writers must not check them at the same time. FOR NO KEY
    UPDATE leaves rows that merely reference the merchant (stock, ASNs) free to be written meanwhile."""
    list(Merchant.objects.select_for_update(no_key=True).filter(pk=merchant_id).values_list("pk", flat=True))


@dataclass(frozen=True)
class _Claim:
    """A code a row wants its SKU to answer to: its SKU code (``field`` "code") or a barcode ("gtin", "barcodes")."""

    row: _Row
    field: str
    code: str

    @property
    def is_sku_code(self) -> bool:
        return self.field == "code"


def _claim_error(claim: _Claim, *, code: str, sku_code: str, sku_id: int, holder_is_sku_code: bool) -> FieldError:
    """The error for ``claim`` when an existing SKU outside the batch already answers to ``code``."""
    if claim.is_sku_code and holder_is_sku_code:
        return _duplicate_code_error(claim.code, sku_id=sku_id)
    if not claim.is_sku_code and not holder_is_sku_code:
        return FieldError(
            claim.field,
            "duplicate_gtin" if claim.field == "gtin" else "duplicate_barcode",
            _("The code '%(code)s' already belongs to SKU '%(sku)s' of this merchant.")
            % {"code": code, "sku": sku_code},
            sku_id=sku_id,
        )
    if claim.is_sku_code:
        message = _(
            "The code '%(code)s' is already a barcode of SKU '%(sku)s' of this merchant: a scan of it would find "
            "that SKU."
        )
    else:
        message = _(
            "The code '%(code)s' is already the code of SKU '%(sku)s' of this merchant: a scan of it would find "
            "that SKU."
        )
    return FieldError(claim.field, "code_taken", message % {"code": claim.code, "sku": sku_code}, sku_id=sku_id)


def _batch_claim_error(claim: _Claim, first: _Claim) -> FieldError:
    """The error for ``claim`` when an earlier row of the same batch (``first``) already answers to its code."""
    values = {"code": claim.code, "row": first.row.index}
    if claim.is_sku_code and first.is_sku_code:
        message = _("The code '%(code)s' is already used by row %(row)d of this batch.") % values
        return FieldError("code", "duplicate_sku_code", message)
    if not claim.is_sku_code and not first.is_sku_code:
        return FieldError(
            claim.field,
            "duplicate_gtin" if claim.field == "gtin" else "duplicate_barcode",
            _("The code '%(code)s' is also given to row %(row)d of this batch.") % values,
        )
    return FieldError(
        claim.field,
        "code_taken",
        _("The code '%(code)s' is also a SKU code or a barcode of row %(row)d of this batch.") % values,
    )


def _sku_plan(
    *,
    merchant: Merchant,
    raw_rows: Sequence[Mapping[str, Any]],
    create_only: bool = False,
    target: Sku | None = None,
) -> list[_Row]:
    """Clean and check every row, then decide each row's final barcodes. Errors land on the rows; nothing is written.

    ``create_only``: an existing code is a duplicate (sku_create). ``target``: the one row updates this SKU, whose
    code it may change (sku_update). Otherwise rows are matched to existing SKUs by code, whatever its case (bulk
    upsert). Within a merchant a code designates one SKU, whatever kind of code it is: no SKU code or barcode of a
    SKU may be, without regard to case or GTIN padding (``code_forms``), a SKU code or barcode of another SKU.
    """
    rows: list[_Row] = []
    for index, raw in enumerate(raw_rows):
        if not isinstance(raw, Mapping):
            rows.append(
                _Row(index, {}, errors=[FieldError("", "invalid_row", _("Each row must be an object of fields."))])
            )
            continue
        values, errors = sku_values_clean(raw)
        rows.append(_Row(index, values, errors=errors))
        if target is None and "code" not in values and not any(e.field == "code" for e in errors):
            rows[-1].errors.append(FieldError("code", "required", _("A SKU needs a code.")))

    # The same code twice in one batch (in any case): the second row would silently overwrite the first.
    first_row_of: dict[str, int] = {}
    for row in rows:
        code = row.values.get("code")
        if code is None:
            continue
        if code.lower() in first_row_of:
            row.errors.append(
                FieldError(
                    "code",
                    "duplicate_sku_code",
                    _("The code '%(code)s' is already used by row %(row)d of this batch.")
                    % {"code": code, "row": first_row_of[code.lower()]},
                )
            )
        else:
            first_row_of[code.lower()] = row.index

    _merchant_lock(merchant.pk)
    # Lock the SKUs this batch touches, in primary-key order, so concurrent batches cannot deadlock.
    codes = sorted({row.values["code"].lower() for row in rows if "code" in row.values})
    existing_qs = (
        Sku.objects.select_for_update()
        .alias(code_lower=Lower("code"))
        .filter(merchant=merchant, code_lower__in=codes)
        .order_by("pk")
    )
    existing = {sku.code.lower(): sku for sku in existing_qs}
    for row in rows:
        code = row.values.get("code")
        found = existing.get(code.lower()) if code is not None else None
        if target is not None:
            row.sku = target
            if found is not None and found.pk != target.pk:
                row.errors.append(_duplicate_code_error(code or "", sku_id=found.pk))
        elif found is not None:
            if create_only:
                row.errors.append(_duplicate_code_error(code or "", sku_id=found.pk))
            else:
                row.sku = found
        if row.sku is None and "name" not in row.values and not any(e.field == "name" for e in row.errors):
            row.errors.append(FieldError("name", "required", _("A new SKU needs a name.")))

    # Barcodes: work out each row's final set, then check that no code ends up with two SKUs.
    current: dict[int, dict[str, Barcode]] = {}
    touched_ids = [row.sku.pk for row in rows if row.sku is not None]
    for barcode in Barcode.objects.filter(sku_id__in=touched_ids).order_by("pk"):
        current.setdefault(barcode.sku_id, {})[barcode.code] = barcode
    for row in rows:
        have = current.get(row.sku.pk, {}) if row.sku is not None else {}
        primary = row.values.get("gtin", row.sku.gtin if row.sku else "")
        if "barcodes" in row.values:
            extras = list(row.values["barcodes"])
        else:
            extras = [(code, barcode.kind) for code, barcode in have.items() if not barcode.is_primary]
        desired: dict[str, tuple[str, bool]] = {}
        seen: set[str] = set()
        if primary:
            desired[primary] = (BarcodeKind.GTIN, True)
            seen.add(primary.lower())
        for code, kind in extras:
            # The GTIN listed again as an extra stays the primary; "sup-1" after "SUP-1" is the same code.
            if code.lower() not in seen:
                desired[code] = (kind, False)
                seen.add(code.lower())
        row.desired = desired

    # Every code each row's SKU will answer to, under every form a scan may look it up by.
    claimed_by: dict[str, _Claim] = {}
    for row in rows:
        final_code = row.values.get("code", row.sku.code if row.sku is not None else None)
        claims = [_Claim(row, "code", final_code)] if final_code else []
        claims += [
            _Claim(row, "gtin" if is_primary else "barcodes", code) for code, (_kind, is_primary) in row.desired.items()
        ]
        for claim in claims:
            for form in code_forms(claim.code):
                first = claimed_by.get(form)
                if first is None:
                    claimed_by[form] = claim
                elif first.row is not row:
                    _add_error(row, _batch_claim_error(claim, first))
    batch_sku_ids = {row.sku.pk for row in rows if row.sku is not None}
    for holder in selectors.code_holders(merchant_id=merchant.pk, forms=claimed_by):
        claim = claimed_by[holder.code.lower()]
        # A SKU of this batch is judged by what its row wants: one that gives a code up releases it.
        if holder.sku_id in batch_sku_ids or (claim.row.sku is not None and claim.row.sku.pk == holder.sku_id):
            continue
        _add_error(
            claim.row,
            _claim_error(
                claim,
                code=holder.code,
                sku_code=holder.sku_code,
                sku_id=holder.sku_id,
                holder_is_sku_code=not holder.is_barcode,
            ),
        )

    for row in rows:
        if row.sku is None:
            row.is_new = True
            continue
        have = current.get(row.sku.pk, {})
        row.changed_fields = [
            name for name, value in row.values.items() if name != "barcodes" and getattr(row.sku, name) != value
        ]
        if {code: (b.kind, b.is_primary) for code, b in have.items()} != row.desired:
            row.changed_fields.append("barcodes")
    return rows


def _rows_rejected(rows: list[_Row]) -> list[dict[str, Any]]:
    return [
        {"index": row.index, "code": row.label, "errors": [error.as_dict() for error in row.errors]}
        for row in rows
        if row.errors
    ]


def _single_row_error(row: _Row) -> QuaiError:
    """The first problem of a one-row write decides the error's code; the details list every problem."""
    first = row.errors[0]
    details = {"field": first.field, "errors": [error.as_dict() for error in row.errors]}
    message = " ".join(error.message for error in row.errors)
    if first.code in _CONFLICT_CODES:
        return Conflict(message, code=first.code, details=details)
    return ValidationFailed(message, code=first.code, details=details)


def _sku_apply(*, merchant: Merchant, rows: list[_Row]) -> list[tuple[int, Sku, str]]:
    """Write a checked plan: SKUs first, then barcodes (removals before additions, for the unique constraint)."""
    now = clock.now()
    results: list[tuple[int, Sku, str]] = []
    new_skus: list[tuple[_Row, Sku]] = []
    updated: list[Sku] = []
    for row in rows:
        values = {name: value for name, value in row.values.items() if name != "barcodes"}
        if row.sku is None:
            new_skus.append((row, Sku(merchant=merchant, **values)))
        elif row.changed:
            for name, value in values.items():
                setattr(row.sku, name, value)
            row.sku.version += 1
            row.sku.updated_at = now
            updated.append(row.sku)
    try:
        # A savepoint, so that a code inserted by a concurrent request becomes a clean 409, not a broken transaction.
        with transaction.atomic():
            if updated:
                Sku.objects.bulk_update(updated, [*SKU_FIELDS, "version", "updated_at"])
            if new_skus:
                Sku.objects.bulk_create([sku for _row, sku in new_skus])
    except IntegrityError:
        raise Conflict(
            _("Another request has just written one of these SKU codes; try again."), code="duplicate_sku_code"
        ) from None
    for row, sku in new_skus:
        if sku.pk is None:  # pragma: no cover - bulk_create returns keys on PostgreSQL and SQLite >= 3.35
            sku.pk = Sku.objects.get(merchant=merchant, code=sku.code).pk
        row.sku = sku

    to_delete: list[int] = []
    to_create: list[Barcode] = []
    touched = [row.sku.pk for row in rows if row.sku is not None and row.changed]
    have_by_sku: dict[int, dict[str, Barcode]] = {}
    for barcode in Barcode.objects.filter(sku_id__in=touched):
        have_by_sku.setdefault(barcode.sku_id, {})[barcode.code] = barcode
    for row in rows:
        assert row.sku is not None
        if not row.changed:
            continue
        have = have_by_sku.get(row.sku.pk, {})
        for code, barcode in have.items():
            if row.desired.get(code) != (barcode.kind, barcode.is_primary):
                to_delete.append(barcode.pk)
        for code, (kind, is_primary) in row.desired.items():
            kept = have.get(code)
            if kept is None or (kept.kind, kept.is_primary) != (kind, is_primary):
                to_create.append(Barcode(merchant=merchant, sku=row.sku, code=code, kind=kind, is_primary=is_primary))
    try:
        with transaction.atomic():
            Barcode.objects.filter(pk__in=to_delete).delete()
            Barcode.objects.bulk_create(to_create)
    except IntegrityError:
        raise Conflict(
            _("Another request has just given one of these barcodes to a SKU; try again."), code="duplicate_barcode"
        ) from None

    for row in rows:
        written = row.sku
        assert written is not None
        if row.is_new:
            action = "created"
            event_record(SkuCreated(written.pk, written.code, written.gtin, written.version), merchant_id=merchant.pk)
        elif row.changed:
            action = "updated"
            event_record(
                SkuUpdated(written.pk, written.code, written.gtin, written.version, row.changed_fields),
                merchant_id=merchant.pk,
            )
        else:
            action = "unchanged"
        results.append((row.index, written, action))
    return results


# --- SKUs -----------------------------------------------------------------------------------------------------


@transaction.atomic
def sku_create(
    *,
    merchant: Merchant,
    code: str,
    name: str,
    description: str = "",
    gtin: str = "",
    barcodes: Iterable[str] = (),
    length_mm: int | None = None,
    width_mm: int | None = None,
    height_mm: int | None = None,
    weight_g: int | None = None,
    lot_tracked: bool = False,
    expiry_tracked: bool = False,
    serial_tracked: bool = False,
    fragile: bool = False,
    hazmat: bool = False,
    hs_code: str = "",
    country_of_origin: str = "",
    status: str = SkuStatus.ACTIVE,
) -> Sku:
    """A new SKU, its GTIN kept as its primary barcode. Refused: a code the merchant already uses, a bad GTIN."""
    row = {
        "code": code,
        "name": name,
        "description": description,
        "gtin": gtin,
        "barcodes": list(barcodes),
        "length_mm": length_mm,
        "width_mm": width_mm,
        "height_mm": height_mm,
        "weight_g": weight_g,
        "lot_tracked": lot_tracked,
        "expiry_tracked": expiry_tracked,
        "serial_tracked": serial_tracked,
        "fragile": fragile,
        "hazmat": hazmat,
        "hs_code": hs_code,
        "country_of_origin": country_of_origin,
        "status": status,
    }
    (planned,) = _sku_plan(merchant=merchant, raw_rows=[row], create_only=True)
    if planned.errors:
        raise _single_row_error(planned)
    ((_index, sku, _action),) = _sku_apply(merchant=merchant, rows=[planned])
    return sku


@transaction.atomic
def sku_update(*, sku: Sku, version: int, data: Mapping[str, Any]) -> Sku:
    """Change the fields in ``data`` (absent fields stay as they are) of a SKU last read at ``version``.

    A stale ``version`` means someone else changed the SKU in between: 409 ``stale_version``, nothing written.
    """
    locked = Sku.objects.select_for_update().select_related("merchant").filter(pk=sku.pk).first()
    if locked is None:
        raise NotFound(_("SKU not found."), code="sku_not_found")
    if locked.version != version:
        raise Conflict(
            _("This SKU was changed by someone else (version %(current)d, yours is %(yours)d): reload it and retry.")
            % {"current": locked.version, "yours": version},
            code="stale_version",
            details={"current_version": locked.version},
        )
    (planned,) = _sku_plan(merchant=locked.merchant, raw_rows=[dict(data)], target=locked)
    if planned.errors:
        raise _single_row_error(planned)
    _sku_apply(merchant=locked.merchant, rows=[planned])
    return locked


def sku_row_check(*, merchant: Merchant, row: Mapping[str, Any], sku: Sku | None = None) -> list[FieldError]:
    """The problems ``sku_create`` (``sku`` None) or ``sku_update`` would find with ``row``, writing nothing.

    For forms that show problems beside their fields before saving (the back office).
    """
    # Planning takes row locks, which PostgreSQL allows only inside a transaction; this one is rolled back.
    with transaction.atomic():
        (planned,) = _sku_plan(merchant=merchant, raw_rows=[row], create_only=sku is None, target=sku)
        transaction.set_rollback(True)
    return planned.errors


@transaction.atomic
def sku_bulk_upsert(*, merchant: Merchant, rows: Sequence[Mapping[str, Any]]) -> SkuUpsertResult:
    """Create or update up to 1,000 SKUs matched by code, all or nothing.

    A row holds any SKU field plus ``barcodes`` (the SKU's extra codes: when given, they replace the current
    ones). Absent fields keep their current value, or their default for a new SKU. If any row is wrong, nothing
    is written and ``bulk_rejected`` lists every row's errors by index.
    """
    if len(rows) > BULK_MAX_ROWS:
        raise ValidationFailed(
            _("At most %(max)d SKUs per call; this one has %(count)d. Split it into smaller batches.")
            % {"max": BULK_MAX_ROWS, "count": len(rows)},
            code="too_many_rows",
            details={"max_rows": BULK_MAX_ROWS, "rows": len(rows)},
        )
    planned = _sku_plan(merchant=merchant, raw_rows=rows)
    rejected = _rows_rejected(planned)
    if rejected:
        raise ValidationFailed(
            _("%(count)d of %(total)d rows are not valid; nothing was written.")
            % {"count": len(rejected), "total": len(rows)},
            code="bulk_rejected",
            details={"rows": rejected},
        )
    return SkuUpsertResult(items=_sku_apply(merchant=merchant, rows=planned))


# --- Barcodes -------------------------------------------------------------------------------------------------


@transaction.atomic
def barcode_add(*, sku: Sku, code: str, kind: str | None = None) -> Barcode:
    """Another code that resolves to ``sku`` (a case GTIN, a supplier's label…). One code, one SKU per merchant.

    ``kind`` None: a code passing the GTIN check is a GTIN (stored as 14 digits), anything else an internal code.
    """
    stored, stored_kind = barcode_clean(code, kind)
    _merchant_lock(sku.merchant_id)
    for holder in selectors.code_holders(merchant_id=sku.merchant_id, forms=code_forms(stored)):
        if holder.is_barcode:
            raise Conflict(
                _("The code '%(code)s' already belongs to SKU '%(sku)s'.")
                % {"code": holder.code, "sku": holder.sku_code},
                code="duplicate_barcode",
                details={"field": "code", "sku_id": holder.sku_id},
            )
        if holder.sku_id != sku.pk:  # a SKU may answer to its own code as a barcode too
            raise Conflict(
                _(
                    "The code '%(code)s' is already the code of SKU '%(sku)s' of this merchant: a scan of it would "
                    "find that SKU."
                )
                % {"code": stored, "sku": holder.sku_code},
                code="code_taken",
                details={"field": "code", "sku_id": holder.sku_id},
            )
    try:
        with transaction.atomic():
            return Barcode.objects.create(merchant_id=sku.merchant_id, sku=sku, code=stored, kind=stored_kind)
    except IntegrityError:
        raise Conflict(
            _("The code '%(code)s' was just given to another SKU.") % {"code": stored}, code="duplicate_barcode"
        ) from None


@transaction.atomic
def barcode_remove(*, barcode: Barcode) -> None:
    """Forget an extra code. The primary GTIN goes only by changing the SKU's GTIN, so the two never disagree."""
    if barcode.is_primary:
        raise Conflict(
            _("This is the SKU's primary GTIN: change or clear the SKU's GTIN instead."),
            code="primary_barcode",
        )
    barcode.delete()
