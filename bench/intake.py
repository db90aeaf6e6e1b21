"""``make bench`` (``BENCH_ONLY=intake``): a flash sale of orders over HTTP against Quai started as in production.

PostgreSQL (scratch database ``<BENCH_PG_URL's database>_intake``, by default ``quai_bench_intake``, cloned per run
from ``…_intake_seed``; never the ``BENCH_PG_URL`` database itself) and Redis (``BENCH_INTAKE_REDIS_URL``, default
``redis://127.0.0.1:6379/13``, a db of its own).
The data (two merchants with an API key each, 300 SKUs, one hot SKU holding less stock than its orders ask, and
``BENCH_INTAKE_HISTORY_ORDERS`` past orders, default 10,000, relayed: history_seed) is seeded through the services
before any server starts, then VACUUM ANALYZEd, so each clone starts with a running site's tables and statistics.
Then, once with the group committer and once without (``QUAI_GROUP_COMMIT=false``), each on a fresh clone:

- the server chosen by ``BENCH_INTAKE_SERVER``: ``granian`` (default, as in production since 2026-12-04: its WSGI
  interface, Rust I/O, the Django app in ``--blocking-threads``; less CPU a request than gunicorn and a bare
  endpoint's p99 under 0.6 s against gunicorn's 4-7 s at the same load, docs/INTAKE.md) or ``gunicorn``
  (``gthread``), ``BENCH_INTAKE_PROCESSES`` × ``BENCH_INTAKE_THREADS`` (default 1 × 32, what served best on 2
  cores) either way, DEBUG off, Celery on Redis beside it (the outbox relay, webhook deliveries), on a free
  loopback port. Why threads: requests spend
  most of their time waiting on the database; threads wait cheaply and share one group committer per process
  (docs/INTAKE.md); an async server would run the same synchronous Django code in threads anyway; two Celery
  workers as in production (README): ``-Q celery -c 2`` (the relay) and ``-Q shop_push -c 2`` (webhook sends, the
  outbox's priority pass);
- the ceiling: ``wrk`` posting the same order body to ``POST /api/v1/orders/bench/bare`` (the same auth and schema,
  one row committed per request; mounted by ``QUAI_BENCH_ENDPOINTS=true``) for ``BENCH_INTAKE_CEILING_SECONDS``;
- the sale: ``wrk`` (``bench/intake.lua``) posting ``BENCH_INTAKE_ORDERS`` orders (default 20,000) with unique
  external ids from ``BENCH_INTAKE_CONNECTIONS`` connections (default 48), alternating the merchants' keys, 30 % on
  the hot SKU; bounded by ``BENCH_INTAKE_MAX_SECONDS``; ``BENCH_INTAKE_COMPARE=0`` runs it with the committer only;
- the batch endpoint (committer run, once the sale's outbox drained): ``wrk`` (``bench/intake_batch.lua``) posting
  ``BENCH_INTAKE_BATCH_SIZE`` orders (default 100) per ``POST /api/v1/orders/batch`` from
  ``BENCH_INTAKE_BATCH_CONNECTIONS`` connections (default 4) for ``BENCH_INTAKE_BATCH_SECONDS`` (default 10; 0
  skips it), channel ``bench-batch``: orders accepted per second and the p99 of a request. The sale's own database
  figures (allocation, relay lag, lost or duplicated) stay those of the sale's orders (channel ``bench``, events
  before the batch phase);
- a replay of ``BENCH_INTAKE_REPLAY`` accepted bodies (each must answer the same order), then the database checks:
  intake → allocated from ``core.StateTransition``, oversold units, the drift check, every 2xx id stored once;
- a local receiver subscribed to ``inventory.stock_changed`` and ``inventory.reservation_made`` (what an order
  changes: availability): occurred_at → receipt;
- the relay: the bench waits (up to ``BENCH_INTAKE_DRAIN_WAIT`` s) for the outbox to drain, then prints the lag of
  the sale's events (occurred → relayed, p50 / p99, from the outbox rows), the relay's throughput (events relayed
  / first recorded → last relayed) and the CPU each worker (and the server) used per accepted order, read from
  ``/proc`` at the sale's start and once the outbox drained; the check ANALYZEs the tables the sale grew first;
- ``--relay-cost``: in-process, on its own clone, each outbox handler's queries and CPU per order (child_relay_cost);
- ``--web-cost``: in-process, on its own clone, the web process's CPU per order through the WSGI application (every
  middleware, the auth, Ninja, the group committer) from ``BENCH_INTAKE_THREADS`` threads, split between the request
  threads and the committer's (child_web_cost): the figure the wall-clock rates of a shared machine cannot give.

Each figure is printed against its target (PASS / MISS); FAIL (exit status 1) only for oversold, drift, lost or
duplicated orders.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "intake.lua"
LUA_BATCH = Path(__file__).resolve().parent / "intake_batch.lua"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


ORDERS = _env_int("BENCH_INTAKE_ORDERS", 20_000)
SKUS = 300
HOT_SHARE = 30  # % of orders on the hot SKU
HOT_STOCK = ORDERS * HOT_SHARE // 100 // 2  # the hot SKU runs out half-way through its orders
OTHER_STOCK = 5_000
CONNECTIONS = _env_int("BENCH_INTAKE_CONNECTIONS", 48)
WRK_THREADS = _env_int("BENCH_INTAKE_WRK_THREADS", 2)
SERVER = os.environ.get("BENCH_INTAKE_SERVER", "").strip() or "granian"
# One process of 32 threads served a sale best on 2 cores (docs/INTAKE.md): its one committer sees every request.
PROCESSES = _env_int("BENCH_INTAKE_PROCESSES", 1)
THREADS = _env_int("BENCH_INTAKE_THREADS", 32)
CEILING_SECONDS = _env_int("BENCH_INTAKE_CEILING_SECONDS", 8)
MAX_SECONDS = _env_int("BENCH_INTAKE_MAX_SECONDS", 120)
REPLAY = _env_int("BENCH_INTAKE_REPLAY", 500)
WEBHOOK_WAIT = _env_int("BENCH_INTAKE_WEBHOOK_WAIT", 30)
DRAIN_WAIT = _env_int("BENCH_INTAKE_DRAIN_WAIT", 120)
RELAY_COST_ORDERS = _env_int("BENCH_INTAKE_RELAY_ORDERS", 500)
RELAY_COST_STOCK = _env_int("BENCH_INTAKE_RELAY_STOCK", 100)
WEB_COST_ORDERS = _env_int("BENCH_INTAKE_WEB_ORDERS", 2000)
# The seed's past orders (history_seed): the tables and statistics of a site that has been running.
HISTORY_ORDERS = _env_int("BENCH_INTAKE_HISTORY_ORDERS", 10_000)
# The batch endpoint's phase (committer run only, after the sale drained): orders per request, connections (a shop
# connector or a CSV import: a few clients sending big requests), seconds; 0 seconds skips it.
BATCH_SIZE = _env_int("BENCH_INTAKE_BATCH_SIZE", 100)
BATCH_CONNECTIONS = _env_int("BENCH_INTAKE_BATCH_CONNECTIONS", 4)
BATCH_SECONDS = _env_int("BENCH_INTAKE_BATCH_SECONDS", 10)
# 0: the sale runs with the group committer only (a server shape measured quickly), not again one commit per order.
COMPARE_ONE_COMMIT = _env_int("BENCH_INTAKE_COMPARE", 1) != 0
WEB_COST_PROFILE = os.environ.get("BENCH_INTAKE_PROFILE", "").strip()


def _scratch_names() -> tuple[str, str]:
    """The server and the scratch database's name: from ``BENCH_PG_URL`` (``postgres://…/h4_bench`` → the server of
    that URL and ``h4_bench_intake``, cloned from ``h4_bench_intake_seed``), so two people benchmarking on one server
    never drop each other's databases; ``BENCH_INTAKE_PG`` (a server, no database) overrides the server. Default:
    the local server's ``quai_bench_intake`` as before."""
    url = os.environ.get("BENCH_PG_URL", "").strip() or "postgres://postgres@127.0.0.1:5432/quai_bench"
    server, _, name = url.rstrip("/").rpartition("/")
    base = os.environ.get("BENCH_INTAKE_PG", "").strip() or server.replace("postgres://", "postgresql://", 1)
    return base, f"{name or 'quai_bench'}_intake"


PG_BASE, DB = _scratch_names()
SEED_DB = f"{DB}_seed"
REDIS_URL = os.environ.get("BENCH_INTAKE_REDIS_URL", "redis://127.0.0.1:6379/13")

# A Fernet key (32 bytes, URL-safe base64) for the scratch databases only.
BENCH_ENCRYPTION_KEY = "cXVhaS1iZW5jaC1vbmx5LWtleS0wMTIzNDU2Nzg5YWI="

TARGET_RATE = 1200.0
AIM_RATE = 2000.0
TARGET_P99_MS = 200.0
TARGET_WEBHOOK_P99_S = 1.0


def _say(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


def order_body(external_id: str, sku: str, quantity: int) -> dict[str, Any]:
    """The order the Lua script posts (bench/intake.lua builds the same JSON): replays rebuild it from its parts."""
    return {
        "channel": "bench",
        "external_id": external_id,
        "currency": "EUR",
        "shopper": {"name": "Camille Martin", "email": "camille@example.fr", "phone": "06 12 34 56 78"},
        "shipping_address": {"line1": "12 rue de la Roquette", "postcode": "75011", "city": "Paris", "country": "FR"},
        "carrier_service": "colissimo_home",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "19.90"}],
    }


# --- Child processes (Django, DATABASE_URL = a scratch database) ---------------------------------------------------


def child_seed(out: str, receiver_url: str) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from quai.catalog.models import Sku
    from quai.integrations.services import webhook_subscription_create
    from quai.inventory.services import stock_receive
    from quai.tenants.models import Merchant
    from quai.tenants.services import api_key_create
    from quai.warehouse.models import Location, Site, Zone

    _say("migrating the seed database")
    call_command("migrate", verbosity=0, interactive=False)
    bare_table_create()
    site = Site.objects.create(code="bench", name="Bench")
    zone = Zone.objects.create(site=site, code="STOCK", name="Stock", kind="storage")
    location = Location.objects.create(site=site, zone=zone, code="A-01-01-01")
    keys, skus = [], []
    for m in (1, 2):
        merchant = Merchant.objects.create(code=f"bench{m}", name=f"Bench {m}", legal_name=f"Bench {m} SAS")
        keys.append(api_key_create(merchant=merchant, name="bench").secret)
        codes = []
        for i in range(SKUS // 2):
            code = "HOT" if (m == 1 and i == 0) else f"M{m}-{i:03d}"
            sku = Sku.objects.create(merchant=merchant, code=code, name=code)
            stock_receive(sku=sku, location=location, quantity=HOT_STOCK if code == "HOT" else OTHER_STOCK)
            codes.append(code)
        skus.append(codes)
    history_seed(skus)
    # An order changes availability by its reservation (no unit moves until the pick): both events tell a shop.
    # Subscribed after the history: the receiver gets the sale's events only (a subscription gets what happens from
    # its creation on), and the deliveries' table starts empty, as a new merchant's subscription's would.
    webhook_subscription_create(
        merchant=Merchant.objects.get(code="bench1"),
        url=receiver_url,
        event_types=["inventory.stock_changed", "inventory.reservation_made"],
    )
    _say("VACUUM ANALYZE of the seed (its statistics are the clones')")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    Path(out).write_text(json.dumps({"keys": keys, "skus": skus}))


def history_seed(skus: list[list[str]]) -> None:
    """The warehouse's past: ``HISTORY_ORDERS`` orders (channel ``history``, one line each, never the hot SKU)
    written through the bulk intake and relayed by the outbox's handlers, so the orders, their transitions, the
    outbox and the handlers' own tables hold what a running site holds, and the seed's statistics (ANALYZEd
    before the clone) describe them. Without it the sale ran on tables whose statistics said "no order, no order
    transition, no order event": a plan chosen on rows=1 (a nested loop over a table that grew to 25,000 rows
    during the sale) is the bench's artefact, not the warehouse's — although a new site's first sale is that
    case too, which is why our hot statements must not depend on them (docs/INTAKE.md)."""
    from quai.core.outbox import outbox_sweep
    from quai.orders.services.intake_batched import order_intake_many
    from quai.tenants.models import Merchant

    if HISTORY_ORDERS <= 0:
        return
    _say(f"history: {HISTORY_ORDERS:,} past orders through the bulk intake, relayed")
    merchants = list(Merchant.objects.filter(code__in=["bench1", "bench2"]).order_by("code"))
    for m, merchant in enumerate(merchants):
        codes = [code for code in skus[m] if code != "HOT"]
        bodies = [
            {**order_body(f"H{m}-{n}", codes[n % len(codes)], 1), "channel": "history"}
            for n in range(m, HISTORY_ORDERS, 2)
        ]
        for start in range(0, len(bodies), 500):
            outcomes = order_intake_many(merchant=merchant, orders=bodies[start : start + 500])
            failed = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
            if failed:
                raise RuntimeError(f"{len(failed)} history orders refused, e.g. {failed[0]!r}")
            outbox_sweep(batch=100, max_batches=10_000)


def bare_table_create() -> None:
    """The bare endpoint's table, made before any server starts: made by its first requests instead, concurrent
    ``CREATE TABLE IF NOT EXISTS`` raced on PostgreSQL's catalogue ("relation … already exists": warm-up 500s)."""
    from quai.orders.bench_api import _table_ensure

    _table_ensure()


def child_check(out: str, accepted_path: str, until: str = "") -> None:
    """The sale's database figures: its orders (channel ``bench``) and the events recorded before ``until`` (ISO
    time the batch phase started; empty: all)."""
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count, Sum

    from quai.inventory.models import Reservation, StockLevel
    from quai.inventory.selectors import stock_drift
    from quai.orders.models import Order

    accepted = json.loads(Path(accepted_path).read_text())
    result: dict[str, Any] = {}
    with connection.cursor() as cursor:
        # The sale grew these tables by tens of thousands of rows since the seed's statistics: planned on those, the
        # join below was a nested loop estimated at one row that ran for minutes.
        cursor.execute("ANALYZE orders_order, core_statetransition, core_outboxevent")
        # Intake → allocated: the order's creation to its allocated transition (orders allocated at intake).
        cursor.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d),"
            " count(*) FROM (SELECT extract(epoch FROM t.at - o.created_at) AS d FROM orders_order o"
            " JOIN core_statetransition t ON t.aggregate = 'order' AND t.aggregate_id = o.id::text"
            " AND t.to_status = 'allocated' WHERE o.channel = 'bench') x"
        )
        p50, p99, n = cursor.fetchone()
        result["allocated_p50_s"], result["allocated_p99_s"], result["allocated"] = p50 or 0, p99 or 0, n
        # The relay's lag: each event of the sale from its recording (in the order's commit) to its relay run
        # (``relayed_at`` is that run's start: under by at most one relay batch's handling time).
        cursor.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d),"
            " count(d), count(*) - count(d), extract(epoch FROM max(relayed_at) - min(occurred_at)),"
            " string_agg(DISTINCT CASE WHEN d IS NULL THEN name END, ', ')"
            " FROM (SELECT e.name, e.occurred_at, e.relayed_at, extract(epoch FROM e.relayed_at - e.occurred_at) AS d"
            " FROM core_outboxevent e WHERE e.occurred_at >= (SELECT min(created_at) FROM orders_order"
            " WHERE channel = 'bench')" + (" AND e.occurred_at < %s) x" if until else ") x"),
            [datetime.fromisoformat(until)] if until else [],
        )
        p50, p99, relayed, pending, span, pending_names = cursor.fetchone()
        result["relay_p50_s"], result["relay_p99_s"] = p50 or 0, p99 or 0
        result["relayed"], result["relay_pending"] = relayed, pending
        # The relay's throughput over the sale and its drain: events relayed from the first one's recording to the
        # last one's relay run (a floor when the relay kept up: it then waited on the intake).
        result["relay_events_per_s"] = relayed / float(span) if span else 0.0
        result["relay_pending_names"] = pending_names or ""
    result["statuses"] = dict(
        Order.objects.filter(channel="bench").values_list("status").annotate(n=Count("id")).order_by()
    )
    oversold = 0
    mismatch = 0
    for level in StockLevel.objects.all():
        held = (
            Reservation.objects.filter(sku_id=level.sku_id, status="open").aggregate(total=Sum("quantity"))["total"]
            or 0
        )
        oversold += max(0, level.reserved - level.on_hand, held - level.on_hand)
        mismatch += abs(held - level.reserved)
    result["oversold"], result["counter_mismatch"] = oversold, mismatch
    result["drift"] = len(stock_drift())
    ids = list(Order.objects.filter(channel="bench").values_list("external_id", flat=True))
    stored = set(ids)
    result["orders_stored"] = len(ids)
    result["duplicated"] = len(ids) - len(stored)
    result["lost"] = sum(1 for external_id in accepted if external_id not in stored)
    Path(out).write_text(json.dumps(result, default=str))


def child_relay_cost(out: str) -> None:
    """In-process, on a seeded database: write ``RELAY_COST_ORDERS`` orders of two lines through the bulk intake
    (``order_intake_many``: the committer's ``orders_write_many``), relay their events with ``outbox_sweep`` and
    count each handler's queries and CPU; then receive stock on ``RELAY_COST_STOCK`` SKUs (one
    ``inventory.stock_changed`` each) and measure their relay the same way. Nothing is sent: no worker runs."""
    import dataclasses
    import uuid

    import django

    django.setup()
    from django.db import connection

    from quai.catalog.models import Sku
    from quai.core import events as core_events
    from quai.core.outbox import outbox_sweep
    from quai.inventory.services import stock_receive
    from quai.orders.services.intake_batched import order_intake_many
    from quai.tenants.models import Merchant
    from quai.warehouse.models import Location

    current: dict[str, str] = {"key": "(the relay itself)"}
    stats: dict[str, dict[str, float]] = {}

    def stat(key: str) -> dict[str, float]:
        return stats.setdefault(key, {"queries": 0, "cpu_s": 0.0, "events": 0, "calls": 0})

    def count(execute: Any, sql: Any, params: Any, many: Any, context: Any) -> Any:
        stat(current["key"])["queries"] += 1
        return execute(sql, params, many, context)

    def timed(key: str, call: Any, events: Any) -> None:
        current["key"], started = key, time.process_time()
        try:
            call()
        finally:
            entry = stat(key)
            entry["cpu_s"] += time.process_time() - started
            entry["events"] += events
            entry["calls"] += 1
            current["key"] = "(the relay itself)"

    def measured(key: str, fn: Any) -> Any:
        return lambda event, envelope: timed(key, lambda: fn(event, envelope), 1)

    def measured_batch(key: str, batch: Any) -> Any:
        return None if batch is None else (lambda items: timed(key, lambda: batch(items), len(items)))

    for key, sub in list(core_events._subscriptions.items()):
        core_events._subscriptions[key] = dataclasses.replace(
            sub, fn=measured(key, sub.fn), batch=measured_batch(key, sub.batch)
        )

    def relay(label: str) -> dict[str, Any]:
        stats.clear()
        with connection.execute_wrapper(count):
            started, wall = time.process_time(), time.perf_counter()
            events = outbox_sweep(batch=100, max_batches=10_000)
            cpu, wall = time.process_time() - started, time.perf_counter() - wall
        handled_cpu = sum(entry["cpu_s"] for key, entry in stats.items() if not key.startswith("("))
        stat("(the relay itself)")["cpu_s"] = cpu - handled_cpu
        return {"label": label, "events": events, "cpu_s": cpu, "wall_s": wall, "handlers": dict(stats)}

    outbox_sweep(batch=100, max_batches=10_000)  # whatever the seed left pending is not measured
    merchants = list(Merchant.objects.filter(code__in=["bench1", "bench2"]).order_by("code"))
    codes = [list(Sku.objects.filter(merchant=m).order_by("code").values_list("code", flat=True)) for m in merchants]
    run = uuid.uuid4().hex[:6]
    orders: list[list[dict[str, Any]]] = [[], []]
    for n in range(RELAY_COST_ORDERS):
        m = n % 2
        first = "HOT" if (m == 0 and n % 10 < 3) else codes[m][1 + n % (len(codes[m]) - 1)]
        second = codes[m][1 + (n * 7 + 3) % (len(codes[m]) - 1)]
        body = order_body(f"R{run}-{n}", first, 1)
        if second != first:
            body["lines"].append({"sku": second, "quantity": 1, "unit_price": "9.90"})
        orders[m].append(body)
    for merchant, bodies in zip(merchants, orders, strict=True):
        for start in range(0, len(bodies), 500):
            outcomes = order_intake_many(merchant=merchant, orders=bodies[start : start + 500])
            failed = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
            if failed:
                raise RuntimeError(f"{len(failed)} orders refused, e.g. {failed[0]!r}")
    intake = relay(f"{RELAY_COST_ORDERS} orders written in bulk")
    intake["orders"] = RELAY_COST_ORDERS
    location = Location.objects.get(code="A-01-01-01")
    for sku in Sku.objects.filter(merchant__in=merchants).order_by("merchant_id", "code")[:RELAY_COST_STOCK]:
        stock_receive(sku=sku, location=location, quantity=1)
    stock = relay(f"{RELAY_COST_STOCK} SKUs received (one stock change each)")
    stock["orders"] = 0
    Path(out).write_text(json.dumps({"intake": intake, "stock": stock}))


def child_web_cost(out: str) -> None:
    """In-process, on a seeded database: ``WEB_COST_ORDERS`` of the sale's orders (alternating the merchants, 30 %
    on the hot SKU, one line each) posted to ``POST /api/v1/orders`` through ``quai.wsgi.application`` from
    ``THREADS`` threads, as one web process of the sale serves them. CPU per order (``time.thread_time``) of the
    request threads and of the committer's thread, the committer's batches, and the wall rate (a shared machine's:
    indicative only). ``BENCH_INTAKE_PROFILE=<path>``: a cProfile of both sides in CPU time, written there (the
    profiler's own cost inflates the figures about threefold; its ranking is what it is for)."""
    import cProfile
    import io
    import pstats
    import random
    import uuid

    import django

    django.setup()
    from quai.catalog.models import Sku
    from quai.core import batching
    from quai.orders.services.intake_batched import intake_committer
    from quai.tenants.models import Merchant
    from quai.tenants.services import api_key_create
    from quai.wsgi import application

    merchants = list(Merchant.objects.filter(code__in=["bench1", "bench2"]).order_by("code"))
    run = uuid.uuid4().hex[:6]
    keys = [api_key_create(merchant=merchant, name=f"web cost {run}").secret for merchant in merchants]
    # Merchant 1's first code is the hot SKU ("HOT" sorts before "M1-…"), as in the seed and the Lua script.
    codes = [list(Sku.objects.filter(merchant=m).order_by("code").values_list("code", flat=True)) for m in merchants]
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    cpu = {"request": 0.0, "commit": 0.0}
    run_batch = batching.GroupCommitter._run_batch
    committer_profile = threading.local()

    def measured_batch(self: Any, batch: Any) -> None:
        profile = getattr(committer_profile, "profile", None)
        if WEB_COST_PROFILE and profile is None:
            profile = committer_profile.profile = cProfile.Profile(time.thread_time)
            with lock:
                profiles.append(profile)
        started = time.thread_time()
        if profile is not None:
            profile.enable()
        try:
            run_batch(self, batch)
        finally:
            if profile is not None:
                profile.disable()
            with lock:
                cpu["commit"] += time.thread_time() - started

    batching.GroupCommitter._run_batch = measured_batch  # type: ignore[method-assign]
    statuses: dict[str, int] = {}

    def post(key: int, external_id: str, sku: str) -> str:
        body = json.dumps(order_body(external_id, sku, 1)).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/orders",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {keys[key]}",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        answered: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            answered.append(status[:3])
            return None

        b"".join(application(environ, start_response))
        return answered[0]

    def client(number: int, count: int, profile: cProfile.Profile | None) -> None:
        draw = random.Random(number)
        started = time.thread_time()
        if profile is not None:
            profile.enable()
        for index in range(count):
            key = index % 2
            hot = key == 0 and draw.randrange(100) < HOT_SHARE * 2
            sku = codes[0][0] if hot else draw.choice(codes[key][1:])
            status = post(key, f"W{run}-{number}-{index}", sku)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        if profile is not None:
            profile.disable()
        with lock:
            cpu["request"] += time.thread_time() - started

    for index in range(20):  # warm-up: imports, the keys, the prepared statements
        post(index % 2, f"W{run}-warm-{index}", codes[index % 2][1 + index])
    statuses.clear()
    cpu.update(request=0.0, commit=0.0)
    stats = intake_committer().stats
    batches_before, units_before = stats.batches, stats.units
    per_thread = max(1, WEB_COST_ORDERS // THREADS)
    request_profiles = [cProfile.Profile(time.thread_time) if WEB_COST_PROFILE else None for _ in range(THREADS)]
    threads = [
        threading.Thread(target=client, args=(number, per_thread, request_profiles[number]))
        for number in range(THREADS)
    ]
    wall, process = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, process = time.perf_counter() - wall, time.process_time() - process
    orders = per_thread * THREADS
    batches = stats.batches - batches_before
    if WEB_COST_PROFILE:
        report = io.StringIO()
        for label, group in (("request threads", request_profiles), ("committer thread", profiles)):
            measured = [profile for profile in group if profile is not None]
            if measured:
                report.write(f"=== {label} (CPU time; cumulative, then own) ===\n")
                ranked = pstats.Stats(*measured, stream=report)
                ranked.sort_stats("cumulative").print_stats(50)
                ranked.sort_stats("tottime").print_stats(30)
        Path(WEB_COST_PROFILE).write_text(report.getvalue())
    result = {
        "orders": orders,
        "threads": THREADS,
        "statuses": statuses,
        "process_cpu_s": process,
        "request_cpu_s": cpu["request"],
        "commit_cpu_s": cpu["commit"],
        "batches": batches,
        "units": stats.units - units_before,
        "wall_s": wall,
    }
    Path(out).write_text(json.dumps(result))


def web_cost_table(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    orders = max(1, result["orders"])
    return [
        (
            f"web process CPU per order ({result['threads']} threads, in-process)",
            f"{result['process_cpu_s'] * 1000 / orders:.2f} ms",
            f"request threads {result['request_cpu_s'] * 1000 / orders:.2f} / committer "
            f"{result['commit_cpu_s'] * 1000 / orders:.2f} ms",
            ", ".join(f"{k}: {v:,}" for k, v in sorted(result["statuses"].items())),
        ),
        (
            "  committer batches (orders per batch)",
            f"{result['batches']:,}",
            f"{result['units'] / max(1, result['batches']):.1f}",
            f"{orders / result['wall_s']:,.0f} orders/s wall (indicative)" if result["wall_s"] else "",
        ),
    ]


def relay_cost_table(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """One row per handler: events, queries, CPU — per order for the intake relay, per event for stock."""
    rows: list[tuple[str, str, str, str]] = []
    for part in ("intake", "stock"):
        run = result[part]
        per = run["orders"] or run["events"] or 1
        unit = "order" if run["orders"] else "event"
        total_queries = sum(entry["queries"] for entry in run["handlers"].values())
        rows.append(
            (
                f"relay: {run['label']}",
                f"{run['events']:,} events, {total_queries / per:.1f} queries/{unit}",
                f"{run['cpu_s'] * 1000 / per:.2f} ms CPU/{unit}",
                f"{run['wall_s']:.1f} s",
            )
        )
        for key, entry in sorted(run["handlers"].items(), key=lambda item: -item[1]["queries"]):
            rows.append(
                (
                    f"  {key}",
                    f"{entry['events']:,} events in {entry['calls']:,} calls",
                    f"{entry['queries'] / per:.2f} queries/{unit}",
                    f"{entry['cpu_s'] * 1000 / per:.2f} ms CPU/{unit}",
                )
            )
    return rows


# --- The orchestrator ----------------------------------------------------------------------------------------------


def _pg(statement: str, database: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(f"{PG_BASE}/{database}", autocommit=True) as conn:
        conn.execute(statement)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    """A local webhook receiver: records when each availability event (stock changed, reservation made) arrived after
    it occurred."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1, so the sender's connections are kept alive as a merchant's endpoint keeps them (HTTP/1.0 closed
            # each one: a TCP connect per delivery); every answer says its length and every body is read whole.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    occurred = datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()
                    with receiver.lock:
                        receiver.delays.append(now - occurred)
                except (ValueError, KeyError):
                    pass
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 512  # a real receiver's listen backlog, not socketserver's 5

        self.server = Server(("127.0.0.1", _free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[float]:
        with self.lock:
            delays, self.delays = self.delays, []
        return delays


def _env(database: str, group_commit: bool) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "quai.settings",
        "DATABASE_URL": f"{PG_BASE.replace('postgresql://', 'postgres://', 1)}/{database}",
        "REDIS_URL": REDIS_URL,
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-not-used-for-anything-else-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "QUAI_HTTPS": "false",  # plain HTTP on loopback: no TLS proxy in front, so no redirect
        "DB_CONN_MAX_AGE": "60",
        "QUAI_LOG_LEVEL": "ERROR",
        "QUAI_BENCH_ENDPOINTS": "true",
        "QUAI_WEBHOOKS_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        # DEBUG off requires a key for the secrets stored encrypted (webhook and shop secrets): a bench-only one.
        "QUAI_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
        "QUAI_GROUP_COMMIT": "true" if group_commit else "false",
    }


def _child(mode: str, env: dict[str, str], *args: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    try:
        subprocess.run([sys.executable, "-m", "bench.intake", f"--{mode}", out, *args], cwd=ROOT, env=env, check=True)
        return dict(json.loads(Path(out).read_text()))
    finally:
        Path(out).unlink(missing_ok=True)


def _tree(pid: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its descendants, those alive and those reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, from /proc."""
    total = 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    import httpx

    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"{SERVER} exited before answering")
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"{SERVER} did not answer within 60 s")


def _wrk(
    port: int,
    path: str,
    seconds: int,
    env: dict[str, str],
    label: str,
    total: int | None,
    *,
    script: Path = LUA,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """Run wrk with ``script`` (bench/intake.lua); a progress bar fed by the lines the script writes as answers
    come (``total``), or by the seconds."""
    from tqdm import tqdm

    out_dir = Path(env["BENCH_OUT"])
    for old in out_dir.glob("answers-*.txt"):
        old.unlink()
    command = [
        "wrk",
        f"-t{min(WRK_THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{path}",
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started = time.perf_counter()
    with tqdm(
        total=total or seconds,
        desc=label,
        unit="order" if total else "s",
        file=sys.stderr,
        leave=False,
        mininterval=5 if not sys.stderr.isatty() else 0.2,
    ) as bar:
        while process.poll() is None:
            time.sleep(0.25)
            done = _answered(out_dir) if total else int(time.perf_counter() - started)
            bar.n = min(done, total or seconds)
            bar.refresh()
            if total and done >= total:
                # A wrk thread that stopped itself leaves wrk's clock running until -d: stop wrk here, so its
                # duration (and the rate) ends with the last answer. wrk prints its summary on SIGINT.
                process.send_signal(signal.SIGINT)
                process.wait(30)
    output = (process.stdout.read() if process.stdout else b"").decode()
    found: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("BENCH "):
            found.update(json.loads(line[6:]))
    if not found:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    return found


def _answered(out_dir: Path) -> int:
    count = 0
    for path in out_dir.glob("answers-*.txt"):
        with path.open("rb") as handle:
            count += handle.read().count(b"\n")
    return count


def _answers(out_dir: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    for path in out_dir.glob("answers-*.txt"):
        rows.extend(line.split() for line in path.read_text().splitlines() if line.strip())
    return rows


def _replay(port: int, keys: list[str], sample: list[list[str]]) -> dict[str, int]:
    """Post accepted orders again: each must answer 200 with the order it got the first time."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def one(row: list[str]) -> bool:
        _status, external_id, order_id, key, sku, quantity = row[:6]
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/orders",
            json=order_body(external_id, sku, int(quantity)),
            headers={"Authorization": f"Bearer {keys[int(key)]}"},
            timeout=30,
        )
        return response.status_code == 200 and str(response.json().get("id")) == order_id

    with ThreadPoolExecutor(8) as pool:
        same = sum(pool.map(one, sample))
    return {"replayed": len(sample), "same": same}


def _server_command(port: int) -> list[str]:
    """The web server as in production, ``BENCH_INTAKE_SERVER`` (gunicorn or granian), PROCESSES × THREADS."""
    if SERVER == "granian":
        # WSGI interface: granian's Rust runtime does the HTTP I/O; each worker process runs the Django app in its
        # blocking threads (the threads of one process share its group committer, as gunicorn's gthread do).
        return [
            str(Path(sys.executable).parent / "granian"),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(PROCESSES),
            "--blocking-threads",
            str(THREADS),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            "--no-access-log",
            "quai.wsgi:application",
        ]
    if SERVER != "gunicorn":
        raise SystemExit(f"BENCH_INTAKE_SERVER must be gunicorn or granian, not {SERVER!r}")
    # gunicorn's own "-c" default would read ./gunicorn.conf.py if any: the options are all given here.
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "quai.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        str(PROCESSES),
        "--threads",
        str(THREADS),
        "--backlog",
        "2048",
        "--log-level",
        "warning",
    ]


def _outbox_pending() -> int:
    import psycopg

    with psycopg.connect(f"{PG_BASE}/{DB}", autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM core_outboxevent WHERE relayed_at IS NULL").fetchone()
    return int(row[0]) if row else 0


def _redis_flush() -> None:
    """Empty the bench's own Redis db: a run starts with no task queued and no mark set."""
    import redis

    redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2).flushdb()


def _mode(group_commit: bool, seed: dict[str, Any], receiver: Receiver, ceiling: bool) -> dict[str, Any]:
    name = "with the group committer" if group_commit else "one commit per order (QUAI_GROUP_COMMIT=false)"
    print(f"==> intake {name}", flush=True)
    _pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    _pg(f'CREATE DATABASE "{DB}" TEMPLATE "{SEED_DB}"')
    env = _env(DB, group_commit)
    out_dir = Path(tempfile.mkdtemp(prefix="quai-bench-intake-"))
    port = _free_port()
    result: dict[str, Any] = {"group_commit": group_commit}
    server = worker = pusher = None
    _redis_flush()  # the last run's queued tasks and marks would be this run's backlog
    try:
        # As in production (README): the relay's worker, and one for shop_push (webhook sends, the priority pass)
        # that no relay run ever holds up. One worker taking both queues (as this bench had) left the sender and
        # the pass waiting behind the relay's tasks, or the relay with one process while the sender lingered.
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "quai", "worker", "-Q", "celery", "-c", "2", "--loglevel", "error"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        pusher = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "quai", "worker", "-Q", "shop_push", "-c", "2"),
                *("--prefetch-multiplier", "1", "--loglevel", "error", "-n", "push@%h"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        server = subprocess.Popen(_server_command(port), cwd=ROOT, env=env)
        _wait_ready(port, server)
        wrk_env = {
            **os.environ,
            "BENCH_OUT": str(out_dir),
            "BENCH_KEYS": " ".join(seed["keys"]),
            "BENCH_SKUS_1": " ".join(seed["skus"][0]),
            "BENCH_SKUS_2": " ".join(seed["skus"][1]),
            "BENCH_HOT_SHARE": str(HOT_SHARE),
            "BENCH_RUN": "w" if group_commit else "o",
        }
        # Warm up: every process imports, connects and caches the keys before anything is measured.
        _wrk(
            port, "/api/v1/orders/bench/bare", 2, {**wrk_env, "BENCH_QUOTA": "0", "BENCH_RUN": "warm"}, "warm-up", None
        )
        if ceiling:
            _say(f"ceiling: bare endpoint (same body, one row committed per request) for {CEILING_SECONDS} s")
            bare = _wrk(
                port, "/api/v1/orders/bench/bare", CEILING_SECONDS, {**wrk_env, "BENCH_QUOTA": "0"}, "bare", None
            )
            result["ceiling"] = bare
        receiver.take()
        _say(f"sale: {ORDERS:,} orders from {CONNECTIONS} connections, {HOT_SHARE} % on the hot SKU")
        quota = (ORDERS + WRK_THREADS - 1) // WRK_THREADS
        cpu_before = {
            "worker": _cpu_seconds(worker.pid),
            "pusher": _cpu_seconds(pusher.pid),
            "server": _cpu_seconds(server.pid),
        }
        sale_ended = 0.0
        sale = _wrk(
            port, "/api/v1/orders", MAX_SECONDS, {**wrk_env, "BENCH_QUOTA": str(quota)}, "orders", quota * WRK_THREADS
        )
        sale_ended = time.perf_counter()
        result["sale"] = sale
        result["rss_mb"] = _rss_mb(server.pid)
        answers = _answers(out_dir)
        accepted = [row for row in answers if row[0] in ("200", "201")]
        result["answers"] = len(answers)
        result["accepted"] = len(accepted)
        result["statuses"] = {}
        for row in answers:
            result["statuses"][row[0]] = result["statuses"].get(row[0], 0) + 1
        step = max(1, len(accepted) // REPLAY)
        sample = accepted[::step][:REPLAY]
        _say(f"replaying {len(sample)} accepted orders")
        result["replay"] = _replay(port, seed["keys"], sample)
        _say(f"waiting up to {WEBHOOK_WAIT} s for the stock webhooks to drain")
        delays: list[float] = []
        quiet_since = time.perf_counter()
        deadline = time.perf_counter() + WEBHOOK_WAIT
        while time.perf_counter() < deadline and time.perf_counter() - quiet_since < 5:
            time.sleep(1)
            got = receiver.take()
            if got:
                delays.extend(got)
                quiet_since = time.perf_counter()
        result["webhooks"] = sorted(delays)
        _say(f"waiting up to {DRAIN_WAIT} s for the outbox to drain (the relay's lag and the worker's CPU)")
        deadline = time.perf_counter() + DRAIN_WAIT
        pending = _outbox_pending()
        while pending and time.perf_counter() < deadline:
            time.sleep(1)
            pending = _outbox_pending()
        result["drained_after_s"] = None if pending else time.perf_counter() - sale_ended
        result["cpu_s"] = {
            "worker": _cpu_seconds(worker.pid) - cpu_before["worker"],
            "pusher": _cpu_seconds(pusher.pid) - cpu_before["pusher"],
            "server": _cpu_seconds(server.pid) - cpu_before["server"],
        }
        until = ""
        if group_commit and BATCH_SECONDS > 0:
            until = datetime.now(UTC).isoformat()
            _say(
                f"batch endpoint: {BATCH_SIZE} orders per request from {BATCH_CONNECTIONS} connections for "
                f"{BATCH_SECONDS} s"
            )
            try:
                result["batch"] = _wrk(
                    port,
                    "/api/v1/orders/batch",
                    BATCH_SECONDS,
                    {**wrk_env, "BENCH_BATCH_SIZE": str(BATCH_SIZE), "BENCH_RUN": "b"},
                    "batch",
                    None,
                    script=LUA_BATCH,
                    connections=BATCH_CONNECTIONS,
                )
            except RuntimeError as exc:  # wrk printed nothing: the sale's figures still stand, the row says why
                result["batch"] = {"error": str(exc)[:200]}
        accepted_path = out_dir / "accepted.json"
        accepted_path.write_text(json.dumps([row[1] for row in accepted]))
        _stop(server)
        server = None
        _stop(worker)
        worker = None
        _stop(pusher)
        pusher = None
        _say("checking the database: allocation times, oversold units, drift, lost or duplicated orders")
        result["db"] = _child("check", env, str(accepted_path), until)
    finally:
        _stop(server)
        _stop(worker)
        _stop(pusher)
        shutil.rmtree(out_dir, ignore_errors=True)
    return result


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _must(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _rows(run: dict[str, Any], ceiling: float) -> list[tuple[str, str, str, str]]:
    tag = "committer" if run["group_commit"] else "one commit each"
    sale, db = run["sale"], run["db"]
    seconds = sale["duration_us"] / 1e6
    rate = run["accepted"] / seconds if seconds else 0.0
    share = rate / ceiling if ceiling else 0.0
    lost_or_dup = db["lost"] + db["duplicated"] + (run["replay"]["replayed"] - run["replay"]["same"])
    webhooks = run["webhooks"]
    hook_p99 = _pct(webhooks, 99)
    statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted(run["statuses"].items()))
    drained, cpu, accepted = run["drained_after_s"], run["cpu_s"], max(1, run["accepted"])
    return [
        (
            f"[{tag}] accepted orders/s (2xx)",
            f"{rate:,.0f}",
            f">= {TARGET_RATE:,.0f} (aim {AIM_RATE:,.0f})",
            _verdict(rate >= TARGET_RATE) + (" (aim reached)" if rate >= AIM_RATE else ""),
        ),
        (f"[{tag}] share of the bare ceiling", f"{share:.0%}", "(printed beside)", ""),
        (f"[{tag}] answers by status", statuses, f"{ORDERS:,} orders sent", ""),
        (
            f"[{tag}] intake latency p50 / p99",
            f"{sale['p50_us'] / 1000:.1f} / {sale['p99_us'] / 1000:.1f} ms",
            f"p99 < {TARGET_P99_MS:.0f} ms",
            _verdict(sale["p99_us"] / 1000 < TARGET_P99_MS),
        ),
        (
            f"[{tag}] intake → allocated p50 / p99",
            f"{db['allocated_p50_s'] * 1000:.1f} / "
            f"{db['allocated_p99_s'] * 1000:.1f} ms ({db['allocated']:,} allocated)",
            "(reported)",
            "",
        ),
        (
            f"[{tag}] orders by status in the database",
            ", ".join(f"{k}: {v:,}" for k, v in db["statuses"].items()),
            "",
            "",
        ),
        (f"[{tag}] oversold units", str(db["oversold"]), "0 (must)", _must(db["oversold"] == 0)),
        (
            f"[{tag}] SKU counters vs open reservations",
            str(db["counter_mismatch"]),
            "0 (must)",
            _must(db["counter_mismatch"] == 0),
        ),
        (f"[{tag}] drift found by stock_drift", str(db["drift"]), "0 (must)", _must(db["drift"] == 0)),
        (
            f"[{tag}] lost or duplicated (replay of {run['replay']['replayed']})",
            f"{lost_or_dup} (lost {db['lost']}, duplicated {db['duplicated']}, replay mismatches "
            f"{run['replay']['replayed'] - run['replay']['same']})",
            "0 (must)",
            _must(lost_or_dup == 0),
        ),
        (
            f"[{tag}] availability change → webhook p99",
            f"{hook_p99:.2f} s ({len(webhooks):,} received)" if webhooks else "none received",
            f"< {TARGET_WEBHOOK_P99_S:.0f} s",
            _verdict(bool(webhooks) and hook_p99 < TARGET_WEBHOOK_P99_S),
        ),
        (
            f"[{tag}] relay lag, event occurred → relayed p50 / p99",
            f"{db['relay_p50_s'] * 1000:,.0f} / {db['relay_p99_s'] * 1000:,.0f} ms ({db['relayed']:,} relayed, "
            f"{db['relay_pending']:,} still pending)",
            "(reported)",
            "" if not db["relay_pending"] else f"the relay did not catch up ({db.get('relay_pending_names', '')})",
        ),
        (
            f"[{tag}] relay throughput (sale's events / first recorded → last relayed)",
            f"{db.get('relay_events_per_s', 0):,.0f} events/s",
            "(reported)",
            "",
        ),
        (
            f"[{tag}] outbox drained after the sale",
            "never, within the wait" if drained is None else f"{drained:.1f} s",
            f"(waited up to {DRAIN_WAIT} s)",
            "",
        ),
        (
            f"[{tag}] CPU per accepted order: relay worker / shop_push worker / {SERVER}",
            f"{cpu['worker'] * 1000 / accepted:.1f} / {cpu.get('pusher', 0) * 1000 / accepted:.1f} / "
            f"{cpu['server'] * 1000 / accepted:.1f} ms",
            "(reported; sale start → outbox drained, incl. replay and webhooks)",
            "",
        ),
        (f"[{tag}] server memory ({SERVER} RSS sum)", f"{run['rss_mb']:,.0f} MB", "(reported)", ""),
        *_batch_rows(tag, run.get("batch")),
    ]


def _batch_rows(tag: str, batch: dict[str, Any] | None) -> list[tuple[str, str, str, str]]:
    """The batch endpoint's line: orders accepted per second through it, and a request's latency."""
    if batch is None:
        return []
    if "error" in batch:
        return [(f"[{tag}] batch endpoint", "not measured", batch["error"], "MISS")]
    seconds = batch["duration_us"] / 1e6
    rate = batch["orders_accepted"] / seconds if seconds else 0.0
    return [
        (
            f"[{tag}] batch endpoint: accepted orders/s ({BATCH_SIZE} per request, {BATCH_CONNECTIONS} connections)",
            f"{rate:,.0f}",
            f">= {TARGET_RATE:,.0f} (aim {AIM_RATE:,.0f})",
            _verdict(rate >= TARGET_RATE) + (" (aim reached)" if rate >= AIM_RATE else ""),
        ),
        (
            f"[{tag}] batch endpoint: request p50 / p99",
            f"{batch['p50_us'] / 1000:.1f} / {batch['p99_us'] / 1000:.1f} ms",
            f"({batch['requests']:,} requests, {batch['orders_accepted']:,} orders accepted, "
            f"{batch['orders_refused']:,} refused)",
            "",
        ),
    ]


def _print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(line)
    for row in rows:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    print(line)


def main() -> int:
    if SERVER not in ("gunicorn", "granian"):
        print(f"intake benchmark: BENCH_INTAKE_SERVER must be gunicorn or granian, not {SERVER!r}")
        return 1
    if shutil.which("wrk") is None:
        print("intake benchmark: wrk is missing (make install runs scripts/bootstrap.sh, which installs it)")
        return 1
    print(
        f"Quai benchmark — intake: {ORDERS:,} orders over HTTP, {SKUS} SKUs, {HOT_SHARE} % on one hot SKU holding "
        f"{HOT_STOCK:,} units, two merchants; {SERVER} {PROCESSES} × {THREADS}, wrk {WRK_THREADS} threads × "
        f"{CONNECTIONS} connections",
        flush=True,
    )
    started = time.perf_counter()
    receiver = Receiver()
    runs: list[dict[str, Any]] = []
    relay_cost: dict[str, Any] | None = None
    web_cost: dict[str, Any] | None = None
    try:
        _pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        _pg(f'DROP DATABASE IF EXISTS "{SEED_DB}" WITH (FORCE)')
        _pg(f'CREATE DATABASE "{SEED_DB}"')
        _say("seeding through the services: merchants, keys, SKUs, stock, the webhook subscription")
        seed = _child("seed", _env(SEED_DB, True), receiver.url)
        if RELAY_COST_ORDERS > 0:
            _say(f"relay cost per handler, in-process: {RELAY_COST_ORDERS} orders written in bulk, then relayed")
            _pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
            _pg(f'CREATE DATABASE "{DB}" TEMPLATE "{SEED_DB}"')
            relay_cost = _child("relay-cost", {**_env(DB, True), "QUAI_OUTBOX_NUDGE": "false"})
        if WEB_COST_ORDERS > 0:
            _say(f"web process CPU per order, in-process: {WEB_COST_ORDERS} orders from {THREADS} threads")
            _pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
            _pg(f'CREATE DATABASE "{DB}" TEMPLATE "{SEED_DB}"')
            web_cost = _child("web-cost", _env(DB, True))
        for group_commit in (True, False) if COMPARE_ONE_COMMIT else (True,):
            runs.append(_mode(group_commit, seed, receiver, ceiling=group_commit))
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        _pg(f'DROP DATABASE IF EXISTS "{SEED_DB}" WITH (FORCE)')
        receiver.server.shutdown()
    bare = runs[0]["ceiling"]
    ceiling = bare["ok"] / (bare["duration_us"] / 1e6) if bare["duration_us"] else 0.0
    rows: list[tuple[str, str, str, str]] = [
        (
            "bare endpoint ceiling (2xx/s, one row per request)",
            f"{ceiling:,.0f}",
            f"p50 {bare['p50_us'] / 1000:.1f} / p99 {bare['p99_us'] / 1000:.1f} ms",
            "(reference)",
        ),
    ]
    for run in runs:
        rows.extend(_rows(run, ceiling))
    print()
    _print_table([("figure", "measured", "target", "verdict"), *rows])
    if relay_cost is not None:
        print("The relay's cost per handler (in-process, no HTTP; bench/intake.py --relay-cost):")
        _print_table([("handler", "events", "queries", "CPU"), *relay_cost_table(relay_cost)])
    if web_cost is not None:
        print("The web process's CPU per order (in-process through the WSGI application; bench/intake.py --web-cost):")
        _print_table([("figure", "measured", "split", ""), *web_cost_table(web_cost)])
    print(
        f"settings: PostgreSQL {PG_BASE}/{DB} (cloned from {SEED_DB}), Redis {REDIS_URL}, DEBUG=false, "
        f"{SERVER} {PROCESSES} processes × {THREADS} threads, Celery workers -Q celery -c 2 and -Q shop_push -c 2, "
        f"{HISTORY_ORDERS:,} orders of history in the seed, QUAI_BENCH_ENDPOINTS=true"
    )
    print(f"total time: {time.perf_counter() - started:.0f} s (a MISS is reported, never fails the run)")
    if any(row[3] == "FAIL" for row in rows):
        print("FAILED: oversold, drift, or an order lost or duplicated", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("--seed", "--check"):
        sys.path.insert(0, str(ROOT))
        if sys.argv[1] == "--seed":
            child_seed(sys.argv[2], sys.argv[3])
        else:
            child_check(*sys.argv[2:])
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--relay-cost":
        # On a database the seed mode filled: ``--relay-cost OUT.json`` measures; ``--relay-cost`` alone prints.
        sys.path.insert(0, str(ROOT))
        if len(sys.argv) > 2:
            child_relay_cost(sys.argv[2])
        else:
            with tempfile.NamedTemporaryFile(suffix=".json") as handle:
                child_relay_cost(handle.name)
                _print_table(
                    [("figure", "measured", "", ""), *relay_cost_table(json.loads(Path(handle.name).read_text()))]
                )
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "--web-cost":
        # Likewise: ``--web-cost OUT.json`` measures on a seeded database; ``--web-cost`` alone prints.
        sys.path.insert(0, str(ROOT))
        if len(sys.argv) > 2:
            child_web_cost(sys.argv[2])
        else:
            with tempfile.NamedTemporaryFile(suffix=".json") as handle:
                child_web_cost(handle.name)
                _print_table(
                    [("figure", "measured", "split", ""), *web_cost_table(json.loads(Path(handle.name).read_text()))]
                )
        sys.exit(0)
    sys.exit(main())
