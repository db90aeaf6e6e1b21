"""A small picking floor: one rack zone (aisles M and N), a pack station, stocked SKUs and released orders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.fulfillment import domain, services
from quai.inventory.services import stock_receive
from quai.orders import services as order_services
from quai.orders.tests.conftest import order_data
from quai.warehouse.models import Location, ZoneKind
from quai.warehouse.services import location_create, rack_bulk_create, zone_create
from quai.warehouse.tests.factories import SiteFactory


@dataclass
class Floor:
    site: Any
    zone: Any
    merchant: Any
    skus: list[Any] = field(default_factory=list)
    places: dict[str, Location] = field(default_factory=dict)  # SKU code → its shelf


def floor_for(merchant: Any, *, skus: int = 6, site_code: str = "floor", prefix: str = "FL") -> Floor:
    site = SiteFactory(code=site_code)
    zone = zone_create(site=site, code="PCK", name="Picking", kind=ZoneKind.PICKING)
    rack_bulk_create(site=site, zone=zone, aisles="M-N", bays=6, levels=1, origin_x_m=10, origin_y_m=10)
    packing = zone_create(site=site, code="PAK", name="Packing", kind=ZoneKind.PACKING)
    location_create(site=site, zone=packing, code="PAK-01", x_m=4, y_m=5)
    floor = Floor(site=site, zone=zone, merchant=merchant)
    shelves = list(Location.objects.filter(zone=zone).order_by("pick_sequence"))
    for k in range(skus):
        sku = SkuFactory(
            merchant=merchant, code=f"{prefix}-{k:02d}", weight_g=200, length_mm=100, width_mm=100, height_mm=50
        )
        shelf = shelves[(k * 5) % len(shelves)]
        stock_receive(sku=sku, location=shelf, quantity=20)
        floor.skus.append(sku)
        floor.places[sku.code] = shelf
    return floor


def released_order(floor: Floor, external_id: str, lines: list[tuple[int, int]], **changes: Any) -> Any:
    """An order of ``floor.merchant`` (lines: SKU index, quantity), allocated and released to the floor."""
    data = order_data(
        external_id,
        lines=[{"sku": floor.skus[k].code, "quantity": q, "unit_price": "9.90"} for k, q in lines],
        **changes,
    )
    order = order_services.order_create(merchant=floor.merchant, data=data).order
    return order_services.order_release(order=order.pk, now=clock.now() + timedelta(days=1))


def wave_for(floor: Floor, *, capacity: int = 50, totes: int = 4) -> Any:
    return services.wave_release(
        site=floor.site, criteria=domain.WaveCriteria(capacity=capacity), cart=domain.Cart(totes=totes)
    )


def _batch_for(merchant: Any) -> int:
    floor = floor_for(merchant, skus=1, site_code=f"iso-{merchant.code}", prefix="ISOB")
    released_order(floor, f"ISO-B-{merchant.code}", [(0, 1)])
    wave = wave_for(floor)
    return int(wave.batches.first().pk)


def _wave_for(merchant: Any) -> int:
    floor = floor_for(merchant, skus=1, site_code=f"isw-{merchant.code}", prefix="ISOW")
    return int(wave_for(floor).pk)


# Path parameters of the fulfilment routes. Waves and batches are the warehouse's: a merchant key gets 403.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {"batch_id": _batch_for, "wave_id": _wave_for}
