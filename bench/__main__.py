"""``python -m bench``: how many reservations per second one hot SKU takes, and what that costs us.

For each database, in its own scratch database (never the dev one):

- PostgreSQL (a ``quai_bench`` database created and dropped on the local server): 8 worker processes, each with
  its own connection, reserve one unit of one hot SKU for ``BENCH_SECONDS`` (default 20) seconds, and the raw rate
  of a bare guarded ``UPDATE`` on one row from 8 connections is measured for half that, the two taking turns
  (ours, raw, ours, raw) so a change of load on the machine weighs on both alike; then 1,000,000 past movements
  are bulk-loaded into the ledger (``generate_series``) and the reservation run is repeated.
- SQLite (a temporary file, WAL, ``IMMEDIATE`` transactions as in settings): the same in one process.

Each figure is printed against its target with PASS or MISS. A MISS does not fail the run: the exit status is
non-zero only if a unit was oversold, the drift check found a difference, the raw run was measured under other
server or session settings than ours (every worker reports its own; they are printed under the table), or the
benchmark crashed.

Environment: ``BENCH_SECONDS`` (default 20), ``BENCH_WORKERS`` (default 8), ``BENCH_HISTORY`` (default
1,000,000), ``BENCH_PG_URL`` (default ``postgres://postgres@127.0.0.1:5432/quai_bench``), ``BENCH_ONLY``
(``pg``, ``sqlite`` or
``intake``: bench/intake.py, the order intake over HTTP, which runs after the others; ``fulfilment``:
bench/fulfilment.py, waves, batches and pick routes; ``flash_sale``: bench/flash_sale.py, the simulated
flash-sale day; ``connectors``: bench/connectors.py, stock out to fake
shops during an order burst; ``webhooks``: bench/webhooks.py, the webhook sender emptying a backlog in
process), ``BENCH_PG_OPTIONS`` (JSON
connection OPTIONS to try on PostgreSQL before they go into settings.py, e.g.
``{"server_side_binding": true, "prepare_threshold": 5}``; printed with the figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_RATE = 2000.0
TARGET_RATIO = 0.5
TARGET_HISTORY_RATIO = 0.8  # after 1M movements the rate must stay within 20 % of the rate before

ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


SECONDS = _env_int("BENCH_SECONDS", 20)
WORKERS = _env_int("BENCH_WORKERS", 8)
HISTORY = _env_int("BENCH_HISTORY", 1_000_000)
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/quai_bench")
STOCK = 50_000_000  # far more than any run takes: the benchmark measures throughput; the tests measure refusals


# --- The parts run inside a child process whose DATABASE_URL is the scratch database ------------------------------


def _say(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


def _seed() -> dict[str, int]:
    from django.core.management import call_command

    from quai.catalog.models import Sku
    from quai.inventory.services import stock_receive
    from quai.tenants.models import Merchant
    from quai.warehouse.models import Location, Site, Zone

    _say("migrating the scratch database")
    call_command("migrate", verbosity=0, interactive=False)
    merchant = Merchant.objects.create(code="bench", name="Bench", legal_name="Bench SAS")
    site = Site.objects.create(code="bench", name="Bench")
    zone = Zone.objects.create(site=site, code="STOCK", name="Stock", kind="storage")
    location = Location.objects.create(site=site, zone=zone, code="A-01-01-01")
    sku = Sku.objects.create(merchant=merchant, code="HOT-1", name="The hot SKU")
    stock_receive(sku=sku, location=location, quantity=STOCK, reason="bench stock")
    return {"merchant_id": merchant.pk, "sku_id": sku.pk, "location_id": location.pk}


def _progress_run(label: str, seconds: float, workers: list[Any], counter: Any, go: Any) -> float:
    from tqdm import tqdm

    started = time.perf_counter()
    go.set()
    with tqdm(
        total=int(seconds),
        desc=label,
        unit="s",
        file=sys.stderr,
        leave=False,
        mininterval=5 if not sys.stderr.isatty() else 0.1,
    ) as bar:
        last = 0
        while any(w.is_alive() for w in workers) and time.perf_counter() - started < seconds + 60:
            time.sleep(0.5)
            elapsed = min(int(time.perf_counter() - started), int(seconds))
            bar.update(elapsed - last)
            last = elapsed
            bar.set_postfix(rate=f"{counter.value / max(time.perf_counter() - started, 0.001):,.0f}/s")
    return time.perf_counter() - started


def _parallel(label: str, target: Any, args: tuple[Any, ...], workers: int, seconds: float) -> dict[str, Any]:
    """Start ``workers`` processes, let them all get ready, start them at once, add up what they did."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    counter = ctx.Value("q", 0)
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    out = ctx.Queue()
    processes = [
        ctx.Process(target=target, args=(seconds, *args, counter, ready, go, out), daemon=True) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        if not ready.acquire(timeout=120):
            raise RuntimeError(f"{label}: a worker did not start")
    elapsed = _progress_run(label, seconds, processes, counter, go)
    results = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(f"{label}: {errors[0]}")
    granted = sum(r["granted"] for r in results)
    sessions = []
    for r in results:
        if r.get("session") and r["session"] not in sessions:
            sessions.append(r["session"])
    return {
        "sessions": sessions,
        "granted": granted,
        "refused": sum(r["refused"] for r in results),
        "rate": granted / seconds,
        "seconds": seconds,
        "elapsed": elapsed,
    }


def _combined(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several timed turns of one measurement as one: units over the total measured seconds."""
    granted = sum(p["granted"] for p in parts)
    seconds = sum(p["seconds"] for p in parts)
    sessions: list[dict[str, str]] = []
    for part in parts:
        sessions.extend(s for s in part["sessions"] if s not in sessions)
    return {
        "sessions": sessions,
        "granted": granted,
        "refused": sum(p["refused"] for p in parts),
        "rate": granted / seconds if seconds else 0.0,
        "turns": [round(p["rate"]) for p in parts],
    }


def _serial(label: str, loop: Any, seconds: float) -> dict[str, Any]:
    """One process (SQLite): run the loop in a thread-free way, with a progress bar fed by a counter."""
    import threading

    from tqdm import tqdm

    box: dict[str, Any] = {}

    class Counter:
        value = 0

        def get_lock(self) -> Any:
            return threading.Lock()

    counter = Counter()
    worker = threading.Thread(target=lambda: box.update(loop(seconds, counter)))
    started = time.perf_counter()
    worker.start()
    with tqdm(
        total=int(seconds),
        desc=label,
        unit="s",
        file=sys.stderr,
        leave=False,
        mininterval=5 if not sys.stderr.isatty() else 0.1,
    ) as bar:
        last = 0
        while worker.is_alive():
            worker.join(0.5)
            elapsed = min(int(time.perf_counter() - started), int(seconds))
            bar.update(elapsed - last)
            last = elapsed
            bar.set_postfix(rate=f"{counter.value / max(time.perf_counter() - started, 0.001):,.0f}/s")
    sessions = [box["session"]] if box.get("session") else []
    rate = box["granted"] / seconds
    return {"granted": box["granted"], "refused": box["refused"], "rate": rate, "sessions": sessions}


def _oversold(sku_id: int) -> dict[str, int]:
    from django.db.models import Sum

    from quai.inventory.models import Reservation, StockLevel

    level = StockLevel.objects.get(sku_id=sku_id)
    held = Reservation.objects.filter(sku_id=sku_id, status="open").aggregate(total=Sum("quantity"))["total"] or 0
    return {
        "oversold": max(0, level.reserved - level.on_hand, held - level.on_hand),
        "counter_mismatch": abs(held - level.reserved),
        "reserved": level.reserved,
    }


def _load_history(ids: dict[str, int], count: int, vendor: str) -> float:
    """Bulk-load ``count`` past movements of the hot SKU that net to zero (in, out, in, out…): the ledger grows,
    the quantities stay true, so the drift check still agrees."""
    from django.db import connection

    from quai.inventory.models import StockMovement

    table = StockMovement._meta.db_table
    columns = (
        "merchant_id, kind, sku_id, lot, expiry, serial, from_location_id, from_status, to_location_id, to_status,"
        " quantity, actor_id, reason, document_type, document_id, occurred_at"
    )
    m, s, loc = ids["merchant_id"], ids["sku_id"], ids["location_id"]
    select = (
        f"SELECT {m}, CASE WHEN i % 2 = 1 THEN 'receipt' ELSE 'pick' END, {s}, '', NULL, '',"
        f" CASE WHEN i % 2 = 1 THEN NULL ELSE {loc} END, CASE WHEN i % 2 = 1 THEN '' ELSE 'sellable' END,"
        f" CASE WHEN i % 2 = 1 THEN {loc} ELSE NULL END, CASE WHEN i % 2 = 1 THEN 'sellable' ELSE '' END,"
        " 1, NULL, 'bench history', 'bench', '', {ts}"
    )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            sql = (
                f"INSERT INTO {table} ({columns}) "
                + select.format(ts=f"now() - make_interval(secs => {count} - i)")
                + f" FROM generate_series(1, {count}) AS i"
            )
            cursor.execute(sql)
            # Let the bulk load's own I/O settle (autovacuum, dirty pages) so the next run measures the history,
            # not the load.
            cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute("CHECKPOINT")
        else:
            sql = (
                f"WITH RECURSIVE series(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM series WHERE i < {count}) "
                f"INSERT INTO {table} ({columns}) "
                + select.format(ts="strftime('%Y-%m-%d %H:%M:%f', 'now')")
                + " FROM series"
            )
            cursor.execute(sql)
    return time.perf_counter() - started


def _drift_count() -> int:
    from quai.inventory.selectors import stock_drift

    return len(stock_drift())


def child_pg(result_path: str) -> None:
    from bench.workers import django_ready, raw_pg_worker, reserve_worker, trial_options

    django_ready()
    from django.db import connection

    ids = _seed()
    result: dict[str, Any] = {"database": "PostgreSQL", "workers": WORKERS, "seconds": SECONDS}
    options = connection.settings_dict.get("OPTIONS", {})
    result["options"] = {
        "server_side_binding": options.get("server_side_binding", False),
        "prepare_threshold": options.get("prepare_threshold"),
        "trial (BENCH_PG_OPTIONS)": trial_options() or None,
    }
    args = (ids["merchant_id"], ids["sku_id"])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_raw (id integer PRIMARY KEY, on_hand bigint, reserved bigint)")
        cursor.execute("INSERT INTO bench_raw VALUES (1, %s, 0)", [STOCK])
    dsn = PG_URL.replace("postgres://", "postgresql://", 1)
    raw_seconds = max(3, SECONDS // 2)
    # Ours and the raw one take turns (ours, raw, ours, raw), each for half its time, so that a change of load on
    # the machine (a shared CI runner) weighs on both figures alike instead of on whichever ran second.
    runs: list[dict[str, Any]] = []
    raws: list[dict[str, Any]] = []
    for turn in (1, 2):
        _say(f"turn {turn}/2: {WORKERS} processes reserve one hot SKU for {SECONDS / 2:g} s")
        runs.append(_parallel("reserve", reserve_worker, args, WORKERS, SECONDS / 2))
        _say(f"turn {turn}/2: raw guarded UPDATE on one row from {WORKERS} connections for {raw_seconds / 2:g} s")
        raws.append(_parallel("raw", raw_pg_worker, (dsn,), WORKERS, raw_seconds / 2))
    result["run"], result["raw"] = _combined(runs), _combined(raws)

    _say(f"loading {HISTORY:,} past movements into the ledger")
    result["history_load_s"] = _load_history(ids, HISTORY, connection.vendor)
    _say(f"again, with {HISTORY:,} movements of history")
    result["after"] = _parallel("reserve (history)", reserve_worker, args, WORKERS, SECONDS)
    result.update(_oversold(ids["sku_id"]))
    _say("drift check over the whole ledger")
    result["drift"] = _drift_count()
    # Every worker of every run, ours and the raw one, under one set of server and session settings.
    sessions = [s for run in ("run", "raw", "after") for s in result[run].pop("sessions")]
    result["session"] = sessions[0] if sessions else {}
    result["same_settings"] = all(s == sessions[0] for s in sessions)
    result["other_settings"] = [s for s in sessions if s != result["session"]]
    connection.close()
    Path(result_path).write_text(json.dumps(result))


def _sqlite_session(cursor: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in ("journal_mode", "synchronous", "foreign_keys"):
        cursor.execute(f"PRAGMA {name}")
        found[name] = str(cursor.fetchone()[0])
    return found


def _raw_sqlite_loop(path: str) -> Any:
    import sqlite3

    def loop(seconds: float, counter: Any) -> dict[str, Any]:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")  # as settings.py's init_command (bench_raw has no foreign key)
        conn.execute("CREATE TABLE IF NOT EXISTS bench_raw (id integer PRIMARY KEY, on_hand bigint, reserved bigint)")
        conn.execute("INSERT OR REPLACE INTO bench_raw VALUES (1, ?, 0)", [STOCK])
        statement = "UPDATE bench_raw SET reserved = reserved + 1 WHERE id = 1 AND on_hand - reserved >= 1"
        done = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(statement)
            conn.execute("COMMIT")
            done += 1
            counter.value = done
        session = _sqlite_session(conn.cursor())
        conn.close()
        return {"granted": done, "refused": 0, "session": session}

    return loop


def child_sqlite(result_path: str) -> None:
    from bench.workers import django_ready, reserve_loop

    django_ready()
    from django.db import connection

    ids = _seed()
    result: dict[str, Any] = {"database": "SQLite", "workers": 1, "seconds": SECONDS}
    args = (ids["merchant_id"], ids["sku_id"])

    def loop(seconds: float, counter: Any) -> dict[str, int]:
        return reserve_loop(seconds, *args, counter=_Counting(counter))

    _say(f"one process reserves one hot SKU for {SECONDS} s")
    result["run"] = _serial("reserve", loop, SECONDS)
    raw_seconds = max(3, SECONDS // 2)
    _say(f"raw guarded UPDATE on one row, one connection, for {raw_seconds} s")
    result["raw"] = _serial("raw", _raw_sqlite_loop(connection.settings_dict["NAME"]), raw_seconds)
    _say(f"loading {HISTORY:,} past movements into the ledger")
    result["history_load_s"] = _load_history(ids, HISTORY, connection.vendor)
    _say(f"again, with {HISTORY:,} movements of history")
    result["after"] = _serial("reserve (history)", loop, SECONDS)
    result.update(_oversold(ids["sku_id"]))
    _say("drift check over the whole ledger")
    result["drift"] = _drift_count()
    with connection.cursor() as cursor:
        ours = _sqlite_session(cursor)
    raw_sessions = result["raw"].pop("sessions")
    for run in ("run", "after"):
        result[run].pop("sessions")
    result["session"] = ours
    result["same_settings"] = all(s == ours for s in raw_sessions)
    result["other_settings"] = [s for s in raw_sessions if s != ours]
    Path(result_path).write_text(json.dumps(result))


class _Counting:
    """Adapts the serial progress counter to the ``get_lock``/``value`` protocol of ``reserve_loop``."""

    def __init__(self, counter: Any) -> None:
        self.counter = counter

    def get_lock(self) -> Any:
        return self.counter.get_lock()

    @property
    def value(self) -> int:
        return int(self.counter.value)

    @value.setter
    def value(self, new: int) -> None:
        self.counter.value = new


# --- The orchestrator ------------------------------------------------------------------------------------------


def _pg_admin(statement: str) -> None:
    import psycopg

    base, _, name = PG_URL.rpartition("/")
    with psycopg.connect(base.replace("postgres://", "postgresql://", 1) + "/postgres", autocommit=True) as conn:
        conn.execute(statement.format(name=name))


def _run_child(kind: str, database_url: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_path = handle.name
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "quai.settings",
        "QUAI_LOG_LEVEL": "ERROR",
        "DEBUG": "false",  # as in production: no query log in memory
        "SECRET_KEY": "bench-only-secret-key-not-used-for-anything-else-0123456789abcdef",
    }
    env.pop("REDIS_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "bench", f"--child={kind}", result_path], cwd=ROOT, env=env, check=False
    )
    try:
        if completed.returncode != 0:
            raise RuntimeError(f"the {kind} benchmark crashed (exit {completed.returncode})")
        return dict(json.loads(Path(result_path).read_text()))
    finally:
        Path(result_path).unlink(missing_ok=True)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _turns(run: dict[str, Any]) -> str:
    return " (turns " + " / ".join(f"{rate:,}" for rate in run["turns"]) + ")" if run.get("turns") else ""


def _report(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    run, raw, after = result["run"], result["raw"], result["after"]
    ratio = run["rate"] / raw["rate"] if raw["rate"] else 0.0
    history = after["rate"] / run["rate"] if run["rate"] else 0.0
    name = result["database"]
    who = f"{result['workers']} worker(s)"
    return [
        (
            f"{name}: reservations/s ({who})",
            f"{run['rate']:,.0f}" + _turns(run),
            f">= {TARGET_RATE:,.0f}",
            _verdict(run["rate"] >= TARGET_RATE),
        ),
        (f"{name}: raw guarded UPDATE/s (same connections)", f"{raw['rate']:,.0f}" + _turns(raw), "(reference)", ""),
        (
            f"{name}: our rate / raw rate",
            f"{ratio:.0%}",
            f">= {TARGET_RATIO:.0%}",
            _verdict(ratio >= TARGET_RATIO) + (" (see note)" if name == "SQLite" else ""),
        ),
        (f"{name}: history loaded (movements, s)", f"{HISTORY:,} in {result['history_load_s']:.1f} s", "", ""),
        (
            f"{name}: reservations/s after the history",
            f"{after['rate']:,.0f}",
            f">= {TARGET_RATE:,.0f}",
            _verdict(after["rate"] >= TARGET_RATE),
        ),
        (
            f"{name}: after / before (cost flat with history)",
            f"{history:.0%}",
            f">= {TARGET_HISTORY_RATIO:.0%}",
            _verdict(history >= TARGET_HISTORY_RATIO),
        ),
        (
            f"{name}: refused reservations",
            f"{run['refused'] + after['refused']}",
            "0 (stock never ran out)",
            _verdict(run["refused"] + after["refused"] == 0),
        ),
        (f"{name}: oversold units", f"{result['oversold']}", "0 (must)", "PASS" if result["oversold"] == 0 else "FAIL"),
        (
            f"{name}: counter vs open reservations",
            f"{result['counter_mismatch']}",
            "0 (must)",
            "PASS" if result["counter_mismatch"] == 0 else "FAIL",
        ),
        (
            f"{name}: drift found by stock_check",
            f"{result['drift']}",
            "0 (must)",
            "PASS" if result["drift"] == 0 else "FAIL",
        ),
        (
            f"{name}: same server/session settings, ours and raw",
            "yes" if result["same_settings"] else "NO",
            "yes (must)",
            "PASS" if result["same_settings"] else "FAIL",
        ),
    ]


SQLITE_RATIO_NOTE = (
    "Note on SQLite's ratio: the raw figure is a bare UPDATE loop through the sqlite3 C module (no ORM, no"
    " reservation row, no outbox event, one B-tree page touched); a reservation writes two rows and their indexes"
    " through Django. Printed as measured, not a goal that Django code can meet in one process."
)


def _settings_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"{result['database']} settings, the same for our path and the raw one:"]
    lines.append("  " + ", ".join(f"{k}={v}" for k, v in result["session"].items()))
    for other in result.get("other_settings", []):
        lines.append("  BUT a worker ran with: " + ", ".join(f"{k}={v}" for k, v in other.items()))
    if "options" in result:
        lines.append("  Django connection OPTIONS: " + ", ".join(f"{k}={v}" for k, v in result["options"].items()))
    return lines


def _print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(line)
    for row in rows:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print(line)


def main() -> int:
    only = os.environ.get("BENCH_ONLY", "").strip().lower()
    print(
        f"Quai benchmark — reservations on one hot SKU, {SECONDS} s per run, {WORKERS} PostgreSQL workers, "
        f"{HISTORY:,} movements of history",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    if only in ("", "pg", "postgresql"):
        print("==> PostgreSQL", flush=True)
        _pg_admin('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _pg_admin('CREATE DATABASE "{name}"')
        try:
            results.append(_run_child("pg", PG_URL))
        finally:
            _pg_admin('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if only in ("", "sqlite"):
        print("==> SQLite", flush=True)
        with tempfile.TemporaryDirectory(prefix="quai-bench-") as scratch:
            results.append(_run_child("sqlite", f"sqlite:///{scratch}/bench.sqlite3"))
    failed = False
    if results:
        rows = [row for result in results for row in _report(result)]
        print()
        _print_table([("figure", "measured", "target", "verdict"), *rows])
        for result in results:
            print("\n".join(_settings_lines(result)))
        if any(result["database"] == "SQLite" for result in results):
            print(SQLITE_RATIO_NOTE)
        print(f"total time: {time.perf_counter() - started:.0f} s (a MISS is reported, never fails the run)")
        if any(row[3] == "FAIL" for row in rows):
            print("FAILED: stock was oversold or drifted, or the raw run had other settings", file=sys.stderr)
            failed = True
    if only in ("", "intake"):
        # The order intake over HTTP (bench/intake.py): its own table, after this one.
        from bench import intake

        print()
        failed = intake.main() != 0 or failed
    if only in ("", "labels"):
        from bench import labels

        print()
        failed = labels.run() != 0 or failed
    if only in ("", "fulfilment"):
        # Waves, batches and pick routes for 5,000 orders on the demo site (bench/fulfilment.py, no database).
        from bench import fulfilment

        print()
        failed = fulfilment.main() != 0 or failed
    if only in ("", "promise"):
        # The delivery promise for a 5-line cart, in process, with 20,000 open orders as backlog (bench/promise.py).
        from bench import promise

        print()
        failed = promise.main() != 0 or failed
    if only in ("", "flash_sale", "flash-sale"):
        # The simulated flash-sale day through the real services, in scratch databases (bench/flash_sale.py).
        from bench import flash_sale

        print()
        failed = flash_sale.main() != 0 or failed
    if only in ("", "connectors"):
        # Stock out to a fake WooCommerce and a fake Shopify during an order burst over HTTP (bench/connectors.py).
        from bench import connectors

        print()
        failed = connectors.main() != 0 or failed
    if only in ("", "webhooks"):
        # The webhook sender emptying 5,000 pending deliveries to a local receiver, in process (bench/webhooks.py).
        from bench import webhooks

        print()
        failed = webhooks.main() != 0 or failed
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child="):
        kind = sys.argv[1].split("=", 1)[1]
        sys.path.insert(0, str(ROOT))
        {"pg": child_pg, "sqlite": child_sqlite}[kind](sys.argv[2])
        sys.exit(0)
    sys.exit(main())
