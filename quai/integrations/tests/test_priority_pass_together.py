"""The outbox's priority pass runs the handlers relayed first in its own transaction, which holds the priority lock:
no savepoint and no second lock per handler (``quai.core.outbox.outbox_relay_priority``, ``together``). With the
availability lane's real handlers (the webhook fan-out, the shops' stock marks), it writes exactly the rows the pass
wrote with a savepoint and the lock again per handler (the form before 2026-12-05), with fewer statements."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock, outbox
from quai.core.models import HandledEvent
from quai.core.outbox import event_record, outbox_relay_priority
from quai.integrations.models import StockSync, WebhookDelivery
from quai.integrations.tests.factories import ConnectionFactory, WebhookSubscriptionFactory
from quai.inventory.events import ReservationMade, ReservationReleased

pytestmark = pytest.mark.django_db

_DELIVERY_COLUMNS = [field.attname for field in WebhookDelivery._meta.concrete_fields if not field.primary_key]
_SYNC_COLUMNS = [field.attname for field in StockSync._meta.concrete_fields if not field.primary_key]


def _written() -> tuple[list[Any], list[Any], list[Any]]:
    return (
        sorted(HandledEvent.objects.values_list("event_id", "handler", "handled_at")),
        list(WebhookDelivery.objects.order_by("id").values_list(*_DELIVERY_COLUMNS)),
        list(StockSync.objects.order_by("id").values_list(*_SYNC_COLUMNS)),
    )


class Undo(Exception):
    pass


def test_the_pass_in_one_transaction_writes_what_a_savepoint_per_handler_wrote(
    merchant: Any, other_merchant: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.QUAI_OUTBOX_NUDGE = False
    with clock.frozen(datetime(2031, 3, 10, 9, 0, tzinfo=UTC)):
        WebhookSubscriptionFactory(merchant=merchant, event_types=["inventory.*"])
        WebhookSubscriptionFactory(merchant=other_merchant, event_types=["inventory.reservation_made"])
        ConnectionFactory(merchant=merchant, push_stock=True)
        ConnectionFactory(merchant=other_merchant, push_stock=True)
        skus = [SkuFactory(merchant=owner, code=f"S{n}", name=f"S{n}") for n, owner in enumerate([merchant] * 3)]
        skus.append(SkuFactory(merchant=other_merchant, code="MUG", name="Mug"))
        for n in range(24):
            sku = skus[n % 4]
            if n % 3:
                event: Any = ReservationMade(
                    reservation_id=n, sku_id=sku.pk, quantity=1, document_type="order", document_id=str(n)
                )
            else:
                event = ReservationReleased(reservation_id=n, sku_id=sku.pk, quantity=1, remaining=0)
            event_record(event, merchant_id=sku.merchant_id)
        real = outbox._dispatch_all

        def each_in_its_savepoint(*args: Any, **kwargs: Any) -> Any:
            return real(*args, **{**kwargs, "together": False})  # the form before: a savepoint and the lock each

        outbox._PRIORITY_SEEN[0] = 0
        with pytest.raises(Undo), transaction.atomic():
            monkeypatch.setattr(outbox, "_dispatch_all", each_in_its_savepoint)
            with CaptureQueriesContext(connection) as before_queries:
                assert outbox_relay_priority(batch=10) == 24
            before = _written()
            monkeypatch.undo()
            raise Undo
        assert _written() == ([], [], [])

        outbox._PRIORITY_SEEN[0] = 0
        with CaptureQueriesContext(connection) as queries:
            assert outbox_relay_priority(batch=10) == 24
        after = _written()
    assert after == before  # every row, every column, in the same order
    assert len(after[0]) == 24 and len(after[1]) == 18 + 4 and after[2]  # both handlers wrote

    def savepoints(captured: CaptureQueriesContext) -> int:
        return sum(query["sql"].startswith("SAVEPOINT") for query in captured.captured_queries)

    def locks(captured: CaptureQueriesContext) -> int:
        return sum("advisory" in query["sql"] for query in captured.captured_queries)

    # 10, 10 and 4 events, each pass with three handlers (two stock marks, the fan-out); in the test's own
    # transaction each pass's is a savepoint
    passes, handlers = 3, 3
    assert savepoints(queries) == passes and savepoints(before_queries) == passes * (1 + handlers)
    postgres = connection.vendor == "postgresql"
    assert locks(queries) == (passes if postgres else 0)
    assert locks(before_queries) == (passes * (1 + handlers) if postgres else 0)
    # per handler: its SAVEPOINT, RELEASE and (PostgreSQL) the lock again
    assert len(queries) == len(before_queries) - passes * handlers * (3 if postgres else 2)
