"""The availability lane's webhook fan-out (deliveries.py, point 5) is subscribed unrecorded and relayed first: on
the stock and reservation events the shops' stock mark (recorded, relayed first) runs on too, it writes no
``HandledEvent`` row — the mark's row is the priority pass's — and a retried event is fanned out again into the same
deliveries, once per subscription and event; on the lane's other events it writes its row, their only mark."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quai.catalog.events import SkuCreated
from quai.core import clock
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record, outbox_relay_priority, outbox_sweep, recorded_keys
from quai.core.tests.retried import relayed_then_retried
from quai.integrations.models import WebhookDelivery
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.integrations.tests.test_fan_out_first import _stock_changed
from quai.inventory.events import ReservationAllocated, ReservationMade, StockChanged

pytestmark = pytest.mark.django_db

LANE = "integrations.webhook_fan_out.inventory"


def _lane_events(merchant_id: int) -> list[OutboxEvent]:
    return [
        event_record(SkuCreated(sku_id=7, code="TEE", gtin="", version=1), merchant_id=merchant_id),
        event_record(_stock_changed(7, 5), merchant_id=merchant_id),
        event_record(
            ReservationMade(reservation_id=3, sku_id=7, quantity=1, document_type="order", document_id="1"),
            merchant_id=merchant_id,
        ),
        event_record(
            ReservationAllocated(reservation_id=3, sku_id=7, allocations=[{"location_id": 1, "quantity": 1}]),
            merchant_id=merchant_id,
        ),
        event_record(_stock_changed(7, 6), merchant_id=merchant_id),
    ]


def test_the_lane_writes_its_row_only_where_the_shops_stock_mark_does_not():
    assert LANE not in recorded_keys(StockChanged.name)
    assert "integrations.shop_stock.inventory.stock_changed" in recorded_keys(StockChanged.name)
    assert LANE not in recorded_keys(ReservationMade.name)
    assert LANE in recorded_keys(ReservationAllocated.name)  # no stock mark there: its row is the pass's mark
    assert "integrations.webhook_fan_out.catalog" in recorded_keys(SkuCreated.name)


def test_a_retried_lane_event_is_fanned_out_again_into_the_same_deliveries(merchant, settings):
    clock.set_now(clock.now())
    try:
        everything = WebhookSubscriptionFactory(merchant=merchant, event_types=["*"])
        stock = WebhookSubscriptionFactory(merchant=merchant, event_types=["inventory.*"])
        clock.advance(timedelta(seconds=1))
        rows = _lane_events(merchant.pk)
    finally:
        clock.reset()
    names = sorted({row.name for row in rows})
    expected = {(everything.pk, row.event_id) for row in rows} | {
        (stock.pk, row.event_id) for row in rows if row.name.startswith("inventory.")
    }

    def deliveries() -> tuple[int, set[tuple[int, object]]]:
        return WebhookDelivery.objects.count(), set(WebhookDelivery.objects.values_list("subscription_id", "event_id"))

    def pending() -> None:
        assert OutboxEvent.objects.filter(relayed_at=None).count() == len(rows)  # the handler beside failed
        lane_rows = set(HandledEvent.objects.filter(handler=LANE).values_list("event__name", flat=True))
        assert lane_rows == {ReservationAllocated.name}

    once, again = relayed_then_retried(names, deliveries, pending=pending)
    assert once == again == (len(expected), expected)
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    assert set(HandledEvent.objects.filter(handler=LANE).values_list("event__name", flat=True)) == {
        ReservationAllocated.name
    }


def test_the_priority_pass_then_the_relay_fan_the_lane_out_once(merchant, settings):
    """The pass fans the lane out; the relay runs the fan-out again on the events it has no row on, into nothing."""
    settings.QUAI_OUTBOX_NUDGE = False
    subscription = WebhookSubscriptionFactory(merchant=merchant, event_types=["*"])
    rows = _lane_events(merchant.pk)
    assert outbox_relay_priority() == len(rows)
    assert outbox_relay_priority() == 0  # every event marked for the pass: by the stock mark's row or the lane's
    written = list(WebhookDelivery.objects.order_by("id").values_list("event_id", flat=True))
    assert written == [row.event_id for row in rows]  # in their order
    assert outbox_sweep() == len(rows)
    assert list(WebhookDelivery.objects.order_by("id").values_list("event_id", flat=True)) == written
    assert WebhookDelivery.objects.filter(subscription=subscription).count() == len(rows)
    assert not OutboxEvent.objects.exclude(last_error="").exists()
    for row in rows:
        assert set(HandledEvent.objects.filter(event=row).values_list("handler", flat=True)) == recorded_keys(row.name)
