"""The webhook fan-out's batch form: a relay batch reads its merchants' subscriptions once, and writes exactly the
deliveries the per-event handler writes (subscriptions made after an event get none; order per resource kept)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.events import Envelope, event_from_row
from quai.core.models import OutboxEvent
from quai.core.outbox import event_record, outbox_relay
from quai.integrations.models import WebhookDelivery
from quai.integrations.services.deliveries import webhook_fan_out, webhook_fan_out_many
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.inventory.events import ReservationReleased

pytestmark = pytest.mark.django_db


def _later(**delta: Any) -> None:
    clock.set_now(clock.now() + timedelta(**delta))


def _released(merchant_id: int | None, reservation_id: int, quantity: int) -> None:
    event_record(
        ReservationReleased(reservation_id=reservation_id, sku_id=1, quantity=quantity, remaining=0),
        merchant_id=merchant_id,
    )


@pytest.fixture
def events(merchant, other_merchant) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Twenty events of two merchants on four resources (and one of no merchant); a subscription of each merchant
    from the start, a third made half-way, one inactive, one whose pattern matches nothing here."""
    clock.set_now(clock.now())
    early = WebhookSubscriptionFactory(merchant=merchant, event_types=["inventory.*"])
    other = WebhookSubscriptionFactory(merchant=other_merchant, event_types=["inventory.reservation_released"])
    WebhookSubscriptionFactory(merchant=merchant, active=False)
    WebhookSubscriptionFactory(merchant=merchant, event_types=["order.*"])
    late = None
    for n in range(20):
        if n == 10:
            _later(seconds=1)
            late = WebhookSubscriptionFactory(merchant=merchant, event_types=["*"])
        owner = merchant if n % 2 == 0 else other_merchant
        _released(owner.pk, reservation_id=100 + n % 4, quantity=n)
        _later(milliseconds=10)
    _released(None, reservation_id=999, quantity=1)
    return {"early": early, "other": other, "late": late}


def _written() -> list[tuple[int, str, str, dict[str, Any]]]:
    return list(
        WebhookDelivery.objects.order_by("id").values_list("subscription_id", "event_id", "resource_key", "payload")
    )


def test_a_relay_batch_reads_its_merchants_subscriptions_in_one_query(events):
    with CaptureQueriesContext(connection) as context:
        assert outbox_relay(batch=100) == 21
    statements = [query["sql"] for query in context.captured_queries]
    assert len([sql for sql in statements if 'FROM "integrations_webhooksubscription"' in sql]) == 1
    inserts = [sql for sql in statements if sql.startswith("INSERT") and '"integrations_webhookdelivery"' in sql[:60]]
    assert len(inserts) == 1  # SQLite spells it INSERT OR IGNORE
    rows = list(OutboxEvent.objects.order_by("id"))
    expected = [
        (subscription.pk, row.event_id)
        for row in rows
        for subscription in (events["early"], events["late"], events["other"])
        if row.merchant_id == subscription.merchant_id and subscription.created_at <= row.occurred_at
    ]
    assert sorted((s, str(e)) for s, e, _k, _p in _written()) == sorted((s, str(e)) for s, e in expected)
    assert WebhookDelivery.objects.filter(subscription=events["late"]).count() == 5  # events 10, 12, … 18
    # Per subscription and resource, deliveries are in the order the events happened (the sender's rule).
    position = {row.event_id: index for index, row in enumerate(rows)}
    by_resource: dict[tuple[int, str], list[int]] = {}
    for subscription_id, event_id, resource, _payload in _written():
        by_resource.setdefault((subscription_id, resource), []).append(position[event_id])
    assert all(order == sorted(order) for order in by_resource.values())


def test_the_batch_form_writes_exactly_what_the_per_event_handler_writes(events):
    items = [(event_from_row(row), Envelope.of(row)) for row in OutboxEvent.objects.order_by("id")]

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        for event, envelope in items:
            webhook_fan_out(event, envelope)
        one_by_one = _written()
        raise Undo
    assert not WebhookDelivery.objects.exists()
    webhook_fan_out_many(items)
    together = _written()
    assert len(together) == len(one_by_one) > 0
    assert [(s, e, k, p) for s, e, k, p in together] == [(s, e, k, p) for s, e, k, p in one_by_one]
