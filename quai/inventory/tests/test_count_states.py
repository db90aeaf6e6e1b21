"""The count task's state machine on core's mechanism: every requested step follows the table, is audited and told."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quai.core.errors import Conflict
from quai.core.models import OutboxEvent, StateTransition
from quai.inventory import services
from quai.inventory.models import CountTask, CountTaskStatus
from quai.inventory.services.counts import COUNT_TASK_MACHINE
from quai.inventory.tests.factories import stocked_sku

REQUESTS = [*CountTaskStatus.values, "nowhere"]


def _rows(task: CountTask) -> int:
    return StateTransition.objects.filter(aggregate="count_task", aggregate_id=str(task.pk)).count()


def _events(task: CountTask) -> int:
    return OutboxEvent.objects.filter(name="inventory.count_task_changed", aggregate_id=str(task.pk)).count()


@pytest.mark.django_db
def test_a_count_task_change_names_the_location_and_the_sku_by_their_codes(merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=3)
    task = services.count_task_create(location=location, sku=sku)[0]
    services.count_task_cancel(task=task, reason="not today")
    event = OutboxEvent.objects.get(name="inventory.count_task_changed")
    assert (event.payload["location_code"], event.payload["sku_code"]) == (location.code, sku.code)
    assert (event.payload["from_status"], event.payload["to_status"]) == ("open", "cancelled")
    step = StateTransition.objects.get(aggregate="count_task", aggregate_id=str(task.pk))
    assert (step.reason, step.merchant_id, step.event_id) == ("not today", merchant.pk, event.event_id)


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.sampled_from(REQUESTS), min_size=1, max_size=8))
def test_random_requested_steps_follow_the_table_and_each_accepted_one_leaves_one_row_and_one_event(merchant, requests):
    _sku, location = stocked_sku(merchant=merchant, quantity=1)
    task = services.count_task_create(location=location)[0]
    for to_status in requests:
        before = CountTask.objects.get(pk=task.pk).status
        rows, events = _rows(task), _events(task)
        try:
            services.count_task_transition(task=task, to_status=to_status)
        except Conflict as refused:
            assert refused.code == "invalid_transition"
            assert not COUNT_TASK_MACHINE.can(before, to_status)
            assert (_rows(task), _events(task)) == (rows, events)
        else:
            assert COUNT_TASK_MACHINE.can(before, to_status)
            assert (_rows(task), _events(task)) == (rows + 1, events + 1)
        after = CountTask.objects.get(pk=task.pk).status
        assert after in COUNT_TASK_MACHINE.states
        assert after == before or COUNT_TASK_MACHINE.can(before, after)
