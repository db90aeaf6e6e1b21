"""The sender's claim keeps its plan when the statistics say the deliveries' table is empty (a new site's or a new
merchant's first sale): it walks ``webhook_delivery_due_idx`` in order and stops at its batch, rather than reading
every pending delivery and sorting them (53 ms a claim with 2,700 pending in the intake bench, one claim per answer)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.integrations.models import WebhookDelivery
from quai.integrations.services.deliveries import webhook_deliveries_claim
from quai.integrations.tests.factories import WebhookSubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_the_claim_walks_the_due_index_even_on_the_statistics_of_an_empty_table(merchant):
    if connection.vendor != "postgresql":
        pytest.skip("the planner's choice: PostgreSQL")
    subscription = WebhookSubscriptionFactory(merchant=merchant)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE integrations_webhookdelivery")  # empty: what a new site's statistics say
    now = clock.now()
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            merchant=merchant,
            subscription=subscription,
            event_id=uuid.uuid4(),
            event_name="inventory.reservation_made",
            resource_key=f"reservation:{n}",
            payload={},
            next_attempt_at=now - timedelta(seconds=3000 - n),
        )
        for n in range(3000)
    )
    with CaptureQueriesContext(connection) as context:
        claimed = webhook_deliveries_claim(batch=50)
    assert len(claimed) == 50
    statements = [query["sql"] for query in context.captured_queries]
    settings_made = [sql for sql in statements if sql.startswith("SET LOCAL")]
    select = next(sql for sql in statements if "SKIP LOCKED" in sql)
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in settings_made:
            cursor.execute(sql)
        cursor.execute("EXPLAIN " + select)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "webhook_delivery_due_idx" in plan, plan
    assert "Sort" not in plan, plan
