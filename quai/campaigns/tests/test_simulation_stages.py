"""The simulated day's stage counts at each tick: read from the backlog and the orders arrived since the last tick,
equal to counting every order by status."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.db.models import Count

from quai.campaigns.simulation import engine
from quai.orders import domain as orders_domain
from quai.orders.models import Order
from quai.orders.tests.factories import order_for
from quai.tenants.tests.factories import MerchantFactory


def _every_order_by_status() -> dict[str, int]:
    """The plain form: every order of the database counted by status, at each tick."""
    counts = dict(Order.objects.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {
        "received": counts.get("received", 0) + counts.get("allocated", 0) + counts.get("backordered", 0),
        "released": counts.get("released", 0),
        "picking": counts.get("picking", 0),
        "packed": counts.get("packed", 0),
        "shipped": counts.get("shipped", 0) + counts.get("partially_shipped", 0) + counts.get("delivered", 0),
    }


def test_every_order_status_is_counted_as_shipped_or_read_with_the_backlog() -> None:
    assert set(engine.SHIPPED_STATUSES) | set(engine.NOT_SHIPPED_STATUSES) == set(orders_domain.ORDER_TRANSITIONS)
    assert not set(engine.SHIPPED_STATUSES) & set(engine.NOT_SHIPPED_STATUSES)


@pytest.mark.django_db
def test_the_stages_equal_every_order_counted_by_status_tick_after_tick() -> None:
    merchants = [MerchantFactory(), MerchantFactory()]  # the count is the database's, every merchant's
    run: Any = SimpleNamespace(orders_counted=0, orders_last_pk=0)
    statuses = list(orders_domain.ORDER_TRANSITIONS)
    made: list[int] = []
    for tick in range(4):
        # Orders arrive, and every status is reached by some (shipped, delivered, on hold and cancelled ones too),
        # old orders moving on while new ones come in.
        for k in range(len(statuses) + tick):
            made.append(order_for(merchants[k % 2], external_id=f"T{tick}-{k}").pk)
        for k, pk in enumerate(made):
            Order.objects.filter(pk=pk).update(status=statuses[(k * 7 + tick * 3) % len(statuses)])
        assert engine._stages(run) == _every_order_by_status()
    assert engine._stages(run) == _every_order_by_status()  # a tick without new orders
    assert run.orders_counted == len(made) == Order.objects.count()
