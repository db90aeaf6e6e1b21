"""Order intake: validate an order into a draft (no write), then write it once per external id and reserve its stock.

The two steps are separate so a batch can validate many orders first (``order_validate`` reads the SKUs of one
order in one query and writes nothing) and write them afterwards. ``order_create`` is both, for one order.

Idempotency on (merchant, channel, external id): the draft's ``fingerprint`` is a digest of everything the order
says once normalised, so a resend of the same order — whatever its key order, spacing or phone formatting — is
answered with the order already stored (``created=False``), and another order reusing the id is refused with
409 ``order_external_id_reused`` naming the stored one. Two identical orders arriving at once meet the unique
constraint: the second waits for the first's commit, rolls back its insert and answers the first's order.

What intake reads for every order but hardly ever changes — the merchant's SKUs by code and its release buffer — is
kept by each process, as the API keys are (``quai.tenants.key_cache``): in a flash sale these two reads were most of
a request's own CPU (ORM compilation) and two round trips. The release buffer is kept ``QUAI_INTAKE_CACHE_SECONDS``
(default 5 s; 0 turns both caches off); a policy change forgets it in the process that made it and reaches the
others within that time. The SKUs are kept under their merchant's stamp (``sku_stamp``: how many SKUs, their
latest ``updated_at``, the sum of their versions), read again once per ``QUAI_INTAKE_CACHE_SECONDS``: unchanged,
the rows stay; changed, every cached SKU of the merchant is forgotten. So a SKU edited anywhere (a renamed code, a
new SKU taking an old code) is seen within that time, as before, but an unchanged catalogue costs one stamp read
per merchant per period instead of a read per SKU named less often than that (most SKUs, at a sale's rate). A row
is read again after ``SKU_ROW_MAX_AGE`` (60 s) whatever the stamp says: the bound for an edit the stamp cannot see
(made with Quai's clock stopped by a path that keeps the version). Only SKUs found are kept (an unknown code is
read again each time, so a SKU just created is seen at once).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.db.models.base import ModelState
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from quai.catalog.selectors import sku_list, sku_stamp
from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.models import StateTransition
from quai.core.outbox import event_record
from quai.orders import domain
from quai.orders.events import OrderReceived
from quai.orders.models import DEFAULT_RELEASE_BUFFER_MINUTES, Order, OrderLine, OrderPolicy, OrderStatus
from quai.orders.services.allocation import order_lines_reserve
from quai.tenants.scope import Scope

DEFAULT_CHANNEL = "api"
MAX_LINES = 500
MAX_QUANTITY = 2**31 - 1
MONEY_MAX = Decimal("9999999999.99")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class DraftLine:
    position: int
    sku: Any
    sku_code: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderDraft:
    """An order checked and normalised, ready to write: every value as it will be stored."""

    merchant_id: int
    channel: str
    external_id: str
    priority: str
    currency: str
    shopper: dict[str, str]
    address: dict[str, str]
    carrier_service: str
    promise_id: str
    promised_from: date | None
    promised_to: date | None
    gift_message: str
    notes: str
    shipping_total: Decimal
    lines: tuple[DraftLine, ...] = field(default_factory=tuple)

    @property
    def lines_total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0"))

    @property
    def total(self) -> Decimal:
        return self.lines_total + self.shipping_total

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of the order as it will be stored: the same order sent twice has the same one.

        The same digest as ever (stored orders are compared with it): every field by name, the lines as SKU id,
        quantity and price. Built from the fields directly — ``dataclasses.asdict`` deep-copied each line's SKU
        row — and once per draft (the request thread's; the shared commit reuses it)."""
        values: dict[str, Any] = {name: getattr(self, name) for name in _DRAFT_FIELDS}
        values["lines"] = [
            {"sku_id": line.sku.pk, "quantity": line.quantity, "unit_price": str(line.unit_price)}
            for line in self.lines
        ]
        canonical = _CANONICAL.encode(values)
        return hashlib.sha256(canonical.encode()).hexdigest()


_DRAFT_FIELDS = tuple(f.name for f in fields(OrderDraft))  # in the dataclass's order, as ``fields`` gives them
# The digest's text: what ``json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)`` writes, by one
# encoder made once (``json.dumps`` makes one per call) and without the check for circular references (a draft's
# values are texts, numbers, dates and fresh dicts and lists of them: never circular), ~25 % of the digest's CPU. A
# test compares the two texts.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str, check_circular=False)


class _Problems:
    """Field problems collected over the whole order, so the caller fixes them all in one go."""

    def __init__(self) -> None:
        self.fields: list[dict[str, str]] = []
        self.codes: list[str] = []

    def add(self, field_name: str, message: str, code: str = "invalid_input") -> None:
        self.fields.append({"field": field_name, "message": message})
        self.codes.append(code)

    def raise_if_any(self) -> None:
        if not self.fields:
            return
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in self.fields)
        # One problem keeps its own code (postcode_invalid, phone_invalid…); several are invalid_input, each field
        # with its message. Programs read details.fields either way.
        code = self.codes[0] if len(set(self.codes)) == 1 else "invalid_input"
        raise ValidationFailed(
            _("The order is not valid: %(summary)s") % {"summary": summary}, code=code, details={"fields": self.fields}
        )


def _text(
    data: Mapping[str, Any], key: str, problems: _Problems, where: str, *, limit: int, required_code: str = ""
) -> str:
    """A stripped text field; ``required_code`` (e.g. ``city_required``) makes it required."""
    value = data.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str):
        problems.add(f"{where}{key}", _("Must be text."))
        return ""
    value = value.strip()
    if required_code and not value:
        problems.add(f"{where}{key}", _("Required."), code=required_code)
    elif len(value) > limit:
        problems.add(f"{where}{key}", _("Must have at most %(max)d characters.") % {"max": limit})
    return value


def _money(value: Any, field_name: str, problems: _Problems) -> Decimal:
    if isinstance(value, bool) or value is None:
        problems.add(field_name, _("Must be a decimal number."))
        return Decimal("0")
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        problems.add(field_name, _("Must be a decimal number."))
        return Decimal("0")
    if not amount.is_finite() or amount < 0 or amount > MONEY_MAX:
        problems.add(field_name, _("Must be an amount between 0 and %(max)s.") % {"max": MONEY_MAX})
        return Decimal("0")
    if amount != amount.quantize(Decimal("0.01")):
        problems.add(field_name, _("Must have at most 2 decimal places."))
        return Decimal("0")
    return amount.quantize(Decimal("0.01"))


def _date(value: Any, field_name: str, problems: _Problems) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.add(field_name, _("Must be a date (YYYY-MM-DD)."))
        return None


_ADDRESS_MESSAGES = {
    "postcode_required": lambda p: _("A postcode is required to ship to %(country)s.") % p,
    "postcode_invalid": lambda p: _("Not a postcode of %(country)s (for example %(example)s).") % p,
    "country_invalid": lambda p: _("Not an ISO 3166-1 country code we can ship to: %(country)s.") % p,
    "phone_invalid": lambda p: _("Not a phone number a carrier can call: %(phone)s.") % p,
}


def address_validate(address: Mapping[str, Any], *, problems: _Problems | None = None) -> dict[str, str]:
    """A shipping address checked and normalised (country upper-cased, postcode in its country's form).

    Raises ``ValidationFailed`` (``postcode_invalid``, ``country_invalid``, ``address_line1_required``…) unless a
    ``problems`` collector is given, in which case the problems are added to it.
    """
    own = problems is None
    collected = problems if problems is not None else _Problems()
    where = "shipping_address."
    values = {
        "ship_company": _text(address, "company", collected, where, limit=200),
        "address_line1": _text(address, "line1", collected, where, required_code="address_line1_required", limit=200),
        "address_line2": _text(address, "line2", collected, where, limit=200),
        "city": _text(address, "city", collected, where, required_code="city_required", limit=100),
        "region": _text(address, "region", collected, where, limit=100),
    }
    country = domain.country_normalise(str(address.get("country") or ""))
    if isinstance(country, domain.AddressProblem):
        collected.add(where + "country", _ADDRESS_MESSAGES[country.code](dict(country.params)), code=country.code)
        values["country"] = ""
    else:
        values["country"] = country
        postcode = domain.postcode_normalise(country, str(address.get("postcode") or ""))
        if isinstance(postcode, domain.AddressProblem):
            collected.add(
                where + "postcode", _ADDRESS_MESSAGES[postcode.code](dict(postcode.params)), code=postcode.code
            )
            values["postcode"] = ""
        else:
            values["postcode"] = postcode
    if own:
        collected.raise_if_any()
    return values


def order_validate(*, merchant: Any, data: Mapping[str, Any], known_skus: KnownSkus | None = None) -> OrderDraft:
    """Check and normalise one order (no write): the draft ``order_create`` writes, or the reasons it cannot be.

    Field problems (missing name or address, postcode off its country's format, a phone no carrier can call, a
    quantity of zero…) are all reported at once in ``ValidationFailed`` ``details.fields``. SKUs are read in one
    query among the merchant's own: a code the merchant does not have (another merchant's is the same) is 404
    ``sku_not_found`` naming the line (``details.line``, ``details.sku``, and every missing code in ``skus``).
    ``known_skus``: the merchant's SKUs already read for many orders at once (``skus_known_for``); an order whose
    codes it covers costs no query.
    """
    merchant_id = merchant if isinstance(merchant, int) else merchant.pk
    problems = _Problems()
    channel = _text(data, "channel", problems, "", limit=50) or DEFAULT_CHANNEL
    external_id = _text(data, "external_id", problems, "", required_code="external_id_required", limit=100)
    priority = str(data.get("priority") or domain.Priority.STANDARD)
    if priority not in domain.Priority.ALL:
        problems.add("priority", _("Must be one of: %(expected)s.") % {"expected": ", ".join(domain.Priority.ALL)})
    currency = str(data.get("currency") or "").strip().upper()
    if not _CURRENCY.match(currency):
        problems.add("currency", _("Must be an ISO 4217 currency code (EUR, GBP…)."))

    shopper_in = data.get("shopper") or {}
    address_in = data.get("shipping_address") or {}
    if not isinstance(shopper_in, Mapping):
        problems.add("shopper", _("Must be an object."))
        shopper_in = {}
    if not isinstance(address_in, Mapping):
        problems.add("shipping_address", _("Must be an object."))
        address_in = {}
    address = address_validate(address_in, problems=problems)
    shopper = {
        "shopper_name": _text(
            shopper_in, "name", problems, "shopper.", required_code="shopper_name_required", limit=200
        ),
        "shopper_email": _text(shopper_in, "email", problems, "shopper.", limit=254).lower(),
        "shopper_phone": "",
    }
    if shopper["shopper_email"] and not _EMAIL.match(shopper["shopper_email"]):
        problems.add("shopper.email", _("Not an email address."))
    # A phone without its +prefix is read as a number of the address's country: with no valid country there is
    # nothing to read it by, and the country's own problem is the one to fix first.
    phone = _phone_normalise(str(shopper_in.get("phone") or ""), address.get("country") or "")
    if isinstance(phone, domain.AddressProblem):
        if address.get("country"):
            problems.add("shopper.phone", _ADDRESS_MESSAGES[phone.code](dict(phone.params)), code=phone.code)
    else:
        shopper["shopper_phone"] = phone

    promise = data.get("promise") or {}
    if not isinstance(promise, Mapping):
        problems.add("promise", _("Must be an object."))
        promise = {}
    promised_from = _date(promise.get("delivery_from"), "promise.delivery_from", problems)
    promised_to = _date(promise.get("delivery_by"), "promise.delivery_by", problems)
    if promised_from and promised_to and promised_from > promised_to:
        problems.add("promise.delivery_by", _("Must not be before delivery_from."))

    lines_in = data.get("lines")
    if not isinstance(lines_in, Sequence) or isinstance(lines_in, str) or not lines_in:
        problems.add("lines", _("An order needs at least one line."), code="lines_required")
        lines_in = []
    elif len(lines_in) > MAX_LINES:
        problems.add("lines", _("Must have at most %(max_length)s item(s).") % {"max_length": MAX_LINES})
        lines_in = []
    parsed_lines: list[tuple[int, str, int, Decimal]] = []
    for index, line in enumerate(lines_in):
        where = f"lines.{index}."
        if not isinstance(line, Mapping):
            problems.add(f"lines.{index}", _("Must be an object."))
            continue
        code = _text(line, "sku", problems, where, required_code="sku_required", limit=64)
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
            problems.add(
                where + "quantity",
                _("Must be a whole number of units greater than zero (got %(value)s).") % {"value": quantity},
                code="invalid_quantity",
            )
            quantity = 0
        price = _money(line.get("unit_price", "0"), where + "unit_price", problems)
        parsed_lines.append((index, code, quantity, price))
    shipping_total = _money(data.get("shipping_total", "0"), "shipping_total", problems)

    draft_values = {
        "carrier_service": _text(data, "carrier_service", problems, "", limit=64),
        "promise_id": _text(promise, "id", problems, "promise.", limit=100),
        "gift_message": _text(data, "gift_message", problems, "", limit=1000),
        "notes": _text(data, "notes", problems, "", limit=4000),
    }
    problems.raise_if_any()

    codes = {code for _i, code, _q, _p in parsed_lines}
    if known_skus is not None and known_skus.merchant_id == merchant_id and known_skus.covers(codes):
        skus = known_skus.found
    else:
        skus = _skus_by_code(merchant_id, codes)
    missing = [(index, code) for index, code, _q, _p in parsed_lines if code.lower() not in skus]
    if missing:
        index, code = missing[0]
        raise NotFound(
            _("Line %(line)d: SKU '%(sku)s' not found.") % {"line": index + 1, "sku": code},
            code="sku_not_found",
            details={
                "line": index,
                "field": f"lines.{index}.sku",
                "sku": code,
                "skus": sorted({c for _i, c in missing}),
            },
        )
    lines = tuple(
        DraftLine(
            position=index + 1,
            sku=skus[code.lower()],
            sku_code=skus[code.lower()].code,
            quantity=quantity,
            unit_price=price,
        )
        for index, code, quantity, price in parsed_lines
    )
    return OrderDraft(
        merchant_id=merchant_id,
        channel=channel,
        external_id=external_id,
        priority=priority,
        currency=currency,
        shopper=shopper,
        address=address,
        promised_from=promised_from,
        promised_to=promised_to,
        shipping_total=shipping_total,
        lines=lines,
        **draft_values,
    )


# Parsing a phone number (phonenumbers' regular expressions) is ~0.1-0.4 ms of an order's CPU and depends on the
# string and the country only: a shopper ordering again, a resend, a shop's placeholder number parse once per process.
# (The bench's bodies all carry one number, so its figure is this cache's best case.)
@functools.lru_cache(maxsize=8192)
def _phone_normalise(phone: str, country: str) -> str | domain.AddressProblem:
    return domain.phone_normalise(phone, country=country)


@dataclass(frozen=True)
class KnownSkus:
    """A merchant's SKUs looked up once for many orders: ``found`` by lower-cased code among the ``looked_up``
    lower-cased codes (a code looked up and not found is known not to exist)."""

    merchant_id: int
    looked_up: frozenset[str]
    found: Mapping[str, Any]

    def covers(self, codes: set[str]) -> bool:
        return {code.lower() for code in codes} <= self.looked_up


def skus_known_for(merchant_id: int, orders: Sequence[Any]) -> KnownSkus:
    """The SKUs every line of ``orders`` (raw bodies, as ``order_validate`` takes them) names, in ONE query: what a
    batch request validates its orders against. A line too malformed to name a code is left to ``order_validate``
    to refuse."""
    codes = {
        line["sku"].strip()
        for data in orders
        if isinstance(data, Mapping) and isinstance(data.get("lines"), Sequence) and not isinstance(data["lines"], str)
        for line in data["lines"]
        if isinstance(line, Mapping) and isinstance(line.get("sku"), str) and line["sku"].strip()
    }
    return KnownSkus(
        merchant_id=merchant_id,
        looked_up=frozenset(code.lower() for code in codes),
        found=_skus_by_code(merchant_id, codes),
    )


def _skus_by_code(merchant_id: int, codes: set[str]) -> dict[str, Any]:
    """The merchant's SKUs among ``codes``, by lower-cased code (SKU codes are unique without case): those this
    process holds under the merchant's current stamp without a query, the others in one."""
    if not codes:
        return {}
    lowered = {code.lower() for code in codes}
    seconds = _cache_seconds()
    if seconds <= 0:
        return {sku.code.lower(): sku for sku in _skus_read(merchant_id, sorted(lowered))}
    generation = _skus_validated(merchant_id, seconds)
    now = time.monotonic()
    known = _skus_cached(merchant_id, lowered, now)
    missing = lowered - known.keys()
    if not missing:
        return known
    read = {sku.code.lower(): sku for sku in _skus_read(merchant_id, sorted(missing))}
    _skus_keep(merchant_id, read, generation=generation, read_at=now)
    return {**known, **read}


def _skus_queryset(merchant_id: int, lowered: Sequence[str]) -> QuerySet[Any]:
    """The catalogue's own read (``sku_list``) of the merchant's SKUs whose lower-cased code is among ``lowered``."""
    return (
        sku_list(scope=Scope.merchant(merchant_id))
        .prefetch_related(None)  # an order needs the SKU rows, not their barcodes: one query, not two
        .annotate(code_lower=Lower("code"))
        .filter(code_lower__in=lowered)
        .order_by()  # the caller keys them by code: no sort
    )


# Compiling that query was most of its cost (~0.5 of 0.6 ms CPU, the round trip ~0.1): its SQL is compiled once per
# database and number of codes, with stand-in values, then run with the real ones. Above this many codes (a batch
# request's), the ORM compiles it each time.
_SKU_STATEMENT_MAX_CODES = 32
_MERCHANT_STAND_IN = -7_000_001
_sku_statements: dict[tuple[str, int], tuple[str, tuple[int, ...], Any] | None] = {}


def _skus_read(merchant_id: int, lowered: Sequence[str]) -> list[Any]:
    """The rows of ``_skus_queryset``, read with its SQL compiled once (the same statement, the same model rows).

    Made into model rows as the ORM makes them (each column through its field's and the backend's converters, then
    ``Model.from_db``) but without a raw queryset's per-call work (matching columns to fields, collecting the
    converters): 0.34 → 0.14 ms of CPU a read on PostgreSQL, one read per SKU the cache does not hold."""
    statement = _sku_statement(len(lowered))
    if statement is None:
        return list(_skus_queryset(merchant_id, lowered))
    sql, positions, model = statement
    values: list[Any] = [merchant_id, *lowered]
    with connection.cursor() as cursor:
        cursor.execute(sql, [values[position] for position in positions])
        columns = tuple(column[0] for column in cursor.description)
        rows = cursor.fetchall()
    reading = _sku_reading(model, columns)
    if reading is None:  # not the columns the model's fields name, in their order: the ORM's own way
        return list(model._default_manager.raw(sql, [values[position] for position in positions]))
    names, converters = reading
    width = len(names)
    skus = []
    for row in rows:
        converted = list(row)
        for index, field_converters in converters:
            value = converted[index]
            for convert, expression in field_converters:
                value = convert(value, expression, connection)
            converted[index] = value
        sku = model.from_db(connection.alias, names, converted[:width])
        for extra, value in zip(columns[width:], converted[width:], strict=True):
            setattr(sku, extra, value)
        skus.append(sku)
    return skus


_sku_readings: dict[tuple[str, tuple[str, ...]], tuple[list[str], list[tuple[int, list[Any]]]] | None] = {}


def _sku_reading(model: Any, columns: tuple[str, ...]) -> tuple[list[str], list[tuple[int, list[Any]]]] | None:
    """For a result whose first columns are ``model``'s concrete fields in order (the annotations after them): the
    fields' names and, by column, the converters the ORM applies to it (the backend's, then the field's)."""
    key = (connection.vendor, columns)
    if key in _sku_readings:
        return _sku_readings[key]
    fields = model._meta.concrete_fields
    reading: tuple[list[str], list[tuple[int, list[Any]]]] | None = None
    if tuple(f.column for f in fields) == columns[: len(fields)]:
        converters = []
        for index, model_field in enumerate(fields):
            expression = model_field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
            if found:
                converters.append((index, [(convert, expression) for convert in found]))
        reading = ([f.attname for f in fields], converters)
    with _cache_lock:
        _sku_readings[key] = reading
    return reading


def _sku_statement(count: int) -> tuple[str, tuple[int, ...], Any] | None:
    """The SQL of ``_skus_queryset`` for ``count`` codes, where each of its parameters comes from (0: the merchant,
    i: the i-th code) and its model; None when its parameters are not exactly those stand-ins (the ORM then runs)."""
    if count > _SKU_STATEMENT_MAX_CODES:
        return None
    key = (connection.vendor, count)
    if key in _sku_statements:
        return _sku_statements[key]
    stand_ins = [f"quai-intake-stand-in-{index}" for index in range(count)]
    queryset = _skus_queryset(_MERCHANT_STAND_IN, stand_ins)
    sql, params = queryset.query.sql_with_params()
    where = {value: index for index, value in enumerate([_MERCHANT_STAND_IN, *stand_ins])}
    positions = tuple(where.get(param, -1) for param in params)
    ok = sorted(positions) == list(range(count + 1))
    statement = (sql, positions, queryset.model) if ok else None
    with _cache_lock:
        _sku_statements[key] = statement
    return statement


# --- The per-process cache of intake's reads (see the module's docstring) ---------------------------------------

# Entries a process holds at most; when full it is emptied (SKUs are read again as orders name them).
INTAKE_CACHE_MAX = 50_000
# However often its merchant's stamp is found unchanged, a SKU row is read again once it is this old (seconds; the
# cache's time if longer): the bound for an edit the stamp cannot see (one made with Quai's clock stopped, through
# a path that neither adds a SKU nor raises its version).
SKU_ROW_MAX_AGE = 60.0

_cache_lock = threading.Lock()
_stamp_lock = threading.Lock()
_buffer_lock = threading.Lock()
_skus: dict[int, dict[str, tuple[float, Any]]] = {}  # merchant -> lower-cased code -> (read at, row)
_buffers: dict[int, tuple[float, int]] = {}


@dataclass(frozen=True)
class _SkuStamp:
    """A merchant's ``sku_stamp`` as last read, trusted until ``checked_until``; ``generation`` changes whenever
    the merchant's cached rows are forgotten (a new stamp), so a read begun before that is not kept after it."""

    value: Any
    checked_until: float
    generation: int


_sku_stamps: dict[int, _SkuStamp] = {}
_T = TypeVar("_T")
_generations = itertools.count(1)


def _cache_seconds() -> float:
    return float(getattr(settings, "QUAI_INTAKE_CACHE_SECONDS", 5))


def _row_copy(row: Any) -> Any:
    """What ``copy.copy`` makes of a model row without a binary field: its fields, and a ``ModelState`` of its own
    whose related-object cache is a copy. Made directly, not through pickling's ``__reduce_ex__`` /
    ``__getstate__`` / ``__setstate__`` round (~4 % of a request thread's CPU in a sale, every line's SKU being a
    cache hit)."""
    state = ModelState()
    state.__dict__.update(row._state.__dict__)
    state.fields_cache = row._state.fields_cache.copy()
    new = row.__class__.__new__(row.__class__)
    new.__dict__.update(row.__dict__)
    new._state = state
    return new


def _read_once(lock: threading.Lock, fresh: Callable[[float], _T | None], read: Callable[[float], _T]) -> _T:
    """The single flight of intake's cached reads: what ``fresh(now)`` still holds, without a lock; otherwise one
    thread calls ``read(now)`` (``now`` taken before it: what it reads is trusted from then) while the others wait
    for the lock and then take what it read. At a sale's rate every request thread finds an entry expired at once:
    without it each read it again (the release buffer: 99 reads for ~24 expiries in one profiled run)."""
    found = fresh(time.monotonic())
    if found is not None:
        return found
    with lock:
        now = time.monotonic()
        found = fresh(now)
        return found if found is not None else read(now)


def _skus_validated(merchant_id: int, seconds: float) -> int:
    """Make sure the merchant's cached SKUs are current: its stamp (``sku_stamp``, one aggregate read) is read again
    once ``seconds`` have passed since it was last read, by one thread while the others wait (``_read_once``); if
    it changed, every cached SKU of the merchant is forgotten. Returns the rows' generation.

    Why a stamp rather than each SKU's own expiry: at a sale's rate most SKUs are named less often than the cache's
    time, so most orders missed and read their SKUs again (with the connection's health check) — now a process
    reads one stamp per merchant per ``seconds``, and a SKU changed anywhere is still seen within that time."""

    def fresh(now: float) -> int | None:
        entry = _sku_stamps.get(merchant_id)
        return entry.generation if entry is not None and now < entry.checked_until else None

    def read(now: float) -> int:
        entry = _sku_stamps.get(merchant_id)
        value = sku_stamp(merchant_id=merchant_id)
        with _cache_lock:
            if entry is None or entry.value != value:
                _skus.pop(merchant_id, None)
                generation = next(_generations)
            else:
                generation = entry.generation
            _sku_stamps[merchant_id] = _SkuStamp(value=value, checked_until=now + seconds, generation=generation)
        return generation

    return _read_once(_stamp_lock, fresh, read)


def _skus_cached(merchant_id: int, lowered: set[str], now: float) -> dict[str, Any]:
    """The SKUs among ``lowered`` this process holds for the merchant, read less than ``SKU_ROW_MAX_AGE`` ago: a
    copy of each (a row object is never shared between two requests' threads)."""
    rows = _skus.get(merchant_id)
    if not rows:
        return {}
    oldest = now - max(SKU_ROW_MAX_AGE, _cache_seconds())
    known: dict[str, Any] = {}
    for code in lowered:
        entry = rows.get(code)
        if entry is not None and entry[0] > oldest:
            known[code] = _row_copy(entry[1])
    return known


def _skus_keep(merchant_id: int, read: Mapping[str, Any], *, generation: int, read_at: float) -> None:
    """Keep SKUs read at ``read_at`` under the stamp of ``generation``, unless the merchant's rows were forgotten
    since (a newer stamp: these may be older than it)."""
    if not read:
        return
    with _cache_lock:
        stamp = _sku_stamps.get(merchant_id)
        if stamp is None or stamp.generation != generation:
            return
        if sum(len(rows) for rows in _skus.values()) + len(read) > INTAKE_CACHE_MAX:
            _skus.clear()
        rows = _skus.setdefault(merchant_id, {})
        for code, sku in read.items():
            rows[code] = (read_at, _row_copy(sku))


def release_buffer_forget(merchant_id: int) -> None:
    """Forget the merchant's cached release buffer (its policy changed in this process)."""
    with _cache_lock:
        _buffers.pop(merchant_id, None)


def intake_caches_clear() -> None:
    """Forget every cached SKU and release buffer (tests start with it: a rolled-back database reuses ids)."""
    with _cache_lock:
        _skus.clear()
        _sku_stamps.clear()
        _buffers.clear()


@dataclass(frozen=True)
class OrderCreated:
    """What intake did: the order, whether it was created now, and — when it was — what it wrote.

    ``lines`` (in position order) and ``timeline`` (the status steps, oldest first) are the rows this call wrote,
    so the caller can answer the order's detail without reading it again. For an order already there
    (``created=False``) they are empty: that order's detail is read by ``quai.orders.selectors.order_detail``.
    """

    order: Order
    created: bool
    lines: tuple[OrderLine, ...] = ()
    timeline: tuple[StateTransition, ...] = ()


def order_already_there(draft: OrderDraft) -> OrderCreated | None:
    """The answer to an order whose insert met the unique index of (merchant, channel, external id): the order
    already stored under it (``created=False``), or 409 ``order_external_id_reused`` if it holds other contents.
    None if no order holds that id (the integrity error was another one). Call it once the failed write's
    transaction or savepoint was rolled back."""
    existing = Order.objects.filter(
        merchant_id=draft.merchant_id, channel=draft.channel, external_id=draft.external_id
    ).first()
    if existing is None:
        return None
    if existing.fingerprint != draft.fingerprint:
        raise Conflict(
            _("Order %(external_id)s of channel %(channel)s was already received with other contents (order %(id)d).")
            % {"external_id": draft.external_id, "channel": draft.channel, "id": existing.pk},
            code="order_external_id_reused",
            details={"order_id": existing.pk, "channel": draft.channel, "external_id": draft.external_id},
        )
    return OrderCreated(order=existing, created=False)


# The old private name, still imported by the CSV import (quai/orders/services/csv_import.py).
_existing_answer = order_already_there


def order_policy_for(merchant_id: int) -> OrderPolicy | None:
    return OrderPolicy.objects.filter(merchant_id=merchant_id).first()


def release_buffer_minutes_for(merchant_id: int) -> int:
    """The merchant's release buffer: its policy's, or the default (kept ``QUAI_INTAKE_CACHE_SECONDS``, read again
    by one thread while the others wait: ``_read_once``)."""
    seconds = _cache_seconds()
    if seconds <= 0:
        return _release_buffer_read(merchant_id)

    def fresh(now: float) -> int | None:
        entry = _buffers.get(merchant_id)
        return entry[1] if entry is not None and now < entry[0] else None

    def read(now: float) -> int:
        minutes = _release_buffer_read(merchant_id)
        with _cache_lock:
            if len(_buffers) >= INTAKE_CACHE_MAX:
                _buffers.clear()
            _buffers[merchant_id] = (now + seconds, minutes)
        return minutes

    return _read_once(_buffer_lock, fresh, read)


def _release_buffer_read(merchant_id: int) -> int:
    policy = order_policy_for(merchant_id)
    return policy.release_buffer_minutes if policy else DEFAULT_RELEASE_BUFFER_MINUTES


def order_create(
    *,
    merchant: Any,
    data: Mapping[str, Any] | OrderDraft,
    actor: Any = None,
    release_buffer_minutes: int | None = None,
) -> OrderCreated:
    """Accept one order: validate it, write it once per (merchant, channel, external id), reserve its stock.

    ``data`` is the order as the API takes it (a mapping) or a draft already made by ``order_validate``. Returns
    the order and whether it was created now (False: the same order was already there, nothing written).
    ``release_buffer_minutes``: the merchant's release buffer when the caller already read it
    (``release_buffer_minutes_for``; intake reads it in the request's thread, outside the shared commit).

    Stock is reserved line by line through ``quai.inventory.services.reservation_create`` (document "order",
    "<order id>/<position>"); a line keeps what it got, and the order ends ``allocated`` when every line is
    covered, ``backordered`` otherwise (``order.received``, then ``order.status_changed`` with ``order.allocated``
    or ``order.backordered``). All in one transaction: an order is never visible half-written. The writes are
    ``order_write``'s, in a savepoint here.
    """
    draft = data if isinstance(data, OrderDraft) else order_validate(merchant=merchant, data=data)
    buffer_minutes = (
        release_buffer_minutes if release_buffer_minutes is not None else release_buffer_minutes_for(draft.merchant_id)
    )
    try:
        with transaction.atomic():
            return order_write(draft=draft, actor=actor, release_buffer_minutes=buffer_minutes)
    except IntegrityError:
        answer = order_already_there(draft)
        if answer is None:
            raise
        return answer


def order_write(*, draft: OrderDraft, actor: Any = None, release_buffer_minutes: int) -> OrderCreated:
    """The writes of one checked order — the order, its reservations, its lines, its step and events — with no
    savepoint of their own: the caller holds one (the group committer's unit; ``order_create``'s) and answers an
    ``IntegrityError`` (the external id is taken: a resend, or a twin that committed first) with
    ``order_already_there`` once that savepoint was rolled back. Two round trips fewer per order than a savepoint
    here, on the committer's serial path.

    No look-up of the external id before the insert: the unique index answers it. A new order (a flash sale's every
    order) costs no query for it; a resend costs one failed insert, then the look-up the twin race needed anyway.
    """
    now = clock.now()
    with transaction.atomic(savepoint=False):
        # The order row first: a twin arriving at the same moment waits here on the unique index (PostgreSQL)
        # or on the IMMEDIATE transaction (SQLite), before either touched any stock.
        order = Order.objects.create(
            merchant_id=draft.merchant_id,
            channel=draft.channel,
            external_id=draft.external_id,
            status=OrderStatus.RECEIVED,
            priority=draft.priority,
            currency=draft.currency,
            carrier_service=draft.carrier_service,
            promise_id=draft.promise_id,
            promised_from=draft.promised_from,
            promised_to=draft.promised_to,
            gift_message=draft.gift_message,
            notes=draft.notes,
            shipping_total=draft.shipping_total,
            lines_total=draft.lines_total,
            total=draft.total,
            release_after=now + timedelta(minutes=release_buffer_minutes),
            fingerprint=draft.fingerprint,
            created_at=now,
            updated_at=now,
            **draft.shopper,
            **draft.address,
        )
        # Lines are reserved before they are inserted (a reservation's document is "<order id>/<position>", the
        # order id is known): each line's INSERT then carries what it got, instead of an UPDATE per line after.
        lines = [
            OrderLine(
                order=order,
                position=line.position,
                sku=line.sku,
                sku_code=line.sku_code,
                quantity=line.quantity,
                unit_price=line.unit_price,
                backordered_quantity=line.quantity,
            )
            for line in draft.lines
        ]
        event_record(
            OrderReceived(
                order_id=order.pk,
                channel=order.channel,
                external_id=order.external_id,
                priority=order.priority,
                currency=order.currency,
                total=str(order.total),
                carrier_service=order.carrier_service,
                lines=[{"sku_code": line.sku_code, "quantity": line.quantity} for line in draft.lines],
            ),
            merchant_id=order.merchant_id,
        )
        skus = {line.position: line.sku for line in draft.lines}
        step = order_lines_reserve(order=order, lines=lines, skus=skus, actor=actor, insert_lines=True)
    return OrderCreated(order=order, created=True, lines=tuple(lines), timeline=(step,))
