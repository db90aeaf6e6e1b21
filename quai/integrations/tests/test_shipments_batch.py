"""The shop fulfilment's batch form (``on_shipments_shipped``): the same pushes, in the same order, as the single
form run on each ``shipment.shipped`` in turn, and one read for a truck of orders that came from no shop."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.events import Envelope
from quai.integrations import domain
from quai.integrations.connectors.base import Address, ExternalLine, ExternalOrder
from quai.integrations.models import ShopOrder
from quai.integrations.services import shipments
from quai.integrations.tests.factories import ConnectionFactory
from quai.orders.tests.factories import order_for
from quai.shipping.events import ShipmentShipped

pytestmark = pytest.mark.django_db
SNAPSHOT = domain.order_to_json(
    ExternalOrder(
        external_id="1",
        external_number="1",
        currency="EUR",
        ship_to=Address(),
        lines=(ExternalLine(external_line_id="10", sku="SKU", quantity=1, unit_price=Decimal("1")),),
    )
)


def _item(order: Any, parcel_ids: list[int], merchant_id: int | None) -> tuple[Any, Envelope]:
    event = ShipmentShipped(
        order_id=order.pk, shipped_at=clock.now(), parcel_ids=parcel_ids, tracking_numbers=["6A"], carrier="sbx"
    )
    envelope = Envelope(
        event_id=uuid4(),
        name="shipment.shipped",
        schema_version=1,
        occurred_at=clock.now(),
        merchant_id=merchant_id,
        aggregate="order",
        aggregate_id=str(order.pk),
    )
    return event, envelope


@pytest.fixture
def pushes(monkeypatch) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    told: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        shipments,
        "connection_push_fulfilment",
        lambda *, order, shipment, key: told.append((order, shipment, key)),
    )
    return told


def test_the_batch_form_pushes_what_the_single_form_pushes_in_the_same_order(merchant, pushes):
    shop = ConnectionFactory(merchant=merchant)
    orders = [order_for(merchant, external_id=f"S-{n}") for n in range(5)]
    for n in (0, 2, 3):
        ShopOrder.objects.create(
            merchant=merchant, connection=shop, external_id=f"W{n}", order=orders[n], snapshot=SNAPSHOT
        )
    ShopOrder.objects.create(
        merchant=merchant, connection=shop, external_id="W3-b", order=orders[3], snapshot={}
    )  # merged
    items = [
        _item(orders[0], [11], merchant.pk),
        _item(orders[1], [12], merchant.pk),  # from no shop
        _item(orders[2], [], merchant.pk),  # no parcel named
        _item(orders[3], [14, 15], merchant.pk),
        _item(orders[0], [11], merchant.pk),  # told twice: the push's key makes it one call, as one by one
        _item(orders[4], [16], None),  # no merchant
    ]
    for event, envelope in items:
        shipments.on_shipment_shipped(event, envelope)
    one_by_one = list(pushes)
    pushes.clear()
    shipments.on_shipments_shipped(items)
    assert pushes == one_by_one
    assert [order for order, _shipment, _key in pushes] == [orders[0].pk, orders[3].pk, orders[0].pk]


def test_a_truck_of_orders_from_no_shop_costs_one_read(merchant, pushes):
    items = [_item(order_for(merchant, external_id=f"D-{n}"), [n + 1], merchant.pk) for n in range(12)]
    with CaptureQueriesContext(connection) as context:
        shipments.on_shipments_shipped(items)
    assert len(context.captured_queries) == 1 and not pushes
