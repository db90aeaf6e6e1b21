"""The webhook fan-out writes its deliveries by one raw insert (``quai.core.rows.rows_insert``, ON CONFLICT DO
NOTHING) instead of ``bulk_create(..., ignore_conflicts=True)`` of ``WebhookDelivery`` instances: every column of
every row is what the ORM form wrote, in the same order, and an event fanned out again writes nothing more."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction

from quai.core import clock
from quai.core.events import Envelope, event_from_row, event_payload
from quai.core.models import OutboxEvent
from quai.core.outbox import event_record
from quai.integrations import domain
from quai.integrations.models import WebhookDelivery, WebhookSubscription
from quai.integrations.services import deliveries
from quai.integrations.services.deliveries import webhook_fan_out_many
from quai.integrations.tests.factories import WebhookSubscriptionFactory
from quai.inventory.events import ReservationMade, ReservationReleased

pytestmark = pytest.mark.django_db

_COLUMNS = [field.attname for field in WebhookDelivery._meta.concrete_fields if not field.primary_key]


def _orm_fan_out(items: list[tuple[Any, Envelope]]) -> None:
    """The fan-out as it was written before (c. 76ab071): instances, then ``bulk_create(ignore_conflicts=True)``."""
    now = clock.now()
    merchant_ids = {envelope.merchant_id for _e, envelope in items if envelope.merchant_id is not None}
    active = list(WebhookSubscription.objects.filter(merchant_id__in=merchant_ids, active=True).order_by("id"))
    rows = []
    for event, envelope in items:
        if envelope.merchant_id is None:
            continue
        body = deliveries._body(
            event_id=envelope.event_id,
            name=envelope.name,
            occurred_at=envelope.occurred_at,
            schema_version=envelope.schema_version,
            merchant_id=envelope.merchant_id,
            aggregate=envelope.aggregate,
            aggregate_id=envelope.aggregate_id,
            data=event_payload(event),
        )
        rows.extend(
            WebhookDelivery(
                merchant_id=envelope.merchant_id,
                subscription=subscription,
                event_id=envelope.event_id,
                event_name=envelope.name,
                resource_key=f"{envelope.aggregate}:{envelope.aggregate_id}"[:210],
                payload=body,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for subscription in active
            if subscription.merchant_id == envelope.merchant_id
            and subscription.created_at <= envelope.occurred_at
            and domain.patterns_match(subscription.event_types, envelope.name)
        )
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)


def _written() -> list[tuple[Any, ...]]:
    return list(WebhookDelivery.objects.order_by("id").values_list(*_COLUMNS))


def test_the_raw_insert_writes_every_column_the_orm_form_wrote(merchant, other_merchant, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(clock.now())
    try:
        WebhookSubscriptionFactory(merchant=merchant, event_types=["inventory.*"])
        WebhookSubscriptionFactory(merchant=merchant, event_types=["inventory.reservation_made"])
        WebhookSubscriptionFactory(merchant=other_merchant, event_types=["*"])
        WebhookSubscriptionFactory(merchant=merchant, active=False)
        for n in range(12):
            owner = merchant if n % 3 else other_merchant
            event: ReservationMade | ReservationReleased
            if n % 2:
                event = ReservationMade(
                    reservation_id=200 + n % 4, sku_id=7, quantity=n + 1, document_type="order", document_id=str(n)
                )
            else:
                event = ReservationReleased(reservation_id=200 + n % 4, sku_id=7, quantity=n, remaining=0)
            event_record(event, merchant_id=owner.pk)
            clock.set_now(clock.now() + timedelta(milliseconds=7))
        event_record(ReservationReleased(reservation_id=1, sku_id=7, quantity=1, remaining=0), merchant_id=None)
        items = [(event_from_row(row), Envelope.of(row)) for row in OutboxEvent.objects.order_by("id")]

        class Undo(Exception):
            pass

        with pytest.raises(Undo), transaction.atomic():
            _orm_fan_out(items)
            before = _written()
            raise Undo
        assert not WebhookDelivery.objects.exists()
        webhook_fan_out_many(items)
        after = _written()
        assert len(after) == len(before) > 12
        assert after == before  # every column, the JSON body included, in the same order
        # Fanned out again (a retried event): the unique (subscription, event) leaves it at one delivery each.
        webhook_fan_out_many(items)
        assert _written() == after
    finally:
        clock.reset()
