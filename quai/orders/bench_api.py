"""The bench-only intake ceiling: ``POST /api/v1/orders/bench/bare`` (mounted only with QUAI_BENCH_ENDPOINTS=true).

``make bench`` (bench/intake.py) measures our intake against the ceiling of this same server: a route behind the
same authentication and middleware that validates the same body (``OrderCreateIn``) and commits one row per request,
nothing else — no SKU read, no reservation, no event. Our rate as a share of it says how much of the server's
one-commit-per-request capacity the order path keeps. Off by default: it writes a table no migration owns
(``quai_bench_bare_row``, created on first use) and has no business being in production.
"""

from __future__ import annotations

import json
import threading

from django.db import connection, transaction
from django.http import HttpRequest
from ninja import Router, Status

from quai.orders.schemas import OrderCreateIn

router = Router(tags=["bench"])

TABLE = "quai_bench_bare_row"
_created = threading.Event()


def _table_ensure() -> None:
    if _created.is_set():
        return
    key = "BIGSERIAL" if connection.vendor == "postgresql" else "INTEGER"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE}"
            f" (id {key} PRIMARY KEY, merchant_id integer, external_id text, body text)"
        )
    _created.set()


@router.post("/bare", response={201: dict[str, int]}, include_in_schema=False)
def bench_bare(request: HttpRequest, payload: OrderCreateIn) -> Status[dict[str, int]]:
    """Validate the order body, commit one row holding it, answer its id."""
    _table_ensure()
    principal = getattr(request, "auth", None)
    merchant_id = getattr(principal, "merchant_id", None)
    body = json.dumps(payload.dict(), default=str)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (merchant_id, external_id, body) VALUES (%s, %s, %s) RETURNING id",
            [merchant_id, payload.external_id, body],
        )
        row_id = cursor.fetchone()[0]
    return Status(201, {"id": row_id})
