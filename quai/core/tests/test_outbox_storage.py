"""The relay's two tables' storage parameters on PostgreSQL (migrations 0004 and 0006, docs/OUTBOX.md, "autovacuum
on the outbox, 5 December"): read back from ``pg_class.reloptions``. SQLite has no such parameters: the migrations
do nothing there."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

#: What autovacuum reads per table: a vacuum once 1,000 + 1 % of the table's rows are dead (the server's default:
#: 50 + 20 %); the outbox also keeps half of each page free for its claim's HOT update.
EXPECTED = {
    "core_outboxevent": {
        "fillfactor": "50",
        "autovacuum_vacuum_scale_factor": "0.01",
        "autovacuum_vacuum_threshold": "1000",
    },
    "core_handledevent": {"autovacuum_vacuum_scale_factor": "0.01", "autovacuum_vacuum_threshold": "1000"},
}


def _options(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.option_name, o.option_value FROM pg_class c, pg_options_to_table(c.reloptions) o "
            "WHERE c.oid = %s::regclass",
            [table],
        )
        return dict(cursor.fetchall())


@pytest.mark.skipif(connection.vendor != "postgresql", reason="storage parameters are PostgreSQL's")
def test_the_outbox_and_the_handled_rows_are_vacuumed_sooner_than_the_server_s_default() -> None:
    assert {table: _options(table) for table in EXPECTED} == EXPECTED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="storage parameters are PostgreSQL's")
def test_the_migration_s_reverse_leaves_the_server_s_defaults() -> None:
    migration = importlib.import_module("quai.core.migrations.0006_outbox_autovacuum")
    with connection.cursor() as cursor:  # the test's transaction undoes it (ALTER TABLE is transactional)
        for table, options in migration.STORAGE.items():
            cursor.execute(migration._reset(table, options))
    assert _options("core_outboxevent") == {"fillfactor": "50"}  # migration 0004's, not this one's
    assert _options("core_handledevent") == {}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's side")
def test_sqlite_has_no_storage_parameters_to_set() -> None:
    with connection.cursor() as cursor:  # the tables are there, migrated through 0006 without an error
        cursor.execute("SELECT name FROM sqlite_master WHERE name IN ('core_outboxevent', 'core_handledevent')")
        assert len(cursor.fetchall()) == 2
