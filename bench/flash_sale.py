"""``BENCH_ONLY=flash_sale python -m bench``: the simulated flash-sale day (``manage.py simulate flash-sale``).

Runs the command in a scratch database of its own (``--scratch``: a temporary SQLite file; on PostgreSQL a
``quai_sim_<seed>_<pid>`` database on the server of ``BENCH_PG_URL``, created and dropped), reads back its figures
(``--json``) and prints them against the issue's targets: a 100,000-order day in under 10 minutes on SQLite and 5 on
PostgreSQL, shipped on time ≥ 99.8 %, delivered by the promised date ≥ 95 % (the promise's confidence), 0 units
oversold. The default runs are small enough to finish in a few minutes on a shared 2-core machine.

The verdict: part of a day's cost is per tick whatever its orders (144 ten-minute ticks: the staffing plan read
again, the waves', trucks' and at-risk checks), the rest per order. Two runs of the same day, 1,000 and 5,000
orders, give the line through them (fixed seconds + seconds per order), and the verdict reads the 100,000-order
day off that line. Until 4 December 2026 the verdict extrapolated the 1,000-order day linearly: measured that day
(docs/SIMULATION.md, "The day at 10,000 and 100,000 orders"), the 1,000-order day cost 30.6 ms an order and the
10,000-order day 14.1, so that extrapolation more than doubled a large day. The linear extrapolation of the
larger run is still printed, as an upper bound: a cost that grew faster than the orders would show there.
The full day runs with ``BENCH_FLASH_SALE_ORDERS=100000 BENCH_FLASH_SALE_SMALL=0`` (its own time, no
line).

Then the issue's what-if: the same day with 30 % of the plan's people missing on the floor (``--what-if
staff-30``), on the first database only, at the smaller run's size, measured against that run (its ``--trace``, so
the normal day is not run twice): the first stage to fall behind, when, and the orders it costs, against the
issue's target (the report names a stage and the orders it costs).

Environment: ``BENCH_FLASH_SALE_ORDERS`` (default 5,000), ``BENCH_FLASH_SALE_SMALL`` (the smaller run's orders,
default 1,000; 0: no line, the larger run extrapolated linearly), ``BENCH_FLASH_SALE_HOURS`` (default 24),
``BENCH_FLASH_SALE_SEED`` (default 1), ``BENCH_FLASH_SALE_DATABASES`` (``sqlite,pg`` by default),
``BENCH_PG_URL`` (its server hosts the scratch database), ``BENCH_FLASH_SALE_WHAT_IF`` (default ``staff-30``;
empty: no what-if).
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

ROOT = Path(__file__).resolve().parent.parent
FULL_DAY = 100_000
TARGET_SECONDS = {"SQLite": 600.0, "PostgreSQL": 300.0}
TARGET_ON_TIME = 0.998
TARGET_DELIVERED = 0.95


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


ORDERS = _env_int("BENCH_FLASH_SALE_ORDERS", 5_000)
SMALL = _env_int("BENCH_FLASH_SALE_SMALL", 1_000)
HOURS = _env_int("BENCH_FLASH_SALE_HOURS", 24)
SEED = _env_int("BENCH_FLASH_SALE_SEED", 1)
DATABASES = [d.strip() for d in os.environ.get("BENCH_FLASH_SALE_DATABASES", "sqlite,pg").split(",") if d.strip()]
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/quai_bench")
WHAT_IF = os.environ.get("BENCH_FLASH_SALE_WHAT_IF", "staff-30").strip()


def _run(name: str, database_url: str, orders: int = ORDERS, *extra: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="quai-bench-sim-") as scratch:
        figures = Path(scratch) / "figures.json"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "QUAI_LOG_LEVEL": "ERROR",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret-key-not-used-for-anything-else-0123456789abcdef",
        }
        env.pop("REDIS_URL", None)
        completed = subprocess.run(
            [
                sys.executable,
                "-W",
                "ignore",
                str(ROOT / "manage.py"),
                "simulate",
                "flash-sale",
                "--scratch",
                f"--seed={SEED}",
                f"--orders={orders}",
                f"--hours={HOURS}",
                f"--report={Path(scratch) / 'report.html'}",
                f"--json={figures}",
                "--lang=en",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"the {name} simulation crashed (exit {completed.returncode})")
        result = dict(json.loads(figures.read_text()))
    result["database"] = name
    return result


def _day_seconds(result: dict[str, Any]) -> float:
    return float(result["wall_seconds"]["total"]) - float(result["wall_seconds"].get("world", 0.0))


def split_fixed_and_per_order(small: tuple[int, float], large: tuple[int, float]) -> tuple[float, float] | None:
    """The line through two runs of the same day, (orders, seconds) each: (fixed seconds, seconds per order), or
    None when the two cannot tell them apart (same size, or the larger day not slower)."""
    (n1, t1), (n2, t2) = small, large
    if n2 <= n1 or t2 <= t1:
        return None
    per_order = (t2 - t1) / (n2 - n1)
    return max(0.0, t1 - per_order * n1), per_order


def _rows(result: dict[str, Any], small: dict[str, Any] | None = None) -> list[tuple[str, str, str, str]]:
    name = result["database"]
    seconds = _day_seconds(result)
    rate = result["orders_in"] / seconds if seconds else 0.0
    linear = FULL_DAY / rate if rate else float("inf")
    promise, stock = result["promise"], result["stock"]
    on_time, delivered = promise["shipped_on_time_rate"], promise["delivered_rate"]
    target = TARGET_SECONDS[name]
    rows = [
        (f"{name}: simulated orders", f"{result['orders_in']:,} ({result['hours']} h, seed {result['seed']})", "", ""),
        (f"{name}: wall time of the day (world built apart)", f"{seconds:,.0f} s ({rate:,.1f} orders/s)", "", ""),
    ]
    split, small_orders = None, 0
    if small is not None:
        small_orders = small["orders_in"]
        split = split_fixed_and_per_order((small_orders, _day_seconds(small)), (result["orders_in"], seconds))
    if result["orders_in"] >= FULL_DAY:
        rows.append(
            (
                f"{name}: the full {FULL_DAY:,}-order day",
                f"{seconds / 60:,.1f} min",
                f"< {target / 60:.0f} min",
                "PASS" if seconds <= target else "MISS",
            )
        )
    elif split is not None:
        fixed, per_order = split
        estimate = fixed + per_order * FULL_DAY
        rows += [
            (
                f"{name}: a {FULL_DAY:,}-order day (line through {small_orders:,} and {result['orders_in']:,} orders)",
                f"{estimate / 60:,.0f} min ({fixed:,.0f} s + {1000 * per_order:,.1f} ms/order)",
                f"< {target / 60:.0f} min",
                "PASS" if estimate <= target else "MISS",
            ),
            (
                f"{name}: the same, {result['orders_in']:,}-order day extrapolated linearly",
                f"{linear / 60:,.0f} min",
                "(upper bound)",
                "",
            ),
        ]
    else:
        rows.append(
            (
                f"{name}: a {FULL_DAY:,}-order day (extrapolated linearly)",
                f"{linear / 60:,.0f} min",
                f"< {target / 60:.0f} min",
                "PASS" if linear <= target else "MISS",
            )
        )
    rows += [
        (
            f"{name}: shipped on time",
            f"{on_time:.2%} ({promise['shipped_on_time']:,}/{promise['ship_today']:,})",
            f">= {TARGET_ON_TIME:.1%}",
            "PASS" if on_time >= TARGET_ON_TIME else "MISS",
        ),
        (
            f"{name}: delivered by the promised date",
            f"{delivered:.2%} ({promise['delivered_kept']:,}/{promise['delivered_decided']:,})",
            f">= {TARGET_DELIVERED:.0%}",
            "PASS" if delivered >= TARGET_DELIVERED else "MISS",
        ),
        (
            f"{name}: oversold units (drift)",
            f"{stock['oversold_units']} ({stock['drift']})",
            "0 (must)",
            "PASS" if stock["oversold_units"] == 0 and stock["drift"] == 0 else "FAIL",
        ),
    ]
    return rows


def what_if_row(result: dict[str, Any]) -> tuple[str, str, str, str]:
    """The what-if's verdict: the first stage behind the normal day, when, and the orders it costs."""
    behind = result["stage_behind"]
    label = f"{result['database']}: {result['what_if']}, first stage behind ({result['orders_in']:,} orders)"
    if behind["stage"]:
        how = f", {behind['behind_minutes']} min of work behind" if behind.get("why") == "plan" else ""
        stage = f"{behind['stage']} at {behind['at']}{how}"
    else:
        stage = "none"
    cost = (
        f"costs {behind['orders']:,} orders ({behind['late']:,} shipped late, {behind['later_promise']:,} promised "
        f"a later day, {behind['late_delivery']:,} delivered late)"
    )
    return label, f"{stage}; {cost}", "a stage and its cost named", "PASS" if behind["stage"] else "MISS"


def _hot_spots(result: dict[str, Any]) -> list[str]:
    orders = max(1, result["orders_in"])
    parts = []
    for stage, seconds in sorted(result["wall_seconds"].items(), key=lambda item: -item[1]):
        if stage == "total":
            continue
        queries = result.get("queries", {}).get(stage, 0)
        parts.append(
            f"{stage} {seconds:,.1f} s ({1000 * seconds / orders:,.1f} ms and {queries / orders:,.0f} SQL/order)"
        )
    return [f"{result['database']} time by part: " + "; ".join(parts)]


def main() -> int:
    print(
        f"Quai benchmark — simulated flash-sale day: {ORDERS:,} orders over {HOURS} h (seed {SEED}), "
        f"extrapolated to {FULL_DAY:,}",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    smalls: list[dict[str, Any] | None] = []
    what_if: dict[str, Any] | None = None
    what_if_seconds = 0.0
    for database in DATABASES:
        if database == "sqlite":
            name, url = "SQLite", "sqlite:///" + str(Path(tempfile.gettempdir()) / "unused.sqlite3")
        elif database in ("pg", "postgresql"):
            name, url = "PostgreSQL", PG_URL
        else:
            continue
        small = None
        # The what-if runs against the smaller day (or the only one), on the first database: its own normal day
        # is that run's trace, so the normal day is not run twice.
        with tempfile.TemporaryDirectory(prefix="quai-bench-normal-") as kept:
            trace = Path(kept) / "normal.trace.json"
            wants_what_if = bool(WHAT_IF) and what_if is None
            traced = [f"--trace={trace}"] if wants_what_if else []
            if 0 < SMALL < ORDERS:
                print(f"==> flash-sale day, {name} (scratch), {SMALL:,} orders", flush=True)
                small = _run(name, url, SMALL, *traced)
                what_if_orders = SMALL
            else:
                what_if_orders = ORDERS
            print(f"==> flash-sale day, {name} (scratch), {ORDERS:,} orders", flush=True)
            results.append(_run(name, url, ORDERS, *(traced if small is None else [])))
            if wants_what_if:
                print(
                    f"==> the {what_if_orders:,}-order day, {name} (scratch), what-if {WHAT_IF} against it", flush=True
                )
                started = time.perf_counter()
                what_if = _run(name, url, what_if_orders, f"--what-if={WHAT_IF}", f"--baseline={trace}")
                what_if_seconds = time.perf_counter() - started
        smalls.append(small)
    rows = [row for result, small in zip(results, smalls, strict=True) for row in _rows(result, small)]
    if what_if is not None:
        rows.append(what_if_row(what_if))
        rows.append(
            (f"{what_if['database']}: the what-if's run (its world included)", f"{what_if_seconds:,.0f} s", "", "")
        )
    if not rows:
        return 0
    widths = [max(len(row[i]) for row in [("figure", "measured", "target", "verdict"), *rows]) for i in range(4)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(line)
    for row in [("figure", "measured", "target", "verdict"), *rows]:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print(line)
    for result in results:
        print("\n".join(_hot_spots(result)))
    print("A MISS is reported, never fails the run; oversold units or drift fail it.")
    return 1 if any(row[3] == "FAIL" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
