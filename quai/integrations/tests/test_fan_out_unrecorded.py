"""The ``*`` webhook fan-out is subscribed unrecorded (``subscribe(..., recorded=False)``): it writes no
``HandledEvent`` row, and an event relayed again (another handler failed on it) is fanned out again into no second
delivery — one per subscription and event, as with its row — nor one for a subscription made after the event."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import pytest

from quai.core import clock
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record, outbox_relay
from quai.integrations.models import WebhookDelivery
from quai.integrations.tests.factories import WebhookSubscriptionFactory

pytestmark = pytest.mark.django_db

FAN_OUT = "integrations.webhook_fan_out"


@dataclass(frozen=True)
class CrateSealed(Event):
    name: ClassVar[str] = "test.fan_out_crate_sealed"
    aggregate: ClassVar[str] = "crate"

    order_id: int

    @property
    def aggregate_id(self) -> int:
        return self.order_id


@pytest.fixture
def down() -> Iterator[set[int]]:
    """Another handler of the same events, failing on the orders in the set."""
    failing: set[int] = set()

    def handler(event: Any, envelope: Envelope) -> None:
        if int(event.order_id) in failing:
            raise RuntimeError("down (injected)")

    subscribe(CrateSealed.name, "test.fan_out_other", handler)
    yield failing
    unsubscribe("test.fan_out_other")


def _held(merchant_id: int, order_id: int) -> OutboxEvent:
    return event_record(CrateSealed(order_id=order_id), merchant_id=merchant_id)


def test_a_retried_event_is_fanned_out_again_into_the_same_deliveries(merchant, other_merchant, down, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(clock.now())
    try:
        everything = WebhookSubscriptionFactory(merchant=merchant, event_types=["*"])
        held = WebhookSubscriptionFactory(merchant=merchant, event_types=["test.fan_out_crate_sealed"])
        WebhookSubscriptionFactory(merchant=merchant, event_types=["order.*"])
        clock.advance(timedelta(seconds=1))
        rows = [_held(merchant.pk, 1), _held(merchant.pk, 2), _held(other_merchant.pk, 3)]
        down.add(2)
        assert outbox_relay(batch=100) == 3
        first = set(WebhookDelivery.objects.values_list("subscription_id", "event_id"))
        expected = {(s.pk, row.event_id) for s in (everything, held) for row in rows[:2]}
        assert first == expected  # the failing event's deliveries are written all the same
        assert not HandledEvent.objects.filter(handler=FAN_OUT).exists()
        assert OutboxEvent.objects.filter(relayed_at=None).get().pk == rows[1].pk

        clock.advance(timedelta(seconds=1))
        late = WebhookSubscriptionFactory(merchant=merchant, event_types=["*"])
        down.clear()
        clock.advance(timedelta(minutes=5))
        assert outbox_relay(batch=100) == 1  # the retry fans event 2 out again
        assert WebhookDelivery.objects.count() == len(expected)
        assert set(WebhookDelivery.objects.values_list("subscription_id", "event_id")) == expected
        assert not WebhookDelivery.objects.filter(subscription=late).exists()  # made after the event happened
        assert not HandledEvent.objects.filter(handler=FAN_OUT).exists()
        assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    finally:
        clock.reset()
