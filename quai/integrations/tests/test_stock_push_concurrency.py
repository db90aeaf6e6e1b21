"""The per-shop stock push lock on PostgreSQL with real parallel connections: several workers push one shop's stock
while the stock keeps changing; one push at a time reaches the shop, the latest level wins, no change is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.db.models import F

from quai.catalog.tests.factories import SkuFactory
from quai.core.outbox import outbox_relay
from quai.integrations import services
from quai.integrations.models import StockSync
from quai.integrations.tests.fake_shops.base import Request, Response
from quai.integrations.tests.fake_shops.woocommerce import CONSUMER_KEY, CONSUMER_SECRET, FakeWooCommerce
from quai.inventory import services as inventory
from quai.tenants.tests.factories import MerchantFactory
from quai.warehouse.tests.factories import LocationFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHANGES = 30
PUSHERS = 3


class WatchedWooCommerce(FakeWooCommerce):
    """Counts stock writes in flight at once (outside the fake's own lock, which serialises its handlers), each held
    a little so that two overlapping pushes would be seen."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.most_in_flight = 0
        self.writes = 0
        self._count = threading.Lock()

    def dispatch(self, request: Request) -> Response:
        if request.method != "POST" or not request.path.endswith("/products/batch"):
            return super().dispatch(request)
        with self._count:
            self.in_flight += 1
            self.writes += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(0.02)
            return super().dispatch(request)
        finally:
            with self._count:
                self.in_flight -= 1


def _run(jobs: list[Callable[[], Any]]) -> list[BaseException]:
    barrier = threading.Barrier(len(jobs))
    crashed: list[BaseException] = []

    def worker(job: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            job()
        except BaseException as exc:
            crashed.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return crashed


def test_parallel_pushers_push_one_at_a_time_and_the_latest_level_wins():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel workers need PostgreSQL")
    merchant = MerchantFactory(code="rush")
    location = LocationFactory()
    sku = SkuFactory(merchant=merchant, code="MUG-1")
    inventory.stock_receive(sku=sku, location=location, quantity=100, reason="test stock")
    shop = WatchedWooCommerce()
    with shop.running():
        shop.add_product("MUG-1", 0)
        shop_connection = services.connection_create(
            merchant=merchant,
            name="Boutique",
            platform="woocommerce",
            base_url=shop.url,
            credentials={"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET, "webhook_secret": "x"},
            settings={"stock_interval_ms": 0},
        )
        outbox_relay()  # the receipt's events: MUG-1 dirty, pushed (the tasks run eagerly in tests)
        done = threading.Event()

        def writer() -> None:
            try:
                for n in range(CHANGES):
                    with transaction.atomic():
                        inventory.stock_adjust(
                            sku=sku, location=location, quantity_delta=1 if n % 3 else -2, reason="count"
                        )
                    outbox_relay()  # marks the SKU dirty and pushes, like the relay's worker
            finally:
                done.set()

        def pusher() -> None:
            while not done.is_set():
                services.connection_stock_push(connection_id=shop_connection.pk)

        crashed = _run([writer] + [pusher] * PUSHERS)
        assert not crashed, crashed
        services.connection_stock_push(connection_id=shop_connection.pk)  # whatever the last round left

    assert shop.most_in_flight == 1  # one push at a time for this shop, whoever asked
    (product,) = shop.products.values()
    expected = 100 + sum(1 if n % 3 else -2 for n in range(CHANGES))
    assert product["stock_quantity"] == expected  # the latest level won
    assert not StockSync.objects.filter(generation__gt=F("pushed_generation")).exists()  # nothing left dirty
    assert StockSync.objects.get().pushed_quantity == expected
    assert shop.writes <= CHANGES + 1  # coalesced: never more writes than changes
