"""Eight (and more) real connections reserve one hot SKU at once on PostgreSQL: never oversold."""

from __future__ import annotations

import random
import threading

import pytest
from django.db import connection, connections
from django.utils import translation

from quai.core.errors import Conflict, InsufficientStock
from quai.inventory import selectors, services
from quai.inventory.models import Reservation, StockLevel
from quai.inventory.tests.factories import stocked_sku
from quai.tenants.tests.factories import MerchantFactory

WORKERS = 12
ATTEMPTS = 25
STOCK = 100


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_reservations_on_one_hot_sku_never_oversell():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel writers need PostgreSQL")
    merchant = MerchantFactory(code="hot")
    sku, _location = stocked_sku(merchant=merchant, quantity=STOCK)
    barrier = threading.Barrier(WORKERS)
    lock = threading.Lock()
    granted: list[tuple[int, int]] = []
    refused: list[InsufficientStock] = []
    crashed: list[BaseException] = []
    backends: set[int] = set()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        translation.activate("en")  # the refusal text is checked in English (the installation default is French)
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with lock:
                backends.add(pid)
            barrier.wait(timeout=30)
            for _ in range(ATTEMPTS):
                quantity = rng.randint(1, 3)
                try:
                    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=quantity)
                except InsufficientStock as exc:
                    with lock:
                        refused.append(exc)
                else:
                    with lock:
                        granted.append((reservation.pk, quantity))
        except BaseException as exc:
            with lock:
                crashed.append(exc)
        finally:
            connections["default"].close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert not crashed, crashed
    assert len(backends) == WORKERS, "every worker must have its own connection"
    reserved = sum(q for _pk, q in granted)
    level = StockLevel.objects.get(sku=sku)
    assert reserved <= STOCK, f"oversold by {reserved - STOCK}"
    assert level.reserved == reserved
    assert level.on_hand - level.reserved >= 0
    stored = dict(Reservation.objects.filter(sku=sku).values_list("pk", "quantity"))
    assert stored == dict(granted), "every success holds: its reservation is there, with its quantity"
    assert refused, "demand exceeded stock, so some reservations must have been refused"
    for exc in refused:
        assert exc.code == "insufficient_stock"
        assert "insufficient stock" in exc.message.lower()
    assert STOCK - reserved < 3, "refusals only once the stock was (nearly) gone"
    assert selectors.stock_drift() == []


SAME_LINE_WORKERS = 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_connections_reserving_the_same_document_line_at_once_hold_the_stock_once():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel writers need PostgreSQL")
    merchant = MerchantFactory(code="retry")
    sku, _location = stocked_sku(merchant=merchant, quantity=STOCK)
    barrier = threading.Barrier(SAME_LINE_WORKERS)
    lock = threading.Lock()
    granted: list[int] = []
    refused: list[Conflict] = []
    crashed: list[BaseException] = []
    backends: set[int] = set()

    def worker() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            with lock:
                backends.add(pid)
            barrier.wait(timeout=30)
            try:
                reservation = services.reservation_create(
                    merchant=merchant, sku=sku, quantity=3, document_type="order", document_id="SO-RETRY"
                )
            except Conflict as exc:
                with lock:
                    refused.append(exc)
            else:
                with lock:
                    granted.append(reservation.pk)
        except BaseException as exc:
            with lock:
                crashed.append(exc)
        finally:
            connections["default"].close()

    threads = [threading.Thread(target=worker) for _ in range(SAME_LINE_WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert not crashed, crashed
    assert len(backends) == SAME_LINE_WORKERS, "every worker must have its own connection"
    assert len(granted) == 1, granted
    assert len(refused) == SAME_LINE_WORKERS - 1
    for exc in refused:
        assert (exc.code, exc.details["reservation_id"]) == ("reservation_exists", granted[0])
    assert list(Reservation.objects.filter(sku=sku).values_list("pk", "quantity")) == [(granted[0], 3)]
    assert StockLevel.objects.get(sku=sku).reserved == 3
    assert selectors.stock_drift() == []
