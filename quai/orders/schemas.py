"""Orders API schemas: strict types (``"2"`` is not a quantity, ``true`` not a number), every string bounded.

Business checks (a quantity above zero, a postcode of its country, a phone a carrier can call, SKUs of this
merchant) are the services' (``quai.orders.services.order_validate``), so connectors and CSV imports get the same
answers as the API.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import StrictInt

from quai.orders.services.intake import MAX_LINES
from quai.tenants.schemas import MAX_INT

HoldReasonIn = Literal["payment", "fraud", "address", "customer_service", "merchant"]
PriorityIn = Literal["express", "vip", "marketplace", "standard"]


class ShopperIn(Schema):
    name: str = Field(..., min_length=1, max_length=200, description="The recipient's name.")
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40, description="Any usual form; stored in E.164 (+33612345678).")


class AddressIn(Schema):
    company: str = Field("", max_length=200)
    line1: str = Field(..., min_length=1, max_length=200)
    line2: str = Field("", max_length=200)
    postcode: str = Field(
        "", max_length=20, description="Checked against the country's format (France: 75011, 2A004…)."
    )
    city: str = Field(..., min_length=1, max_length=100)
    region: str = Field("", max_length=100)
    country: str = Field(..., min_length=2, max_length=2, description="ISO 3166-1 alpha-2 (FR, DE, GP…).")


class PromiseIn(Schema):
    id: str = Field("", max_length=100, description="The promise the checkout showed, by its id.")
    delivery_from: date | None = None
    delivery_by: date | None = None


class OrderLineIn(Schema):
    sku: str = Field(..., min_length=1, max_length=64, description="The merchant's SKU code.")
    quantity: StrictInt = Field(..., le=MAX_INT, description="Units, above zero.")
    unit_price: Decimal = Field(Decimal("0"), ge=0, max_digits=12, decimal_places=2)


class OrderCreateIn(Schema):
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


class OrderCancelIn(Schema):
    reason: str = Field("", max_length=1000)
    version: StrictInt | None = Field(None, description="The version read; a stale one gets 409 stale_version.")


class OrderHoldIn(Schema):
    reason: HoldReasonIn
    note: str = Field("", max_length=1000)


class OrderReleaseHoldIn(Schema):
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
