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


@pytest.fixture
def desk(shelf):  # type: ignore[no-untyped-def]  # noqa: F811
    """The returns desk's places on the shelf's site: a returns bench and a quarantine cage."""
    from quai.warehouse.models import ZoneKind
    from quai.warehouse.tests.factories import LocationFactory, ZoneFactory

    returns = ZoneFactory(site=shelf.site, code="RET", kind=ZoneKind.RETURNS)
    quarantine = ZoneFactory(site=shelf.site, code="QUA", kind=ZoneKind.QUARANTINE)
    return {
        "returns": LocationFactory(zone=returns, site=shelf.site, code="RET-01"),
        "quarantine": LocationFactory(zone=quarantine, site=shelf.site, code="QUA-01"),
        "shelf": shelf,
    }
