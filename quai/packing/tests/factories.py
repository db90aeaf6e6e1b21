"""A small floor for packing tests: a shelf, a pack table, boxes, SKUs with stock, released orders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from quai.catalog.tests.factories import PackagingTypeFactory, SkuFactory
from quai.core import clock
from quai.inventory.services import stock_receive
from quai.orders import services as orders
from quai.orders.tests.conftest import order_data
from quai.tenants.tests.factories import MerchantFactory
from quai.warehouse.models import ZoneKind
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory


@dataclass
class Floor:
    merchant: Any
    shelf: Any
    station: Any
    shirt: Any
    mug: Any


def floor_build(merchant: Any = None, site_code: str = "lyon") -> Floor:
    merchant = merchant or MerchantFactory(code="acme", name="Acme")
    site = SiteFactory(code=site_code)
    storage = ZoneFactory(site=site, code="STO", kind=ZoneKind.STORAGE)
    packing = ZoneFactory(site=site, code="PAK", kind=ZoneKind.PACKING)
    shelf = LocationFactory(zone=storage, site=site, code="A-01-01")
    station = LocationFactory(zone=packing, site=site, code="PACK-1")
    shirt = SkuFactory(
        merchant=merchant,
        code="SHIRT-M",
        name="T-shirt M",
        gtin="03760000000017",
        length_mm=300,
        width_mm=200,
        height_mm=20,
        weight_g=200,
    )
    mug = SkuFactory(
        merchant=merchant,
        code="MUG",
        name="Mug",
        gtin="03760000000031",
        length_mm=120,
        width_mm=100,
        height_mm=100,
        weight_g=400,
    )
    stock_receive(sku=shirt, location=shelf, quantity=50)
    stock_receive(sku=mug, location=shelf, quantity=50)
    PackagingTypeFactory(
        code="S", inner_length_mm=150, inner_width_mm=120, inner_height_mm=110, max_weight_g=2000, tare_weight_g=80
    )
    PackagingTypeFactory(
        code="M", inner_length_mm=320, inner_width_mm=220, inner_height_mm=120, max_weight_g=5000, tare_weight_g=150
    )
    PackagingTypeFactory(
        code="L", inner_length_mm=500, inner_width_mm=400, inner_height_mm=300, max_weight_g=20000, tare_weight_g=400
    )
    return Floor(merchant, shelf, station, shirt, mug)


def released_order(merchant: Any, external_id: str, lines: list[dict[str, Any]], **changes: Any) -> Any:
    """An order made by intake and released to the warehouse (its buffer passed)."""
    data = order_data(external_id, lines=lines, **changes)
    order = orders.order_create(merchant=merchant, data=data).order
    return orders.order_release(order=order.pk, now=clock.now() + timedelta(hours=2))


def parcel_for(merchant: Any) -> int:
    """A parcel of a new order of ``merchant`` at a pack table, as the pack station opens it (one item)."""
    from quai.orders.tests.factories import order_for
    from quai.packing.models import Parcel, ParcelItem

    order = order_for(merchant, external_id=f"PCL-{merchant.code}-{Parcel.objects.count() + 1}")
    line = order.lines.first()
    parcel = Parcel.objects.create(
        merchant_id=merchant.pk,
        order_id=order.pk,
        order_reference=order.external_id,
        station=LocationFactory(),
        photo=b"\xff\xd8\xff photo",
        photo_type="image/jpeg",
    )
    ParcelItem.objects.create(parcel=parcel, sku_id=line.sku_id, sku_code=line.sku_code, name="item", expected=1)
    return int(parcel.pk)


# Every path parameter of the packing routes → a row of ``merchant``, for the project-wide isolation walk.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {"parcel_id": parcel_for}
