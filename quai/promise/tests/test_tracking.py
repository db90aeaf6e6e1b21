"""A promise recorded on the order, then followed: shipped on time or not, kept or broken with its cause, at risk,
re-forecast, and each lane's kept rate widening its promises."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from quai.core import clock
from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_relay
from quai.orders import services as order_services
from quai.orders.tests.conftest import order_data
from quai.promise import services
from quai.promise.models import PromiseRecord, TransitLane

pytestmark = pytest.mark.django_db

MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")


def _order(merchant, external_id="SHOP-1", **changes):
    data = order_data(external_id, lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "19.90"}], **changes)
    data.setdefault("carrier_service", "colissimo_home")
    order = order_services.order_create(merchant=merchant, data=data).order
    outbox_relay()
    return order


def _names(*names):
    return list(OutboxEvent.objects.filter(name__in=names).values_list("name", flat=True))


def test_an_order_without_a_promise_gets_the_one_computed_at_intake(merchant, configured, shirt):
    clock.set_now(MONDAY)
    order = _order(merchant)
    record = PromiseRecord.objects.get(order_id=order.pk)
    assert (record.source, record.service, record.zone) == ("intake", "colissimo_home", "FR-MAINLAND")
    assert (str(record.ship_date), str(record.delivery_from), str(record.delivery_by)) == (
        "2025-03-10",
        "2025-03-11",
        "2025-03-12",
    )
    assert record.ship_by.isoformat().startswith("2025-03-10T14:00:00")  # 15:00 Paris
    assert _names("promise.recorded") == ["promise.recorded"]


def test_the_promise_the_checkout_showed_is_the_one_recorded(api, merchant, configured, shirt):
    clock.set_now(MONDAY)
    quote = api.post(
        "promise",
        {"lines": [{"sku": "SHIRT-M", "quantity": 1}], "destination": {"country": "FR", "postcode": "75011"}},
    ).json()
    relay = next(o for o in quote["options"] if o["service"] == "mondial_relay")
    clock.set_now(MONDAY + timedelta(hours=5))  # ordered after the relay cut-off: the shown promise still stands
    order = _order(merchant, promise={"id": relay["promise_id"]}, carrier_service="mondial_relay")
    record = PromiseRecord.objects.get(order_id=order.pk)
    assert (record.source, record.service, str(record.delivery_by)) == ("shop", "mondial_relay", "2025-03-13")


def test_a_forged_promise_id_is_not_believed_but_the_shops_dates_are(merchant, configured, shirt):
    clock.set_now(MONDAY)
    order = _order(
        merchant, promise={"id": "p1.1.1.x.FR-MAINLAND.250310.250310.250310.AAAA", "delivery_by": "2025-03-20"}
    )
    record = PromiseRecord.objects.get(order_id=order.pk)
    assert (record.source, str(record.delivery_by), record.service) == ("shop", "2025-03-20", "colissimo_home")


def _ship(order, at):
    services.on_shipment_shipped(SimpleNamespace(order_id=order.pk, shipped_at=at), None)


def _deliver(order, at):
    services.on_shipment_delivered(SimpleNamespace(order_id=order.pk, delivered_at=at), None)


def test_shipped_on_time_and_delivered_late_is_broken_by_the_carrier(merchant, configured, shirt):
    clock.set_now(MONDAY)
    order = _order(merchant)
    _ship(order, "2025-03-10T17:00:00+01:00")
    _deliver(order, "2025-03-13T11:00:00+01:00")
    record = PromiseRecord.objects.get(order_id=order.pk)
    assert (record.shipped_on_time, record.status, record.cause) == (True, "broken", "carrier_late")
    assert _names("promise.broken") == ["promise.broken"]
    lane = TransitLane.objects.get(service__code="colissimo_home", zone="FR-MAINLAND")
    assert (lane.kept, lane.broken, lane.observed) == (0, 1, {"3": 1})


def test_shipped_late_and_delivered_in_time_is_kept_and_both_are_measured_apart(merchant, configured, shirt):
    clock.set_now(MONDAY)
    order = _order(merchant)
    _ship(order, "2025-03-11T16:00:00+01:00")
    _deliver(order, "2025-03-12T10:00:00+01:00")
    record = PromiseRecord.objects.get(order_id=order.pk)
    assert (record.shipped_on_time, record.status, record.cause) == (False, "kept", "")
    _deliver(order, "2025-03-20T10:00:00+01:00")  # a repeated event changes nothing
    assert PromiseRecord.objects.get(order_id=order.pk).status == "kept"


def test_a_parcel_late_in_transit_is_reforecast_before_the_promised_date(merchant, configured, shirt):
    clock.set_now(MONDAY)
    order = _order(merchant)
    event = SimpleNamespace(order_id=order.pk, status="delayed", occurred_at=MONDAY, estimated_delivery="2025-03-14")
    services.on_shipment_tracking_event(event, None)
    services.on_shipment_tracking_event(event, None)
    record = PromiseRecord.objects.get(order_id=order.pk)
    assert (record.status, str(record.forecast_date)) == ("at_risk", "2025-03-14")
    assert _names("promise.reforecast") == ["promise.reforecast"]


def test_the_watch_flags_orders_whose_work_ahead_misses_their_cutoff_and_breaks_overdue_ones(
    merchant, configured, shirt
):
    clock.set_now(MONDAY)
    order = _order(merchant)
    clock.set_now(MONDAY + timedelta(hours=5, minutes=1))  # 15:01, not shipped: it missed its cut-off
    assert services.promise_watch()["at_risk"] == 1
    assert PromiseRecord.objects.get(order_id=order.pk).status == "at_risk"
    assert _names("promise.at_risk") == ["promise.at_risk"]
    assert services.promise_watch()["at_risk"] == 0  # told once
    clock.set_now(MONDAY + timedelta(days=3))  # Thursday: the promised Wednesday passed undelivered, never shipped
    assert services.promise_watch()["broken"] == 1
    record = PromiseRecord.objects.get(order_id=order.pk)
    assert (record.status, record.cause) == ("broken", "warehouse_late")


def test_a_lane_under_its_kept_threshold_widens_and_tells_the_supervisor(
    merchant, configured, shirt, django_capture_on_commit_callbacks
):
    clock.set_now(MONDAY)
    lane = TransitLane.objects.get(service__code="colissimo_home", zone="FR-MAINLAND")
    TransitLane.objects.filter(pk=lane.pk).update(kept=18, broken=1)
    order = _order(merchant)
    _ship(order, "2025-03-10T17:00:00+01:00")
    with django_capture_on_commit_callbacks(execute=True):  # the widened lane reaches the cached snapshot
        _deliver(order, "2025-03-14T11:00:00+01:00")  # 18 kept of 20: 90 % < 95 %
    lane.refresh_from_db()
    assert lane.widened
    assert _names("promise.lane_widened") == ["promise.lane_widened"]
    later = _order(merchant, external_id="SHOP-2")
    record = PromiseRecord.objects.get(order_id=later.pk)
    assert str(record.confidence) == "0.990" and str(record.delivery_by) == "2025-03-13"
