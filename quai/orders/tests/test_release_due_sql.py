"""The release sweep's due read, written once (``_release_due_ids``), reads the orders the ORM's query read."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q

from quai.core import clock
from quai.orders import services
from quai.orders.models import Order, OrderPolicy, OrderStatus
from quai.orders.services.lifecycle import _release_due_ids
from quai.orders.tests.conftest import order_data


def _orm_due(at, limit):  # type: ignore[no-untyped-def]
    splitting = OrderPolicy.objects.filter(split_shipments=True).values("merchant_id")
    return list(
        Order.objects.filter(release_after__lte=at)
        .filter(
            Q(status=OrderStatus.ALLOCATED)
            | Q(status=OrderStatus.BACKORDERED, merchant_id__in=splitting, lines__reserved_quantity__gt=0)
        )
        .order_by("release_after", "pk")
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )


def test_the_due_read_written_once_reads_what_the_orm_read(merchant, other_merchant, shirt, stock):
    # given allocated orders at several buffers, backorders partly covered or not, one merchant splitting shipments
    # and the other not, a held order and a released one
    stock(shirt, 12)  # 4 x 2 + 2 held: 2 left for the 3 of PART, none for the last two
    start = clock.now()
    for minutes in (0, 5, 5, 30):
        services.order_policy_set(merchant=merchant, release_buffer_minutes=minutes)
        services.order_create(merchant=merchant, data=order_data(f"A-{minutes}-{Order.objects.count()}"))
    held = services.order_create(merchant=merchant, data=order_data("HELD")).order
    services.order_hold(order=held, reason="fraud")
    services.order_policy_set(merchant=merchant, release_buffer_minutes=0, split_shipments=True)
    services.order_create(merchant=merchant, data=order_data("PART", lines=[{"sku": "SHIRT-M", "quantity": 3}]))
    services.order_create(merchant=merchant, data=order_data("NONE", lines=[{"sku": "SHIRT-M", "quantity": 2}]))
    services.order_create(merchant=merchant, data=order_data("TWO-LINES", lines=[{"sku": "SHIRT-M", "quantity": 1}]))
    assert Order.objects.filter(status=OrderStatus.BACKORDERED).exists()
    # when the due orders are read at instants around the buffers, with limits, then the same ids in the same order
    checked = 0
    for after in (-1, 1, 6, 60):
        at = start + timedelta(minutes=after)
        for limit in (0, 1, 2, 500):
            assert _release_due_ids(at, limit) == _orm_due(at, limit)
            checked += len(_orm_due(at, limit))
    assert checked > 0
    due = _orm_due(start + timedelta(hours=1), 500)
    assert {Order.objects.get(pk=pk).status for pk in due} == {OrderStatus.ALLOCATED, OrderStatus.BACKORDERED}
    # and with no merchant splitting shipments
    OrderPolicy.objects.update(split_shipments=False)
    assert _release_due_ids(start + timedelta(hours=1), 500) == _orm_due(start + timedelta(hours=1), 500)
    # and once released, none is due
    services.orders_release_due(now=start + timedelta(hours=1))
    assert _release_due_ids(start + timedelta(hours=1), 500) == _orm_due(start + timedelta(hours=1), 500)
