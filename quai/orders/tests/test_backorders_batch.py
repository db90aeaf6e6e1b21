"""Backorder allocation over a relay batch of stock changes: one read of the backorders of all the batch's SKUs, and
the same outcome as the per-event handler (priority then age, never oversold)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.events import subscribe, subscriptions
from quai.core.outbox import outbox_relay
from quai.inventory.selectors import stock_drift
from quai.orders import services
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services.allocation import on_stock_changed, on_stock_changed_many
from quai.orders.tests.conftest import order_data

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["batch", "one event at a time"])
def form(request: Any) -> Iterator[str]:
    # The app's own subscription is put back as it was (recorded or not: test_backorders_unrecorded checks it).
    app = next(sub for sub in subscriptions() if sub.key == "orders.backorders_allocate")
    batch = on_stock_changed_many if request.param == "batch" else None
    subscribe(app.pattern, app.key, on_stock_changed, batch=batch, recorded=app.recorded)
    yield request.param
    subscribe(app.pattern, app.key, app.fn, batch=app.batch, recorded=app.recorded)


def _order(merchant: Any, external_id: str, sku: str, quantity: int, priority: str = "standard") -> Order:
    data = order_data(external_id, priority=priority, lines=[{"sku": sku, "quantity": quantity}])
    return services.order_create(merchant=merchant, data=data).order


def test_stock_arriving_on_several_skus_in_one_relay_batch_serves_their_backorders_by_priority_then_age(
    form, merchant, stock
):
    shirt, mug, cap = (SkuFactory(merchant=merchant, code=code) for code in ("SHIRT", "MUG", "CAP"))
    stock(cap, 5)
    _order(merchant, "OLD", "SHIRT", 2)
    with clock.frozen(clock.now() + timedelta(minutes=5)):
        _order(merchant, "EXPRESS", "SHIRT", 2, priority="express")
        _order(merchant, "NEWER", "SHIRT", 2)
        _order(merchant, "MUGS", "MUG", 3)
    outbox_relay(batch=1000)  # what intake recorded is relayed: only the stock changes below are measured
    stock(shirt, 1)
    stock(shirt, 3)  # a second change of the same SKU in the same batch
    stock(mug, 2)
    for _ in range(3):
        stock(cap, 1)  # no backorders
    with CaptureQueriesContext(connection) as context:
        outbox_relay(batch=1000)
    reads = [
        sql
        for sql in (query["sql"] for query in context.captured_queries)
        if sql.startswith("SELECT DISTINCT") and 'FROM "orders_orderline"' in sql and "backordered_quantity" in sql
    ]
    # Batch form: one read of the backorders for the whole batch; one event at a time: one per event with stock.
    assert len(reads) == (1 if form == "batch" else 6)
    statuses = {order.external_id: order.status for order in Order.objects.all()}
    assert statuses == {
        "OLD": OrderStatus.ALLOCATED,
        "EXPRESS": OrderStatus.ALLOCATED,
        "NEWER": OrderStatus.BACKORDERED,
        "MUGS": OrderStatus.BACKORDERED,
    }
    lines = {
        line.order.external_id: (line.reserved_quantity, line.backordered_quantity)
        for line in OrderLine.objects.select_related("order")
    }
    assert lines == {"OLD": (2, 0), "EXPRESS": (2, 0), "NEWER": (0, 2), "MUGS": (2, 1)}
    assert stock_drift() == []


def test_the_backorders_read_selects_the_in_form_s_rows_by_one_text(merchant):
    """``_waiting_by_sku`` takes its SKUs as ONE parameter (``quai.core.rows.Among``): the rows the ``sku_id__in``
    form selected, and the same text for one SKU as for three (a text per number of SKUs before: 37 texts over 126
    relay batches in a 1,000-order PostgreSQL day, each planned at every call)."""
    from quai.core.tests.sql_texts import statement_texts
    from quai.orders import domain
    from quai.orders.services.allocation import WAITING_STATUSES, _waiting_by_sku

    shirt, mug, cap = (SkuFactory(merchant=merchant, code=code) for code in ("SHIRT", "MUG", "CAP"))
    _order(merchant, "OLD", "SHIRT", 2)
    _order(merchant, "EXPRESS", "SHIRT", 2, priority="express")
    _order(merchant, "MUGS", "MUG", 3)
    ids = [shirt.pk, mug.pk, cap.pk, 999_999]
    old: dict[int, set[Any]] = {}
    for sku, order_id, priority, at in (
        OrderLine.objects.filter(sku_id__in=ids, backordered_quantity__gt=0, order__status__in=WAITING_STATUSES)
        .values_list("sku_id", "order_id", "order__priority", "order__created_at")
        .distinct()
    ):
        old.setdefault(sku, set()).add(domain.WaitingOrder(order_id=order_id, priority=priority, received_at=at))
    assert _waiting_by_sku(ids) == old and len(old[shirt.pk]) == 2
    one = statement_texts(lambda: _waiting_by_sku(ids[:1]))
    assert len(one) == 1 and one == statement_texts(lambda: _waiting_by_sku(ids))
