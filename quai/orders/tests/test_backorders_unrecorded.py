"""Backorder allocation is subscribed unrecorded (``subscribe(..., recorded=False)``, issue 17): it writes no
``HandledEvent`` row, so a retried stock change (another handler failed on it, a relay died after its commit) runs
it again. It gives the SKU's free stock as it is now to the orders waiting, each checked under its row lock, so the
second run finds them served or the stock out: no reservation, line, status or event more than one run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.events import Envelope, event_from_row, subscriptions_for
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import outbox_relay
from quai.core.tests.retried import relayed_then_retried
from quai.inventory.models import Reservation, ReservationAllocation
from quai.inventory.selectors import stock_drift
from quai.orders.models import Order, OrderLine
from quai.orders.services.allocation import on_stock_changed, on_stock_changed_many
from quai.orders.tests.test_backorders_batch import _order

pytestmark = pytest.mark.django_db

KEY = "orders.backorders_allocate"


@pytest.fixture
def changes(merchant, stock) -> list[tuple[Any, Envelope]]:  # type: ignore[no-untyped-def]
    """Backorders of two SKUs (express before older standard before newer), then stock changes that serve some of
    them: shirt 1 + 3 units for 6 waiting, mug 2 for 3, cap 5 with nobody waiting."""
    shirt, mug, cap = (SkuFactory(merchant=merchant, code=code) for code in ("SHIRT", "MUG", "CAP"))
    _order(merchant, "OLD", "SHIRT", 2)
    with clock.frozen(clock.now() + timedelta(minutes=5)):
        _order(merchant, "EXPRESS", "SHIRT", 2, priority="express")
        _order(merchant, "NEWER", "SHIRT", 2)
        _order(merchant, "MUGS", "MUG", 3)
    while outbox_relay(batch=1000):  # what intake recorded is relayed: only the changes below are left
        pass
    first = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    stock(shirt, 1)
    stock(shirt, 3)
    stock(mug, 2)
    stock(cap, 5)
    rows = OutboxEvent.objects.filter(name="inventory.stock_changed", id__gt=first).order_by("id")
    return [(event_from_row(row), Envelope.of(row)) for row in rows]


def _state() -> tuple[Any, ...]:
    """Orders, lines, reservations and their allocations, and every event recorded (by name and payload)."""
    return (
        sorted(Order.objects.values_list("external_id", "status")),
        sorted(
            OrderLine.objects.values_list("order__external_id", "sku_id", "reserved_quantity", "backordered_quantity")
        ),
        sorted(
            Reservation.objects.values_list("id", "sku_id", "quantity", "requested_quantity", "status", "document_id")
        ),
        sorted(ReservationAllocation.objects.values_list("id", "reservation_id", "quantity")),
        [(row.name, row.payload) for row in OutboxEvent.objects.order_by("id")],
    )


def test_allocation_is_subscribed_unrecorded():
    assert subscriptions_for("inventory.stock_changed")[KEY].recorded is False


@pytest.mark.parametrize("form", ["batch", "one event at a time"])
def test_a_second_run_on_the_same_changes_allocates_nothing(changes, form):
    def run() -> None:
        if form == "batch":
            on_stock_changed_many(changes)
        else:
            for event, envelope in changes:
                on_stock_changed(event, envelope)

    events_before = OutboxEvent.objects.count()
    run()
    once = _state()
    assert dict(once[0]) == {"OLD": "allocated", "EXPRESS": "allocated", "NEWER": "backordered", "MUGS": "backordered"}
    assert len(once[4]) > events_before  # the first run recorded its allocations
    run()
    assert _state() == once
    on_stock_changed_many(changes)  # and the other form after it
    for event, envelope in changes:
        on_stock_changed(event, envelope)
    assert _state() == once
    assert stock_drift() == []


def test_a_retried_change_allocates_nothing_more(changes):
    def pending() -> None:
        assert OutboxEvent.objects.filter(name="inventory.stock_changed", relayed_at=None).count() == len(changes)

    once, again = relayed_then_retried(["inventory.stock_changed"], _state, pending=pending)
    assert dict(once[0])["EXPRESS"] == "allocated"
    assert again == once  # the retries ran the allocation again: nothing reserved, no event recorded
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    assert not HandledEvent.objects.filter(handler=KEY).exists()
    assert stock_drift() == []
