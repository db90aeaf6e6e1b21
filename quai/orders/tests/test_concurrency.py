"""order_create from real parallel PostgreSQL connections: one external id is one order; a hot SKU never oversells."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models import Sum

from quai.inventory.models import Reservation, ReservationStatus, StockLevel
from quai.orders import services
from quai.orders.models import Order, OrderLine
from quai.orders.tests.conftest import order_data

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 8


def _together(count: int, call: Any) -> tuple[list[Any], list[BaseException], set[int]]:
    """Run ``call(index)`` in ``count`` threads, each on its own connection, released at the same moment."""
    barrier = threading.Barrier(count)
    lock = threading.Lock()
    results: list[Any] = []
    crashed: list[BaseException] = []
    backends: set[int] = set()

    def worker(index: int) -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with lock:
                backends.add(pid)
            barrier.wait(timeout=30)
            result = call(index)
            with lock:
                results.append(result)
        except BaseException as exc:
            with lock:
                crashed.append(exc)
        finally:
            connections["default"].close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results, crashed, backends


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel connections need PostgreSQL")


def test_the_same_external_id_from_eight_connections_makes_one_order(merchant, shirt, stock):
    stock(shirt, 10)
    results, crashed, backends = _together(
        WORKERS, lambda _index: services.order_create(merchant=merchant, data=order_data("RACE-1"))
    )
    assert not crashed, crashed
    assert len(backends) == WORKERS, "every worker must have its own connection"
    assert Order.objects.filter(external_id="RACE-1").count() == 1
    order = Order.objects.get(external_id="RACE-1")
    assert {result.order.pk for result in results} == {order.pk}
    assert sum(result.created for result in results) == 1
    assert StockLevel.objects.get(sku=shirt).reserved == 2, "the order holds its stock once"
    assert Reservation.objects.filter(status=ReservationStatus.OPEN).count() == 1


def test_orders_racing_for_a_hot_sku_never_oversell_and_hold_what_their_lines_say(merchant, shirt, stock):
    stock(shirt, 9)
    _results, crashed, _backends = _together(
        WORKERS,
        lambda index: [services.order_create(merchant=merchant, data=order_data(f"HOT-{index}-{n}")) for n in range(3)],
    )
    assert not crashed, crashed
    assert Order.objects.count() == WORKERS * 3
    level = StockLevel.objects.get(sku=shirt)
    held = OrderLine.objects.aggregate(total=Sum("reserved_quantity"))["total"]
    assert level.reserved == held == 9, "every unit is held by exactly one line, none oversold"
    assert level.on_hand - level.reserved == 0
    assert Order.objects.filter(status="allocated").count() == 4  # 2 units each: 4 whole orders, one part
    assert OrderLine.objects.aggregate(total=Sum("backordered_quantity"))["total"] == WORKERS * 3 * 2 - 9
