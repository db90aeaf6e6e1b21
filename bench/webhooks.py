"""``make bench`` (``BENCH_ONLY=webhooks``): how fast the webhook sender empties a backlog, in process.

A scratch PostgreSQL database (``quai_bench_webhooks`` on ``BENCH_WEBHOOKS_PG``, dropped after) holds one merchant,
one subscription to a local receiver and ``BENCH_WEBHOOKS_DELIVERIES`` pending deliveries (default 5,000) about
``BENCH_WEBHOOKS_RESOURCES`` resources (default 2,000), written in one insert, interleaved as a sale writes them
(resource 1, 2, …, 2,000, then 1, 2, … again). One process then calls ``webhook_deliveries_send_due`` until none is
pending, as a Celery worker's task does. The receiver runs in this (the parent) process, so its CPU is not the
sender's: an HTTP/1.1 server in threads (a thread per connection, kept alive as a merchant's endpoint keeps it; it
was HTTP/1.0, a new connection per request, until 2026-12-05: docs/INTAKE.md), answering 200, like bench/intake.py's.

Printed: deliveries per second (wall clock), the sender's CPU per delivery (``time.process_time``), SQL statements
per delivery, and the receiver's checks, which FAIL the run: each delivery received once, and in order per resource.
Then the claim alone with ``BENCH_WEBHOOKS_BACKLOG`` (default 50,000) pending rows waiting for a retry (a receiver
that is down): the claim's milliseconds, which must not grow with rows that are not due.

The target: the intake bench's sale aims at 1,200 orders/s (bench/intake.py ``TARGET_RATE``) and its receiver gets
one availability webhook per reservation, so a sender that keeps up with the sale sends ≥ 1,200 deliveries/s; a
slower one builds a queue during the sale and the "availability change → webhook p99 < 1 s" is lost however fast
the relay is. On this shared machine the wall-clock rate is noisy: the CPU per delivery is the steadier figure
(two worker processes on two cores at ≤ 1.6 ms per delivery would also send ≥ 1,200/s).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


DELIVERIES = _env_int("BENCH_WEBHOOKS_DELIVERIES", 5_000)
RESOURCES = _env_int("BENCH_WEBHOOKS_RESOURCES", 2_000)
BACKLOG = _env_int("BENCH_WEBHOOKS_BACKLOG", 50_000)
PG_BASE = os.environ.get("BENCH_WEBHOOKS_PG", "postgresql://postgres@127.0.0.1:5432")
DB = os.environ.get("BENCH_WEBHOOKS_DB", "quai_bench_webhooks")  # one per session on a shared server
BENCH_ENCRYPTION_KEY = "cXVhaS1iZW5jaC1vbmx5LWtleS0wMTIzNDU2Nzg5YWI="
TARGET_RATE = 1200.0
TARGET_CPU_MS = 1.6
TARGET_CLAIM_MS = 50.0


def _say(message: str) -> None:
    print(f"  · {message}", file=sys.stderr, flush=True)


# --- The child: Django on the scratch database ----------------------------------------------------------------------


def _seed(receiver_url: str) -> None:
    from django.core.management import call_command

    from quai.core import clock
    from quai.integrations.models import WebhookDelivery
    from quai.integrations.services import webhook_subscription_create
    from quai.tenants.models import Merchant

    _say("migrating the scratch database")
    call_command("migrate", verbosity=0, interactive=False)
    merchant = Merchant.objects.create(code="bench", name="Bench", legal_name="Bench SAS")
    subscription = webhook_subscription_create(
        merchant=merchant, url=receiver_url, event_types=["inventory.reservation_made"]
    )
    now = clock.now()
    rows = []
    for index in range(DELIVERIES):
        resource, sequence = index % RESOURCES, index // RESOURCES
        event_id = _uuid(index)
        rows.append(
            WebhookDelivery(
                merchant_id=merchant.pk,
                subscription=subscription,
                event_id=event_id,
                event_name="inventory.reservation_made",
                resource_key=f"sku:{resource}",
                payload={
                    "id": str(event_id),
                    "type": "inventory.reservation_made",
                    "timestamp": now.isoformat(),
                    "schema_version": 1,
                    "merchant_id": merchant.pk,
                    "resource": {"type": "sku", "id": str(resource)},
                    "data": {"sku_id": resource, "sequence": sequence, "quantity": 1, "available": 100 - sequence},
                },
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    WebhookDelivery.objects.bulk_create(rows, batch_size=1000)


def _uuid(index: int) -> Any:
    import uuid

    return uuid.UUID(int=index + 1)


def _claim_with_backlog() -> dict[str, Any]:
    """The claim's time with ``BACKLOG`` pending rows waiting for a retry in an hour, and its plan."""
    from datetime import timedelta

    from django.db import connection

    from quai.core import clock
    from quai.integrations.models import WebhookDelivery, WebhookSubscription
    from quai.integrations.services import webhook_deliveries_claim

    subscription = WebhookSubscription.objects.get()
    later = clock.now() + timedelta(hours=1)
    rows = [
        WebhookDelivery(
            merchant_id=subscription.merchant_id,
            subscription=subscription,
            event_id=_uuid(DELIVERIES + index),
            event_name="inventory.reservation_made",
            resource_key=f"sku:{index % (RESOURCES * 5)}",
            payload={"id": str(_uuid(DELIVERIES + index))},
            next_attempt_at=later,
            created_at=later,
            updated_at=later,
        )
        for index in range(BACKLOG)
    ]
    _say(f"the claim with {BACKLOG:,} pending deliveries waiting for a retry")
    WebhookDelivery.objects.bulk_create(rows, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE integrations_webhookdelivery")
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        claimed = webhook_deliveries_claim()
        timings.append((time.perf_counter() - started) * 1000)
        assert not claimed, "nothing is due in the backlog"
    timings.sort()
    return {"claim_ms_p50": timings[len(timings) // 2], "claim_ms_max": timings[-1]}


def child(out: str, receiver_url: str) -> None:
    import django

    django.setup()
    from django.db import connection

    from quai.integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
    from quai.integrations.services import webhook_deliveries_send_due

    _seed(receiver_url)
    _say(f"sending {DELIVERIES:,} deliveries about {RESOURCES:,} resources to the local receiver")
    sent = 0
    statements = [0]

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        cpu, started = time.process_time(), time.perf_counter()
        while WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).exists():
            sent += webhook_deliveries_send_due()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    result = {
        "sent": sent,
        "seconds": elapsed,
        "cpu_s": cpu,
        "queries": statements[0],
        "succeeded": WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count(),
        "attempts": WebhookAttempt.objects.count(),
        "errors": sorted({a.error[:120] for a in WebhookAttempt.objects.exclude(error="")})[:5],
    }
    if BACKLOG:
        result.update(_claim_with_backlog())
    connection.close()
    Path(out).write_text(json.dumps(result))


# --- The parent: the receiver, the scratch database, the report -----------------------------------------------------


class Receiver:
    """Records each delivery's (resource, sequence) in arrival order; answers 200 at once."""

    def __init__(self) -> None:
        self.received: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1, so the sender's connections are kept alive as a merchant's endpoint keeps them (HTTP/1.0 closed
            # each one: a TCP connect per delivery); every answer says its length and every body is read whole.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with receiver.lock:
                    receiver.received.append((body["resource"]["id"], body["data"]["sequence"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            # The listen backlog of a real receiver (nginx: 511), not socketserver's 5: with 16 requests in flight
            # a full backlog resets connections, and those attempts are retried seconds later.
            request_queue_size = 512

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        self.server = Server(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def checks(self) -> dict[str, int]:
        seen: dict[str, int] = {}
        out_of_order = duplicates = 0
        pairs = set()
        for resource, sequence in self.received:
            if (resource, sequence) in pairs:
                duplicates += 1
                continue
            pairs.add((resource, sequence))
            if sequence < seen.get(resource, -1):
                out_of_order += 1
            seen[resource] = max(sequence, seen.get(resource, -1))
        return {"received": len(self.received), "distinct": len(pairs), "out_of_order": out_of_order, "dup": duplicates}


def _pg(statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_BASE}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "quai.settings",
        "DATABASE_URL": f"{PG_BASE.replace('postgresql://', 'postgres://', 1)}/{DB}",
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-not-used-for-anything-else-0123456789abcdef",
        "QUAI_LOG_LEVEL": "ERROR",
        "QUAI_WEBHOOKS_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        "QUAI_ENCRYPTION_KEYS": BENCH_ENCRYPTION_KEY,
        "QUAI_OUTBOX_NUDGE": "false",
    }


def main() -> int:
    print(
        f"==> Webhooks: {DELIVERIES:,} pending deliveries about {RESOURCES:,} resources, one sender, a local receiver",
        flush=True,
    )
    receiver = Receiver()
    _pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    _pg(f'CREATE DATABASE "{DB}"')
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    try:
        env = _env()
        env.pop("REDIS_URL", None)
        done = subprocess.run(
            [sys.executable, "-m", "bench.webhooks", "--child", out, receiver.url], cwd=ROOT, env=env, check=False
        )
        if done.returncode != 0:
            print("the webhooks benchmark crashed", file=sys.stderr)
            return 1
        result = json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)
        receiver.server.shutdown()
        _pg(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    checks = receiver.checks()
    rate = result["sent"] / result["seconds"] if result["seconds"] else 0.0
    cpu_ms = result["cpu_s"] * 1000 / max(result["sent"], 1)
    whole = checks["distinct"] == DELIVERIES == result["succeeded"] and checks["out_of_order"] == 0
    rows = [
        ("deliveries/s, one sender", f"{rate:,.0f} ({result['sent']:,} in {result['seconds']:.1f} s)",
         f">= {TARGET_RATE:,.0f}", "PASS" if rate >= TARGET_RATE else "MISS"),
        ("sender CPU per delivery", f"{cpu_ms:.2f} ms", f"<= {TARGET_CPU_MS} ms",
         "PASS" if cpu_ms <= TARGET_CPU_MS else "MISS"),
        ("SQL statements per delivery", f"{result['queries'] / max(result['sent'], 1):.2f}", "(reported)", ""),
        ("attempts logged / deliveries succeeded", f"{result['attempts']:,} / {result['succeeded']:,}",
         f"{DELIVERIES:,} / {DELIVERIES:,}", "PASS" if result["succeeded"] == DELIVERIES else "FAIL"),
        ("received once each, in order per resource",
         f"{checks['distinct']:,} distinct, {checks['dup']} again, {checks['out_of_order']} out of order",
         f"{DELIVERIES:,}, -, 0 (must)", "PASS" if whole else "FAIL"),
    ]  # fmt: skip
    if "claim_ms_p50" in result:
        rows.append(
            (
                f"claim with {BACKLOG:,} pending not due, p50 / max",
                f"{result['claim_ms_p50']:.1f} / {result['claim_ms_max']:.1f} ms",
                f"< {TARGET_CLAIM_MS:.0f} ms",
                "PASS" if result["claim_ms_max"] < TARGET_CLAIM_MS else "MISS",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
    for error in result["errors"]:
        print(f"an attempt failed: {error}")
    print(f"load average {os.getloadavg()[0]:.1f} (2 cores shared: the wall-clock rate is noisy, the CPU steadier)")
    return 0 if whole and result["succeeded"] == DELIVERIES else 1


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.exit(main())
