"""The sender's claim keeps its plan when the statistics say the deliveries' table is empty (a new site's or a new
merchant's first sale): it walks ``webhook_delivery_due_idx`` in order and stops at its batch, rather than reading
every pending delivery and sorting them, or scanning them all again for each delivery's older one (33-55 ms a claim
with 2,700-3,000 pending in the intake bench's clone, one claim per answer)."""

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
    with connection.cursor() as cursor:  # what a new site's statistics say: one subscription, no delivery
        cursor.execute("ANALYZE integrations_webhooksubscription, integrations_webhookdelivery")
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
    select = next(sql for sql in statements if "SKIP LOCKED" in sql)
    settings_made = [sql for sql in statements[: statements.index(select)] if "set_config" in sql]
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in settings_made:
            cursor.execute(sql)
        cursor.execute("EXPLAIN " + select)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using webhook_delivery_due_idx" in plan, plan  # walked in order, stopped at the batch
    assert "using webhook_delivery_order_idx" in plan, plan  # each one's older delivery looked up
    for wrong in ("Sort", "Seq Scan on integrations_webhookdelivery", "Bitmap Heap Scan", "Hash", "Merge"):
        assert wrong not in plan, plan
