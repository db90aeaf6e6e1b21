"""The scratch database's commits: without waiting for the disk in a simulation's scratch database only, durable
everywhere else (the configured settings)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connection, connections

from quai.campaigns.simulation import scratch


def _synchronous_commit(wrapper=connection) -> str:  # type: ignore[no-untyped-def]
    with wrapper.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


@pytest.fixture
def scratch_marked(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    url = os.environ.get("DATABASE_URL") or "sqlite:///scratch-under-test.sqlite3"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv(scratch.SCRATCH_ENV, url)
    monkeypatch.setattr(scratch, "_analyzed_rows", {})  # each test its own process's memory of the analyses
    yield
    scratch.connection_created.disconnect(dispatch_uid="quai-simulation-scratch-commits")


@pytest.mark.django_db
def test_the_configured_database_commits_durably() -> None:
    assert "synchronous" not in str(settings.DATABASES["default"].get("OPTIONS", {})).replace("synchronous=NORMAL", "")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Nothing in the settings nor the connection's set-up changes it: the server's own value, "on" here.
            cursor.execute("SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'")
            assert cursor.fetchone() == ("on", "default")
        else:
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 1  # NORMAL, as the settings' init_command says (WAL: durable at checkpoint)


def test_commits_without_waiting_is_refused_outside_a_scratch_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(scratch.SCRATCH_ENV, raising=False)
    with pytest.raises(RuntimeError, match="scratch database only"):
        scratch.commits_without_waiting()


@pytest.mark.django_db
@pytest.mark.usefixtures("scratch_marked")
def test_in_a_scratch_database_the_open_and_every_new_connection_commit_without_waiting() -> None:
    if connection.vendor != "postgresql":
        scratch.commits_without_waiting()
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 1  # SQLite is left as configured
        return
    assert _synchronous_commit() == "on"
    scratch.commits_without_waiting()
    assert _synchronous_commit() == "off"  # the open connection (the test's transaction undoes it afterwards)
    fresh = connections.create_connection("default")  # what a thread (the group committer) opens
    try:
        assert _synchronous_commit(fresh) == "off"
    finally:
        fresh.close()
    scratch.connection_created.disconnect(dispatch_uid="quai-simulation-scratch-commits")
    fresh = connections.create_connection("default")
    try:
        assert _synchronous_commit(fresh) == "on"  # without the hook, a new connection is durable again
    finally:
        fresh.close()


def test_statistics_refresh_does_nothing_outside_a_scratch_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(scratch.SCRATCH_ENV, raising=False)
    assert scratch.statistics_refresh() == []


def _flushed() -> None:
    """This backend's pending table statistics written to the server's (PostgreSQL writes them when idle, at most
    once a second: the next statement after the request finds them there)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _analysis(table: str) -> tuple[int, float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.analyze_count, c.reltuples FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.relname = %s",
            [table],
        )
        count, rows = cursor.fetchone()
        return int(count), float(rows)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("scratch_marked")
def test_a_scratch_table_that_grew_is_analyzed_and_one_that_did_not_is_not() -> None:
    from quai.core.models import StateTransition

    if connection.vendor != "postgresql":
        assert scratch.statistics_refresh() == []  # SQLite: nothing to do
        return
    scratch.statistics_refresh()  # whatever the test database's set-up left to analyze
    _flushed()
    table, untouched = StateTransition._meta.db_table, "core_outboxevent"
    before, quiet = _analysis(table), _analysis(untouched)
    StateTransition.objects.bulk_create(
        StateTransition(aggregate="test", aggregate_id=str(n), from_status="a", to_status="b") for n in range(200)
    )
    _flushed()

    analyzed = scratch.statistics_refresh()

    assert table in analyzed and untouched not in analyzed
    count, rows = _analysis(table)
    assert count == before[0] + 1 and rows == 200  # the planner now knows the table's 200 rows
    assert _analysis(untouched) == quiet
    _flushed()
    assert scratch.statistics_refresh() == []  # nothing grew since: nothing analyzed again


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("scratch_marked")
def test_a_vacuum_does_not_put_off_a_table_s_next_analysis() -> None:
    from quai.core.models import StateTransition

    if connection.vendor != "postgresql":
        return
    table = StateTransition._meta.db_table

    def grown(n: int) -> None:
        StateTransition.objects.bulk_create(
            StateTransition(aggregate="test", aggregate_id=str(i), from_status="a", to_status="b") for i in range(n)
        )
        _flushed()

    scratch.statistics_refresh()
    grown(200)
    assert table in scratch.statistics_refresh()  # analyzed at 200 rows: next at 50 + 2 x 200
    grown(150)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {table}")  # reltuples 350 now: 50 + 2 x 350 by pg_class
    grown(110)  # 460

    assert table in scratch.statistics_refresh()


def test_tables_vacuum_does_nothing_outside_a_scratch_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(scratch.SCRATCH_ENV, raising=False)
    assert scratch.tables_vacuum() == []


def _vacuums(table: str) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT vacuum_count, n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", [table])
        count, dead = cursor.fetchone()
        return int(count), int(dead)


def _dead_rows(n: int) -> None:
    """``n`` dead rows in ``core_statetransition``: 50 more rows inserted, then ``n`` rows deleted."""
    from quai.core.models import StateTransition

    StateTransition.objects.bulk_create(
        StateTransition(aggregate="test", aggregate_id=str(i), from_status="a", to_status="b") for i in range(n + 50)
    )
    StateTransition.objects.filter(aggregate="test", aggregate_id__in=[str(i) for i in range(n)]).delete()
    _flushed()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("scratch_marked")
def test_a_scratch_table_with_dead_rows_is_vacuumed_by_autovacuum_s_rule() -> None:
    from quai.core.models import StateTransition

    if connection.vendor != "postgresql":
        assert scratch.tables_vacuum() == []  # SQLite: nothing to do
        return
    scratch.statistics_refresh()
    scratch.tables_vacuum()  # whatever the test database's set-up left to vacuum
    _flushed()
    table, untouched = StateTransition._meta.db_table, "core_outboxevent"
    before, quiet = _vacuums(table), _vacuums(untouched)
    _dead_rows(40)  # 40 dead rows: not past autovacuum's 50 + 20 % of the table's rows

    assert table not in scratch.tables_vacuum()

    _dead_rows(40)  # 80 now

    vacuumed = scratch.tables_vacuum()

    assert table in vacuumed and untouched not in vacuumed
    _flushed()
    assert _vacuums(table) == (before[0] + 1, 0)  # vacuumed once, its dead rows gone
    assert _vacuums(untouched) == quiet
    assert scratch.tables_vacuum() == []  # nothing left to do


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("scratch_marked")
def test_a_table_s_own_autovacuum_threshold_is_the_one_followed() -> None:
    from quai.core.models import StateTransition

    if connection.vendor != "postgresql":
        return
    table = StateTransition._meta.db_table
    scratch.tables_vacuum()
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} SET (autovacuum_vacuum_threshold = 500)")
    try:
        _dead_rows(100)  # past the server's 50 + 20 %, not the table's 500
        assert table not in scratch.tables_vacuum()
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} SET (autovacuum_vacuum_threshold = 10)")
        assert table in scratch.tables_vacuum()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_vacuum_threshold)")


@pytest.mark.django_db
@pytest.mark.usefixtures("scratch_marked")
def test_tables_vacuum_does_nothing_inside_a_transaction() -> None:
    # VACUUM cannot run in a transaction block: inside one (here the test's), nothing is tried.
    assert scratch.tables_vacuum() == []
