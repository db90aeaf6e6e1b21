from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.inbound.tests.factories import Warehouse, warehouse_build

TODAY = date(2031, 3, 10)


@pytest.fixture
def frozen_clock():  # type: ignore[no-untyped-def]
    with clock.frozen(datetime.fromisoformat("2031-03-10T09:00:00+01:00")):
        yield TODAY


@pytest.fixture
def wh(db) -> Warehouse:  # type: ignore[no-untyped-def]
    return warehouse_build()


@pytest.fixture
def shirt(merchant) -> Any:  # type: ignore[no-untyped-def]
    """A plain SKU: 200 × 150 × 50 mm (1.5 L), 350 g, no lot."""
    return SkuFactory(merchant=merchant, code="SHIRT-M", name="T-shirt M", gtin="03760000000017")


@pytest.fixture
def cream(merchant) -> Any:  # type: ignore[no-untyped-def]
    """A lot- and expiry-tracked SKU."""
    return SkuFactory(
        merchant=merchant,
        code="CREAM-50",
        name="Crème 50 ml",
        gtin="03760000000024",
        lot_tracked=True,
        expiry_tracked=True,
        length_mm=60,
        width_mm=60,
        height_mm=80,
        weight_g=90,
    )


@pytest.fixture
def mug(merchant) -> Any:  # type: ignore[no-untyped-def]
    """A SKU that is not on the ASNs of these tests."""
    return SkuFactory(merchant=merchant, code="MUG", name="Mug", gtin="03760000000031")


def ledger(merchant: Any) -> tuple[int, list[tuple[Any, ...]]]:
    """The stock ledger of ``merchant`` as comparable values: movement count and every quantity row."""
    from quai.inventory.models import StockMovement, StockQuantity

    rows = list(
        StockQuantity.objects.filter(merchant=merchant)
        .order_by("id")
        .values_list("sku_id", "location_id", "lot", "expiry", "status", "on_hand", "reserved")
    )
    return StockMovement.objects.filter(merchant=merchant).count(), rows
