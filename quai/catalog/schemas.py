from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt

from quai.catalog.models import BarcodeKind, PackagingKind, SkuStatus


class BarcodeOut(Schema):
    id: int
    sku_id: int
    code: str
    kind: BarcodeKind
    is_primary: bool


# Outer bounds against oversized input; the cleaning (quai.catalog.cleaning) checks the exact column lengths with
# its own per-field codes, after trimming.
CODE_LENGTH = 128
NAME_LENGTH = 512
DESCRIPTION_LENGTH = 10_000
BARCODES_PER_SKU = 50


class BarcodeCreateIn(Schema):
    code: str = Field(..., min_length=1, max_length=CODE_LENGTH)
    kind: BarcodeKind | None = Field(
        None, description="gtin, internal or supplier. Empty: a code passing the GTIN check is a GTIN."
    )


class SkuOut(Schema):
    id: int
    merchant_id: int
    code: str
    name: str
    description: str
    gtin: str = Field(description="The primary GTIN as 14 digits, or empty.")
    barcodes: list[BarcodeOut]
    length_mm: int | None
    width_mm: int | None
    height_mm: int | None
    volume_mm3: int | None
    weight_g: int | None
    lot_tracked: bool
    expiry_tracked: bool
    serial_tracked: bool
    fragile: bool
    hazmat: bool
    hs_code: str
    country_of_origin: str
    status: SkuStatus
    version: int
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_barcodes(obj: Any) -> list[Any]:
        return sorted(obj.barcodes.all(), key=lambda barcode: (not barcode.is_primary, barcode.code))


class SkuCreateIn(Schema):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant the SKU belongs to.")
    code: str = Field(..., max_length=CODE_LENGTH)
    name: str = Field(..., max_length=NAME_LENGTH)
    description: str = Field("", max_length=DESCRIPTION_LENGTH)
    gtin: str = Field("", max_length=64, description="GTIN-8, 12, 13 or 14; its check digit is verified.")
    barcodes: list[Annotated[str, Field(max_length=CODE_LENGTH)]] = Field(
        default_factory=list, max_length=BARCODES_PER_SKU, description="Extra codes that resolve to this SKU."
    )
    length_mm: StrictInt | None = None
    width_mm: StrictInt | None = None
    height_mm: StrictInt | None = None
    weight_g: StrictInt | None = None
    lot_tracked: StrictBool = False
    expiry_tracked: StrictBool = False
    serial_tracked: StrictBool = False
    fragile: StrictBool = False
    hazmat: StrictBool = False
    hs_code: str = Field("", max_length=32)
    country_of_origin: str = Field("", max_length=16)
    status: SkuStatus = SkuStatus.ACTIVE


class SkuUpdateIn(Schema):
    """Only the fields sent change. ``version`` is the one read: a stale version gets 409 ``stale_version``."""

    version: StrictInt
    code: str | None = Field(None, max_length=CODE_LENGTH)
    name: str | None = Field(None, max_length=NAME_LENGTH)
    description: str | None = Field(None, max_length=DESCRIPTION_LENGTH)
    gtin: str | None = Field(None, max_length=64, description="Empty string: the SKU has no GTIN any more.")
    length_mm: StrictInt | None = None
    width_mm: StrictInt | None = None
    height_mm: StrictInt | None = None
    weight_g: StrictInt | None = None
    lot_tracked: StrictBool | None = None
    expiry_tracked: StrictBool | None = None
    serial_tracked: StrictBool | None = None
    fragile: StrictBool | None = None
    hazmat: StrictBool | None = None
    hs_code: str | None = Field(None, max_length=32)
    country_of_origin: str | None = Field(None, max_length=16)
    status: SkuStatus | None = None


class SkuBulkIn(Schema):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant the SKUs belong to.")
    rows: list[dict[str, Any]] = Field(
        # An outer wall only: the service refuses more than 1,000 rows with its own code (too_many_rows).
        max_length=10_000,
        description=(
            "Up to 1,000 SKUs matched by code: created when new, updated otherwise. Each row takes the fields of "
            "a SKU (code, name, description, gtin, length_mm, width_mm, height_mm, weight_g, lot_tracked, "
            "expiry_tracked, serial_tracked, fragile, hazmat, hs_code, country_of_origin, status) and "
            "barcodes (a list: when given, it replaces the SKU's extra codes). Absent fields are left as they "
            "are. One wrong row rejects the whole call (422 bulk_rejected, errors listed per row index)."
        ),
        examples=[[{"code": "TSHIRT-M", "name": "T-shirt M", "gtin": "9521234543213", "weight_g": 180}]],
    )


class SkuBulkItemOut(Schema):
    index: int
    id: int
    code: str
    action: str = Field(description="created, updated or unchanged")


class SkuBulkOut(Schema):
    created: int
    updated: int
    unchanged: int
    items: list[SkuBulkItemOut]


class ScanResultOut(Schema):
    code: str = Field(description="The scanned data, without symbology identifier.")
    kind: str = Field(description="gtin, gs1, sscc or internal")
    merchant_id: int | None = Field(None, description="The merchant whose SKU the code designates; None for an SSCC.")
    sku: SkuOut | None = Field(description="None only for an SSCC without a GTIN of its contents.")
    gtin: str | None
    lot: str | None
    expiry: date | None
    serial: str | None
    sscc: str | None
    quantity: int = Field(description="Units the scan stands for: 1 unless the barcode carries a count (30/37).")
    net_weight_kg: Decimal | None = Field(
        None, description="Net weight in kg of a variable-measure item, from a GS1 (310n) element."
    )
    price: Decimal | None = Field(None, description="Price to pay printed on a variable-measure item: GS1 (392n/393n).")
    price_currency_numeric: str | None = Field(
        None, description="ISO 4217 numeric currency code of the price (978: euro), from a GS1 (393n) element."
    )


class PackagingTypeOut(Schema):
    id: int
    merchant_id: int | None = Field(description="None: the operator's packaging, offered to every merchant.")
    code: str
    name: str
    kind: PackagingKind
    inner_length_mm: int
    inner_width_mm: int
    inner_height_mm: int
    inner_volume_mm3: int
    max_weight_g: int
    tare_weight_g: int
    cost: Decimal
    currency: str
    active: bool
    version: int


class PackagingTypeCreateIn(Schema):
    merchant_id: StrictInt | None = Field(
        None, description="Staff: empty for the operator's packaging, or the merchant it belongs to."
    )
    code: str = Field(..., max_length=CODE_LENGTH)
    name: str = Field(..., max_length=NAME_LENGTH)
    kind: PackagingKind = PackagingKind.BOX
    inner_length_mm: StrictInt
    inner_width_mm: StrictInt
    inner_height_mm: StrictInt
    max_weight_g: StrictInt
    tare_weight_g: StrictInt = 0
    cost: Decimal = Decimal("0")
    currency: str = Field("EUR", max_length=8)
    active: StrictBool = True


class PackagingTypeUpdateIn(Schema):
    version: StrictInt
    code: str | None = Field(None, max_length=CODE_LENGTH)
    name: str | None = Field(None, max_length=NAME_LENGTH)
    kind: PackagingKind | None = None
    inner_length_mm: StrictInt | None = None
    inner_width_mm: StrictInt | None = None
    inner_height_mm: StrictInt | None = None
    max_weight_g: StrictInt | None = None
    tare_weight_g: StrictInt | None = None
    cost: Decimal | None = None
    currency: str | None = Field(None, max_length=8)
    active: StrictBool | None = None
