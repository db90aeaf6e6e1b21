"""Migrations a running warehouse can apply (README, "Migrations on a running warehouse"; quai/core/migration_ops.py).

The index audit's migrations (orders 0003, promise 0004, shipping 0005, inventory 0005) reach on PostgreSQL, by
renames and concurrent builds and drops, the schema their plain operations reached by dropping and building indexes
and constraints under locks that stop writes: the plain form's schema is kept as data
(``online_migrations_schema.json``: forwards, and backwards again, read once from new databases migrated by the
code before the rewrite, 83f3d89), for
PostgreSQL (``pg_indexes``' definitions, ``pg_constraint``'s) and SQLite (``sqlite_master``, which still runs the plain
operations). A guard reads what every migration emits on PostgreSQL (``sqlmigrate`` over the graph) and fails on a
statement that would lock a hot table for a build or a scan.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ProjectState
from django.utils import timezone

BEFORE = [
    ("orders", "0002_order_unique_external_id_first"),
    ("promise", "0003_backlog_delta"),
    ("shipping", "0004_shipment_order_merchant_index"),
    ("inventory", "0004_count_task_history_to_core"),
]
AFTER = [
    ("orders", "0003_like_twins_dropped_upper_external_id"),
    ("promise", "0004_record_status_without_like_twin"),
    ("shipping", "0005_sscc_unique_without_like_index"),
    ("inventory", "0005_covered_foreign_keys_not_indexed"),
]
TOUCHED = (
    "orders_order",
    "orders_orderline",
    "promise_promiserecord",
    "shipping_shipment",
    "inventory_stockquantity",
    "inventory_reservationallocation",
)
EXPECTED = json.loads((Path(__file__).parent / "online_migrations_schema.json").read_text())

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's locks and catalogue")


def _migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps  # type: ignore[attr-defined]


def _latest() -> None:
    """Back to the latest migration of every app, whatever later migrations exist, for the tests after this one."""
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def _schema() -> dict[str, Any]:
    """The touched tables' indexes and constraints as the database states them."""
    schema: dict[str, Any] = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in TOUCHED:
                cursor.execute(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s"
                    " ORDER BY indexname",
                    [table],
                )
                indexes = [row[0] for row in cursor.fetchall()]
                cursor.execute(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
                    " ORDER BY conname",
                    [table],
                )
                schema[table] = {"indexes": indexes, "constraints": [f"{n}: {d}" for n, d in cursor.fetchall()]}
            return schema
        placeholders = ", ".join("%s" for _ in TOUCHED)
        cursor.execute(
            f"SELECT tbl_name, type, name, sql FROM sqlite_master WHERE tbl_name IN ({placeholders})"
            " ORDER BY tbl_name, type DESC, name",
            list(TOUCHED),
        )
        for table, kind, name, sql in cursor.fetchall():
            schema.setdefault(table, []).append(sql or f"{kind} {name}")
    return schema


def _invalid_indexes() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid OR NOT indisready")
        return [row[0] for row in cursor.fetchall()]


def _rows(apps: Any) -> dict[str, int]:
    """One of each row of the touched tables, at the migration before."""
    now = timezone.now()
    merchant = apps.get_model("tenants", "Merchant").objects.create(code="m1", name="M1", legal_name="M1 SAS")
    sku = apps.get_model("catalog", "Sku").objects.create(merchant=merchant, code="SKU-1", name="One")
    site = apps.get_model("warehouse", "Site").objects.create(code="S1", name="S1")
    zone = apps.get_model("warehouse", "Zone").objects.create(site=site, code="Z1", name="Z1", kind="pick")
    location = apps.get_model("warehouse", "Location").objects.create(site=site, zone=zone, code="A-01")
    order = apps.get_model("orders", "Order").objects.create(
        merchant=merchant,
        channel="shop",
        external_id="ext-1",
        status="received",
        carrier_service="express",
        shopper_name="Ann",
        address_line1="1 rue",
        postcode="75001",
        city="Paris",
        country="FR",
        currency="EUR",
        lines_total=10,
        total=10,
        release_after=now,
        fingerprint="f1",
    )
    for position in (1, 2):
        apps.get_model("orders", "OrderLine").objects.create(
            order=order, position=position, sku=sku, sku_code="SKU-1", quantity=1, unit_price=5
        )
    apps.get_model("promise", "PromiseRecord").objects.create(merchant=merchant, order=order, source="shop")
    carrier = apps.get_model("shipping", "CarrierAccount").objects.create(
        code="c1", name="C1", kind="colissimo", sender_name="Q", sender_line1="1", sender_postcode="1", sender_city="P"
    )
    apps.get_model("shipping", "Shipment").objects.create(
        merchant=merchant,
        order_id=order.pk,
        order_reference="ext-1",
        parcel_id=1,
        carrier=carrier,
        sscc="000000000000000001",
        tracking_number="T1",
        label=b"label",
        weight_g=100,
        stock_location_id=location.pk,
    )
    stock = apps.get_model("inventory", "StockQuantity").objects.create(
        merchant=merchant, sku=sku, location=location, status="available", on_hand=5, reserved=1
    )
    reservation = apps.get_model("inventory", "Reservation").objects.create(
        merchant=merchant, sku=sku, quantity=1, requested_quantity=1
    )
    apps.get_model("inventory", "ReservationAllocation").objects.create(
        reservation=reservation, stock=stock, location=location, quantity=1
    )
    return _counts()


def _counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in TOUCHED:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
        return counts


@pytest.mark.django_db(transaction=True)
def test_the_online_migrations_reach_the_plain_ones_schema_keep_the_rows_and_go_back() -> None:
    try:
        counts = _rows(_migrate(BEFORE))

        _migrate(AFTER)
        assert _schema() == EXPECTED[connection.vendor]["after"]
        assert _counts() == counts
        if connection.vendor == "postgresql":
            assert _invalid_indexes() == []

        _migrate(BEFORE)
        assert _schema() == EXPECTED[connection.vendor]["back"]
        assert _counts() == counts
    finally:
        _latest()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_online_migration_stopped_part_way_can_be_run_again() -> None:
    # Non-atomic: each statement commits alone. As if a first run had stopped after renaming the status indexes and
    # dropping the line's order index, before the UPPER(external_id) build.
    try:
        _migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute('ALTER INDEX "orders_order_status_445594e5" RENAME TO "order_status_idx"')
            cursor.execute('DROP INDEX "orders_order_status_445594e5_like"')
            cursor.execute('DROP INDEX "orders_orderline_order_id_17f8f3ef"')
        _migrate(AFTER)
        assert _schema() == EXPECTED["postgresql"]["after"]
    finally:
        _latest()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_rename_refuses_when_neither_index_is_there() -> None:
    from django.db.utils import InternalError, ProgrammingError

    from quai.core.migration_ops import rename_index

    operation = rename_index("no_such_index", "nor_this_one")
    refused = pytest.raises((InternalError, ProgrammingError), match="no index no_such_index nor nor_this_one")
    with refused, connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("core", editor, ProjectState(), ProjectState())


# The tables written at every order, scan or event (docs/SIMULATION.md, docs/INTAKE.md): a statement that builds an
# index or validates a constraint over them stops intake, the floor or the relay for the build's or the scan's length.
HOT_TABLES = (
    "orders_order",
    "orders_orderline",
    "core_outboxevent",
    "core_handledevent",
    "inventory_stockquantity",
    "inventory_reservation",
    "inventory_reservationallocation",
    "shipping_shipment",
    "promise_promiserecord",
    "integrations_webhookdelivery",
)

# Migrations written before the rule that build indexes on hot tables the plain way; every database in use has
# applied them. Do not add to this list: write the migration the online way (README).
BASELINE = {
    ("integrations", "0005_webhook_delivery_due_order"),
    ("inventory", "0003_reservation_open_document_unique"),
    ("orders", "0002_order_unique_external_id_first"),
    ("shipping", "0003_shipment_indexes_for_lookups_and_updates"),
    ("shipping", "0004_shipment_order_merchant_index"),
}

_LOCKING = (
    # A build that blocks writes (CREATE INDEX) or everything (ADD CONSTRAINT ... UNIQUE / PRIMARY KEY / EXCLUDE).
    re.compile(r'^CREATE (UNIQUE )?INDEX (?!CONCURRENTLY)(IF NOT EXISTS )?"?\w+"? ON "?(?P<table>\w+)"?', re.I),
    re.compile(r'^ALTER TABLE "?(?P<table>\w+)"? ADD CONSTRAINT "?\w+"? (UNIQUE|PRIMARY KEY|EXCLUDE)\b', re.I),
    # A foreign key added validated: a scan of the table with both tables closed to writes (NOT VALID is not).
    re.compile(r'^ALTER TABLE "?(?P<table>\w+)"? ADD CONSTRAINT "?\w+"? FOREIGN KEY (?!.*\bNOT VALID\b)', re.I),
)
_CREATED = re.compile(r'^CREATE TABLE "?(?P<table>\w+)"?', re.I)


def _locking_statements() -> dict[tuple[str, str], list[str]]:
    """Each migration's statements (as ``sqlmigrate`` prints them) that lock a hot table for a build or a scan, but
    for tables the same migration creates."""
    executor = MigrationExecutor(connection)
    loader = executor.loader
    state = ProjectState(real_apps=loader.unmigrated_apps)
    found: dict[tuple[str, str], list[str]] = {}
    for migration, _ in executor.migration_plan(loader.graph.leaf_nodes(), clean_start=True):
        with connection.schema_editor(collect_sql=True, atomic=migration.atomic) as editor:
            state = migration.apply(state, editor, collect_sql=True)
        statements = [s.strip() for sql in editor.collected_sql for s in sql.split(";") if s.strip()]
        statements = [re.sub(r"^SET CONSTRAINTS [^;]*IMMEDIATE\s*", "", s) for s in statements]
        created = {m["table"] for s in statements if (m := _CREATED.match(s))}
        for statement in statements:
            for pattern in _LOCKING:
                match = pattern.match(statement)
                if match and match["table"] in HOT_TABLES and match["table"] not in created:
                    found.setdefault((migration.app_label, migration.name), []).append(statement)
    return found


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_no_migration_locks_a_hot_table_for_an_index_build_or_a_validation_scan() -> None:
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    assert set(HOT_TABLES) <= tables  # a renamed table must be renamed here too

    found = _locking_statements()

    new = {key: statements for key, statements in found.items() if key not in BASELINE}
    assert new == {}, "write these the online way (README, 'Migrations on a running warehouse')"
    assert set(AFTER).isdisjoint(found)
