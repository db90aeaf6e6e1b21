from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quai.catalog.tests.factories import SkuFactory
from quai.orders import services
from quai.orders.tests.conftest import order_data


def order_for(merchant: Any, external_id: str = "ISO-1", **changes: Any) -> Any:
    """An order of ``merchant`` (backordered: its SKU has no stock), made through the intake service."""
    sku = SkuFactory(merchant=merchant)
    data = order_data(external_id, lines=[{"sku": sku.code, "quantity": 1, "unit_price": "5.00"}], **changes)
    return services.order_create(merchant=merchant, data=data).order


# Every path parameter of the orders routes → a row of ``merchant``, for the project-wide isolation walk.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "order_id": lambda merchant: order_for(merchant, external_id=f"ISO-{merchant.code}").pk,
}
