"""``make bench`` (``BENCH_ONLY=connectors``): stock out to shops during an order burst, measured on the shops' side.

Set-up (scratch PostgreSQL database ``<BENCH_PG_URL's database>_connectors``, by default ``quai_bench_connectors``,
on bench/intake.py's server; Redis ``BENCH_CONNECTORS_REDIS_URL``, default ``redis://127.0.0.1:6379/12``):

- the fake WooCommerce and Shopify shops of ``quai/integrations/tests/fake_shops/`` run in a process of their own on
  loopback (real HTTP, the same adapters as for a real shop), each stamping the time it receives a stock level;
- two merchants with an API key each and ``BENCH_CONNECTORS_SKUS`` SKUs each (default 50, the first of merchant 1
  hot), every SKU stocked for the whole burst; merchant 1 connected to the WooCommerce shop, merchant 2 to the
  Shopify one (``stock_interval_ms`` left at its default, 100 ms), seeded through the services;
- Quai as in production (bench/intake.py's settings, README's workers): gunicorn gthread, a Celery worker on Redis
  for the relay's queue, one of its own for ``shop_push`` (three processes, prefetching one message each) and beat,
  stopped first at the end, while its schedule file still exists;
- the burst: ``wrk`` with ``bench/intake.lua`` posts ``BENCH_CONNECTORS_ORDERS`` orders (default 4,000) through
  ``POST /api/v1/orders`` from bench/intake.py's connections, each reservation changing a SKU's availability;
- once the outbox and the stock pushes are drained: five levels of each shop are changed behind Quai's back (a shop
  admin's edit), the reconcile job runs, then a second reconcile, read-only, counts what still differs.

Figures, per shop: stock change → shop p50 / p99, from each ``inventory.reservation_made``'s ``occurred_at`` to the
first level the shop received that includes it (availability only falls during the burst, so that is the first
level at or below the one the change left). ``occurred_at`` is when the reservation's statement ran, inside the
order's transaction (the group committer's, bench/intake.py), so the figure counts the rest of that transaction and
its commit too: the shop cannot see the change earlier, and it is never counted from a later moment than the
change. (The order's wait before its transaction began is not counted: the stock had not changed yet.) The delay is
split into the outbox's part (occurred → the shop's stock handler ran: committed, then the priority pass or a relay
batch, ``quai.core.outbox.relay_first``; the relay's whole part, occurred → relayed, every handler run, is shown beside
it) and the connector's (handler ran → shop), itself split along the push that carried each change (``connector_parts``,
from the shop_push worker's timing lines: waiting for a push to be asked, task queue, sleep in the task, the task before
its HTTP call, the HTTP call); then stock writes against changes (coalescing: a burst of changes is one write, at most
one write per ``stock_interval_ms``), and drift after the reconcile (0, FAIL otherwise). The run waits up to
``BENCH_CONNECTORS_DRAIN_SECONDS`` (120) for the outbox and the pushes to drain after the burst.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import intake

ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


ORDERS = _env_int("BENCH_CONNECTORS_ORDERS", 4_000)
SKUS = _env_int("BENCH_CONNECTORS_SKUS", 50)  # per merchant
MAX_SECONDS = 120
DRAIN_SECONDS = _env_int("BENCH_CONNECTORS_DRAIN_SECONDS", 120)
STOCK = ORDERS  # no SKU runs out: every order moves a level the shops must follow
INJECTED_DRIFT = 5  # levels changed behind Quai's back on each shop before the reconcile
# The scratch database beside bench/intake.py's, named from ``BENCH_PG_URL`` (``…/h2_bench`` → ``h2_bench_connectors``;
# default ``quai_bench_connectors``), so two people benchmarking on one server never drop each other's database.
DB = intake.DB.removesuffix("_intake") + "_connectors"
REDIS_URL = os.environ.get("BENCH_CONNECTORS_REDIS_URL", "redis://127.0.0.1:6379/12")
MARKED_BY = "inventory.reservation_made"  # its handler's key: integrations.shop_stock.<event name>
STOCK_INTERVAL_MS = 100  # quai.integrations.services.stock_out.DEFAULT_STOCK_INTERVAL_MS

TRACE = "push-timing.jsonl"  # the worker's stock push timing lines (bench/connectors_trace.py), in the scratch folder
TARGET_P99_S = 1.0
BUSY_LOAD = 2.0


def sku_codes(merchant: int) -> list[str]:
    """Merchant 1's first SKU is the hot one of bench/intake.lua (30 % of all orders)."""
    prefix = "W" if merchant == 1 else "S"
    return [f"{prefix}-HOT" if (merchant == 1 and i == 0) else f"{prefix}-{i:03d}" for i in range(SKUS)]


def _say(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


# --- The shops' process ----------------------------------------------------------------------------------------------


def shops_main(info_path: str, records_path: str) -> None:
    """Serve a fake WooCommerce and a fake Shopify until SIGTERM, stamping every stock level they take; then write
    what they received to ``records_path``."""
    import importlib

    # Test code, outside mypy's checks (pyproject excludes /tests/): loaded as modules, so typed as Any here.
    woocommerce = importlib.import_module("quai.integrations.tests.fake_shops.woocommerce")
    shopify_fake = importlib.import_module("quai.integrations.tests.fake_shops.shopify")
    consumer_key, consumer_secret = woocommerce.CONSUMER_KEY, woocommerce.CONSUMER_SECRET
    woo_base: Any = woocommerce.FakeWooCommerce
    shopify_base: Any = shopify_fake.FakeShopify

    receipts: dict[str, list[tuple[float, str, int]]] = {"woocommerce": [], "shopify": []}
    writes: dict[str, list[float]] = {"woocommerce": [], "shopify": []}

    class Woo(woo_base):
        def _batch(self, request: Any, parent: int) -> Any:
            answer = super()._batch(request, parent)
            now = time.time()
            with self.lock:
                writes["woocommerce"].append(now)
                for row in (answer.body or {}).get("update", []):
                    if "error" not in row:
                        receipts["woocommerce"].append((now, str(row["sku"]), int(row["stock_quantity"])))
            return answer

    class Shopify(shopify_base):
        def _op_inventorySetQuantities(self, query: str, variables: dict[str, Any]) -> Any:
            before = len(self.inventory_writes)
            answer = super()._op_inventorySetQuantities(query, variables)
            now = time.time()
            writes["shopify"].append(now)
            if len(self.inventory_writes) > before:
                skus = {v["inventory_item_id"]: v["sku"] for v in self.variants}
                for quantity in variables["input"]["quantities"]:
                    receipts["shopify"].append((now, skus[quantity["inventoryItemId"]], int(quantity["quantity"])))
            return answer

    woo = Woo().start()
    shopify = Shopify().start()
    # The real Shopify's standard bucket (1,000 points, 100 restored a second) is the fake's default: kept.
    location = shopify.add_service("Quai")["location"]["id"]
    for code in sku_codes(1):
        woo.add_product(code, STOCK)
    for code in sku_codes(2):
        shopify.add_variant(code, location, STOCK)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    Path(info_path).write_text(
        json.dumps(
            {
                "woocommerce": {"url": woo.url, "consumer_key": consumer_key, "consumer_secret": consumer_secret},
                "shopify": {
                    "url": shopify.url,
                    "access_token": shopify.access_token,
                    "client_secret": shopify.client_secret,
                    "shop_domain": shopify.shop_domain,
                    "location_id": location,
                },
            }
        )
    )
    stop.wait(MAX_SECONDS + DRAIN_SECONDS + 900)
    with woo.lock:
        woo_requests = len(woo.requests)
    record = {
        "receipts": receipts,
        "writes": writes,
        "requests": {"woocommerce": woo_requests, "shopify": len(shopify.calls)},
        "throttled": shopify.throttled,
    }
    Path(records_path).write_text(json.dumps(record))
    woo.stop()
    shopify.stop()


# --- Child processes (Django, DATABASE_URL = the scratch database) ---------------------------------------------------


def child_seed(out: str, info_path: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    from quai.catalog.models import Sku
    from quai.core.outbox import outbox_sweep
    from quai.integrations.services import connection_create
    from quai.inventory.services import stock_receive
    from quai.tenants.models import Merchant
    from quai.tenants.services import api_key_create
    from quai.warehouse.models import Location, Site, Zone

    shops = json.loads(Path(info_path).read_text())
    _say("migrating the scratch database")
    call_command("migrate", verbosity=0, interactive=False)
    intake.bare_table_create()  # the warm-up's endpoint: its table exists before the first request
    site = Site.objects.create(code="bench", name="Bench")
    zone = Zone.objects.create(site=site, code="STOCK", name="Stock", kind="storage")
    location = Location.objects.create(site=site, zone=zone, code="A-01-01-01")
    merchants, keys = [], []
    for m in (1, 2):
        merchant = Merchant.objects.create(code=f"shop{m}", name=f"Shop {m}", legal_name=f"Shop {m} SAS")
        merchants.append(merchant)
        keys.append(api_key_create(merchant=merchant, name="bench").secret)
        for code in sku_codes(m):
            sku = Sku.objects.create(merchant=merchant, code=code, name=code)
            stock_receive(sku=sku, location=location, quantity=STOCK)
    # The shops start with these very levels: relay the receipts before any shop is connected.
    outbox_sweep(batch=500, max_batches=10_000)
    woo, shopify = shops["woocommerce"], shops["shopify"]
    connection_create(
        merchant=merchants[0],
        name="WooCommerce",
        platform="woocommerce",
        base_url=woo["url"],
        credentials={
            "consumer_key": woo["consumer_key"],
            "consumer_secret": woo["consumer_secret"],
            "webhook_secret": "bench",
        },
    )
    connection_create(
        merchant=merchants[1],
        name="Shopify",
        platform="shopify",
        base_url=shopify["url"],
        credentials={"access_token": shopify["access_token"], "client_secret": shopify["client_secret"]},
        settings={"shop_domain": shopify["shop_domain"], "location_id": shopify["location_id"]},
    )
    Path(out).write_text(json.dumps({"keys": keys, "skus": [sku_codes(1), sku_codes(2)]}))


def child_check(out: str) -> None:
    """Levels changed behind Quai's back on each shop, the reconcile, then a read-only reconcile: what differs still.
    And the changes: every reservation's time, SKU and quantity; each SKU's availability for its shop now."""
    import django

    django.setup()
    from quai.core.models import HandledEvent, OutboxEvent
    from quai.integrations.connectors.base import StockLevel
    from quai.integrations.models import Connection
    from quai.integrations.services import connection_adapter, connection_stock_reconcile
    from quai.integrations.services.stock_out import connection_stock_levels

    result: dict[str, Any] = {}
    for connection in Connection.objects.order_by("pk"):
        levels = connection_stock_levels(connection=connection)
        edited = [StockLevel(sku=level.sku, available=level.available + 7) for level in levels[-INJECTED_DRIFT:]]
        connection_adapter(connection).push_stock(edited, f"bench-edit:{connection.pk}")
        repaired = connection_stock_reconcile(connection=connection)
        after = connection_stock_reconcile(connection=connection, repair=False)
        events = (
            OutboxEvent.objects.filter(name="inventory.reservation_made", merchant_id=connection.merchant_id)
            .order_by("occurred_at", "pk")
            .values_list("occurred_at", "payload", "relayed_at", "pk")
        )
        marked = dict(
            HandledEvent.objects.filter(
                event__merchant_id=connection.merchant_id, handler=f"integrations.shop_stock.{MARKED_BY}"
            ).values_list("event_id", "handled_at")
        )
        result[connection.platform] = {
            "connection": connection.pk,
            "found": len(repaired.drift),
            "repaired": sum(1 for line in repaired.drift if line.repaired),
            "reconcile_error": repaired.error or after.error,
            "checked": after.checked,
            "drift_after": len(after.drift),
            "levels": {level.sku: level.available for level in levels},
            "changes": [
                (
                    at.timestamp(),
                    str(payload.get("sku_code", "")),
                    int(payload.get("quantity", 0)),
                    relayed.timestamp() if relayed else None,
                    marked[pk].timestamp() if pk in marked else None,
                )
                for at, payload, relayed, pk in events
            ],
        }
    Path(out).write_text(json.dumps(result))


# --- The orchestrator ----------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**intake._env(DB, True), "REDIS_URL": REDIS_URL}


def _child(mode: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    try:
        subprocess.run(
            [sys.executable, "-m", "bench.connectors", f"--{mode}", out, *args], cwd=ROOT, env=env, check=True
        )
        return dict(json.loads(Path(out).read_text()))
    finally:
        Path(out).unlink(missing_ok=True)


def _redis_flush() -> None:
    """The bench's own Redis database starts empty: a crashed run's messages would be taken for this run's."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


def _pending() -> tuple[int, int]:
    """Outbox events not relayed yet, and (connection, SKU) pairs whose last change is not pushed yet."""
    import psycopg

    with psycopg.connect(f"{intake.PG_BASE}/{DB}", autocommit=True) as conn:
        outbox = conn.execute("SELECT count(*) FROM core_outboxevent WHERE relayed_at IS NULL").fetchone()
        dirty = conn.execute(
            "SELECT count(*) FROM integrations_stocksync WHERE generation > pushed_generation"
        ).fetchone()
    return int(outbox[0] if outbox else 0), int(dirty[0] if dirty else 0)


def _start_quai(
    env: dict[str, str], port: int, scratch: Path
) -> tuple[list[subprocess.Popen[bytes]], subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """The workers as production runs them (README): one for the relay's queue, one of its own for ``shop_push``
    (prefetching one message a process: a push waits for no message taken ahead of it), beat beside them (the
    outbox sweep and the shops' sweep are part of the path) with its schedule in the scratch folder, and the
    server. The shop_push worker writes the stock push's timing lines (``connectors_trace``)."""
    log_level = os.environ.get("BENCH_CONNECTORS_WORKER_LOG", "error")
    traced = {**env, "QUAI_WORKER_IMPORTS": "bench.connectors_trace", "BENCH_CONNECTORS_TRACE": str(scratch / TRACE)}
    celery = [sys.executable, "-m", "celery", "-A", "quai", "worker", "--loglevel", log_level]
    workers = [
        subprocess.Popen(
            [*celery, "-Q", "celery", "-c", "2", "-n", "relay@%h"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        ),
        subprocess.Popen(
            [*celery, "-Q", "shop_push", "-c", "3", "--prefetch-multiplier", "1", "-n", "shops@%h"],
            cwd=ROOT,
            env=traced,
            stdout=subprocess.DEVNULL,
        ),
    ]
    beat = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "quai", "beat",
            "--schedule", str(scratch / "beat-schedule"), "--loglevel", log_level,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "quai.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(intake.PROCESSES),
            "--threads",
            str(intake.THREADS),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    return workers, beat, server


def _run() -> dict[str, Any]:
    env = _env()
    scratch = Path(tempfile.mkdtemp(prefix="quai-bench-connectors-"))
    info_path, records_path = scratch / "shops.json", scratch / "records.json"
    shops = server = beat = None
    workers: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {}
    try:
        intake._pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        intake._pg(f'CREATE DATABASE "{DB}"')
        _redis_flush()
        shops = subprocess.Popen(
            [sys.executable, "-m", "bench.connectors", "--shops", str(info_path), str(records_path)], cwd=ROOT
        )
        for _ in range(300):
            if info_path.exists() or shops.poll() is not None:
                break
            time.sleep(0.1)
        if not info_path.exists():
            raise RuntimeError("the fake shops did not start")
        _say("seeding through the services: two merchants, their SKUs and stock, a WooCommerce and a Shopify shop")
        seed = _child("seed", env, str(info_path))
        port = intake._free_port()
        workers, beat, server = _start_quai(env, port, scratch)
        intake._wait_ready(port, server)
        wrk_env = {
            **os.environ,
            "BENCH_OUT": str(scratch),
            "BENCH_KEYS": " ".join(seed["keys"]),
            "BENCH_SKUS_1": " ".join(seed["skus"][0]),
            "BENCH_SKUS_2": " ".join(seed["skus"][1]),
            "BENCH_HOT_SHARE": str(intake.HOT_SHARE),
            "BENCH_RUN": "c",
        }
        intake._wrk(
            port, "/api/v1/orders/bench/bare", 2, {**wrk_env, "BENCH_QUOTA": "0", "BENCH_RUN": "warm"}, "warm-up", None
        )
        _say(f"burst: {ORDERS:,} orders from {intake.CONNECTIONS} connections over HTTP")
        quota = (ORDERS + intake.WRK_THREADS - 1) // intake.WRK_THREADS
        started = time.time()
        sale = intake._wrk(
            port,
            "/api/v1/orders",
            MAX_SECONDS,
            {**wrk_env, "BENCH_QUOTA": str(quota)},
            "orders",
            quota * intake.WRK_THREADS,
        )
        ended = time.time()
        answers = intake._answers(scratch)
        result["accepted"] = sum(1 for row in answers if row[0] in ("200", "201"))
        result["answers"] = len(answers)
        result["burst_s"] = sale["duration_us"] / 1e6
        _say(f"waiting up to {DRAIN_SECONDS} s for the outbox and the stock pushes to drain")
        deadline = time.time() + DRAIN_SECONDS
        pending = _pending()
        while time.time() < deadline and pending != (0, 0):
            time.sleep(0.5)
            pending = _pending()
        drained = time.time()
        result["pending_after_drain"] = pending
        result["window"] = (started, drained)
        result["burst_end"] = ended
        # Beat first, while its schedule file is still there (the scratch folder goes in ``finally``).
        intake._stop(beat)
        beat = None
        intake._stop(server)
        server = None
        for worker in workers:
            intake._stop(worker)
        workers = []
        _say("levels edited on each shop behind Quai's back, then the reconcile, then a read-only reconcile")
        result["check"] = _child("check", env)
        shops.send_signal(signal.SIGTERM)
        shops.wait(60)
        shops = None
        result["shops"] = json.loads(records_path.read_text())
        trace = scratch / TRACE
        lines = trace.read_text().splitlines() if trace.exists() else []
        result["pushes"] = [json.loads(line) for line in lines if line.startswith("{")]
    finally:
        intake._stop(beat)
        intake._stop(server)
        for worker in workers:
            intake._stop(worker)
        intake._stop(shops)
        intake._pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def receipts_of(
    changes: list[list[Any]], receipts: list[list[Any]], final: dict[str, int]
) -> list[tuple[float, float | None, float | None]]:
    """For each change (occurred, SKU, quantity reserved, relayed, [marked]): (occurred, marked — when the shop's
    stock handler ran, or the relay when that is not known —, the time the shop first
    received a level that includes it, or None).

    During the burst a SKU's availability only falls, so the level a change left is the final level plus what the
    later changes took, and a level received includes the change when it is at or below that level. (The final
    level is what Quai allows once all is reserved; a negative level is pushed as zero, hence the floor.)"""
    by_sku: dict[str, list[tuple[float, int]]] = {}
    for at, sku, level in receipts:
        by_sku.setdefault(sku, []).append((float(at), int(level)))
    for rows in by_sku.values():
        rows.sort()
    later: dict[str, int] = {}
    found: list[tuple[float, float | None, float | None]] = []
    for occurred, sku, quantity, relayed, *marked in reversed(changes):
        # the connector's part starts when the shop's stock handler ran (relayed first); else at the relay
        relayed = marked[0] if marked and marked[0] is not None else relayed
        level = max(0, final.get(sku, 0) + later.get(sku, 0))
        later[sku] = later.get(sku, 0) + int(quantity)
        received = next((t for t, shown in by_sku.get(sku, []) if shown <= level), None)
        found.append((float(occurred), None if relayed is None else float(relayed), received))
    return found


def delays(
    changes: list[list[Any]], receipts: list[list[Any]], final: dict[str, int], *, since_relayed: bool = False
) -> tuple[list[float], int]:
    """For each change, the wait until the shop received a level that includes it (``receipts_of``), from the
    change (or, ``since_relayed``, from its relay: the connectors' own part); and how many changes no received level
    includes (or, ``since_relayed``, were not relayed)."""
    waits: list[float] = []
    missing = 0
    for occurred, relayed, received in receipts_of(changes, receipts, final):
        start = relayed if since_relayed else occurred
        if start is None or received is None:
            missing += 1
        else:
            waits.append(max(0.0, received - start))
    return sorted(waits), missing


PARTS = ("waiting for a push to be asked", "task queue", "sleep in the task", "task before HTTP", "HTTP to the shop")


def connector_parts(
    changes: list[list[Any]], receipts: list[list[Any]], final: dict[str, int], pushes: list[dict[str, Any]]
) -> list[tuple[float, tuple[float, ...]]]:
    """Each shown change's connector part (relayed → shop) split along the push that carried it (the push whose
    HTTP call was under way when the shop stamped the level; the worker's timing lines, ``connectors_trace``). The
    push's moments cut the change's wait into consecutive pieces, each counted from the change's relay only:

    - waiting for a push to be asked: until the carrying push was asked for (a push in flight, or the shop's
      interval running: the change waits for the next round);
    - task queue: asked → its task started in a worker (for a round asked for ahead, how late it started);
    - sleep in the task: the interval waited inside the task, holding its worker process;
    - task before HTTP: the rest of the task up to the HTTP call (lease, the dirty SKUs and their levels read);
    - HTTP to the shop: the call's start → the shop stamping the level (a read before the write included).

    A push asked for before the change was relayed (it read the marks after them) thus counts only the part of its
    queue after the relay; a push with no ``asked`` (beat's sweep) counts none.
    """
    pushes = sorted(pushes, key=lambda push: push["done"])
    split: list[tuple[float, tuple[float, ...]]] = []
    for _occurred, relayed, received in receipts_of(changes, receipts, final):
        if relayed is None or received is None:
            continue
        push = next((p for p in pushes if p.get("http") is not None and p["http"] <= received <= p["done"]), None)
        if push is None:
            continue
        started, http, slept = push["started"], push["http"], push["slept"]
        asked = push["asked"] if push.get("asked") is not None else started
        slept_from = push["read"] - slept

        def piece(start: float, end: float, relayed: float = relayed, received: float = received) -> float:
            return max(0.0, min(end, received) - max(start, relayed))

        split.append(
            (
                max(0.0, received - relayed),
                (
                    piece(relayed, asked),
                    piece(asked, started),
                    piece(slept_from, push["read"]),
                    piece(started, slept_from) + piece(push["read"], http),
                    piece(http, received),
                ),
            )
        )
    return split


def _split_rows(
    platform: str, changes: list[list[Any]], in_burst: list[list[Any]], check: dict[str, Any], pushes: list[Any]
) -> list[tuple[str, str, str, str]]:
    """The connector part split (``connector_parts``): each part's p50, then its mean over the slowest 1 % of the
    changes (the tail's make-up: what the p99 is made of)."""
    own = [push for push in pushes if push["connection"] == check["connection"]]
    split = connector_parts(changes, in_burst, check["levels"], own)
    if not split:
        return [(f"[{platform}]   connector split", "no push timing lines", "(reported)", "")]
    split.sort(key=lambda row: row[0])
    tail = split[-max(1, len(split) // 100) :]
    medians = [intake._pct(sorted(row[1][i] for row in split), 50) for i in range(len(PARTS))]
    means = [sum(row[1][i] for row in tail) / len(tail) for i in range(len(PARTS))]
    return [
        (
            f"[{platform}]     split p50: " + " / ".join(PARTS),
            " / ".join(f"{value * 1000:,.0f}" for value in medians) + f" ms ({len(split):,} changes)",
            "(reported)",
            "",
        ),
        (
            f"[{platform}]     slowest 1 % (≥ {tail[0][0] * 1000:,.0f} ms), mean of each part",
            " / ".join(f"{value * 1000:,.0f}" for value in means) + f" ms ({len(tail)} changes)",
            "(reported)",
            "",
        ),
    ]


def _rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    started, drained = result["window"]
    rows: list[tuple[str, str, str, str]] = [
        (
            "burst: orders accepted (2xx) / answered",
            f"{result['accepted']:,} / {result['answers']:,} in {result['burst_s']:.1f} s",
            f"{ORDERS:,} sent",
            "",
        ),
        (
            "outbox events, dirty stock pairs left after the drain",
            f"{result['pending_after_drain'][0]} / {result['pending_after_drain'][1]}",
            "0 / 0",
            intake._verdict(tuple(result["pending_after_drain"]) == (0, 0)),
        ),
    ]
    for platform in ("woocommerce", "shopify"):
        check = result["check"][platform]
        changes = check["changes"]
        in_burst = [row for row in result["shops"]["receipts"][platform] if started <= row[0] <= drained]
        waits, missing = delays(changes, in_burst, check["levels"])
        writes = [t for t in result["shops"]["writes"][platform] if started <= t <= drained]
        span = max(drained - started, 0.001)
        per_second_cap = 1000 / STOCK_INTERVAL_MS
        p99 = intake._pct(waits, 99)
        relay_lags = sorted(row[3] - row[0] for row in changes if row[3] is not None)
        mark_lags = sorted(row[4] - row[0] for row in changes if len(row) > 4 and row[4] is not None)
        own, not_shown = delays(changes, in_burst, check["levels"], since_relayed=True)
        rows += [
            (
                f"[{platform}] stock change → shop p50 / p99",
                f"{intake._pct(waits, 50) * 1000:,.0f} / {p99 * 1000:,.0f} ms ({len(waits):,} changes"
                + (f", {missing} never shown" if missing else "")
                + ")",
                f"p99 < {TARGET_P99_S:.0f} s",
                intake._verdict(bool(waits) and not missing and p99 < TARGET_P99_S),
            ),
            (
                f"[{platform}]   the outbox relay, every handler (change → relayed)",
                f"{intake._pct(relay_lags, 50) * 1000:,.0f} / {intake._pct(relay_lags, 99) * 1000:,.0f} ms "
                f"({len(relay_lags):,} relayed of {len(changes):,})",
                "(reported)",
                "",
            ),
            (
                f"[{platform}]   of which the outbox's part (change → the shop's stock handler ran)",
                f"{intake._pct(mark_lags, 50) * 1000:,.0f} / {intake._pct(mark_lags, 99) * 1000:,.0f} ms "
                f"({len(mark_lags):,} marked of {len(changes):,})",
                "(reported)",
                "",
            ),
            (
                f"[{platform}]   and the connector (handler ran → shop)",
                f"{intake._pct(own, 50) * 1000:,.0f} / {intake._pct(own, 99) * 1000:,.0f} ms ({len(own):,} changes"
                + (f", {not_shown} not relayed or never shown" if not_shown else "")
                + ")",
                "(reported)",
                "",
            ),
            *_split_rows(platform, changes, in_burst, check, result["pushes"]),
            (
                f"[{platform}] stock writes / changes (coalescing)",
                f"{len(writes):,} / {len(changes):,} ({len(writes) / max(len(changes), 1):.2f} a change, "
                f"{len(writes) / span:.1f}/s)",
                f"< changes, <= {per_second_cap:.0f}/s",
                intake._verdict(0 < len(writes) < len(changes) and len(writes) / span <= per_second_cap * 1.05),
            ),
            (
                f"[{platform}] levels received / HTTP calls in all",
                f"{len(in_burst):,} / {result['shops']['requests'][platform]:,}",
                "(reported)",
                "",
            ),
            (
                f"[{platform}] drift found by the reconcile / repaired",
                f"{check['found']} / {check['repaired']}"
                + (f" ({check['reconcile_error']})" if check["reconcile_error"] else ""),
                f"{INJECTED_DRIFT} edited on the shop",
                intake._verdict(check["found"] == check["repaired"] >= INJECTED_DRIFT),
            ),
            (
                f"[{platform}] drift after the reconcile ({check['checked']} SKUs read back)",
                str(check["drift_after"]),
                "0 (must)",
                intake._must(check["drift_after"] == 0 and check["checked"] == SKUS),
            ),
        ]
    if result["shops"].get("throttled"):
        rows.append(("[shopify] calls throttled by the bucket", str(result["shops"]["throttled"]), "(reported)", ""))
    return rows


def main() -> int:
    if shutil.which("wrk") is None:
        print("connectors benchmark: wrk is missing (make install runs scripts/bootstrap.sh, which installs it)")
        return 1
    load = os.getloadavg()[0]
    print(
        f"Quai benchmark — connectors: {ORDERS:,} orders over HTTP, {SKUS} SKUs a merchant, stock out to a fake "
        f"WooCommerce and a fake Shopify on loopback; gunicorn gthread {intake.PROCESSES} × {intake.THREADS}, "
        f"a Celery worker for the relay and one for shop_push, wrk {intake.WRK_THREADS} threads × "
        f"{intake.CONNECTIONS} connections",
        flush=True,
    )
    if load > BUSY_LOAD:
        print(f"note: load average {load:.1f} when starting (> {BUSY_LOAD:g}): the delays measure a busy machine")
    started = time.perf_counter()
    result = _run()
    rows = _rows(result)
    print()
    intake._print_table([("figure", "measured", "target", "verdict"), *rows])
    print(
        f"settings: PostgreSQL {intake.PG_BASE}/{DB}, Redis {REDIS_URL}, DEBUG=false, stock_interval_ms "
        f"{STOCK_INTERVAL_MS} (default), fake shops in their own process; load average {load:.1f} at the start"
    )
    print(f"total time: {time.perf_counter() - started:.0f} s (a MISS is reported, never fails the run)")
    if any(row[3] == "FAIL" for row in rows):
        print("FAILED: a shop still differs from Quai after the reconcile", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) > 1 and sys.argv[1] == "--shops":
        shops_main(sys.argv[2], sys.argv[3])
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] in ("--seed", "--check"):
        {"--seed": lambda: child_seed(sys.argv[2], sys.argv[3]), "--check": lambda: child_check(sys.argv[2])}[
            sys.argv[1]
        ]()
        sys.exit(0)
    sys.exit(main())
