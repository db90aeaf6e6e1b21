"""Promise API schemas: strict types, every string and list bounded. Business checks are the services'."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import BaseModel, StrictInt

from quai.promise.services.promises import MAX_LINES
from quai.tenants.schemas import MAX_INT

# The checkout's hot path (its question and its answer) is read and written by plain pydantic models: Ninja's
# ``Schema`` runs its resolver machinery (a wrap validator around every nested object) on each, a measurable share
# of a request's CPU for nothing here (no ORM object to resolve).


class CartLineIn(BaseModel):
    sku: str = Field(..., min_length=1, max_length=64, description="The merchant's SKU code.")
    quantity: StrictInt = Field(..., le=MAX_INT, description="Units, above zero.")


class DestinationIn(BaseModel):
    country: str = Field(..., min_length=1, max_length=2, description="ISO 3166-1 alpha-2 (FR, BE…).")
    postcode: str = Field(..., max_length=20, description="Checked against the country's format (75011, 2A004…).")


class PromiseIn(BaseModel):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant whose SKUs these are.")
    lines: list[CartLineIn] = Field(..., max_length=MAX_LINES)
    destination: DestinationIn
    services: list[Annotated[str, Field(max_length=30)]] | None = Field(
        None, max_length=20, description="Only these carrier services' codes."
    )
    at: str | None = Field(
        None, max_length=40, description="ISO 8601 instant with its UTC offset (what-if, replays); default now."
    )


class ServiceOptionOut(BaseModel):
    service: str
    name: str
    carrier: str
    pickup_point: bool
    cutoff: datetime
    seconds_to_cutoff: int
    ship_date: date
    delivery_earliest: date
    delivery_latest: date
    confidence: float
    price: Decimal | None
    currency: str
    promise_id: str


class UnservedOut(BaseModel):
    service: str
    code: str
    message: str


class PromiseOut(BaseModel):
    at: datetime
    zone: str
    available_now: bool
    available_from: date | None
    options: list[ServiceOptionOut]
    unserved: list[UnservedOut]


class LeadTimeOut(Schema):
    sku: str
    available_now: bool
    available_from: date | None
    service: str | None
    ship_date: date | None
    delivery_earliest: date | None
    delivery_latest: date | None


class ConfigIn(Schema):
    sites: list[dict[str, Any]] = Field(..., max_length=50, description="See docs/PROMISE.md for the format.")


class ConfigLoadOut(Schema):
    sites: int
    services: int
    lanes: int
    closures: int
