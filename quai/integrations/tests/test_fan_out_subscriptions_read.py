"""The fan-out's read of the active subscriptions (a statement written once) gives what the ORM's query gave: the
same subscriptions in the same order, with the same values and types, the other fields deferred."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quai.integrations.models import WebhookSubscription
from quai.integrations.services import deliveries
from quai.integrations.tests.factories import WebhookSubscriptionFactory

pytestmark = pytest.mark.django_db

FIELDS = ("id", "merchant_id", "event_types", "created_at")


def _orm(merchant_ids):
    return list(
        WebhookSubscription.objects.filter(merchant_id__in=merchant_ids, active=True).only(
            "id", "merchant_id", "event_types", "created_at"
        )
    )


def _seen(subscriptions):
    return [
        (
            tuple((getattr(s, name), type(getattr(s, name))) for name in FIELDS),
            s.get_deferred_fields(),
            s._state.adding,
            s._state.db,
        )
        for s in subscriptions
    ]


def test_the_active_subscriptions_read_equals_the_orm_query(merchant, other_merchant):
    WebhookSubscriptionFactory(merchant=merchant, event_types=["inventory.*", "order.shipped"])
    WebhookSubscriptionFactory(merchant=other_merchant, event_types=["*"])
    WebhookSubscriptionFactory(merchant=merchant, event_types=[], active=False)
    WebhookSubscriptionFactory(merchant=merchant, event_types={"odd": [1, 2.5, None]})
    late = WebhookSubscriptionFactory(merchant=other_merchant, event_types=["catalog.*"])
    WebhookSubscription.objects.filter(pk=late.pk).update(created_at=datetime(2024, 2, 29, 23, 59, 59, 999999, UTC))
    missing = other_merchant.pk + merchant.pk + 100
    for chosen in ({merchant.pk}, {other_merchant.pk}, {merchant.pk, other_merchant.pk, missing}, {missing}):
        ours = deliveries._subscriptions_active(chosen)
        assert _seen(ours) == _seen(_orm(chosen))
    assert len(deliveries._subscriptions_active({merchant.pk, other_merchant.pk})) == 4
