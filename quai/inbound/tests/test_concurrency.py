"""Several handhelds on one ASN at once, on PostgreSQL with real connections: nothing counted twice or lost."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection, connections
from django.db.models import Sum

from quai.catalog.tests.factories import SkuFactory
from quai.core.errors import Conflict
from quai.inbound import services
from quai.inbound.models import PutawayStatus, PutawayTask, Receipt
from quai.inbound.services import AsnLineInput
from quai.inbound.tests.factories import location, warehouse_build
from quai.inventory.models import StockMovement, StockQuantity
from quai.tenants.tests.factories import MerchantFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 8
SCANS = 5


def _run(workers: int, job: Callable[[int], None]) -> list[BaseException]:
    barrier = threading.Barrier(workers)
    crashed: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            job(n)
        except BaseException as exc:
            with lock:
                crashed.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return crashed


def test_parallel_scans_on_one_asn_are_all_counted_once():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel writers need PostgreSQL")
    wh = warehouse_build()
    merchant = MerchantFactory(code="busy")
    SkuFactory(merchant=merchant, code="SHIRT-M", gtin="03760000000017")
    services.asn_create(
        merchant=merchant, reference="RUSH", site=wh.site, lines=[AsnLineInput(sku_code="SHIRT-M", quantity=40)]
    )
    asn = services.receiving_start(code="RUSH").asn

    def job(_n: int) -> None:
        for _ in range(SCANS):
            services.receiving_scan(asn=asn, code="3760000000017")

    assert _run(WORKERS, job) == []
    line = asn.lines.get()
    assert line.received_quantity == WORKERS * SCANS
    assert Receipt.objects.filter(asn=asn).count() == WORKERS * SCANS
    assert PutawayTask.objects.filter(asn=asn).aggregate(n=Sum("quantity"))["n"] == WORKERS * SCANS
    assert StockQuantity.objects.get(location=wh.dock).on_hand == WORKERS * SCANS


def test_one_putaway_confirmed_from_two_handhelds_moves_the_goods_once():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel writers need PostgreSQL")
    wh = warehouse_build()
    merchant = MerchantFactory(code="busy")
    SkuFactory(merchant=merchant, code="SHIRT-M", gtin="03760000000017")
    location(wh.storage, "A-01")
    location(wh.storage, "A-02")
    services.asn_create(merchant=merchant, reference="R2", site=wh.site, lines=[AsnLineInput("SHIRT-M", 6)])
    asn = services.receiving_start(code="R2").asn
    services.receiving_scan(asn=asn, code="3760000000017", quantity=6)
    task = PutawayTask.objects.get()
    refused: list[Conflict] = []

    def job(n: int) -> None:
        try:
            services.putaway_confirm(task=task, location_code=f"A-0{n + 1}")
        except Conflict as exc:
            refused.append(exc)

    assert _run(2, job) == []
    assert [exc.code for exc in refused] == ["putaway_done"]
    task.refresh_from_db()
    assert task.status == PutawayStatus.DONE
    assert StockMovement.objects.filter(kind="putaway").count() == 1
    assert StockQuantity.objects.filter(location__zone=wh.storage).aggregate(n=Sum("on_hand"))["n"] == 6
    assert StockQuantity.objects.get(location=wh.dock).on_hand == 0
