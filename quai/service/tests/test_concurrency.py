"""The returns desk from real parallel PostgreSQL connections: two benches scanning the last announced unit of one
return receive it once; two graders of one unit grade it once; one refund per return, never above what was paid."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections

from quai.inventory.models import StockMovement
from quai.inventory.selectors import stock_drift
from quai.service import services
from quai.service.models import Refund, ReturnUnit
from quai.tenants.scope import Scope

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


def test_the_last_unit_is_received_once_and_graded_once(_postgres, merchant, place, shirt, desk):  # type: ignore[no-untyped-def]
    order = place("PG-1", to_status="delivered")
    line = order.lines.get()
    scope = Scope.merchant(merchant)
    rma = services.rma_open(
        scope=scope, order_id=order.pk, actor="agent", lines=[{"line_id": line.pk, "quantity": 1}], reason="return"
    )
    results, refused = _together(
        [
            lambda n=n: services.return_unit_receive(
                scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["returns"], actor=f"bench{n}"
            )
            for n in range(4)
        ]
    )
    assert len(results) == 1 and len(refused) == 3
    assert {getattr(exc, "code", "") for exc in refused} == {"return_unit_not_expected"}
    assert ReturnUnit.objects.count() == 1
    assert StockMovement.objects.filter(document_type="rma", kind="return").count() == 1
    unit = ReturnUnit.objects.get()
    graded, again = _together(
        [
            lambda g=g: services.return_unit_grade(scope=scope, unit_id=unit.pk, grade=g, actor="grader")
            for g in ("A", "B", "C")
        ]
    )
    assert len(graded) == 1 and len(again) == 2
    assert Refund.objects.filter(rma=rma).count() == 1
    assert stock_drift() == []
