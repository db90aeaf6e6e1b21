"""The ASN's state machine on core's mechanism: the table, every step audited and told once, and the migration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quai.core import clock
from quai.core.errors import Conflict
from quai.core.models import OutboxEvent, StateTransition
from quai.core.selectors import state_history
from quai.inbound import services
from quai.inbound.models import Asn, AsnStatus
from quai.inbound.services.asns import ASN_MACHINE
from quai.inbound.tests.factories import AsnFactory

NOW = datetime(2031, 3, 10, 8, 0, tzinfo=UTC)
REQUESTS = [*AsnStatus.values, "nowhere"]


def test_the_asn_machine_is_the_domain_table():
    assert ASN_MACHINE.aggregate == "asn"
    assert ASN_MACHINE.allowed_from("announced") == ["receiving", "cancelled"]
    assert ASN_MACHINE.allowed_from("receiving") == ["closed"]
    assert ASN_MACHINE.allowed_from("closed") == [] and ASN_MACHINE.allowed_from("cancelled") == []
    assert not ASN_MACHINE.can("receiving", "cancelled") and not ASN_MACHINE.can("announced", "closed")
    assert ASN_MACHINE.states == set(AsnStatus.values)


@pytest.mark.django_db
def test_a_forbidden_step_is_invalid_transition_and_writes_nothing(merchant):
    asn = AsnFactory(merchant=merchant)
    with pytest.raises(Conflict) as refused:
        services.asn_transition(asn=asn, to_status=AsnStatus.CLOSED)
    assert refused.value.code == "invalid_transition"
    assert refused.value.details == {
        "aggregate": "asn",
        "from": "announced",
        "to": "closed",
        "allowed": ["receiving", "cancelled"],
    }
    asn.refresh_from_db()
    assert asn.status == AsnStatus.ANNOUNCED and asn.closed_at is None
    assert not state_history(aggregate="asn", aggregate_id=asn.pk).exists()
    assert not OutboxEvent.objects.filter(name="inbound.asn_status_changed").exists()


@pytest.mark.django_db
def test_each_step_stamps_its_time_and_tells_it_in_the_merchants_terms(merchant, staff_user):
    asn = AsnFactory(merchant=merchant, reference="PO-77")
    with clock.frozen(NOW):
        services.asn_transition(asn=asn, to_status=AsnStatus.RECEIVING, actor=staff_user, reason="dock 3")
    assert asn.status == AsnStatus.RECEIVING and asn.receiving_started_at == NOW
    step = state_history(aggregate="asn", aggregate_id=asn.pk).get()
    assert (step.transition, step.actor_label, step.reason, step.at) == ("start_receiving", "supervisor", "dock 3", NOW)
    event = OutboxEvent.objects.get(name="inbound.asn_status_changed")
    assert event.merchant_id == merchant.pk and event.event_id == step.event_id
    assert event.payload == {
        "asn_id": asn.pk,
        "reference": "PO-77",
        "from_status": "announced",
        "to_status": "receiving",
        "reason": "dock 3",
    }


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.sampled_from(REQUESTS), min_size=1, max_size=6))
def test_random_requested_steps_follow_the_table_and_each_accepted_one_leaves_one_row_and_one_event(merchant, requests):
    asn = AsnFactory(merchant=merchant)
    for to_status in requests:
        before = Asn.objects.get(pk=asn.pk).status
        rows = StateTransition.objects.filter(aggregate="asn", aggregate_id=str(asn.pk)).count()
        events = OutboxEvent.objects.filter(name="inbound.asn_status_changed", aggregate_id=str(asn.pk)).count()
        try:
            services.asn_transition(asn=asn, to_status=to_status, reason="test")
        except Conflict as refused:
            assert refused.code == "invalid_transition"
            assert not ASN_MACHINE.can(before, to_status)
            expected_rows, expected_events = rows, events
        else:
            assert ASN_MACHINE.can(before, to_status)
            expected_rows, expected_events = rows + 1, events + 1
        after = Asn.objects.get(pk=asn.pk).status
        assert after in ASN_MACHINE.states
        assert after == before or ASN_MACHINE.can(before, after)
        assert StateTransition.objects.filter(aggregate="asn", aggregate_id=str(asn.pk)).count() == expected_rows
        assert (
            OutboxEvent.objects.filter(name="inbound.asn_status_changed", aggregate_id=str(asn.pk)).count()
            == expected_events
        )
    history = list(state_history(aggregate="asn", aggregate_id=asn.pk).values_list("from_status", "to_status"))
    assert all(ASN_MACHINE.can(source, target) for source, target in history)
    assert [target for _source, target in history][-1:] in ([], [Asn.objects.get(pk=asn.pk).status])
