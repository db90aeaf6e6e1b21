"""Hypothesis: random requests on an order, through the services, never leave its transition table, and the stock
its lines say they hold is exactly what the inventory holds for them."""

from __future__ import annotations

import itertools

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quai.core.errors import Conflict
from quai.core.models import OutboxEvent, StateTransition
from quai.core.selectors import state_history
from quai.inventory.models import StockLevel
from quai.orders import domain, services
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services import ORDER_MACHINE
from quai.orders.tests.conftest import order_data

# A raw step never goes to on_hold: a hold is only ever made by ``order_hold``, which records where the order was
# (``held_from``); a raw step there would leave a hold that no release can undo, which no service produces.
STATUSES = [choice.value for choice in OrderStatus if choice != OrderStatus.ON_HOLD]
ACTIONS = st.one_of(
    st.tuples(st.just("step"), st.sampled_from(STATUSES)),
    st.tuples(st.just("cancel"), st.none()),
    st.tuples(st.just("hold"), st.sampled_from(domain.HoldReason.ALL)),
    st.tuples(st.just("release_hold"), st.none()),
    st.tuples(st.just("stock"), st.integers(min_value=1, max_value=3)),
)
_numbers = itertools.count(1)


def _apply(order: Order, action: str, argument, stock) -> None:  # type: ignore[no-untyped-def]
    if action == "step":
        services.order_transition(order=order, to_status=argument, reason="property")
    elif action == "cancel":
        services.order_cancel(order=order, reason="property")
    elif action == "hold":
        services.order_hold(order=order, reason=argument)
    elif action == "release_hold":
        services.order_release_hold(order=order)
    else:
        stock(argument)
        services.backorders_allocate(sku_id=order.lines.get().sku_id)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=st.lists(ACTIONS, min_size=1, max_size=8), initial=st.integers(min_value=0, max_value=3))
def test_random_requests_never_leave_the_table_and_the_stock_held_is_what_the_lines_say(
    merchant, shirt, stock, actions, initial
):
    if initial:
        stock(shirt, initial)
    external_id = f"P-{next(_numbers)}"
    order = services.order_create(
        merchant=merchant, data=order_data(external_id, lines=[{"sku": "SHIRT-M", "quantity": 3}])
    ).order
    for action, argument in actions:
        before = Order.objects.get(pk=order.pk).status
        rows = StateTransition.objects.filter(aggregate="order", aggregate_id=str(order.pk)).count()
        try:
            _apply(order, action, argument, lambda n: stock(shirt, n))
        except Conflict as refused:
            assert refused.code in {"invalid_transition", "order_labelled", "order_not_on_hold"}
            assert StateTransition.objects.filter(aggregate="order", aggregate_id=str(order.pk)).count() == rows
        after = Order.objects.get(pk=order.pk).status
        assert after in ORDER_MACHINE.states
        assert after == before or ORDER_MACHINE.can(before, after)
        if domain.label_exists(before):
            assert after not in (OrderStatus.CANCELLED, OrderStatus.ON_HOLD)
        # The inventory holds exactly what the lines of every order say they hold: never more than on hand.
        level = StockLevel.objects.filter(sku=shirt).first()
        held = OrderLine.objects.filter(sku=shirt).aggregate(total=Sum("reserved_quantity"))["total"] or 0
        assert (level.reserved if level else 0) == held
        assert level is None or level.reserved <= level.on_hand
        order.refresh_from_db()
    history = list(state_history(aggregate="order", aggregate_id=order.pk).values_list("from_status", "to_status"))
    assert all(ORDER_MACHINE.can(source, target) for source, target in history)
    assert [target for _source, target in history][-1] == Order.objects.get(pk=order.pk).status
    # Each step told once: one order.status_changed per audit row.
    assert OutboxEvent.objects.filter(name="order.status_changed", aggregate_id=str(order.pk)).count() == len(history)
