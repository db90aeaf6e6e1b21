"""The status-history table that the ASN and count task pages of the back office share."""

from __future__ import annotations

import pytest
from django.utils import translation

from quai.core.admin import state_history_table
from quai.core.models import StateTransition

pytestmark = pytest.mark.django_db


def test_a_record_history_is_a_table_of_its_own_steps_oldest_first_with_statuses_in_words():
    StateTransition.objects.create(
        aggregate="door", aggregate_id="7", from_status="closed", to_status="open", actor_label="alice", reason="air"
    )
    StateTransition.objects.create(
        aggregate="door", aggregate_id="7", from_status="open", to_status="locked", actor_label="bob", reason="night"
    )
    StateTransition.objects.create(aggregate="door", aggregate_id="8", from_status="closed", to_status="broken")

    table = state_history_table(aggregate="door", aggregate_id=7, labels={"closed": "Closed", "open": "Open"})

    assert table.index("alice") < table.index("bob")
    assert "<td>Closed</td><td>Open</td>" in table
    assert "<td>locked</td>" in table  # a status the labels do not name is shown as stored
    assert "broken" not in table


def test_a_record_with_no_step_or_not_yet_saved_says_so_in_the_reader_language():
    with translation.override("fr"):
        assert state_history_table(aggregate="door", aggregate_id=9, labels={}) == (
            "Aucun changement de statut pour l'instant."
        )
        assert state_history_table(aggregate="door", aggregate_id=None, labels={}) == (
            "Aucun changement de statut pour l'instant."
        )


def test_the_history_escapes_what_people_typed():
    StateTransition.objects.create(
        aggregate="door", aggregate_id="1", from_status="closed", to_status="open", reason="<script>x</script>"
    )

    table = state_history_table(aggregate="door", aggregate_id=1, labels={})

    assert "<script>" not in table
    assert "&lt;script&gt;" in table
