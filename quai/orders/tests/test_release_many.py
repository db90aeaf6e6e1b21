"""``orders_release_many`` against ``order_release`` called order after order: the same refusals, statuses, audit
rows and events (in the same order), on two identical sets of orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent, StateTransition
from quai.inventory.services import stock_receive
from quai.orders import services
from quai.orders.models import Order
from quai.orders.services.lifecycle import orders_release_many
from quai.orders.tests.conftest import order_data
from quai.tenants.tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db

#: (merchant, units asked, what happens to it after intake) for each order of one set
KINDS = [
    ("splits", 1, ""),  # allocated: released
    ("splits", 3, ""),  # backordered, one unit covered, its merchant splits: released in part
    ("whole", 1, ""),  # allocated at the merchant who does not split: released
    ("whole", 3, ""),  # backordered at the merchant who does not split: order_backordered
    ("splits", 1, "hold"),  # held: invalid_transition
    ("whole", 1, "cancel"),  # cancelled: invalid_transition
    ("splits", 1, "late"),  # still in its buffer: order_in_release_buffer
]


def _set(prefix: str, shelf: Any, now: Any) -> tuple[list[int], dict[int, str]]:
    """One set of orders, each kind of ``KINDS``, for two merchants of its own (their ids named by their role)."""
    merchants = {"splits": MerchantFactory(), "whole": MerchantFactory()}
    for who, units in (("splits", 2), ("whole", 1)):
        sku = SkuFactory(merchant=merchants[who], code="SHIRT-M", name="T-shirt M")
        stock_receive(sku=sku, location=shelf, quantity=units)
    services.order_policy_set(merchant=merchants["splits"], release_buffer_minutes=10, split_shipments=True)
    services.order_policy_set(merchant=merchants["whole"], release_buffer_minutes=10)
    ids = []
    for k, (who, units, then) in enumerate(KINDS):
        data = order_data(f"{prefix}-{k}", lines=[{"sku": "SHIRT-M", "quantity": units, "unit_price": "19.90"}])
        with clock.frozen(now + timedelta(hours=1) if then == "late" else now):
            order = services.order_create(merchant=merchants[who], data=data).order
            if then == "hold":
                services.order_hold(order=order, reason="fraud")
            elif then == "cancel":
                services.order_cancel(order=order, reason="shopper")
        ids.append(order.pk)
    return ids, {merchant.pk: who for who, merchant in merchants.items()}


def _written(ids: list[int], roles: dict[int, str], since: int) -> tuple[list[Any], list[Any], list[Any]]:
    """The orders' rows, audit rows and events after outbox id ``since``, each order named by its place."""
    index = {str(pk): k for k, pk in enumerate(ids)}
    rows = [
        (o.status, o.version, o.updated_at)
        for o in sorted(Order.objects.filter(pk__in=ids), key=lambda o: ids.index(o.pk))
    ]
    audits = [
        (index[a.aggregate_id], a.transition, a.from_status, a.to_status, a.actor_label, a.reason, a.at)
        for a in StateTransition.objects.filter(
            aggregate="order",
            aggregate_id__in=list(index),
            event_id__in=OutboxEvent.objects.filter(id__gt=since).values("event_id"),
        ).order_by("id")
    ]
    events = []
    for event in OutboxEvent.objects.filter(id__gt=since).order_by("id"):
        payload = {k: v for k, v in event.payload.items() if k not in ("order_id", "external_id")}
        events.append((event.name, index[event.aggregate_id], roles[event.merchant_id], payload, event.occurred_at))
    return rows, audits, events


def _answer(error: QuaiError | None) -> Any:
    if error is None:
        return None
    details = {k: v for k, v in error.details.items() if k != "order_id"}
    return (error.code, details, str(error.message).replace("ONE-", "").replace("ALL-", ""))


def test_releasing_many_orders_answers_and_writes_what_releasing_them_one_by_one_does(shelf):
    now = clock.now()
    one_by_one, roles_one = _set("ONE", shelf, now)
    together, roles_all = _set("ALL", shelf, now)
    at = now + timedelta(minutes=30)
    asked = [*one_by_one, 999_999_999, one_by_one[0]]  # an unknown order, then one asked twice

    since = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    answers_one = []
    with clock.frozen(at):
        for order_id in asked:
            try:
                services.order_release(order=order_id, actor="release sweep", now=at)
            except QuaiError as refusal:
                answers_one.append(_answer(refusal))
            else:
                answers_one.append(None)
    expected = _written(one_by_one, roles_one, since)

    since = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with clock.frozen(at):
        outcomes = orders_release_many(order_ids=[*together, 999_999_999, together[0]], actor="release sweep", now=at)
    assert [_answer(o.error) for o in outcomes] == answers_one
    assert _written(together, roles_all, since) == expected
    assert [o.order_id for o in outcomes] == [*together, 999_999_999, together[0]]
    assert [k for k, answer in enumerate(answers_one) if answer is None] == [0, 1, 2]


def test_releasing_many_orders_costs_the_same_few_statements_for_three_orders_as_for_one(
    shelf, merchant, shirt, django_assert_max_num_queries
):
    stock_receive(sku=shirt, location=shelf, quantity=10)
    services.order_policy_set(merchant=merchant, release_buffer_minutes=0)
    ids = [services.order_create(merchant=merchant, data=order_data(f"Q-{k}")).order.pk for k in range(3)]
    # savepoint, lock and read, (transitions_many's savepoint), update, events, audit rows, releases
    with django_assert_max_num_queries(9):
        outcomes = orders_release_many(order_ids=ids, now=clock.now() + timedelta(seconds=1))
    assert all(o.error is None for o in outcomes)


def test_the_release_s_lock_and_read_has_one_text_for_one_order_and_three(shelf, merchant, shirt):
    """The orders are locked and read with their ids as ONE parameter (``quai.core.rows.Among``): one text for one
    order as for three (12 texts over 114 release ticks in a 1,000-order PostgreSQL day before, each planned at
    every call); what it releases is the one-by-one test's above."""
    from quai.core.tests.sql_texts import statement_texts, texts_with

    stock_receive(sku=shirt, location=shelf, quantity=10)
    services.order_policy_set(merchant=merchant, release_buffer_minutes=0)
    ids = [services.order_create(merchant=merchant, data=order_data(f"T-{k}")).order.pk for k in range(4)]
    at = clock.now() + timedelta(seconds=1)
    one = statement_texts(lambda: orders_release_many(order_ids=ids[:1], now=at))
    three = statement_texts(lambda: orders_release_many(order_ids=ids[1:], now=at))
    marker = 'FROM "orders_order" WHERE'
    assert len(texts_with(one, marker)) == 1 and texts_with(one, marker) == texts_with(three, marker)
