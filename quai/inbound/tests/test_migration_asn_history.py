"""The migrations that move ASN and count task histories into core.StateTransition keep every row, both ways."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("inbound", "0002_discrepancy_lot"), ("inventory", "0003_reservation_open_document_unique")]
AFTER = [("inbound", "0003_asn_status_history_to_core"), ("inventory", "0004_count_task_history_to_core")]
AT = datetime(2031, 1, 2, 3, 4, tzinfo=UTC)


def _migrate(targets):  # type: ignore[no-untyped-def]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    # The models as the database now holds them (every app, at its applied migrations).
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps


@pytest.mark.django_db(transaction=True)
def test_the_old_audit_rows_are_copied_into_core_and_back():
    old = _migrate(BEFORE)
    try:
        user = old.get_model("auth", "User").objects.create(username="bob")
        merchant = old.get_model("tenants", "Merchant").objects.create(code="m1", name="M1")
        site = old.get_model("warehouse", "Site").objects.create(code="S1", name="S1")
        zone = old.get_model("warehouse", "Zone").objects.create(site=site, code="Z1", name="Z1")
        location = old.get_model("warehouse", "Location").objects.create(site=site, zone=zone, code="A-01")
        asn = old.get_model("inbound", "Asn").objects.create(merchant=merchant, site=site, reference="R1")
        old.get_model("inbound", "AsnStatusChange").objects.create(
            asn=asn, from_status="announced", to_status="cancelled", actor=user, reason="gone", changed_at=AT
        )
        task = old.get_model("inventory", "CountTask").objects.create(site=site, location=location)
        old.get_model("inventory", "CountTaskTransition").objects.create(
            task=task, from_status="open", to_status="cancelled", note="later", details={"n": 1}, occurred_at=AT
        )

        new = _migrate(AFTER)
        steps = new.get_model("core", "StateTransition").objects.order_by("id")
        assert [
            (s.aggregate, s.aggregate_id, s.merchant_id, s.from_status, s.to_status, s.actor_id, s.actor_label)
            for s in steps
        ] == [
            ("asn", str(asn.pk), merchant.pk, "announced", "cancelled", user.pk, "bob"),
            ("count_task", str(task.pk), None, "open", "cancelled", None, "system"),
        ]
        assert [(s.reason, s.at, s.transition) for s in steps] == [("gone", AT, "cancel"), ("later", AT, "")]
        assert steps[1].details == {"n": 1}

        back = _migrate(BEFORE)
        assert not back.get_model("core", "StateTransition").objects.exists()
        change = back.get_model("inbound", "AsnStatusChange").objects.get()
        assert (change.asn_id, change.actor_id, change.reason, change.changed_at) == (asn.pk, user.pk, "gone", AT)
        assert back.get_model("inventory", "CountTaskTransition").objects.get().note == "later"
    finally:  # back to the latest migration of every app, whatever later migrations exist, for the tests after this one
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
