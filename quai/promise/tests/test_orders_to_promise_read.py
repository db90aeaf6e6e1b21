"""``selectors.orders_to_promise`` reads by a statement written once what the ORM's ``values_list`` over the
orders joined to their lines read: the same ``OrderToPromise`` for every order, field by field and type by type."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from django.db.models import Exists, OuterRef

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.orders.models import Order
from quai.orders.selectors import order_list
from quai.promise import selectors, services
from quai.promise.models import PromiseRecord
from quai.promise.tests.test_relay_handlers import _order, _pending
from quai.tenants.scope import Scope

MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")


def _by_the_orm(*, scope: Scope, order_ids: list[int]) -> dict[int, selectors.OrderToPromise]:
    """The read as it was written before (the ORM's query, compiled per call)."""
    rows = (
        order_list(scope=scope)
        .filter(pk__in=order_ids)
        .annotate(promised=Exists(PromiseRecord.objects.filter(order_id=OuterRef("pk"))))
        .order_by("pk", "lines__position", "lines__id")
        .values_list(*selectors._TO_PROMISE_FIELDS, "promised", "lines__sku_code", "lines__quantity", "lines__sku_id")
    )
    heads: dict[int, tuple[Any, ...]] = {}
    lines: dict[int, list[tuple[str, int]]] = {}
    skus: dict[int, list[int]] = {}
    width = len(selectors._TO_PROMISE_FIELDS)
    for row in rows:
        pk = row[0]
        if pk not in heads:
            heads[pk], lines[pk], skus[pk] = row[: width + 1], [], []
        if row[width + 1] is not None:
            lines[pk].append((row[width + 1], row[width + 2]))
            skus[pk].append(row[width + 3])
    return {
        pk: selectors.OrderToPromise(*head[:width], tuple(lines[pk]), tuple(skus[pk]), bool(head[width]))
        for pk, head in heads.items()
    }


def _typed(found: dict[int, selectors.OrderToPromise]) -> dict[int, list[tuple[Any, type, Any]]]:
    return {
        pk: [(name, type(value), getattr(value, "tzinfo", None) is not None) for name, value in vars(order).items()]
        for pk, order in found.items()
    }


@pytest.mark.django_db
def test_the_written_read_is_the_orm_s_for_every_order(merchant, other_merchant, configured, shelf, shirt, settings):  # type: ignore[no-untyped-def]
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(MONDAY)
    orders = [_order(merchant, f"A-{n}", lines=1 + n % 4) for n in range(6)]
    SkuFactory(merchant=other_merchant, code="SHIRT-M")
    orders += [_order(other_merchant, f"B-{n}", lines=2) for n in range(2)]
    # A shop's promised dates and token, a release later (with microseconds), an order with no line left.
    Order.objects.filter(pk=orders[1].pk).update(
        promised_from=date(2025, 3, 12), promised_to=date(2025, 3, 14), promise_id="p1.x"
    )
    Order.objects.filter(pk=orders[2].pk).update(
        release_after=datetime.fromisoformat("2025-03-10T13:07:00.250000+00:00")
    )
    orders[3].lines.all().delete()
    # Some promises recorded already.
    received = _pending("order.received")
    services.on_orders_received(received[:3])
    ids = [order.pk for order in orders] + [10**9]
    for scope in (Scope.system("test"), Scope.merchant(merchant.pk), Scope.merchant(other_merchant.pk)):
        written = selectors.orders_to_promise(scope=scope, order_ids=ids)
        expected = _by_the_orm(scope=scope, order_ids=ids)
        assert written == expected
        assert _typed(written) == _typed(expected)
        assert list(written) == list(expected)
    found = selectors.orders_to_promise(scope=Scope.system("test"), order_ids=ids)
    assert [found[order.pk].promised for order in orders[:4]] == [True, True, True, False]
    assert found[orders[3].pk].lines == () and found[orders[1].pk].promised_to == date(2025, 3, 14)
    assert found[orders[0].pk].created_at == MONDAY
    assert found[orders[2].pk].release_after == datetime.fromisoformat("2025-03-10T13:07:00.250000+00:00")
    assert selectors.orders_to_promise(scope=Scope.system("test"), order_ids=[]) == {}
