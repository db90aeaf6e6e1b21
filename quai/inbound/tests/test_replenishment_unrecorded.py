"""The replenishment check is subscribed unrecorded (``subscribe(..., recorded=False)``, issue 17): it writes no
``HandledEvent`` row, so a retried stock change (another handler failed on it, a relay died after its commit) is
checked again. The check reads the faces' stock as it is now and opens at most one task per face (the unique open
task per face), so that second run opens no task and records no event: the tasks are those of one run."""

from __future__ import annotations

from typing import Any

import pytest

from quai.core.events import subscriptions_for
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.tests.retried import relayed_then_retried
from quai.inbound.handlers import replenishment_on_stock_changed, replenishment_on_stock_changed_many
from quai.inbound.tests.test_replenishment_batch import _state, scenario  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db

KEY = "inbound.replenishment_check"


def _tasks_and_events() -> tuple[Any, int]:
    return _state(), OutboxEvent.objects.filter(name="inbound.replenishment_requested").count()


def test_the_check_is_subscribed_unrecorded():
    assert subscriptions_for("inventory.stock_changed")[KEY].recorded is False


@pytest.mark.parametrize("form", ["batch", "one event at a time"])
def test_a_second_run_on_the_same_changes_opens_nothing(scenario, form):  # noqa: F811
    def run() -> None:
        if form == "batch":
            replenishment_on_stock_changed_many(scenario["items"])
        else:
            for event, envelope in scenario["items"]:
                replenishment_on_stock_changed(event, envelope)

    run()
    once = _tasks_and_events()
    assert len(once[0][0]) == 3 and once[1] == 2  # P-01 and P-04 opened, beside the task open before
    run()
    assert _tasks_and_events() == once
    replenishment_on_stock_changed_many(scenario["items"])  # and the other form after it
    for event, envelope in scenario["items"]:
        replenishment_on_stock_changed(event, envelope)
    assert _tasks_and_events() == once


def test_a_retried_change_opens_no_second_task(scenario):  # noqa: F811
    def pending() -> None:
        assert OutboxEvent.objects.filter(name="inventory.stock_changed", relayed_at=None).count() == 6

    once, again = relayed_then_retried(["inventory.stock_changed"], _tasks_and_events, pending=pending)
    assert len(once[0][0]) == 3
    assert again == once  # the retries ran the check again: no task, no event more
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    assert not HandledEvent.objects.filter(handler=KEY).exists()
