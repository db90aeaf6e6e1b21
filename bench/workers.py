"""What each benchmark process runs. Top-level functions, so ``multiprocessing`` can spawn them."""

from __future__ import annotations

import os
import time
from typing import Any

WARM_UP_SECONDS = 1.0


# The server and session settings that decide what a commit costs: printed with the figures, and every worker (ours
# and the raw one) reports its own, so the two are compared under the same settings or the run fails.
SESSION_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "wal_sync_method",
    "commit_delay",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "default_transaction_isolation",
    "jit",
)


def pg_session_settings(cursor: Any) -> dict[str, str]:
    """What the server says for this session (``SHOW``), whichever driver the cursor comes from."""
    found: dict[str, str] = {}
    for name in SESSION_SETTINGS:
        cursor.execute(f"SHOW {name}")
        found[name] = str(cursor.fetchone()[0])
    return found


def trial_options() -> dict[str, Any]:
    """``BENCH_PG_OPTIONS`` (JSON, PostgreSQL only): connection OPTIONS to try before they go into settings.py.

    For trying a setting only: the figures the benchmark reports in CI are taken with settings.py as it is, and
    the options in force are printed with them.
    """
    import json

    raw = os.environ.get("BENCH_PG_OPTIONS", "").strip()
    return dict(json.loads(raw)) if raw else {}


def django_ready() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quai.settings")
    from django.conf import settings

    database = settings.DATABASES["default"]
    if "postgresql" in database["ENGINE"] and trial_options():
        database["OPTIONS"] = {**database.get("OPTIONS", {}), **trial_options()}
    django.setup()

    # Events are recorded in the outbox with every reservation; relaying them is measured separately (a relay
    # worker's job in production), so the hot path here is exactly what a web process does.
    settings.QUAI_OUTBOX_NUDGE = False


def reserve_loop(seconds: float, merchant_id: int, sku_id: int, counter: Any = None) -> dict[str, int]:
    """Reserve one unit at a time until the time is up; count successes and refusals."""
    from quai.catalog.models import Sku
    from quai.core.errors import InsufficientStock
    from quai.inventory.services import reservation_create

    sku = Sku.objects.get(pk=sku_id)
    granted = refused = units = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            reservation_create(merchant=merchant_id, sku=sku, quantity=1, document_type="bench")
        except InsufficientStock:
            refused += 1
        else:
            granted += 1
            units += 1
            if counter is not None and granted % 50 == 0:
                with counter.get_lock():
                    counter.value += 50
    return {"granted": granted, "refused": refused, "units": units}


def reserve_worker(seconds: float, merchant_id: int, sku_id: int, counter: Any, ready: Any, go: Any, out: Any) -> None:
    try:
        django_ready()
        from django.db import connection

        reserve_loop(WARM_UP_SECONDS, merchant_id, sku_id)  # connection open, statements planned, code warm
        with connection.cursor() as cursor:
            session = pg_session_settings(cursor) if connection.vendor == "postgresql" else {}
        ready.release()
        go.wait()
        out.put({**reserve_loop(seconds, merchant_id, sku_id, counter), "session": session})
    except BaseException as exc:  # reported by the parent, which then fails
        out.put({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        from django.db import connections

        connections.close_all()


def raw_pg_worker(seconds: float, dsn: str, counter: Any, ready: Any, go: Any, out: Any) -> None:
    """The floor: a bare guarded UPDATE on one row, autocommit, no ORM, no Python business logic.

    psycopg's defaults (server-side binding; the statement is prepared after 5 runs): the fastest a client can
    send that statement, which is what "our rate / raw rate" compares against.
    """
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            cursor = conn.cursor()
            statement = "UPDATE bench_raw SET reserved = reserved + 1 WHERE id = 1 AND on_hand - reserved >= 1"
            warm_until = time.perf_counter() + WARM_UP_SECONDS
            while time.perf_counter() < warm_until:  # the same warm-up as the reservation workers
                cursor.execute(statement)
            session = pg_session_settings(conn.cursor())
            ready.release()
            go.wait()
            done = 0
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                cursor.execute(statement)
                done += 1
                if done % 50 == 0:
                    with counter.get_lock():
                        counter.value += 50
            out.put({"granted": done, "refused": 0, "units": done, "session": session})
    except BaseException as exc:
        out.put({"error": f"{type(exc).__name__}: {exc}"})
