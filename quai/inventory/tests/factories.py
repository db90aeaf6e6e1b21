"""Factories for stock tests: a stocked SKU in one call, reservations, and the isolation factories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quai.catalog.tests.factories import SkuFactory
from quai.inventory import services
from quai.inventory.models import Reservation, StockStatus
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory

__all__ = [
    "LocationFactory",
    "SiteFactory",
    "SkuFactory",
    "ZoneFactory",
    "count_task_for",
    "reservation_for",
    "stocked_sku",
]


def stocked_sku(
    *,
    merchant: Any,
    quantity: int = 10,
    location: Any = None,
    status: str = StockStatus.SELLABLE,
    **sku_fields: Any,
) -> tuple[Any, Any]:
    """A SKU of ``merchant`` with ``quantity`` units received at ``location`` (a new storage location if None)."""
    sku = SkuFactory(merchant=merchant, **sku_fields)
    location = location or LocationFactory()
    services.stock_receive(sku=sku, location=location, quantity=quantity, status=status, reason="test stock")
    return sku, location


def count_task_for(merchant: Any, *, quantity: int = 5) -> Any:
    """A blind count of one of ``merchant``'s SKUs in the location that holds it."""
    sku, location = stocked_sku(merchant=merchant, quantity=quantity)
    return services.count_task_create(location=location, sku=sku)[0]


def reservation_for(merchant: Any, *, quantity: int = 1, stock: int = 5) -> Reservation:
    sku, _location = stocked_sku(merchant=merchant, quantity=stock)
    return services.reservation_create(merchant=merchant, sku=sku, quantity=quantity, document_id="order-1")


ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "sku_id": lambda merchant: stocked_sku(merchant=merchant)[0].pk,
    "reservation_id": lambda merchant: reservation_for(merchant).pk,
    "count_task_id": lambda merchant: count_task_for(merchant).pk,
}
