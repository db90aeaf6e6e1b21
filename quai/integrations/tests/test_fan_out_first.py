"""The availability lane (deliveries.py, point 5): the stock's and the catalogue's events are fanned out by a
handler relayed first, so their webhooks do not wait behind a sale's backlog of order events; every event still
gets its deliveries once, and in the order of its resource."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from quai.catalog.events import SkuCreated
from quai.core.events import Event, registered_events, subscriptions_for
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import _PRIORITY_KEYS, event_record, outbox_relay_priority, outbox_sweep, recorded_keys
from quai.integrations.models import WebhookDelivery
from quai.integrations.services.deliveries import FIRST_PREFIXES
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.inventory.events import ReservationReleased, StockChanged

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class ParcelWeighed(Event):
    """An event of the backlog's kind: not the lane's."""

    name: ClassVar[str] = "test.lane_parcel_weighed"
    aggregate: ClassVar[str] = "lane_parcel"

    n: int

    @property
    def aggregate_id(self) -> int:
        return self.n


def _stock_changed(sku_id: int, on_hand: int) -> StockChanged:
    return StockChanged(
        movement_id=on_hand,
        kind="receipt",
        sku_id=sku_id,
        quantity=1,
        lot="",
        from_location_id=None,
        to_location_id=1,
        from_status="",
        to_status="sellable",
        sellable_on_hand=on_hand,
        reserved=0,
    )


def test_no_resource_has_events_both_in_the_lane_and_out_of_it():
    """Order per resource holds because the lane and the rest never share an aggregate: an event added later under
    an aggregate of the other side fails here."""
    sides: dict[str, set[bool]] = {}
    for cls in registered_events():
        if cls.name.startswith("test."):
            continue
        sides.setdefault(cls.aggregate, set()).add(cls.name.startswith(FIRST_PREFIXES))
    assert sides and all(len(side) == 1 for side in sides.values()), {
        aggregate: side for aggregate, side in sides.items() if len(side) > 1
    }


def test_each_event_is_fanned_out_by_one_handler_and_the_lanes_are_relayed_first():
    lane = {key for key in subscriptions_for(StockChanged.name) if key.startswith("integrations.webhook_fan_out")}
    assert len(lane) == 2  # the lane's own, and the ``*`` handler (which skips it)
    first = lane & _PRIORITY_KEYS
    assert len(first) == 1
    assert not {key for key in subscriptions_for(ParcelWeighed.name) if key in _PRIORITY_KEYS}


def test_the_priority_pass_fans_out_the_lane_behind_a_backlog_and_the_relay_adds_the_rest_once(
    merchant, settings
) -> None:
    settings.QUAI_OUTBOX_NUDGE = False
    subscription = WebhookSubscriptionFactory(merchant=merchant, event_types=["*"])
    for n in range(30):
        event_record(ParcelWeighed(n=n), merchant_id=merchant.pk)  # a sale's backlog, older than the stock events
    lane: list[OutboxEvent] = [
        event_record(SkuCreated(sku_id=7, code="TEE", gtin="", version=1), merchant_id=merchant.pk),
        event_record(_stock_changed(7, 5), merchant_id=merchant.pk),
        event_record(ReservationReleased(reservation_id=3, sku_id=7, quantity=1, remaining=0), merchant_id=merchant.pk),
        event_record(_stock_changed(7, 6), merchant_id=merchant.pk),
    ]
    assert outbox_relay_priority() == len(lane)
    written = list(WebhookDelivery.objects.order_by("id").values_list("event_id", "resource_key"))
    assert written == [(row.event_id, f"{row.aggregate}:{row.aggregate_id}") for row in lane]  # in their order
    assert OutboxEvent.objects.filter(relayed_at=None).count() == 34  # relaying them is still the relay's
    assert outbox_sweep(batch=10) == 34
    deliveries: list[Any] = list(WebhookDelivery.objects.values_list("event_id", flat=True))
    assert len(deliveries) == len(set(deliveries)) == 34  # every event once: the lane's not again
    assert set(deliveries) == set(OutboxEvent.objects.values_list("event_id", flat=True))
    assert WebhookDelivery.objects.filter(subscription=subscription).count() == 34
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    assert not OutboxEvent.objects.exclude(last_error="").exists()
    for row in lane:  # each recorded handler once (the ``*`` fan-out is unrecorded: it skips the lane anyway; the
        # lane's is unrecorded where the shops' stock mark marks the event for the pass: test_fan_out_lane_unrecorded)
        handled = list(HandledEvent.objects.filter(event=row).values_list("handler", flat=True))
        assert sorted(handled) == sorted(recorded_keys(row.name))
