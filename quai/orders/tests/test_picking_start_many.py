"""``orders_picking_start_many`` against ``order_picking_start`` called order after order: the same answers,
statuses, audit rows and events, on two identical sets of orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.errors import Conflict, NotFound
from quai.core.models import OutboxEvent
from quai.inventory.services import stock_receive
from quai.orders import services
from quai.orders.services.floor_picking import order_picking_start, orders_picking_start_many
from quai.orders.services.transitions import order_transition
from quai.orders.tests.conftest import order_data
from quai.orders.tests.test_release_many import _answer, _written
from quai.tenants.tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db

#: where each order of a set stands when its batch starts
KINDS = ["released", "released", "picking", "on_hold", "cancelled", "allocated"]


def _set(prefix: str, shelf: Any, now: Any) -> tuple[list[int], dict[int, str]]:
    merchant = MerchantFactory()
    sku = SkuFactory(merchant=merchant, code="SHIRT-M", name="T-shirt M")
    stock_receive(sku=sku, location=shelf, quantity=len(KINDS))
    services.order_policy_set(merchant=merchant, release_buffer_minutes=0)
    ids = []
    with clock.frozen(now):
        for k, kind in enumerate(KINDS):
            data = order_data(f"{prefix}-{k}", lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "19.90"}])
            order = services.order_create(merchant=merchant, data=data).order
            if kind != "allocated":
                services.order_release(order=order.pk, now=now + timedelta(seconds=1))
            if kind == "picking":
                order_transition(order=order, to_status="picking")
            elif kind == "on_hold":
                services.order_hold(order=order.pk, reason="fraud")
            elif kind == "cancelled":
                services.order_cancel(order=order.pk, reason="shopper")
            ids.append(order.pk)
    return ids, {merchant.pk: "merchant"}


def test_starting_many_orders_answers_and_writes_what_starting_them_one_by_one_does(shelf):
    now = clock.now()
    one_by_one, roles_one = _set("ONE", shelf, now)
    together, roles_all = _set("ALL", shelf, now)
    at = now + timedelta(minutes=5)

    since = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    answers_one = []
    with clock.frozen(at):
        for order_id in [*one_by_one, one_by_one[0]]:  # the first one asked twice
            try:
                order_picking_start(order_id=order_id, actor="picker", reason="Batch 7 started")
            except Conflict as refusal:
                answers_one.append(_answer(refusal))
            else:
                answers_one.append(None)
    expected = _written(one_by_one, roles_one, since)

    since = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with clock.frozen(at):
        answers = orders_picking_start_many(
            order_ids=[*together, together[0]], actor="picker", reason="Batch 7 started"
        )
    assert [_answer(answers[order_id]) for order_id in [*together, together[0]]] == answers_one
    assert _written(together, roles_all, since) == expected
    assert [answer is None for answer in answers_one] == [True, True, True, False, False, False, True]


def test_starting_many_orders_stops_at_an_unknown_one_with_nothing_written(shelf):
    ids, _roles = _set("ONE", shelf, clock.now())
    since = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with pytest.raises(NotFound):
        orders_picking_start_many(order_ids=[ids[0], 999_999_999])
    assert not OutboxEvent.objects.filter(id__gt=since).exists()
