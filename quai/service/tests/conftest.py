from typing import Any

import pytest

from quai.core import clock
from quai.orders import services as orders_services
from quai.orders.tests.conftest import mug, order_data, shelf, shirt, stock  # noqa: F401  (shared fixtures)


@pytest.fixture
def place(merchant, shirt, stock):  # type: ignore[no-untyped-def]  # noqa: F811
    """``place(external_id, to_status="allocated", **changes)``: an order of two shirts (stock put there first),
    moved along the order's own machine to ``to_status``."""
    stock(shirt, 100)
    path = ["released", "picking", "packed", "shipped", "delivered"]

    def make(external_id: str, to_status: str = "allocated", **changes: Any) -> Any:
        data = order_data(external_id, lines=[{"sku": shirt.code, "quantity": 2, "unit_price": "19.90"}], **changes)
        order = orders_services.order_create(merchant=merchant, data=data).order
        if to_status in path:
            for status in path[: path.index(to_status) + 1]:
                if status == "released":
                    orders_services.order_release(order=order, now=clock.now() + clock.timedelta(hours=1))
                else:
                    orders_services.order_transition(order=order, to_status=status, actor="floor")
        order.refresh_from_db()
        return order

    return make
