from __future__ import annotations

from datetime import date, datetime

from ninja import Field, Schema
from pydantic import StrictInt

from quai.tenants.schemas import MAX_INT

NOTES_LENGTH = 4000
ASN_LINES = 5000  # lines or cartons of one ASN: a full trailer of mixed cartons


class AsnLineIn(Schema):
    sku: str = Field(..., min_length=1, max_length=64, description="The merchant's SKU code.")
    quantity: StrictInt = Field(..., le=MAX_INT, description="Expected units, above zero.")
    lot: str = Field("", max_length=64)
    expiry: date | None = None
    sscc: str = Field("", max_length=20, description="The carton or pallet (one of handling_units) it travels in.")


class HandlingUnitIn(Schema):
    sscc: str = Field(..., min_length=1, max_length=20)
    kind: str = Field("carton", max_length=10, description="carton or pallet")


class AsnCreateIn(Schema):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant the ASN is for.")
    reference: str = Field(..., min_length=1, max_length=64)
    supplier: str = Field("", max_length=200)
    expected_at: date | None = None
    site: str | None = Field(
        None, max_length=20, description="Site code; may be left out when the warehouse has one site."
    )
    # A note for the receiving team, not a document store: was unbounded (1 MB went in).
    notes: str = Field("", max_length=NOTES_LENGTH)
    lines: list[AsnLineIn] = Field(..., min_length=1, max_length=ASN_LINES)
    handling_units: list[HandlingUnitIn] = Field(default_factory=list, max_length=ASN_LINES)


class AsnCancelIn(Schema):
    reason: str = Field("", max_length=255)


class AsnLineOut(Schema):
    id: int
    sku_id: int
    sku: str = Field(..., alias="sku.code")
    expected_quantity: int
    lot: str
    expiry: date | None
    received_quantity: int
    damaged_quantity: int
    unexpected: bool
    sscc: str | None = Field(None, alias="handling_unit.sscc")


class HandlingUnitOut(Schema):
    id: int
    kind: str
    sscc: str
    received_at: datetime | None


class AsnOut(Schema):
    id: int
    merchant_id: int
    reference: str
    supplier: str
    expected_at: date | None
    site: str = Field(..., alias="site.code")
    status: str
    notes: str
    created_at: datetime
    receiving_started_at: datetime | None
    closed_at: datetime | None


class AsnDetailOut(AsnOut):
    lines: list[AsnLineOut]
    handling_units: list[HandlingUnitOut]


class DiscrepancyLineOut(Schema):
    sku_id: int
    sku: str = Field(..., alias="sku.code")
    kind: str
    expected_quantity: int
    received_quantity: int
    damaged_quantity: int
    difference: int


class DiscrepancyReportOut(Schema):
    id: int
    asn_id: int
    reference: str = Field(..., alias="asn.reference")
    created_at: datetime
    expected_total: int
    received_total: int
    damaged_total: int
    lines: list[DiscrepancyLineOut]


class PutawayTaskOut(Schema):
    id: int
    merchant_id: int
    asn_id: int
    sku_id: int
    sku: str = Field(..., alias="sku.code")
    lot: str
    expiry: date | None
    stock_status: str
    quantity: int
    from_location: str = Field(..., alias="from_location.code")
    suggested_location: str | None = Field(None, alias="suggested_location.code")
    confirmed_location: str | None = Field(None, alias="confirmed_location.code")
    status: str
    confirmed_at: datetime | None


class PickFaceIn(Schema):
    merchant_id: StrictInt | None = None
    site: str | None = Field(None, max_length=20)
    location: str = Field(..., min_length=1, max_length=40, description="Location code.")
    sku: str = Field(..., min_length=1, max_length=64, description="The merchant's SKU code.")
    min_quantity: StrictInt = Field(..., le=MAX_INT)
    max_quantity: StrictInt = Field(..., le=MAX_INT)


class PickFaceOut(Schema):
    id: int
    merchant_id: int
    location_id: int
    location: str = Field(..., alias="location.code")
    sku_id: int
    sku: str = Field(..., alias="sku.code")
    min_quantity: int
    max_quantity: int


class ReplenishmentTaskOut(Schema):
    id: int
    merchant_id: int
    pick_face_id: int
    sku_id: int
    sku: str = Field(..., alias="sku.code")
    from_location: str | None = Field(None, alias="from_location.code")
    to_location: str = Field(..., alias="to_location.code")
    quantity: int
    on_hand_at_creation: int
    status: str
    created_at: datetime
