"""Orders API schemas: strict types (``"2"`` is not a quantity, ``true`` not a number), every string bounded.

Business checks (a quantity above zero, a postcode of its country, a phone a carrier can call, SKUs of this
merchant) are the services' (``quai.orders.services.order_validate``), so connectors and CSV imports get the same
answers as the API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Manager, QuerySet
from django.db.models.fields.files import FieldFile
from ninja import Field, Schema
from pydantic import StrictInt, TypeAdapter, ValidationInfo, model_validator
from pydantic.functional_validators import ModelWrapValidatorHandler

from quai.orders.services.intake import MAX_LINES
from quai.tenants.schemas import MAX_INT


class BodyIn(Schema):
    """An input schema read from a JSON body: a JSON object is validated as the dict it is.

    Ninja's ``Schema`` wraps whatever it validates in a ``DjangoGetter`` (to read model rows' attributes, call their
    managers and resolvers): for a dict decoded from JSON that wrapper only adds a Python call per field read, and
    the answer is the same (a JSON value is never a manager nor callable; a missing key is missing either way).
    Anything else (a list or a string where an object belongs, a model row) still goes through the getter."""

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(cls, values: Any, handler: ModelWrapValidatorHandler[Any], info: ValidationInfo) -> Any:
        if type(values) is dict and BODY_AS_DICT and cls.model_config.get("extra") != "forbid":
            return handler(values)
        return Schema._run_root_validator.__func__(cls, values, handler, info)


# Tests turn it off to compare the two readings.
BODY_AS_DICT = True

HoldReasonIn = Literal["payment", "fraud", "address", "customer_service", "merchant"]
PriorityIn = Literal["express", "vip", "marketplace", "standard"]


class ShopperIn(BodyIn):
    name: str = Field(..., min_length=1, max_length=200, description="The recipient's name.")
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40, description="Any usual form; stored in E.164 (+33612345678).")


class AddressIn(BodyIn):
    company: str = Field("", max_length=200)
    line1: str = Field(..., min_length=1, max_length=200)
    line2: str = Field("", max_length=200)
    postcode: str = Field(
        "", max_length=20, description="Checked against the country's format (France: 75011, 2A004…)."
    )
    city: str = Field(..., min_length=1, max_length=100)
    region: str = Field("", max_length=100)
    country: str = Field(..., min_length=2, max_length=2, description="ISO 3166-1 alpha-2 (FR, DE, GP…).")


class PromiseIn(BodyIn):
    id: str = Field("", max_length=100, description="The promise the checkout showed, by its id.")
    delivery_from: date | None = None
    delivery_by: date | None = None


class OrderLineIn(BodyIn):
    sku: str = Field(..., min_length=1, max_length=64, description="The merchant's SKU code.")
    quantity: StrictInt = Field(..., le=MAX_INT, description="Units, above zero.")
    unit_price: Decimal = Field(Decimal("0"), ge=0, max_digits=12, decimal_places=2)


class OrderCreateIn(BodyIn):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant the order is for.")
    channel: str = Field("api", min_length=1, max_length=50, description="Where it comes from: api, shopify, csv…")
    external_id: str = Field(..., min_length=1, max_length=100, description="The shop's own order number.")
    priority: PriorityIn = "standard"
    currency: str = Field(..., min_length=3, max_length=3, description="ISO 4217 (EUR).")
    shopper: ShopperIn
    shipping_address: AddressIn
    carrier_service: str = Field("", max_length=64)
    promise: PromiseIn | None = None
    gift_message: str = Field("", max_length=1000)
    notes: str = Field("", max_length=4000)
    shipping_total: Decimal = Field(Decimal("0"), ge=0, max_digits=12, decimal_places=2)
    lines: list[OrderLineIn] = Field(..., min_length=1, max_length=MAX_LINES)


class OrderCancelIn(BodyIn):
    reason: str = Field("", max_length=1000)
    version: StrictInt | None = Field(None, description="The version read; a stale one gets 409 stale_version.")


class OrderHoldIn(BodyIn):
    reason: HoldReasonIn
    note: str = Field("", max_length=1000)


class OrderReleaseHoldIn(BodyIn):
    note: str = Field("", max_length=1000)


class OrderAddressIn(AddressIn):
    version: StrictInt | None = Field(None, description="The version read; a stale one gets 409 stale_version.")


class ShopperOut(Schema):
    name: str
    email: str
    phone: str


class AddressOut(Schema):
    company: str
    line1: str
    line2: str
    postcode: str
    city: str
    region: str
    country: str


class PromiseOut(Schema):
    id: str
    delivery_from: date | None
    delivery_by: date | None


class OrderOut(Schema):
    id: int
    merchant_id: int
    channel: str
    external_id: str
    status: str
    hold_reason: str
    held_from: str
    priority: str
    currency: str
    lines_total: Decimal
    shipping_total: Decimal
    total: Decimal
    carrier_service: str
    shopper: ShopperOut
    shipping_address: AddressOut
    promise: PromiseOut
    gift_message: str
    notes: str
    release_after: datetime
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_shopper(obj: Any) -> dict[str, str]:
        return {"name": obj.shopper_name, "email": obj.shopper_email, "phone": obj.shopper_phone}

    @staticmethod
    def resolve_shipping_address(obj: Any) -> dict[str, str]:
        return {
            "company": obj.ship_company,
            "line1": obj.address_line1,
            "line2": obj.address_line2,
            "postcode": obj.postcode,
            "city": obj.city,
            "region": obj.region,
            "country": obj.country,
        }

    @staticmethod
    def resolve_promise(obj: Any) -> dict[str, Any]:
        return {"id": obj.promise_id, "delivery_from": obj.promised_from, "delivery_by": obj.promised_to}


class OrderLineOut(Schema):
    id: int
    position: int
    sku_id: int
    sku: str = Field(..., alias="sku_code")
    quantity: int
    unit_price: Decimal
    reserved_quantity: int
    backordered_quantity: int


class TimelineEntryOut(Schema):
    at: datetime
    transition: str
    from_status: str
    to_status: str
    actor: str = Field(..., alias="actor_label")
    reason: str
    details: dict[str, Any]


class OrderDetailOut(OrderOut):
    lines: list[OrderLineOut]
    timeline: list[TimelineEntryOut]

    @staticmethod
    def resolve_lines(obj: Any) -> list[Any]:
        return list(obj.lines.all())  # prefetched by quai.orders.selectors.order_detail

    @staticmethod
    def resolve_timeline(obj: Any) -> list[Any]:
        return list(obj.timeline)  # read by quai.orders.selectors.order_detail


# --- Answers built without the response model's validation -------------------------------------------------------
# Ninja validates an answer by wrapping each object of it in a ``DjangoGetter`` and running the response model's
# validation over it, then dumps the model again: for an order's detail that was a quarter of a request's CPU. The
# intake answers are rows intake just wrote, already of their fields' types, so ``schema_dumper`` reads the same
# attributes (aliases, ``resolve_<field>``, managers and callables as the getter does) into the dict the model
# would dump, checking each value's type instead of converting it: a value not of its field's exact type is handed
# to pydantic's own validation of that field, so the answer is the model's either way (tested field for field).

_Dump = Callable[[Any], Any]
_MISSING = object()


_PLAIN = frozenset({str, int, bool, Decimal, datetime, date, dict, list, type(None)})

# The field types whose values are answered as they are (or as ``_TO_JSON`` writes them) when of exactly that type;
# any other value of such a field, and every other field (nested schemas, lists, optional ones), goes through its
# field's dump.
_EXACT = (str, int, bool, Decimal, datetime, date)

# What the API's JSON encoder (Ninja's, Django's underneath) writes for a Decimal, a datetime and a date: the dumper
# writes it at once for a value of exactly that type, so encoding the answer calls no ``default`` per value (eight
# per order's detail) and gives the same bytes. Any other value is left to the encoder, as before.
_TO_JSON: dict[type, Callable[[Any], Any]] = {
    Decimal: DjangoJSONEncoder().default,
    datetime: DjangoJSONEncoder().default,
    date: DjangoJSONEncoder().default,
}


def _source_value(value: Any) -> Any:
    """What ``DjangoGetter`` makes of an attribute: a manager or queryset listed, a callable called."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Manager):
        return list(value.all())
    if isinstance(value, QuerySet):
        return list(value)
    if callable(value):
        return value()
    if isinstance(value, FieldFile):
        return value.url if value else None
    return value


def _scalar_dump(annotation: Any) -> _Dump:
    exact = annotation if annotation in _EXACT else None
    to_json = _TO_JSON.get(annotation) if exact is not None else None
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)

    def dump(value: Any) -> Any:
        if type(value) is exact:
            return value if to_json is None else to_json(value)
        return adapter.dump_python(adapter.validate_python(value))

    return dump


def _field_dump(annotation: Any) -> _Dump:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType) and type(None) in args and len(args) == 2:
        inner = _field_dump(next(arg for arg in args if arg is not type(None)))
        return lambda value: None if value is None else inner(value)
    if isinstance(annotation, type) and issubclass(annotation, Schema):
        return schema_dumper(annotation)
    if origin is list and len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], Schema):
        item = schema_dumper(args[0])
        adapter: TypeAdapter[Any] = TypeAdapter(list[Any])
        return lambda value: [
            item(entry) for entry in (value if type(value) is list else adapter.validate_python(value))
        ]
    if origin is dict and args in ((str, Any),):
        return lambda value: dict(value) if type(value) is dict else TypeAdapter(annotation).validate_python(value)
    return _scalar_dump(annotation)


_dumpers: dict[type[Schema], _Dump] = {}


def schema_dumper(schema: type[Schema]) -> _Dump:
    """The function that turns an object (a model row or a dict) into what ``schema`` validates and dumps it to
    (field names as keys, ``by_alias`` off as Ninja's operations have it), for ``json.dumps`` with Ninja's encoder:
    the same JSON, with a Decimal, datetime or date of its field's exact type already as the encoder writes it."""
    known = _dumpers.get(schema)
    if known is not None:
        return known
    resolvers = schema._ninja_resolvers
    plan: list[tuple[str, str, Callable[..., Any] | None, Any, Callable[[Any], Any] | None, _Dump, Any]] = []
    for name, info in schema.model_fields.items():
        resolver = resolvers.get(name)
        if resolver is not None and (not resolver._static or resolver._takes_context):
            raise TypeError(f"{schema.__name__}.resolve_{name}: only static resolvers of one argument are dumped")
        if info.metadata or "." in (info.alias or ""):
            raise TypeError(f"{schema.__name__}.{name}: constraints and dotted aliases are the model's to check")
        default = _MISSING if info.is_required() else info.get_default(call_default_factory=True)
        exact: Any = info.annotation if info.annotation in _EXACT else None
        plan.append(
            (
                name,
                info.alias or name,
                resolver._func if resolver else None,
                exact,
                _TO_JSON.get(exact) if exact is not None else None,
                _field_dump(info.annotation),
                default,
            )
        )

    def dump(obj: Any) -> dict[str, Any]:
        is_dict = isinstance(obj, dict)
        out: dict[str, Any] = {}
        for name, source, resolve, exact, to_json, convert, default in plan:
            if resolve is not None:
                value = resolve(obj)
            else:
                value = obj.get(source, _MISSING) if is_dict else getattr(obj, source, _MISSING)
                if value is _MISSING:
                    if default is _MISSING:
                        # What the model's validation would refuse: let it, with its own error.
                        schema.model_validate(obj)
                        raise AssertionError(f"{schema.__name__}.{name}: missing, yet validated")
                    out[name] = default
                    continue
            if type(value) is exact:
                out[name] = value if to_json is None else to_json(value)
            else:
                out[name] = convert(_source_value(value))
        return out

    _dumpers[schema] = dump
    return dump
