"""Where a simulation may run: never into a database that holds real data.

The simulation writes a whole world (a site, a merchant, 200 SKUs, staff, thousands of orders) through the real
services, so it needs a database of its own:

- ``--scratch`` (what the bench and most runs use): the command re-runs itself in a child process whose
  ``DATABASE_URL`` is a scratch database, migrated first and dropped afterwards (kept with ``--keep``). With the
  embedded default (SQLite) that is a file in a temporary directory; when ``DATABASE_URL`` points to PostgreSQL, a
  database ``quai_sim_<seed>_<pid>`` on the same server (created with ``CREATE DATABASE``, dropped ``WITH (FORCE)``).
  Settings are read once per process, which is why a child process and not a switch of connection in this one.
- Without ``--scratch`` the command runs in the configured database only if that holds no merchant and no order
  (a freshly migrated one); otherwise it refuses with a sentence naming what it found.

In a scratch database (and only there) a commit does not wait for the disk: see ``commits_without_waiting``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

#: Set in the child's environment to the scratch database's URL: the child may migrate and fill it.
SCRATCH_ENV = "QUAI_SIMULATION_SCRATCH"
ROOT = Path(settings.BASE_DIR)


def in_scratch() -> bool:
    marker = os.environ.get(SCRATCH_ENV, "")
    return bool(marker) and marker == os.environ.get("DATABASE_URL", "")


def _commit_without_waiting(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")


def commits_without_waiting() -> None:
    """Every connection of this process to the scratch database, open or still to open, commits without waiting for
    the write-ahead log to reach the disk (PostgreSQL's ``synchronous_commit = off``, for the session only).

    Why: the simulation is one process committing thousands of small transactions one after the other (0.92 an
    order in a 5,000-order day, 3 in a 1,000-order one), and on PostgreSQL each of them waited for an fsync of the
    WAL (a commit 2.7-6.8 ms with it, 0.1-0.5 ms without, on the bench machine's disk), wall time, CPU idle.
    A scratch database holds nothing to keep, and it is dropped at the end of the run: what ``off`` risks, the
    last few hundred milliseconds of commits if the server crashes, cannot matter there. What the day computes
    does not change (the same statements, transactions and isolation; only when ``COMMIT`` returns). Never in the
    configured settings: a real database keeps ``synchronous_commit`` as the server sets it. SQLite is left as it
    is: in WAL mode with ``synchronous=NORMAL`` a commit already does not wait for the disk."""
    if not in_scratch():
        raise RuntimeError("commits_without_waiting is for a scratch database only (QUAI_SIMULATION_SCRATCH)")
    connection_created.connect(_commit_without_waiting, dispatch_uid="quai-simulation-scratch-commits")
    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _commit_without_waiting(sender=type(wrapper), connection=wrapper)


#: A table is analyzed again once it holds more than GROWN_ROWS + GROWN_FACTOR x the rows of its last analysis.
GROWN_ROWS, GROWN_FACTOR = 50, 2.0

#: The statistics target of the day's analyses (``statistics_refresh``): 300 x 10 rows sampled a table.
STATISTICS_TARGET = 10


#: The rows each table held at its last analysis by ``statistics_refresh`` in this process, by database and table.
_analyzed_rows: dict[tuple[str, str], float] = {}


def statistics_refresh() -> list[str]:
    """ANALYZE the scratch database's tables that grew past GROWN_ROWS + GROWN_FACTOR x their rows at their last
    analysis (never analyzed: 0), in one statement with a sample of 3,000 rows a table; returns their names.
    PostgreSQL in a scratch database only; nothing elsewhere. Called once a simulated tick.

    Why: the day starts from empty tables and fills them, and the planner plans from each table's statistics. On a
    running site autovacuum keeps them, in the background; the bench machine's server runs with ``autovacuum =
    off`` (CI's configuration), so every table of the day kept the statistics of a table never analyzed: the
    site's 1,901 places estimated at 2 rows, the pack line's locked reservations read by a sequential scan, the
    wave's merchants read through 1,901 index probes (docs/SIMULATION.md, "PostgreSQL's statements on 5 December").
    The first analysis is what matters (the planner scales a table's analyzed rows by its pages as it grows), so
    each table is analyzed as it doubles, about 12 times in a 5,000-order day, not at every 10 % of change as
    autovacuum's rule would (0.6 s an analysis of the outbox at the default target; 17 s of the day's wall in all
    at a 3,000-row sample). With autovacuum on, the server's own analyses usually leave nothing to do here.

    The rows at a table's last analysis are this process's memory (``_analyzed_rows``), not ``pg_class.reltuples``:
    a VACUUM (``tables_vacuum``) sets that too, to the rows it counted, which restarted the doubling at every vacuum
    (the outbox, vacuumed nearly every tick, analyzed twice in a 5,000-order day instead of 7 times). A table this
    process has not analyzed yet falls back on ``reltuples`` if something analyzed it (0 if nothing ever did)."""
    if not in_scratch() or connection.vendor != "postgresql":
        return []
    database = str(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.relname, s.n_live_tup, CASE WHEN s.last_analyze IS NULL AND s.last_autoanalyze IS NULL "
            "THEN 0 ELSE greatest(c.reltuples, 0) END FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.schemaname = ANY (current_schemas(false)) ORDER BY s.relname"
        )
        stale = [
            name
            for name, live, analyzed in cursor.fetchall()
            if live > GROWN_ROWS + GROWN_FACTOR * _analyzed_rows.get((database, name), analyzed)
        ]
        if stale:
            quote = connection.ops.quote_name
            # A sample of 3,000 rows a table, not 30,000 (default_statistics_target 100): the day's plans need the
            # row counts and the common values.
            with transaction.atomic():
                cursor.execute(f"SET LOCAL default_statistics_target = {STATISTICS_TARGET}")
                cursor.execute("ANALYZE " + ", ".join(quote(name) for name in stale))
            cursor.execute(
                "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s) "
                "AND relnamespace = ANY (current_schemas(false)::regnamespace[])",
                [stale],
            )
            _analyzed_rows.update(((database, name), max(float(rows), 0.0)) for name, rows in cursor.fetchall())
    return stale


#: autovacuum's settings that decide when it vacuums a table, each a server setting a table may override in its
#: storage parameters (``ALTER TABLE … SET (…)``, ``pg_class.reloptions``; quai/core's migration 0006 sets them on
#: the outbox and the handled rows).
VACUUM_SETTINGS = (
    "autovacuum_vacuum_threshold",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_vacuum_insert_threshold",
    "autovacuum_vacuum_insert_scale_factor",
)


def _vacuum_due_sql() -> str:
    # Each setting: the table's own storage parameter, else the server's. A table without any has no reloptions:
    # the aggregate over no option still gives its one row (every value NULL, so the server's).
    own = ", ".join(
        f"coalesce(max(option_value) FILTER (WHERE option_name = '{name}'), current_setting('{name}'))::float8 "
        f"AS {name.removeprefix('autovacuum_vacuum_')}"
        for name in VACUUM_SETTINGS
    )
    # autovacuum's rule (relation_needs_vacanalyze; reltuples -1, never vacuumed nor analyzed, counts as 0): dead
    # rows past threshold + scale_factor x rows, or rows inserted since the last vacuum past the insert threshold
    # + insert_scale_factor x rows (-1 switches that one off).
    return (
        "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        f"CROSS JOIN LATERAL (SELECT {own} FROM pg_options_to_table(c.reloptions)) o "
        "WHERE s.schemaname = ANY (current_schemas(false)) "
        "AND (s.n_dead_tup > o.threshold + o.scale_factor * greatest(c.reltuples, 0) "
        "OR (o.insert_threshold >= 0 "
        "AND s.n_ins_since_vacuum > o.insert_threshold + o.insert_scale_factor * greatest(c.reltuples, 0))) "
        "ORDER BY s.relname"
    )


def tables_vacuum() -> list[str]:
    """VACUUM (not FULL) the scratch database's tables autovacuum would vacuum now, by its own rule and settings
    (the server's, or the table's storage parameters where it has some), in one statement; returns their names.
    PostgreSQL in a scratch database only, outside a transaction (VACUUM cannot run in one: a caller inside an
    ``atomic`` block gets nothing done); nothing elsewhere. Called once a simulated tick, after
    ``statistics_refresh``.

    Why: with ``autovacuum = off`` (the bench machine's server) nothing removed the dead row versions the day
    leaves, nor their index entries. The relay updates every outbox event twice (the claim's lease, then
    ``relayed_at``, which the pending index's predicate names, so never HOT): the pending index kept an entry for
    every event relayed since the table was created, and the claim's first-pending-id read walked past them (4,917
    heap fetches on a finished 5,000-order day, docs/SIMULATION.md, "PostgreSQL's statements on 5 December").
    On a running site autovacuum does this in the background; here it is done where autovacuum would, so the
    day's statements meet the tables a site's would. With autovacuum on, its own vacuums usually leave nothing."""
    if not in_scratch() or connection.vendor != "postgresql" or connection.in_atomic_block:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_vacuum_due_sql())
        due = [name for (name,) in cursor.fetchall()]
        if due:
            quote = connection.ops.quote_name
            cursor.execute("VACUUM " + ", ".join(quote(name) for name in due))
    return due


def data_found() -> dict[str, int]:
    """What the configured database holds that a simulation must not mix with (empty: nothing)."""
    from django.db.utils import DatabaseError

    from quai.orders.selectors import order_list
    from quai.tenants.scope import Scope
    from quai.tenants.selectors import merchant_list

    try:
        found = {
            "merchants": merchant_list(scope=Scope.system("simulation guard")).count(),
            "orders": order_list(scope=Scope.system("simulation guard")).count(),
        }
    except DatabaseError:
        return {}  # not migrated: nothing in it (the command says to migrate)
    return {name: count for name, count in found.items() if count}


def _pg_admin(url: str, statement: str) -> None:
    import psycopg

    base = url.rsplit("/", 1)[0].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def scratch_database(*, seed: int, keep: bool = False) -> Iterator[str]:
    """A scratch database's URL for the duration of the block (PostgreSQL beside the configured one, else a
    temporary SQLite file)."""
    if connection.vendor == "postgresql":
        current = os.environ.get("DATABASE_URL", "")
        # The process id keeps two runs of one seed apart (two test sessions on one server): with the seed alone,
        # the second run's clean-up dropped the first one's database under it.
        name = f"quai_sim_{seed}_{os.getpid()}"
        url = current.rsplit("/", 1)[0] + "/" + name
        _pg_admin(url, f'CREATE DATABASE "{name}"')
        try:
            yield url
        finally:
            if not keep:
                _pg_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    directory = tempfile.mkdtemp(prefix="quai-sim-")
    path = Path(directory) / "simulation.sqlite3"
    try:
        yield f"sqlite:///{path}"
    finally:
        if not keep:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            Path(directory).rmdir()


def run_in_child(*, url: str, argv: Sequence[str]) -> int:
    """Run ``manage.py <argv>`` with ``DATABASE_URL=url`` (marked as scratch), its output on ours."""
    # DEBUG off as in production (no query log growing in memory); a throwaway key if none is set.
    env = {**os.environ, "DATABASE_URL": url, SCRATCH_ENV: url, "DEBUG": "false"}
    env.setdefault("SECRET_KEY", "simulation-" + secrets.token_urlsafe(48))
    env.pop("REDIS_URL", None)
    completed = subprocess.run([sys.executable, str(ROOT / "manage.py"), *argv], cwd=ROOT, env=env, check=False)
    return completed.returncode
