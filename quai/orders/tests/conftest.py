from __future__ import annotations

import copy
from typing import Any

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.inventory.services import stock_receive
from quai.warehouse.models import ZoneKind
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory


def order_data(external_id: str = "SHOP-1001", **changes: Any) -> dict[str, Any]:
    """A valid order body as a shop sends it (French shopper, one line of SHIRT-M)."""
    data: dict[str, Any] = {
        "channel": "shopify",
        "external_id": external_id,
        "priority": "standard",
        "currency": "EUR",
        "shopper": {"name": "Camille Martin", "email": "camille@example.fr", "phone": "06 12 34 56 78"},
        "shipping_address": {
            "line1": "12 rue de la Roquette",
            "postcode": "75011",
            "city": "Paris",
            "country": "FR",
        },
        "carrier_service": "colissimo_home",
        "shipping_total": "4.90",
        "lines": [{"sku": "SHIRT-M", "quantity": 2, "unit_price": "19.90"}],
    }
    data = copy.deepcopy(data)
    data.update(changes)
    return data


@pytest.fixture
def shelf(db):  # type: ignore[no-untyped-def]
    """A storage shelf (orders and inbound are sibling layers: the warehouse's factories, not inbound's)."""
    zone = ZoneFactory(site=SiteFactory(code="lyon"), code="STO", kind=ZoneKind.STORAGE)
    return LocationFactory(zone=zone, site=zone.site, code="A-01-01")


@pytest.fixture
def shirt(merchant) -> Any:  # type: ignore[no-untyped-def]
    return SkuFactory(merchant=merchant, code="SHIRT-M", name="T-shirt M")


@pytest.fixture
def mug(merchant) -> Any:  # type: ignore[no-untyped-def]
    return SkuFactory(merchant=merchant, code="MUG", name="Mug")


@pytest.fixture
def stock(shelf):  # type: ignore[no-untyped-def]
    """``stock(sku, quantity)`` puts sellable units of a SKU on a storage shelf."""

    def put(sku: Any, quantity: int) -> None:
        stock_receive(sku=sku, location=shelf, quantity=quantity)

    return put
