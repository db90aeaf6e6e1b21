"""Cleaning of catalog input: what a JSON body, a CSV cell or a form field says, as the values Quai stores.

Pure: no database and no ORM here (only translated messages), so every rule of a field is tested in
milliseconds and judged the same way whichever door the value comes through (API, CSV import, back office).
Checks that need the database (a code another SKU holds, a stale version) are the services' business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from quai.catalog.domain import GTIN_LENGTHS, GtinInvalid, gtin_is_valid, gtin_normalize
from quai.core.errors import ValidationFailed

# The values of the models' choices (SkuStatus, BarcodeKind, PackagingKind), restated so this module needs no
# model; tests/test_cleaning.py checks that the two agree.
SKU_STATUSES = ("active", "inactive", "discontinued")
BARCODE_KINDS = ("gtin", "internal", "supplier")
PACKAGING_KINDS = ("box", "envelope", "mailer_bag", "pallet")

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


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one row; ``code`` is stable, ``message`` is for people.

    ``sku_id``: the SKU that already holds the value, when the problem is a code another SKU has.
    """

    field: str
    code: str
    message: str
    sku_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {"field": self.field, "code": self.code, "message": self.message}
        if self.sku_id is not None:
            values["sku_id"] = self.sku_id
        return values


def code_forms(code: str) -> set[str]:
    """Every stored form under which a scan of ``code`` finds a SKU, lower-cased: one code, one SKU.

    A scan looks a code up without case, and a scanned GTIN also under its 14-digit form; a GTIN may be stored
    as typed (an internal code, a SKU code) or padded. So "ab-1" stands for "AB-1", and "9521234543213" for
    "09521234543213" (and the reverse): two SKUs of one merchant may not share any of these forms.
    """
    forms = {code.strip().lower()}
    if gtin_is_valid(code):
        padded = gtin_normalize(code)
        forms |= {padded[-length:] for length in GTIN_LENGTHS if set(padded[:-length]) <= {"0"}}
    return forms


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
    elif isinstance(value, str) and value.strip().removeprefix("-").isdecimal():
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
    if kind is not None and kind not in BARCODE_KINDS:
        raise ValidationFailed(
            _("Unknown barcode kind '%(kind)s'.") % {"kind": kind},
            code="invalid_barcode_kind",
            details={"field": "kind"},
        )
    if kind == "gtin" or (kind is None and gtin_is_valid(text)):
        try:
            return gtin_normalize(text), "gtin"
        except GtinInvalid as exc:
            error = gtin_error(field_name, text, exc)
            raise ValidationFailed(error.message, code=error.code, details={"field": field_name}) from None
    return text, kind or "internal"


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
        if hs_code and not (hs_code.isdecimal() and 6 <= len(hs_code) <= 10):
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
        if status not in SKU_STATUSES:
            errors.append(
                FieldError(
                    "status",
                    "invalid_status",
                    _("'%(value)s' is not a SKU status: use one of %(choices)s.")
                    % {"value": values["status"], "choices": ", ".join(SKU_STATUSES)},
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
    """Clean the packaging fields present in ``values``, or ``ValidationFailed`` listing every problem."""
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
        if values["kind"] in PACKAGING_KINDS:
            cleaned["kind"] = values["kind"]
        else:
            errors.append(
                FieldError(
                    "kind",
                    "invalid_packaging_kind",
                    _("'%(value)s' is not a packaging kind: use one of %(choices)s.")
                    % {"value": values["kind"], "choices": ", ".join(PACKAGING_KINDS)},
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


def packaging_weights_check(*, tare_weight_g: int, max_weight_g: int) -> None:
    """A box must be able to carry something: its own weight stays below the most it may weigh full."""
    if tare_weight_g >= max_weight_g:
        raise ValidationFailed(
            _("The tare weight (%(tare)d g) must be less than the maximum weight (%(max)d g).")
            % {"tare": tare_weight_g, "max": max_weight_g},
            code="tare_exceeds_max_weight",
            details={"field": "tare_weight_g"},
        )
