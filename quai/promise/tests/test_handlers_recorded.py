"""The promise's order and tracking handlers stay recorded (a ``HandledEvent`` row each, issue 17): unlike the
handlers subscribed ``recorded=False`` (labour's scans, the replenishment check, backorder allocation), a second
run on the same event does not leave what one run leaves. These tests show it, so whoever unrecords them sees why
not."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import pytest

from quai.core import clock
from quai.core.events import Envelope, event_from_row, subscriptions_for
from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_relay
from quai.orders import services as order_services
from quai.orders.tests.conftest import order_data
from quai.promise import selectors, services
from quai.promise.models import PromiseRecord
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db

MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")
SYSTEM = Scope.system("test")


def test_the_backlog_and_the_tracking_handlers_are_recorded():
    assert subscriptions_for("order.status_changed")["promise.backlog_refresh"].recorded is True
    assert subscriptions_for("shipment.tracking_event")["promise.tracking"].recorded is True


def test_the_backlog_run_twice_on_the_same_steps_counts_their_lines_twice(merchant, configured, shirt, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(MONDAY)
    data = order_data("SHOP-1", lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "19.90"}] * 2)
    order = order_services.order_create(merchant=merchant, data=data).order
    order_services.order_release(order=order, now=order.release_after)
    while outbox_relay(batch=100):
        pass
    assert selectors.backlog_sums(scope=SYSTEM) == selectors.backlog_counted_from_orders(scope=SYSTEM)
    rows = OutboxEvent.objects.filter(name="order.status_changed").order_by("id")
    services.on_orders_changed([(event_from_row(row), Envelope.of(row)) for row in rows])  # a retry, unrecorded
    assert selectors.backlog_sums(scope=SYSTEM) != selectors.backlog_counted_from_orders(scope=SYSTEM)


def test_a_tracking_event_run_again_after_a_later_estimate_brings_the_older_one_back(merchant, configured, shirt):
    clock.set_now(MONDAY)
    data = order_data("SHOP-1", lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "19.90"}])
    data.setdefault("carrier_service", "colissimo_home")
    order = order_services.order_create(merchant=merchant, data=data).order
    outbox_relay()

    def estimate(day: str) -> SimpleNamespace:
        return SimpleNamespace(order_id=order.pk, status="delayed", occurred_at=MONDAY, estimated_delivery=day)

    first, later = estimate("2025-03-14"), estimate("2025-03-15")
    services.on_shipment_tracking_event(first, None)
    services.on_shipment_tracking_event(first, None)  # at once: nothing more
    services.on_shipment_tracking_event(later, None)
    assert str(PromiseRecord.objects.get(order_id=order.pk).forecast_date) == "2025-03-15"
    assert OutboxEvent.objects.filter(name="promise.reforecast").count() == 2
    services.on_shipment_tracking_event(first, None)  # the first one retried
    assert str(PromiseRecord.objects.get(order_id=order.pk).forecast_date) == "2025-03-14"
    assert OutboxEvent.objects.filter(name="promise.reforecast").count() == 3
