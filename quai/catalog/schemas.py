from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ninja import Field, Schema

from quai.catalog.models import BarcodeKind, PackagingKind, SkuStatus


class BarcodeOut(Schema):
    id: int
    sku_id: int
    code: str
    kind: BarcodeKind
    is_primary: bool


class BarcodeCreateIn(Schema):
    code: str
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
    merchant_id: int | None = Field(None, description="Staff only: the merchant the SKU belongs to.")
    code: str
    name: str
    description: str = ""
    gtin: str = Field("", description="GTIN-8, 12, 13 or 14; its check digit is verified.")
    barcodes: list[str] = Field(default_factory=list, description="Extra codes that resolve to this SKU.")
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None
    weight_g: int | None = None
    lot_tracked: bool = False
    expiry_tracked: bool = False
    serial_tracked: bool = False
    fragile: bool = False
    hazmat: bool = False
    hs_code: str = ""
    country_of_origin: str = ""
    status: SkuStatus = SkuStatus.ACTIVE


class SkuUpdateIn(Schema):
    """Only the fields sent change. ``version`` is the one read: a stale version gets 409 ``stale_version``."""

    version: int
    code: str | None = None
    name: str | None = None
    description: str | None = None
    gtin: str | None = Field(None, description="Empty string: the SKU has no GTIN any more.")
    length_mm: int | None = None
    width_mm: int | None = None
    height_mm: int | None = None
    weight_g: int | None = None
    lot_tracked: bool | None = None
    expiry_tracked: bool | None = None
    serial_tracked: bool | None = None
    fragile: bool | None = None
    hazmat: bool | None = None
    hs_code: str | None = None
    country_of_origin: str | None = None
    status: SkuStatus | None = None


class SkuBulkIn(Schema):
    merchant_id: int | None = Field(None, description="Staff only: the merchant the SKUs belong to.")
    rows: list[dict[str, Any]] = Field(
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
    merchant_id: int | None = Field(
        None, description="Staff: empty for the operator's packaging, or the merchant it belongs to."
    )
    code: str
    name: str
    kind: PackagingKind = PackagingKind.BOX
    inner_length_mm: int
    inner_width_mm: int
    inner_height_mm: int
    max_weight_g: int
    tare_weight_g: int = 0
    cost: Decimal = Decimal("0")
    currency: str = "EUR"
    active: bool = True


class PackagingTypeUpdateIn(Schema):
    version: int
    code: str | None = None
    name: str | None = None
    kind: PackagingKind | None = None
    inner_length_mm: int | None = None
    inner_width_mm: int | None = None
    inner_height_mm: int | None = None
    max_weight_g: int | None = None
    tare_weight_g: int | None = None
    cost: Decimal | None = None
    currency: str | None = None
    active: bool | None = None
