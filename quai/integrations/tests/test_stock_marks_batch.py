"""The shop stock marks' batch form (``on_stock_events``): the same (shop, SKU) rows, generations and first-change
times as ``on_stock_event`` run on each event in turn, a few queries per relay batch, one push asked per shop; and a
batch that fails falls back per event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.events import Envelope, event_from_row
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record, outbox_relay
from quai.core.tests.sql_faults import fails_once
from quai.integrations.models import ConnectionStatus, StockSync
from quai.integrations.services.stock_out import on_stock_event, on_stock_events
from quai.integrations.tests.factories import ConnectionFactory
from quai.inventory.events import ReservationMade, ReservationReleased

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(merchant, other_merchant) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two stock-pushing shops of one merchant (plus a paused one and one that takes no stock), one of another
    merchant; SKUs changed once, twice and three times in the batch, one already pushed before, and an event of no
    merchant."""
    with clock.frozen(datetime(2031, 3, 10, 9, 0, tzinfo=UTC)):
        shops = [ConnectionFactory(merchant=merchant, push_stock=True) for _n in range(2)]
        ConnectionFactory(merchant=merchant, push_stock=True, status=ConnectionStatus.PAUSED)
        ConnectionFactory(merchant=merchant, push_stock=False)
        theirs = ConnectionFactory(merchant=other_merchant, push_stock=True)
        ours = [SkuFactory(merchant=merchant, code=f"S{n}", name=f"S{n}") for n in range(4)]
        mug = SkuFactory(merchant=other_merchant, code="MUG", name="Mug")
        StockSync.objects.create(
            merchant=merchant, connection=shops[0], sku_id=ours[3].pk, sku_code="S3", generation=5, pushed_generation=5
        )
        changes = [ours[0], ours[1], ours[1], mug, ours[2], ours[2], ours[2], ours[3], ours[1]]
        with transaction.atomic():
            for n, sku in enumerate(changes):
                kind = ReservationMade if n % 2 == 0 else ReservationReleased
                fields: dict[str, Any] = {"reservation_id": n, "sku_id": sku.pk, "quantity": 1, "sku_code": sku.code}
                if kind is ReservationMade:
                    fields.update(document_type="order_line", document_id=str(n))
                else:
                    fields.update(remaining=0)
                event_record(kind(**fields), merchant_id=sku.merchant_id)
            event_record(
                ReservationMade(reservation_id=99, sku_id=ours[0].pk, quantity=1, document_type="x", document_id="99"),
                merchant_id=None,
            )
    rows = list(OutboxEvent.objects.order_by("id"))
    return {
        "items": [(event_from_row(row), Envelope.of(row)) for row in rows],
        "shops": shops,
        "theirs": theirs,
        "skus": ours,
    }


def _state() -> list[tuple[Any, ...]]:
    return sorted(
        StockSync.objects.values_list(
            "merchant_id", "connection_id", "sku_id", "sku_code", "generation", "pushed_generation", "changed_at"
        )
    )


class Undo(Exception):
    pass


def test_the_batch_form_marks_exactly_what_the_per_event_handler_marks(scenario, django_capture_on_commit_callbacks):
    with clock.frozen(datetime(2031, 3, 10, 9, 5, tzinfo=UTC)):
        with pytest.raises(Undo), transaction.atomic():
            for event, envelope in scenario["items"]:
                on_stock_event(event, envelope)
            one_by_one = _state()
            raise Undo
        assert StockSync.objects.count() == 1  # the per-event run was undone
        with django_capture_on_commit_callbacks() as callbacks, CaptureQueriesContext(connection) as context:
            on_stock_events(scenario["items"])
    assert _state() == one_by_one
    shops = scenario["shops"]
    generations = {
        (connection_id, sku_id): generation for _m, connection_id, sku_id, _c, generation, _p, _t in one_by_one
    }
    skus = scenario["skus"]
    assert [generations[(shops[1].pk, sku.pk)] for sku in skus] == [1, 3, 3, 1]
    assert generations[(shops[0].pk, skus[3].pk)] == 6  # already there: bumped, not created again
    assert len(one_by_one) == 2 * 4 + 1  # two shops × four SKUs, and the other merchant's shop × its SKU
    # The shops, one insert, one update whatever the counts of changes (1 and 3 here): and one push asked after commit.
    assert len(context.captured_queries) == 3
    assert len(callbacks) == 1


def test_a_batch_that_fails_is_undone_and_the_relay_marks_each_event_alone(scenario, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    with clock.frozen(datetime(2031, 3, 10, 9, 5, tzinfo=UTC)):
        with pytest.raises(Undo), transaction.atomic():
            for event, envelope in scenario["items"]:
                on_stock_event(event, envelope)
            one_by_one = _state()
            raise Undo
        with fails_once('UPDATE "integrations_stocksync"', "injected: the batch's update fails once") as failed:
            while outbox_relay(batch=100):
                pass
    assert failed
    assert _state() == one_by_one  # no generation bumped twice by the undone batch
    handled = HandledEvent.objects.filter(handler__startswith="integrations.shop_stock.").count()
    assert handled == len(scenario["items"])
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
