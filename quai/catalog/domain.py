"""Pure catalog rules: GTIN check digits and what a scanner typed. No Django here, so these run in milliseconds.

Vocabulary (GS1 General Specifications):
- a GTIN is 8, 12, 13 or 14 digits, the last one a mod-10 check digit; Quai stores it as 14 digits (left-padded
  with zeros), the form it takes inside a GS1 element string (01);
- a GS1 element string is an Application Identifier (AI) followed by its data: (00) SSCC, (01) GTIN of the item,
  (02) GTIN of the items a logistic unit contains, (10) lot, (17) expiry date YYMMDD, (21) serial,
  (30) / (37) a count, (310n) net weight in kg with n decimals, (392n) price to pay with n decimals in the local
  currency, (393n) the same preceded by an ISO 4217 numeric currency code (variable-measure goods: cheese, meat);
- variable-length fields (lot, serial, counts) end with FNC1, which scanners transmit as the group separator
  ``\\x1d`` (ASCII 29); a variable-length field placed last needs no separator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from biip import ParseConfig, ParseError
from biip.gs1_application_identifiers import GS1ApplicationIdentifier
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from biip.symbology import GS1Symbology, SymbologyIdentifier
from stdnum import ean
from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength, ValidationError

GROUP_SEPARATOR = "\x1d"
GTIN_LENGTHS = (8, 12, 13, 14)

ScanKind = Literal["gtin", "gs1", "sscc", "internal"]
ScanProblemReason = Literal["check_digit", "date", "format"]

# The AIs whose data is a date (GS1 General Specifications 3.4): a scan failing on one of them has an impossible date.
_DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17"})
# The AIs a GS1 scan that identifies something starts with: SSCC (00), GTIN (01), content GTIN (02).
_IDENTIFYING_AIS = ("00", "01", "02")


class GtinInvalid(ValueError):
    """A GTIN that cannot be one. ``reason`` is stable: ``format``, ``length`` or ``check_digit``."""

    def __init__(self, value: str, reason: str, expected_check_digit: str | None = None) -> None:
        super().__init__(f"{value!r} is not a valid GTIN ({reason})")
        self.value = value
        self.reason = reason
        self.expected_check_digit = expected_check_digit


def gtin_check_digit(body: str) -> str:
    """The GS1 mod-10 check digit of ``body`` (a GTIN without its last digit)."""
    return str(ean.calc_check_digit(body))


def gtin_normalize(value: str) -> str:
    """``value`` as a 14-digit GTIN, or ``GtinInvalid``.

    Spaces and dashes that people type or copy from packaging are ignored. A GTIN-8, 12 or 13 is left-padded
    with zeros: the padded form is the one GS1 element strings carry, so one stored form matches every scan.
    """
    compact = ean.compact(value or "")
    try:
        valid = ean.validate(compact)
    except InvalidLength:  # a subclass of InvalidFormat in stdnum, so it comes first
        raise GtinInvalid(value, "length") from None
    except InvalidFormat:
        raise GtinInvalid(value, "format") from None
    except InvalidChecksum:
        raise GtinInvalid(value, "check_digit", expected_check_digit=gtin_check_digit(compact[:-1])) from None
    except ValidationError:  # pragma: no cover - stdnum raises only the three above for ean
        raise GtinInvalid(value, "format") from None
    if int(valid) == 0:
        # Fourteen zeros pass the mod-10 check but GS1 never allocates them; they are what an empty field
        # exports as in some spreadsheets.
        raise GtinInvalid(value, "format")
    return valid.zfill(14)


def gtin_is_valid(value: str) -> bool:
    try:
        gtin_normalize(value)
    except GtinInvalid:
        return False
    return True


@dataclass(frozen=True)
class ScanProblem:
    """Why a scan that looks like a GTIN or a GS1 barcode is not a valid one, so an operator can be told.

    ``reason``: ``check_digit`` (``expected_check_digit`` says the right one), ``date`` (an impossible date such as
    (17)261332) or ``format`` (an element string that does not follow its AI's format). ``ai`` is the Application
    Identifier at fault (None for a bare GTIN), ``value`` its data as read.
    """

    reason: ScanProblemReason
    ai: str | None
    value: str
    expected_check_digit: str | None = None


@dataclass(frozen=True)
class ParsedScan:
    """What one scan says.

    ``kind``: ``gtin`` (a bare GTIN-8/12/13/14), ``gs1`` (an element string with a GTIN, perhaps with lot, expiry,
    serial, count), ``sscc`` (a logistic unit without a GTIN of its content) or ``internal`` (anything else: looked
    up as-is). ``gtin`` is always the 14-digit form. ``quantity`` is how many units the scan stands for: 1 unless
    the barcode carries a count (30) or (37). Variable-measure goods carry ``net_weight_kg`` (310n) and ``price``
    (392n, or 393n with ``price_currency_numeric``, the ISO 4217 numeric code such as ``978`` for the euro).
    ``problem`` is set on an ``internal`` scan that looked like a GTIN or a GS1 barcode but is not a valid one: the
    scan is still looked up as typed, and ``problem`` explains a miss.
    """

    raw: str
    code: str
    kind: ScanKind
    gtin: str | None = None
    lot: str | None = None
    expiry: date | None = None
    serial: str | None = None
    sscc: str | None = None
    quantity: int = 1
    net_weight_kg: Decimal | None = None
    price: Decimal | None = None
    price_currency_numeric: str | None = None
    problem: ScanProblem | None = None


# A symbology identifier is "]" + a code character + one modifier character (ISO/IEC 15424).
_SYMBOLOGY_RE = re.compile(r"^\][A-Za-z][0-9A-Za-z]")


def _split_symbology(code: str) -> tuple[GS1Symbology | None, bool, str]:
    """(GS1 symbology or None, whether an identifier was present, the data after it)."""
    if not _SYMBOLOGY_RE.match(code):
        return None, False, code
    try:
        identifier = SymbologyIdentifier.extract(code)
    except ParseError:
        return None, False, code
    return identifier.gs1_symbology, True, code[len(identifier) :]


def _parse_gs1(data: str, config: ParseConfig) -> GS1Message | None:
    try:
        if data.startswith("("):
            return GS1Message.parse_hri(data, config=config)
        return GS1Message.parse(data, config=config)
    except ParseError:
        return None


def _first(message: GS1Message, ai: str) -> GS1ElementString | None:
    for element in message.element_strings:
        if element.ai.ai == ai:
            return element
    return None


def _first_of_family(message: GS1Message, prefix: str) -> GS1ElementString | None:
    """The first element whose AI starts with ``prefix``: "310" finds (3100) to (3105), the decimals being the 4th."""
    for element in message.element_strings:
        if element.ai.ai.startswith(prefix) and len(element.ai.ai) == len(prefix) + 1:
            return element
    return None


def _from_gs1(raw: str, data: str, message: GS1Message) -> ParsedScan | None:
    """A ParsedScan from a GS1 message, or None when it holds neither a valid GTIN nor a valid SSCC.

    A short numeric internal code such as "10023" also reads as a GS1 lot (10) "023": without a GTIN or SSCC the
    message identifies nothing, so such strings are treated as internal codes instead.
    """
    item = _first(message, "01") or _first(message, "02")
    gtin = item.gtin.value.zfill(14) if item is not None and item.gtin is not None else None
    sscc_element = _first(message, "00")
    sscc = sscc_element.sscc.value if sscc_element is not None and sscc_element.sscc is not None else None
    if item is not None and gtin is None:
        return None  # a GTIN field with a wrong check digit: the scan is not what it claims to be
    if sscc_element is not None and sscc is None:
        return None
    if gtin is None and sscc is None:
        return None

    lot = _first(message, "10")
    expiry = _first(message, "17")
    serial = _first(message, "21")
    count = _first(message, "37") or _first(message, "30")
    quantity = int(count.value) if count is not None and count.value.isdecimal() else 1
    weight = _first_of_family(message, "310")
    price = _first_of_family(message, "392") or _first_of_family(message, "393")
    # biip reads (393n) as currency then amount: its first pattern group is the ISO 4217 numeric currency code.
    currency = price.pattern_groups[0] if price is not None and price.ai.ai.startswith("393") else None
    return ParsedScan(
        raw=raw,
        code=data,
        kind="gs1" if gtin is not None else "sscc",
        gtin=gtin,
        lot=lot.value if lot is not None else None,
        # biip reads day "00" as the last day of the month, as GS1 General Specifications 7.12 requires.
        expiry=expiry.date if expiry is not None else None,
        serial=serial.value if serial is not None else None,
        sscc=sscc,
        quantity=quantity,
        net_weight_kg=weight.decimal if weight is not None else None,
        price=price.decimal if price is not None else None,
        price_currency_numeric=currency,
    )


def _gs1_problem(data: str, config: ParseConfig) -> ScanProblem | None:
    """Why ``data``, which looks like a GS1 message, is not a valid one; None if it is valid or not GS1 at all.

    Walks the message element by element with biip, so the element at fault is known: a GTIN or SSCC with a wrong
    check digit, a date that cannot exist, or data that does not follow its AI's format.
    """
    if data.startswith("("):
        pairs = re.findall(r"\((\d+)\)([^(]+)", "".join(data.split()))
        data = GROUP_SEPARATOR.join(ai + value for ai, value in pairs)
    rest = data
    while rest:
        try:
            element = GS1ElementString.extract(rest, config=config)
        except ParseError:
            try:
                ai = GS1ApplicationIdentifier.extract(rest).ai
            except ParseError:
                return None
            value = rest[len(ai) :].split(GROUP_SEPARATOR, 1)[0]
            if ai in _DATE_AIS:
                value = value[:6]  # a date is YYMMDD; what follows is the next element
            return ScanProblem("date" if ai in _DATE_AIS else "format", ai, value)
        if element.gtin_error is not None or element.sscc_error is not None:
            value = element.value
            expected = gtin_check_digit(value[:-1]) if value.isdecimal() and len(value) > 1 else None
            return ScanProblem("check_digit", element.ai.ai, value, expected_check_digit=expected)
        rest = rest[len(element) :].lstrip(GROUP_SEPARATOR)
    return None


def _looks_like_gs1(data: str, had_gs1_identifier: bool) -> bool:
    """Whether a failed scan was meant as a GS1 barcode, so its fault is worth telling rather than "unknown".

    A GS1 symbology identifier says so; so does the printed form "(01)…", or a long string that starts with an
    identifying AI. A short number such as "12345" would also read as a GS1 date (12): that is an internal code.
    """
    return had_gs1_identifier or data.startswith("(") or (data[:2] in _IDENTIFYING_AIS and len(data) >= 16)


def parse_scan(code: str) -> ParsedScan:
    """Read what a scanner typed: a GTIN, a GS1-128 / DataMatrix / QR / DataBar element string, or an internal code.

    Accepted forms of a GS1 message: raw (``0109521234543213`` ``10ABC123`` ``\\x1d`` ``21XYZ``), with a
    symbology identifier in front (``]C1``, ``]d2``, ``]Q3``, ``]e0``), with a leading FNC1, or in the
    human-readable form printed under the barcode (``(01)09521234543213(10)ABC123``). A string that is none of
    these is an internal code, looked up as typed (trimmed).
    """
    raw = code
    # Scanners often end with CR/LF and some send FNC1 in first position; neither is data.
    stripped = code.strip().strip(GROUP_SEPARATOR).strip()
    symbology, had_identifier, data = _split_symbology(stripped)
    data = data.strip(GROUP_SEPARATOR)
    config = ParseConfig(separator_chars=(GROUP_SEPARATOR,))

    gs1_allowed = not had_identifier or symbology in GS1Symbology.with_gs1_messages()
    gtin_allowed = not had_identifier or symbology in GS1Symbology.with_gtin()

    if gtin_allowed and data.isdecimal() and len(data) in GTIN_LENGTHS and gtin_is_valid(data):
        # A bare GTIN comes first: "9521234543213" also reads as a GS1 AI (95) message, which is not what an
        # EAN-13 scan means.
        return ParsedScan(raw=raw, code=data, kind="gtin", gtin=gtin_normalize(data))

    if gs1_allowed and data:
        message = _parse_gs1(data, config)
        if message is not None:
            parsed = _from_gs1(raw, data, message)
            if parsed is not None:
                return parsed

    problem: ScanProblem | None = None
    if gtin_allowed and data.isdecimal() and len(data) in GTIN_LENGTHS and gtin_check_digit(data[:-1]) != data[-1]:
        problem = ScanProblem("check_digit", None, data, expected_check_digit=gtin_check_digit(data[:-1]))
    elif gs1_allowed and data and _looks_like_gs1(data, had_identifier and symbology is not None):
        problem = _gs1_problem(data, config)
    return ParsedScan(raw=raw, code=data.strip() or stripped, kind="internal", problem=problem)
