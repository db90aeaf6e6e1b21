"""The shop stock marks and a push's record update the same (shop, SKU) rows from two transactions at once: both lock
them in id order, so they wait for each other and never deadlock (PostgreSQL, real connections). Locked along the
(shop, SKU) index, the marks held a row the record wanted while waiting for one it held: the connectors bench saw
the deadlock, found only after PostgreSQL's ``deadlock_timeout`` (a second without any change reaching a shop)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from django.db import OperationalError, connection, connections, transaction

from quai.catalog.tests.factories import SkuFactory
from quai.integrations.models import StockSync
from quai.integrations.services.stock_out import on_stock_events
from quai.integrations.tests.factories import ConnectionFactory
from quai.tenants.tests.factories import MerchantFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _waiting_on_a_lock(seconds: float) -> bool:
    """Whether another session of this database waits on a lock, within ``seconds`` (each look a fresh snapshot of
    the statistics: inside a transaction PostgreSQL would show the first one again)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.02)
    return False


def test_the_marks_lock_their_rows_in_id_order_so_a_push_record_holding_the_first_never_deadlocks_with_them():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    merchant = MerchantFactory(code="locks")
    shops = [ConnectionFactory(merchant=merchant, push_stock=True) for _n in range(2)]
    sku = SkuFactory(merchant=merchant, code="MUG")
    # Ids in the other order than the (shop, SKU) index's: the first row is the second shop's.
    first = StockSync.objects.create(merchant=merchant, connection=shops[1], sku_id=sku.pk, sku_code="MUG")
    second = StockSync.objects.create(merchant=merchant, connection=shops[0], sku_id=sku.pk, sku_code="MUG")
    assert first.pk < second.pk and shops[1].pk > shops[0].pk
    items = [(SimpleNamespace(sku_id=sku.pk, sku_code=sku.code), SimpleNamespace(merchant_id=merchant.pk))]
    crashed: list[BaseException] = []

    def marks() -> None:
        try:
            with connections["default"].cursor() as cursor:  # the plan the bench's larger tables get: the index
                cursor.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
            with transaction.atomic():
                on_stock_events(items)
        except BaseException as exc:
            crashed.append(exc)
        finally:
            connections.close_all()

    with transaction.atomic():
        # A push's record holding the first row (it locks in id order too): the marks must wait for it first.
        StockSync.objects.select_for_update().get(pk=first.pk)
        thread = threading.Thread(target=marks)
        thread.start()
        assert _waiting_on_a_lock(10)
        try:
            with transaction.atomic():
                StockSync.objects.select_for_update(nowait=True).get(pk=second.pk)
            second_free = True
        except OperationalError:
            second_free = False
    thread.join(timeout=30)
    assert not crashed, crashed
    assert second_free  # the marks, waiting for the first row, held no other: the record could take the second
    assert dict(StockSync.objects.values_list("pk", "generation")) == {first.pk: 1, second.pk: 1}
