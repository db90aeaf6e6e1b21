"""The promise's shipment handlers in batch form (``on_shipments_shipped``, ``on_shipments_delivered``): the same
records, lanes and events as the single forms run on each event in turn, in a fixed number of queries per relay
batch, and a batch that fails falls back per event on the relay."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.events import Envelope, event_from_payload, event_from_row
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record, outbox_relay
from quai.core.tests.sql_faults import fails_once
from quai.orders import services as order_services
from quai.orders.tests.conftest import order_data
from quai.promise import services
from quai.promise.models import PromiseRecord, TransitLane

pytestmark = pytest.mark.django_db
importlib.import_module("quai.shipping.events")  # shipping stands above the promise, which never imports it
MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")


def _orders(merchant: Any, count: int) -> list[Any]:
    orders = []
    for n in range(count):
        data = order_data(f"SHOP-{n}", lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "19.90"}])
        data["carrier_service"] = "colissimo_home"
        orders.append(order_services.order_create(merchant=merchant, data=data).order)
    while outbox_relay(batch=500):
        pass
    OutboxEvent.objects.all().delete()
    return orders


def _records() -> list[tuple[Any, ...]]:
    return [
        (r.order_id, r.shipped_at, r.shipped_on_time, r.status, r.at_risk_since, r.delivered_at, r.cause, r.closed_on)
        for r in PromiseRecord.objects.order_by("order_id")
    ]


def _lanes() -> list[tuple[Any, ...]]:
    return [
        (lane.pk, lane.kept, lane.broken, lane.widened, lane.observed) for lane in TransitLane.objects.order_by("pk")
    ]


def _events() -> list[tuple[str, Any, int | None]]:
    return [(e.name, e.payload, e.merchant_id) for e in OutboxEvent.objects.order_by("pk")]


def _state() -> tuple[Any, ...]:
    return _records(), _lanes(), _events()


class Undo(Exception):
    pass


def _same_both_ways(single: Any, batch: Any, items: list[tuple[Any, Any]]) -> tuple[Any, int]:
    with pytest.raises(Undo), transaction.atomic():
        for event, envelope in items:
            single(event, envelope)
        one_by_one = _state()
        raise Undo
    with CaptureQueriesContext(connection) as context:
        batch(items)
    assert _state() == one_by_one
    return one_by_one, len(context.captured_queries)


def _shipped(order: Any, at: str) -> Any:
    return SimpleNamespace(order_id=order.pk, shipped_at=at)


def _delivered(order: Any, at: str) -> Any:
    return SimpleNamespace(order_id=order.pk, delivered_at=at)


def test_shipping_in_a_batch_is_shipping_each_in_turn(merchant, configured, shirt):
    clock.set_now(MONDAY)
    orders = _orders(merchant, 6)
    PromiseRecord.objects.filter(order_id=orders[1].pk).update(status="at_risk", at_risk_since=MONDAY)
    PromiseRecord.objects.filter(order_id=orders[2].pk).update(shipped_at=MONDAY, shipped_on_time=True)
    PromiseRecord.objects.filter(order_id=orders[4].pk).update(ship_date=None)
    PromiseRecord.objects.filter(order_id=orders[5].pk).delete()
    items = [
        (_shipped(orders[0], "2025-03-10T17:00:00+01:00"), None),  # on time
        (_shipped(orders[1], "2025-03-11T17:00:00+01:00"), None),  # late, and no longer at risk
        (_shipped(orders[2], "2025-03-12T17:00:00+01:00"), None),  # shipped before: unchanged
        (_shipped(orders[3], "2025-03-10T12:00:00+01:00"), None),
        (_shipped(orders[3], "2025-03-12T12:00:00+01:00"), None),  # told twice: its first shipment counts
        (_shipped(orders[4], "2025-03-10T12:00:00+01:00"), None),  # no ship date: shipped, not measured
        (_shipped(orders[5], "2025-03-10T12:00:00+01:00"), None),  # no promise recorded
        (SimpleNamespace(order_id=None, shipped_at="2025-03-10T12:00:00+01:00"), None),
    ]
    (records, _lanes_after, events), _queries = _same_both_ways(
        services.on_shipment_shipped, services.on_shipments_shipped, items
    )
    by_order = {record[0]: record for record in records}
    assert by_order[orders[0].pk][2:4] == (True, "pending")
    assert by_order[orders[1].pk][2:5] == (False, "pending", None)
    assert by_order[orders[3].pk][1].isoformat().startswith("2025-03-10T11:00")
    assert by_order[orders[4].pk][1] is not None and by_order[orders[4].pk][2] is None
    assert not events


def test_delivering_in_a_batch_is_delivering_each_in_turn_lanes_and_widening_included(merchant, configured, shirt):
    clock.set_now(MONDAY)
    orders = _orders(merchant, 8)
    lane = TransitLane.objects.get(service__code="colissimo_home", zone="FR-MAINLAND")
    TransitLane.objects.filter(pk=lane.pk).update(kept=18, broken=1)
    for order in orders[:5]:
        services.on_shipment_shipped(_shipped(order, "2025-03-10T17:00:00+01:00"), None)
    PromiseRecord.objects.filter(order_id=orders[5].pk).update(status="broken", cause="warehouse_late")
    PromiseRecord.objects.filter(order_id=orders[6].pk).update(delivery_by=None)
    items = [
        (_delivered(orders[0], "2025-03-11T11:00:00+01:00"), None),  # kept: 19 of 20
        (_delivered(orders[1], "2025-03-14T11:00:00+01:00"), None),  # broken: 19 of 21, the lane widens here
        (_delivered(orders[2], "2025-03-12T11:00:00+01:00"), None),  # kept, still widened: no second event
        (_delivered(orders[3], "2025-03-12T11:00:00+01:00"), None),
        (_delivered(orders[3], "2025-03-20T11:00:00+01:00"), None),  # told twice: its first delivery decides
        (_delivered(orders[5], "2025-03-12T11:00:00+01:00"), None),  # broken by the watch: only delivered_at
        (_delivered(orders[6], "2025-03-12T11:00:00+01:00"), None),  # no promised date: nothing
        (_delivered(orders[7], "2025-03-12T11:00:00+01:00"), None),  # never shipped: decided, no transit learnt
        (SimpleNamespace(order_id="not a number", delivered_at="2025-03-12T11:00:00+01:00"), None),
    ]
    (records, lanes, events), _queries = _same_both_ways(
        services.on_shipment_delivered, services.on_shipments_delivered, items
    )
    names = [name for name, _payload, _merchant in events]
    assert names == [
        "promise.kept",
        "promise.broken",
        "promise.lane_widened",
        "promise.kept",
        "promise.kept",
        "promise.kept",
    ]
    counted = next(entry for entry in lanes if entry[0] == lane.pk)
    assert counted[1:4] == (18 + 4, 1 + 1, True) and sum(counted[4].values()) == 4
    by_order = {record[0]: record for record in records}
    assert by_order[orders[5].pk][3] == "broken" and by_order[orders[5].pk][5] is not None
    assert by_order[orders[3].pk][5].isoformat().startswith("2025-03-12")


def test_a_truck_and_a_delivery_round_cost_the_same_few_queries_whatever_their_orders(merchant, configured, shirt):
    clock.set_now(MONDAY)
    orders = _orders(merchant, 12)
    with CaptureQueriesContext(connection) as shipping:
        services.on_shipments_shipped([(_shipped(order, "2025-03-10T17:00:00+01:00"), None) for order in orders])
    with CaptureQueriesContext(connection) as delivering:
        services.on_shipments_delivered([(_delivered(order, "2025-03-11T11:00:00+01:00"), None) for order in orders])
    assert len(shipping.captured_queries) == 4  # a savepoint, the records, one update (one instant), its release
    assert len(delivering.captured_queries) == 7  # a savepoint, records, lanes, records, the lane, events, release
    assert PromiseRecord.objects.filter(status="kept", shipped_on_time=True).count() == 12


def test_a_delivered_batch_that_fails_is_undone_and_the_relay_decides_each_alone(merchant, configured, shirt, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(MONDAY)
    orders = _orders(merchant, 4)
    for n, order in enumerate(orders):
        ship = {"order_id": order.pk, "parcel_ids": [], "tracking_numbers": [], "carrier": "colissimo"}
        shipped_at = (MONDAY + timedelta(hours=7)).isoformat()
        event_record(event_from_payload("shipment.shipped", {**ship, "shipped_at": shipped_at}), merchant_id=None)
        delivered_at = (MONDAY + timedelta(days=1 + n)).isoformat()
        event_record(
            event_from_payload("shipment.delivered", {"order_id": order.pk, "delivered_at": delivered_at}),
            merchant_id=None,
        )
    with transaction.atomic():
        items = [
            (event_from_row(row), Envelope.of(row))
            for row in OutboxEvent.objects.filter(name__startswith="shipment.").order_by("pk")
        ]
    with pytest.raises(Undo), transaction.atomic():
        for event, envelope in items:
            (services.on_shipment_shipped if event.name == "shipment.shipped" else services.on_shipment_delivered)(
                event, envelope
            )
        expected = _records(), _lanes()
        raise Undo
    with fails_once('UPDATE "promise_transitlane"', "deadlock detected (injected)") as failed:
        while outbox_relay(batch=100):
            pass
    assert failed
    assert (_records(), _lanes()) == expected
    assert HandledEvent.objects.filter(handler="promise.delivered").count() == 4
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()


def _stored() -> list[tuple[Any, ...]]:
    """The records' rows as the database holds them (no converter: SQLite's text forms compared too)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {PromiseRecord._meta.db_table} ORDER BY id")
        return [tuple(row) for row in cursor.fetchall()]


def test_the_records_update_writes_what_the_orm_update_of_each_record_writes(merchant, configured, shirt):
    """``_records_update``'s one statement against ``QuerySet.update`` per record, for both handlers' fields and
    the values they write: instants in several zones (microseconds, none), booleans and none, dates, choices."""
    clock.set_now(MONDAY)
    orders = _orders(merchant, 4)
    records = list(PromiseRecord.objects.filter(order_id__in=[order.pk for order in orders]).order_by("pk"))
    paris = datetime.fromisoformat("2025-03-11T11:00:00.123456+01:00")
    for n, record in enumerate(records):
        record.shipped_at = None if n == 3 else paris + timedelta(days=n, minutes=7 * n)
        record.shipped_on_time = (True, False, None, True)[n]
        record.status = ("kept", "pending", "pending", "at_risk")[n]
        record.at_risk_since = MONDAY if n == 3 else None
        record.delivered_at = None if n == 2 else (paris + timedelta(hours=n)).astimezone(UTC if n else paris.tzinfo)
        record.cause = ("", "carrier_late", "", "")[n]
        record.closed_on = None if n >= 2 else date(2025, 3, 11 + n)
    for fields in (
        ["shipped_at", "shipped_on_time", "status", "at_risk_since"],
        ["delivered_at", "status", "cause", "closed_on"],
    ):
        if "cause" in fields:
            records[1].status = "broken"  # with its cause, written in the same statement
        with pytest.raises(Undo), transaction.atomic():
            for record in records:
                PromiseRecord.objects.filter(pk=record.pk).update(**{name: getattr(record, name) for name in fields})
            by_orm = _stored()
            raise Undo
        with pytest.raises(Undo), transaction.atomic():
            with CaptureQueriesContext(connection) as context:
                services.promises._records_update(records, fields)
            assert _stored() == by_orm
            assert len(context.captured_queries) == 1
            raise Undo
