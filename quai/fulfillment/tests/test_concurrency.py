"""The pick flow from real parallel PostgreSQL connections: a batch has one picker; a tote scan moves units once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections

from quai.core.errors import QuaiError
from quai.fulfillment import services
from quai.fulfillment.models import PickBatch
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.inventory.models import MovementKind, StockMovement
from quai.inventory.selectors import stock_drift
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _together(calls: list[Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(len(calls))
    lock = threading.Lock()
    results: list[Any] = []
    refused: list[BaseException] = []

    def worker(call: Any) -> None:
        try:
            barrier.wait(timeout=30)
            result = call()
            with lock:
                results.append(result)
        except BaseException as exc:
            with lock:
                refused.append(exc)
        finally:
            connections["default"].close()

    threads = [threading.Thread(target=worker, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results, refused


@pytest.fixture
def _postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


def test_two_pickers_starting_one_batch_at_once_one_gets_it(_postgres, merchant):  # type: ignore[no-untyped-def]
    floor = floor_for(merchant)
    released_order(floor, "C-1", [(0, 2)])
    batch = wave_for(floor).batches.get()
    pickers = [StaffUserFactory(username=f"picker{n}") for n in range(4)]
    results, refused = _together([lambda p=p: services.batch_start(batch_id=batch.pk, operator=p) for p in pickers])
    assert len(results) == 1 and len(refused) == 3
    assert all(isinstance(exc, QuaiError) for exc in refused)
    assert PickBatch.objects.get(pk=batch.pk).operator_id == results[0].operator_id


def test_a_tote_scan_sent_twice_at_once_moves_the_units_once(_postgres, merchant):  # type: ignore[no-untyped-def]
    floor = floor_for(merchant)
    released_order(floor, "C-2", [(0, 2)])
    batch = wave_for(floor).batches.get()
    picker = StaffUserFactory(username="solo")
    services.batch_start(batch_id=batch.pk, operator=picker)
    task = services.current_task(batch)
    services.pick_scan(batch_id=batch.pk, operator=picker, code=task.location.code)
    services.pick_scan(batch_id=batch.pk, operator=picker, code=task.sku.gtin)
    tote = task.tote.code
    # The first scan takes the units and finishes the batch; the others find it done (refused or nothing to do).
    _together([lambda: services.pick_scan(batch_id=batch.pk, operator=picker, code=tote) for _ in range(4)])
    picked = StockMovement.objects.filter(kind=MovementKind.PICK)
    assert sum(m.quantity for m in picked) == 2
    assert stock_drift() == []
