"""Writes for SKUs, their barcodes and packaging types. Every catalog write goes through here.

One planning routine (``_sku_plan``) checks a batch of SKU rows against each other and against the database and
decides what to write; ``sku_create``, ``sku_update`` and ``sku_bulk_upsert`` are that routine with one row or
many, so a GTIN, a duplicate code or a barcode clash is judged the same way whichever door it comes through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from quai.catalog.domain import GtinInvalid, gtin_is_valid, gtin_normalize
from quai.catalog.events import SkuCreated, SkuUpdated
from quai.catalog.models import Barcode, BarcodeKind, PackagingKind, PackagingType, Sku, SkuStatus
from quai.core import clock
from quai.core.errors import Conflict, NotFound, QuaiError, ValidationFailed
from quai.core.outbox import event_record
from quai.tenants.models import Merchant

BULK_MAX_ROWS = 1000
_INT_MAX = 2_147_483_647  # PositiveIntegerField's ceiling on every database Quai runs on

SKU_TEXT_FIELDS = {"code": 64, "name": 255, "description": 10_000}
SKU_INT_FIELDS = ("length_mm", "width_mm", "height_mm", "weight_g")
SKU_BOOL_FIELDS = ("lot_tracked", "expiry_tracked", "serial_tracked", "fragile", "hazmat")
SKU_FIELDS = (
    *SKU_TEXT_FIELDS,
    "gtin",
    *SKU_INT_FIELDS,
    *SKU_BOOL_FIELDS,
    "hs_code",
    "country_of_origin",
    "status",
)
# What a bulk row or CSV line may carry besides the SKU's own fields.
SKU_ROW_FIELDS = (*SKU_FIELDS, "barcodes")

_TRUE = {"1", "true", "yes", "y", "oui", "o", "vrai", "x"}
_FALSE = {"0", "false", "no", "n", "non", "faux", ""}
_CONFLICT_CODES = {"duplicate_sku_code", "duplicate_gtin", "duplicate_barcode"}


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one row; ``code`` is stable, ``message`` is for people."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


# --- Field cleaning -------------------------------------------------------------------------------------------


def gtin_error(field_name: str, value: str, exc: GtinInvalid) -> FieldError:
    if exc.reason == "check_digit":
        message = _("'%(value)s' is not a valid GTIN: its check digit should be %(digit)s.") % {
            "value": value,
            "digit": exc.expected_check_digit,
        }
    elif exc.reason == "length":
        message = _("'%(value)s' is not a valid GTIN: a GTIN has 8, 12, 13 or 14 digits.") % {"value": value}
    else:
        message = _("'%(value)s' is not a valid GTIN: a GTIN is made of digits only.") % {"value": value}
    return FieldError(field_name, "invalid_gtin", message)


def _clean_text(name: str, value: Any, max_length: int, errors: list[FieldError]) -> str | None:
    if value is None:
        value = ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        errors.append(FieldError(name, "not_text", _("%(field)s must be text.") % {"field": name}))
        return None
    text = str(value).strip()
    if len(text) > max_length:
        errors.append(
            FieldError(
                name,
                "too_long",
                _("%(field)s is too long: %(length)d characters, at most %(max)d.")
                % {"field": name, "length": len(text), "max": max_length},
            )
        )
        return None
    return text


def _clean_int(name: str, value: Any, errors: list[FieldError]) -> int | bool | None:
    """An int, None (empty), or False when the value is wrong (the error is recorded)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().removeprefix("-").isdigit():
        number = int(value.strip())
    if number is None:
        errors.append(
            FieldError(
                name,
                "not_an_integer",
                _("%(field)s must be a whole number, not '%(value)s'.") % {"field": name, "value": value},
            )
        )
        return False
    if number < 0 or number > _INT_MAX:
        errors.append(
            FieldError(
                name,
                "out_of_range",
                _("%(field)s must be between 0 and %(max)d, not %(value)d.")
                % {"field": name, "max": _INT_MAX, "value": number},
            )
        )
        return False
    return number


def _clean_bool(name: str, value: Any, errors: list[FieldError]) -> bool | None:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    errors.append(
        FieldError(
            name,
            "not_a_boolean",
            _("%(field)s must be yes or no (true/false, 1/0), not '%(value)s'.") % {"field": name, "value": value},
        )
    )
    return None


def hs_code_clean(value: str) -> str:
    """The customs HS code as digits (6 to 10): people write it with dots and spaces (6109.10.00)."""
    return "".join(ch for ch in value if ch not in ". -")


def _split_codes(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, str):
        # CSV cells list extra barcodes separated by "|" (";" and "," are common in spreadsheets too).
        for separator in (";", ","):
            value = value.replace(separator, "|")
        return [part.strip() for part in value.split("|") if part.strip()]
    if isinstance(value, list | tuple) and all(
        isinstance(item, str | int) and not isinstance(item, bool) for item in value
    ):
        return [str(item).strip() for item in value if str(item).strip()]
    return None


def barcode_clean(code: Any, kind: str | None = None, *, field_name: str = "code") -> tuple[str, str]:
    """(stored code, kind) for a barcode, or ``ValidationFailed``.

    A code that passes the GTIN check is stored as a 14-digit GTIN unless the caller says it is an internal or
    supplier code: scans are normalised the same way, so the stored form is the one a scan looks up.
    """
    text = str(code or "").strip()
    if not text:
        raise ValidationFailed(_("A barcode cannot be empty."), code="required", details={"field": field_name})
    if len(text) > 64:
        raise ValidationFailed(
            _("A barcode has at most 64 characters."), code="too_long", details={"field": field_name}
        )
    if any(ord(ch) < 32 for ch in text):
        # A group separator or newline inside a stored code would mean a whole GS1 scan was saved by mistake.
        raise ValidationFailed(
            _("A barcode cannot contain control characters such as a GS1 separator."),
            code="invalid_barcode",
            details={"field": field_name},
        )
    if kind is not None and kind not in BarcodeKind.values:
        raise ValidationFailed(
            _("Unknown barcode kind '%(kind)s'.") % {"kind": kind},
            code="invalid_barcode_kind",
            details={"field": "kind"},
        )
    if kind == BarcodeKind.GTIN or (kind is None and gtin_is_valid(text)):
        try:
            return gtin_normalize(text), BarcodeKind.GTIN
        except GtinInvalid as exc:
            error = gtin_error(field_name, text, exc)
            raise ValidationFailed(error.message, code=error.code, details={"field": field_name}) from None
    return text, kind or BarcodeKind.INTERNAL


def sku_values_clean(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    """Clean the SKU fields present in ``values`` (typed JSON or the strings of a CSV line alike).

    Returns the cleaned values (absent keys stay absent: the caller decides what absence means) and the errors.
    ``barcodes`` comes back as a list of (code, kind).
    """
    errors: list[FieldError] = []
    cleaned: dict[str, Any] = {}
    for key in values:
        if key not in SKU_ROW_FIELDS:
            errors.append(FieldError(str(key), "unknown_field", _("Unknown field '%(field)s'.") % {"field": key}))
    for name, max_length in SKU_TEXT_FIELDS.items():
        if name in values:
            text = _clean_text(name, values[name], max_length, errors)
            if text is not None:
                cleaned[name] = text
    if "gtin" in values:
        raw = "" if values["gtin"] is None else str(values["gtin"]).strip()
        if not raw:
            cleaned["gtin"] = ""
        else:
            try:
                cleaned["gtin"] = gtin_normalize(raw)
            except GtinInvalid as exc:
                errors.append(gtin_error("gtin", raw, exc))
    for name in SKU_INT_FIELDS:
        if name in values:
            number = _clean_int(name, values[name], errors)
            if number is not False:
                cleaned[name] = number
    for name in SKU_BOOL_FIELDS:
        if name in values:
            flag = _clean_bool(name, values[name], errors)
            if flag is not None:
                cleaned[name] = flag
    if "hs_code" in values:
        hs_code = hs_code_clean(str(values["hs_code"] or ""))
        if hs_code and not (hs_code.isdigit() and 6 <= len(hs_code) <= 10):
            errors.append(
                FieldError(
                    "hs_code",
                    "invalid_hs_code",
                    _("'%(value)s' is not a customs HS code: 6 to 10 digits are expected.")
                    % {"value": values["hs_code"]},
                )
            )
        else:
            cleaned["hs_code"] = hs_code
    if "country_of_origin" in values:
        country = str(values["country_of_origin"] or "").strip().upper()
        if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
            errors.append(
                FieldError(
                    "country_of_origin",
                    "invalid_country",
                    _("'%(value)s' is not a country code: two letters (ISO 3166), such as FR, are expected.")
                    % {"value": values["country_of_origin"]},
                )
            )
        else:
            cleaned["country_of_origin"] = country
    if "status" in values:
        status = str(values["status"] or "").strip().lower()
        if status not in SkuStatus.values:
            errors.append(
                FieldError(
                    "status",
                    "invalid_status",
                    _("'%(value)s' is not a SKU status: use one of %(choices)s.")
                    % {"value": values["status"], "choices": ", ".join(SkuStatus.values)},
                )
            )
        else:
            cleaned["status"] = status
    if "barcodes" in values:
        codes = _split_codes(values["barcodes"])
        if codes is None:
            errors.append(FieldError("barcodes", "invalid_barcode", _("barcodes must be a list of codes.")))
        else:
            barcodes: list[tuple[str, str]] = []
            for code in codes:
                try:
                    barcodes.append(barcode_clean(code, field_name="barcodes"))
                except ValidationFailed as exc:
                    errors.append(FieldError("barcodes", exc.code, exc.message))
            cleaned["barcodes"] = barcodes
    if "code" in cleaned and not cleaned["code"]:
        errors.append(FieldError("code", "required", _("A SKU needs a code.")))
        del cleaned["code"]
    if "name" in cleaned and not cleaned["name"]:
        errors.append(FieldError("name", "required", _("A SKU needs a name.")))
        del cleaned["name"]
    return cleaned, errors


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


def _duplicate_code_error(code: str) -> FieldError:
    return FieldError(
        "code",
        "duplicate_sku_code",
        _("A SKU with code '%(code)s' already exists for this merchant.") % {"code": code},
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
    code it may change (sku_update). Otherwise rows are matched to existing SKUs by code (bulk upsert).
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

    # The same code twice in one batch: the second row would silently overwrite the first.
    first_row_of: dict[str, int] = {}
    for row in rows:
        code = row.values.get("code")
        if code is None:
            continue
        if code in first_row_of:
            row.errors.append(
                FieldError(
                    "code",
                    "duplicate_sku_code",
                    _("The code '%(code)s' is already used by row %(row)d of this batch.")
                    % {"code": code, "row": first_row_of[code]},
                )
            )
        else:
            first_row_of[code] = row.index

    # Lock the SKUs this batch touches, in primary-key order, so concurrent batches cannot deadlock.
    codes = [row.values["code"] for row in rows if "code" in row.values]
    existing_qs = Sku.objects.select_for_update().filter(merchant=merchant, code__in=codes).order_by("pk")
    existing = {sku.code: sku for sku in existing_qs}
    for row in rows:
        code = row.values.get("code")
        if target is not None:
            row.sku = target
            if code is not None and code in existing and existing[code].pk != target.pk:
                row.errors.append(_duplicate_code_error(code))
        elif code is not None and code in existing:
            if create_only:
                row.errors.append(_duplicate_code_error(code))
            else:
                row.sku = existing[code]
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
        if primary:
            desired[primary] = (BarcodeKind.GTIN, True)
        for code, kind in extras:
            desired.setdefault(code, (kind, False))  # the GTIN listed again as an extra stays the primary
        row.desired = desired

    claimed_by: dict[str, _Row] = {}
    for row in rows:
        for code, (_kind, is_primary) in row.desired.items():
            field_name = "gtin" if is_primary else "barcodes"
            if code in claimed_by:
                row.errors.append(
                    FieldError(
                        field_name,
                        "duplicate_gtin" if is_primary else "duplicate_barcode",
                        _("The code '%(code)s' is also given to row %(row)d of this batch.")
                        % {"code": code, "row": claimed_by[code].index},
                    )
                )
            else:
                claimed_by[code] = row
    batch_sku_ids = {row.sku.pk for row in rows if row.sku is not None}
    owners = Barcode.objects.filter(merchant=merchant, code__in=list(claimed_by)).select_related("sku")
    for barcode in owners:
        row = claimed_by[barcode.code]
        if row.sku is not None and barcode.sku_id == row.sku.pk:
            continue
        # A SKU of this batch that no longer wants the code releases it; any other SKU keeps it.
        if barcode.sku_id in batch_sku_ids:
            continue
        is_primary = row.desired[barcode.code][1]
        row.errors.append(
            FieldError(
                "gtin" if is_primary else "barcodes",
                "duplicate_gtin" if is_primary else "duplicate_barcode",
                _("The code '%(code)s' already belongs to SKU '%(sku)s' of this merchant.")
                % {"code": barcode.code, "sku": barcode.sku.code},
            )
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
    owner = Barcode.objects.filter(merchant_id=sku.merchant_id, code=stored).select_related("sku").first()
    if owner is not None:
        raise Conflict(
            _("The code '%(code)s' already belongs to SKU '%(sku)s'.") % {"code": stored, "sku": owner.sku.code},
            code="duplicate_barcode",
            details={"field": "code", "sku_id": owner.sku_id},
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


# --- Packaging types ------------------------------------------------------------------------------------------

PACKAGING_FIELDS = (
    "code",
    "name",
    "kind",
    "inner_length_mm",
    "inner_width_mm",
    "inner_height_mm",
    "max_weight_g",
    "tare_weight_g",
    "cost",
    "currency",
    "active",
)


def packaging_values_clean(values: Mapping[str, Any]) -> dict[str, Any]:
    errors: list[FieldError] = []
    cleaned: dict[str, Any] = {}
    for name, max_length in (("code", 40), ("name", 200)):
        if name in values:
            text = _clean_text(name, values[name], max_length, errors)
            if text == "":
                errors.append(FieldError(name, "required", _("%(field)s cannot be empty.") % {"field": name}))
            elif text is not None:
                cleaned[name] = text
    if "kind" in values:
        if values["kind"] in PackagingKind.values:
            cleaned["kind"] = values["kind"]
        else:
            errors.append(
                FieldError(
                    "kind",
                    "invalid_packaging_kind",
                    _("'%(value)s' is not a packaging kind: use one of %(choices)s.")
                    % {"value": values["kind"], "choices": ", ".join(PackagingKind.values)},
                )
            )
    for name in ("inner_length_mm", "inner_width_mm", "inner_height_mm", "max_weight_g", "tare_weight_g"):
        if name in values:
            number = _clean_int(name, values[name], errors)
            if number is None or number is False:
                if number is None:
                    errors.append(FieldError(name, "required", _("%(field)s is required.") % {"field": name}))
                continue
            if number == 0 and name != "tare_weight_g":
                errors.append(
                    FieldError(name, "out_of_range", _("%(field)s must be more than zero.") % {"field": name})
                )
                continue
            cleaned[name] = number
    if "cost" in values:
        try:
            cost = Decimal(str(values["cost"]))
        except (InvalidOperation, ValueError):
            cost = None
        if cost is None or not cost.is_finite() or cost < 0 or cost >= Decimal("1000000"):
            errors.append(FieldError("cost", "invalid_cost", _("cost must be an amount between 0 and 999999.9999.")))
        else:
            cleaned["cost"] = cost.quantize(Decimal("0.0001"))
    if "currency" in values:
        currency = str(values["currency"] or "").strip().upper()
        if len(currency) == 3 and currency.isascii() and currency.isalpha():
            cleaned["currency"] = currency
        else:
            errors.append(
                FieldError(
                    "currency",
                    "invalid_currency",
                    _("'%(value)s' is not a currency code: three letters such as EUR.") % {"value": values["currency"]},
                )
            )
    if "active" in values:
        flag = _clean_bool("active", values["active"], errors)
        if flag is not None:
            cleaned["active"] = flag
    if errors:
        first = errors[0]
        raise ValidationFailed(
            " ".join(error.message for error in errors),
            code=first.code,
            details={"field": first.field, "errors": [error.as_dict() for error in errors]},
        )
    return cleaned


def packaging_code_check(*, code: str, merchant_id: int | None, exclude_pk: int | None = None) -> None:
    """A merchant's packaging code may not repeat the operator's (nor the reverse): the pack station shows both
    lists side by side, and one code must name one box there."""
    qs = PackagingType.objects.filter(code=code)
    clash = qs if merchant_id is None else qs.filter(Q(merchant_id=merchant_id) | Q(merchant__isnull=True))
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise Conflict(
            _("A packaging type with code '%(code)s' already exists.") % {"code": code},
            code="duplicate_packaging_code",
            details={"field": "code"},
        )


def packaging_weights_check(packaging: PackagingType) -> None:
    if packaging.tare_weight_g >= packaging.max_weight_g:
        raise ValidationFailed(
            _("The tare weight (%(tare)d g) must be less than the maximum weight (%(max)d g).")
            % {"tare": packaging.tare_weight_g, "max": packaging.max_weight_g},
            code="tare_exceeds_max_weight",
            details={"field": "tare_weight_g"},
        )


@transaction.atomic
def packaging_type_create(
    *,
    merchant: Merchant | None,
    code: str,
    name: str,
    inner_length_mm: int,
    inner_width_mm: int,
    inner_height_mm: int,
    max_weight_g: int,
    kind: str = PackagingKind.BOX,
    tare_weight_g: int = 0,
    cost: Decimal | str | int = Decimal("0"),
    currency: str = "EUR",
    active: bool = True,
) -> PackagingType:
    """A box, envelope or bag: the operator's (``merchant`` None, offered to all) or one merchant's own."""
    values = packaging_values_clean(
        {
            "code": code,
            "name": name,
            "kind": kind,
            "inner_length_mm": inner_length_mm,
            "inner_width_mm": inner_width_mm,
            "inner_height_mm": inner_height_mm,
            "max_weight_g": max_weight_g,
            "tare_weight_g": tare_weight_g,
            "cost": cost,
            "currency": currency,
            "active": active,
        }
    )
    packaging_code_check(code=values["code"], merchant_id=merchant.pk if merchant else None)
    packaging = PackagingType(merchant=merchant, **values)
    packaging_weights_check(packaging)
    try:
        with transaction.atomic():
            packaging.save()
    except IntegrityError:
        raise Conflict(
            _("A packaging type with code '%(code)s' already exists.") % {"code": values["code"]},
            code="duplicate_packaging_code",
        ) from None
    return packaging


@transaction.atomic
def packaging_type_update(*, packaging_type: PackagingType, version: int, data: Mapping[str, Any]) -> PackagingType:
    """Change the fields in ``data`` of a packaging type last read at ``version`` (stale: 409 ``stale_version``)."""
    locked = PackagingType.objects.select_for_update().filter(pk=packaging_type.pk).first()
    if locked is None:
        raise NotFound(_("Packaging type not found."), code="packaging_type_not_found")
    if locked.version != version:
        raise Conflict(
            _("This packaging type was changed by someone else (version %(current)d): reload it and retry.")
            % {"current": locked.version},
            code="stale_version",
            details={"current_version": locked.version},
        )
    unknown = [key for key in data if key not in PACKAGING_FIELDS]
    if unknown:
        raise ValidationFailed(
            _("Unknown field '%(field)s'.") % {"field": unknown[0]}, code="unknown_field", details={"field": unknown[0]}
        )
    values = packaging_values_clean(data)
    if "code" in values and values["code"] != locked.code:
        packaging_code_check(code=values["code"], merchant_id=locked.merchant_id, exclude_pk=locked.pk)
    for name, value in values.items():
        setattr(locked, name, value)
    packaging_weights_check(locked)
    locked.version += 1
    try:
        with transaction.atomic():
            locked.save()
    except IntegrityError:
        raise Conflict(
            _("A packaging type with code '%(code)s' already exists.") % {"code": locked.code},
            code="duplicate_packaging_code",
        ) from None
    return locked
