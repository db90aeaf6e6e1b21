"""The replenishment check's batch form (``replenishment_on_stock_changed_many``): the same tasks and events as the
per-event handler run on each stock change in turn, one query for a batch that touches no pick face, and a batch
that fails falls back per event."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.core.events import Envelope, event_from_row
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import outbox_relay
from quai.core.tests.sql_faults import fails_once
from quai.inbound import services
from quai.inbound.handlers import replenishment_on_stock_changed, replenishment_on_stock_changed_many
from quai.inbound.models import ReplenishmentStatus, ReplenishmentTask
from quai.inbound.tests.factories import location
from quai.inventory.services import stock_adjust, stock_move, stock_receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(merchant, wh, shirt, mug) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Four pick faces and the stock changes of one relay batch:

    - shirt's face P-01 is filled, then emptied below its min by a move (two events): one task;
    - mug's face P-02 loses a unit but stays above its min: no task; shirt received at P-02 (not its face) too;
    - cap's face P-03 is below its min but already has an open task: no second one;
    - hat's face P-04 goes below its min by an adjustment: one task.
    """
    cap = SkuFactory(merchant=merchant, code="CAP", name="Cap")
    hat = SkuFactory(merchant=merchant, code="HAT", name="Hat")
    shelf = location(wh.storage, "S-01")
    faces = {}
    for code, sku, low, high in (("P-01", shirt, 5, 9), ("P-02", mug, 2, 6), ("P-03", cap, 4, 8), ("P-04", hat, 3, 6)):
        faces[code] = location(wh.picking, code)
        services.pick_face_set(merchant=merchant, location=faces[code], sku=sku, min_quantity=low, max_quantity=high)
        stock_receive(sku=sku, location=shelf, quantity=20)  # reserve stock to replenish from
    stock_receive(sku=mug, location=faces["P-02"], quantity=5)
    stock_receive(sku=cap, location=faces["P-03"], quantity=1)
    stock_receive(sku=hat, location=faces["P-04"], quantity=4)
    (open_task,) = services.replenishment_check(location_ids=[faces["P-03"].pk])
    OutboxEvent.objects.all().delete()  # the batch: the changes below
    stock_receive(sku=shirt, location=faces["P-01"], quantity=10)
    stock_move(sku=shirt, from_location=faces["P-01"], to_location=shelf, quantity=8)
    stock_adjust(sku=mug, location=faces["P-02"], quantity_delta=-1, reason="damaged")
    stock_receive(sku=shirt, location=faces["P-02"], quantity=3)
    stock_adjust(sku=cap, location=faces["P-03"], quantity_delta=-1, reason="damaged")
    stock_adjust(sku=hat, location=faces["P-04"], quantity_delta=-2, reason="damaged")
    rows = list(OutboxEvent.objects.filter(name="inventory.stock_changed").order_by("id"))
    assert len(rows) == 6
    return {"items": [(event_from_row(row), Envelope.of(row)) for row in rows], "open_task": open_task}


def _state() -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """The open tasks (without their ids) and the replenishment events (without the task id), comparable."""
    tasks = sorted(
        ReplenishmentTask.objects.values_list(
            "pick_face_id", "sku_id", "from_location_id", "to_location_id", "quantity", "on_hand_at_creation", "status"
        )
    )
    events = sorted(
        (
            {key: value for key, value in row.payload.items() if key != "task_id"}
            for row in OutboxEvent.objects.filter(name="inbound.replenishment_requested")
        ),
        key=lambda payload: payload["pick_face_id"],
    )
    return tasks, events


class Undo(Exception):
    pass


def test_the_batch_form_opens_exactly_the_tasks_the_per_event_handler_opens(scenario):
    with pytest.raises(Undo), transaction.atomic():
        for event, envelope in scenario["items"]:
            replenishment_on_stock_changed(event, envelope)
        one_by_one = _state()
        raise Undo
    assert ReplenishmentTask.objects.count() == 1  # the per-event run was undone: the open task from before
    replenishment_on_stock_changed_many(scenario["items"])
    together = _state()
    assert together == one_by_one
    tasks, events = together
    assert [(codes["location_code"], codes["quantity"]) for codes in events] == [("P-01", 7), ("P-04", 4)]
    assert len(tasks) == 3 and all(task[-1] == ReplenishmentStatus.OPEN for task in tasks)


def test_a_batch_that_touches_no_pick_face_costs_one_query(merchant, wh, shirt):
    shelf = location(wh.storage, "S-01")
    for _n in range(20):
        stock_receive(sku=shirt, location=shelf, quantity=1)
    items = [(event_from_row(r), Envelope.of(r)) for r in OutboxEvent.objects.filter(name="inventory.stock_changed")]
    assert len(items) == 20
    with CaptureQueriesContext(connection) as context:
        replenishment_on_stock_changed_many(items)
    assert len(context.captured_queries) == 1
    assert not ReplenishmentTask.objects.exists()


def test_a_batch_that_fails_is_undone_and_the_relay_checks_each_change_alone(scenario, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    with fails_once(
        'INTO "inbound_replenishmenttask"', "injected: as if another relay opened this task first"
    ) as failed:
        while outbox_relay(batch=100):
            pass
    assert failed
    tasks, events = _state()
    assert len(tasks) == 3  # one each for P-01 and P-04, none twice, beside the one open before
    assert [(payload["location_code"], payload["quantity"]) for payload in events] == [("P-01", 7), ("P-04", 4)]
    assert not HandledEvent.objects.filter(handler="inbound.replenishment_check").exists()  # subscribed unrecorded
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()


def test_the_pick_faces_read_has_one_text_for_one_place_and_many(merchant, wh, shirt):
    """The batch's read of the pick faces takes the places as ONE parameter (``quai.core.rows.Among``): one text
    for a batch touching one place as for three (43 texts over 126 relay batches in a 1,000-order PostgreSQL day
    before, each planned at every call); what it finds is checked by the batch-versus-per-event test above."""
    from quai.core.tests.sql_texts import statement_texts

    for code in ("S-01", "S-02", "S-03"):
        stock_receive(sku=shirt, location=location(wh.storage, code), quantity=1)
    items = [(event_from_row(r), Envelope.of(r)) for r in OutboxEvent.objects.filter(name="inventory.stock_changed")]
    assert len(items) == 3
    one = statement_texts(lambda: replenishment_on_stock_changed_many(items[:1]))
    assert len(one) == 1 and one == statement_texts(lambda: replenishment_on_stock_changed_many(items))
