from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Annotated

from ninja import Field, Schema
from pydantic import StrictBool, StrictInt, field_validator

from quai.tenants.schemas import MAX_BIGINT, MAX_INT

# Coordinates are DecimalField(max_digits=8, decimal_places=2): within ±999,999.99 m; a rack's origin and spacings
# are bounded further so that the locations computed from them stay inside too.
COORDINATE = Decimal("999999.99")
RACK_ORIGIN = Decimal("10000")
RACK_STEP = Decimal("100")
PATTERN_LENGTH = 200
# A count (30 = 1-30) or a pattern ("1-30", "1,3,5"); the pattern's expansion is bounded by the service.
RackPart = Annotated[StrictInt, Field(le=MAX_INT)] | Annotated[str, Field(max_length=PATTERN_LENGTH)]


class SiteOut(Schema):
    id: int
    code: str
    name: str
    address_line1: str
    address_line2: str
    postal_code: str
    city: str
    country: str
    time_zone: str
    opening_days: list[int]
    opens_at: time
    closes_at: time


def _local_time(value: time | None) -> time | None:
    """Opening hours are read in the site's own time zone: a time with an offset (08:00Z) cannot be compared with
    one without (it was a 500), so it is refused."""
    if value is not None and value.tzinfo is not None:
        raise ValueError("give a local time without offset, such as 08:00: the site's time_zone applies")
    return value


class SiteCreateIn(Schema):
    code: str = Field(..., min_length=1, max_length=20, pattern=r"^[-a-zA-Z0-9_]+$")
    name: str = Field(..., min_length=1, max_length=200)
    address_line1: str = Field("", max_length=200)
    address_line2: str = Field("", max_length=200)
    postal_code: str = Field("", max_length=20)
    city: str = Field("", max_length=100)
    country: str = Field("FR", min_length=2, max_length=2)
    time_zone: str = Field("Europe/Paris", max_length=64)
    opening_days: list[StrictInt] = Field(default_factory=lambda: [1, 2, 3, 4, 5], max_length=7)
    opens_at: time = time(8, 0)
    closes_at: time = time(18, 0)

    _local_times = field_validator("opens_at", "closes_at")(_local_time)


class SiteUpdateIn(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    address_line1: str | None = Field(None, max_length=200)
    address_line2: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=20)
    city: str | None = Field(None, max_length=100)
    country: str | None = Field(None, min_length=2, max_length=2)
    time_zone: str | None = Field(None, max_length=64)
    opening_days: list[StrictInt] | None = Field(None, max_length=7)
    opens_at: time | None = None
    closes_at: time | None = None

    _local_times = field_validator("opens_at", "closes_at")(_local_time)


class ZoneOut(Schema):
    id: int
    site_id: int
    code: str
    name: str
    kind: str
    merchant_id: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    status: str
    closed_at: datetime | None
    version: int
    is_temporary: bool


class ZoneCreateIn(Schema):
    site_id: StrictInt
    code: str = Field(..., min_length=1, max_length=20)
    name: str = Field(..., min_length=1, max_length=200)
    # A plain string, so an unknown kind gets the service's own error code (unknown_zone_kind).
    kind: str = Field(
        ...,
        max_length=20,
        description="receiving, storage, picking, processing, packing, shipping, returns or quarantine",
    )
    merchant_id: StrictInt | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None


class ZoneUpdateIn(Schema):
    version: StrictInt = Field(..., description="The version you read; a stale one is refused with 409 stale_version.")
    name: str | None = Field(None, min_length=1, max_length=200)
    kind: str | None = Field(None, max_length=20)
    merchant_id: StrictInt | None = Field(None, description="Set to the owning merchant; see clear_merchant.")
    clear_merchant: StrictBool = Field(False, description="true: the zone becomes shared by every merchant.")
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    clear_window: StrictBool = Field(False, description="true: the zone becomes permanent (no validity window).")


class LocationOut(Schema):
    id: int
    site_id: int
    zone_id: int
    code: str
    aisle: str
    bay: int | None
    level: int | None
    position: int | None
    side: str
    x_m: Decimal
    y_m: Decimal
    max_volume_cm3: int | None
    max_weight_g: int | None
    pick_sequence: int
    mixed_sku: bool
    status: str
    blocked_reason: str


class LocationCreateIn(Schema):
    zone_id: StrictInt
    code: str = Field(..., min_length=1, max_length=40)
    aisle: str | None = Field(None, max_length=10)
    bay: StrictInt | None = Field(None, ge=1, le=MAX_INT)
    level: StrictInt | None = Field(None, ge=1, le=MAX_INT)
    position: StrictInt | None = Field(None, ge=1, le=MAX_INT)
    side: str = Field("", max_length=5)
    x_m: Decimal = Field(Decimal("0"), ge=-COORDINATE, le=COORDINATE)
    y_m: Decimal = Field(Decimal("0"), ge=-COORDINATE, le=COORDINATE)
    max_volume_cm3: StrictInt | None = Field(None, ge=1, le=MAX_BIGINT)
    max_weight_g: StrictInt | None = Field(None, ge=1, le=MAX_BIGINT)
    pick_sequence: StrictInt | None = Field(None, ge=0, le=MAX_INT)
    mixed_sku: StrictBool = True


class LocationBlockIn(Schema):
    reason: str = Field("", max_length=200)


class LocationsMoveIn(Schema):
    location_ids: list[Annotated[StrictInt, Field(ge=1, le=MAX_BIGINT)]] = Field(..., min_length=1, max_length=10_000)


class LocationsMovedOut(Schema):
    zone_id: int
    moved: int
    already_there: int


class RackCreateIn(Schema):
    zone_id: StrictInt
    aisles: str = Field(..., max_length=PATTERN_LENGTH, description='"A-F", "A,B,C" or "A-C,F"', examples=["A-F"])
    bays: RackPart = Field(..., description='30 (= 1-30), "1-30" or "1,3,5"', examples=["1-30"])
    levels: RackPart = Field(..., description='4 (= 1-4), "1-4"', examples=[4])
    positions: RackPart = 1
    origin_x_m: Decimal = Field(Decimal("0"), ge=-RACK_ORIGIN, le=RACK_ORIGIN)
    origin_y_m: Decimal = Field(Decimal("0"), ge=-RACK_ORIGIN, le=RACK_ORIGIN)
    aisle_spacing_m: Decimal = Field(Decimal("3"), gt=0, le=RACK_STEP)
    bay_width_m: Decimal = Field(Decimal("1.2"), gt=0, le=RACK_STEP)
    max_volume_cm3: StrictInt | None = Field(
        None, ge=1, le=MAX_BIGINT, description="Capacity of each location (one level of a bay)."
    )
    max_weight_g: StrictInt | None = Field(
        None, ge=1, le=MAX_BIGINT, description="Capacity of each location (one level of a bay)."
    )
    mixed_sku: StrictBool = True


class RackCreatedOut(Schema):
    zone_id: int
    count: int
    first_code: str
    last_code: str
    first_sequence: int
    last_sequence: int
