"""Stock out (``on_stock_event`` -> ``connection_stock_push``).

A stock or reservation event marks (connection, SKU) dirty in the outbox relay's transaction; after the commit a task
pushes, per connection, the *current* availability of every dirty SKU (latest level wins: ten changes in a burst are
one number), one push at a time per shop (a lease on the connection row, taken by a conditional UPDATE) and at most
one per ``settings.stock_interval_ms``. A change landing during a push bumps the SKU's generation, so it stays dirty
and goes in the next round: nothing is lost. What a shop may sell is what the reservation guard allows (on hand −
reserved − safety buffers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import httpx
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce

from quai.core import clock
from quai.integrations import domain
from quai.integrations.connectors.base import (
    ConnectorError,
    StockLevel,
)
from quai.integrations.models import (
    Connection,
    ConnectionStatus,
    StockSync,
)
from quai.integrations.services.connections import (
    LEASE,
    connection_adapter,
    connection_failure_record,
    connection_success_record,
)
from quai.tenants.scope import Scope

logger = logging.getLogger(__name__)
DEFAULT_STOCK_INTERVAL_MS = 100


def connection_stock_levels(*, connection: Connection, sku_codes: Sequence[str] | None = None) -> list[StockLevel]:
    """What this shop may sell of each of the merchant's SKUs (all of them, or those named)."""
    from quai.inventory.selectors import AvailabilityPage, availability_list

    page = availability_list(scope=Scope.merchant(connection.merchant_id))
    queryset = page.queryset
    if sku_codes is not None:
        queryset = queryset.filter(code__in=list(sku_codes))
    return [
        StockLevel(
            sku=row.sku_code,
            available=domain.availability_for_shop(
                available_to_sell=row.available_to_sell, connection_buffer=connection.safety_buffer
            ),
        )
        for row in AvailabilityPage(queryset)
    ]


def _levels_by_sku_id(connection: Connection, sku_ids: Sequence[int]) -> dict[int, StockLevel]:
    from quai.inventory.selectors import AvailabilityPage, availability_list

    queryset = availability_list(scope=Scope.merchant(connection.merchant_id)).queryset.filter(pk__in=list(sku_ids))
    return {
        row.sku_id: StockLevel(
            sku=row.sku_code,
            available=domain.availability_for_shop(
                available_to_sell=row.available_to_sell, connection_buffer=connection.safety_buffer
            ),
        )
        for row in AvailabilityPage(queryset)
    }


def on_stock_event(event: Any, envelope: Any) -> None:
    """Outbox handler (stock and reservation events): mark the SKU dirty on each of the merchant's shops that take
    stock, in the relay's transaction; the push task runs after the commit."""
    sku_id = getattr(event, "sku_id", None)
    if sku_id is None or envelope.merchant_id is None:
        return
    connection_ids = list(
        Connection.objects.filter(merchant_id=envelope.merchant_id, push_stock=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .values_list("pk", flat=True)
    )
    if not connection_ids:
        return
    now = clock.now()
    StockSync.objects.bulk_create(
        [
            StockSync(
                merchant_id=envelope.merchant_id,
                connection_id=pk,
                sku_id=sku_id,
                sku_code=str(getattr(event, "sku_code", ""))[:64],
            )
            for pk in connection_ids
        ],
        ignore_conflicts=True,
    )
    StockSync.objects.filter(connection_id__in=connection_ids, sku_id=sku_id).update(
        generation=F("generation") + 1, changed_at=Coalesce(F("changed_at"), now)
    )
    _stock_push_after_commit(connection_ids)


def on_stock_events(items: Sequence[tuple[Any, Any]]) -> None:
    """Batch form of ``on_stock_event`` (``subscribe(..., batch=)``): exactly what it does for each event in turn,
    in three or four queries per relay batch instead of one to three per event.

    The batch's merchants' stock-pushing shops in one query; one insert of the (shop, SKU) rows not there yet (the
    SKU code of the SKU's first event, as per event); then each SKU's generation goes up by its number of events
    in the batch — one update per distinct count, usually one — so the rows end as the per-event form leaves them.
    The push that follows still sends each SKU's current level once (the latest level wins); one push task per
    shop is asked for after the commit, not one per event.
    """
    per_merchant: dict[int, dict[int, list[Any]]] = {}  # merchant -> SKU -> [events, code], in first-event order
    for event, envelope in items:
        sku_id = getattr(event, "sku_id", None)
        if sku_id is None or envelope.merchant_id is None:
            continue
        entry = per_merchant.setdefault(envelope.merchant_id, {}).setdefault(
            sku_id, [0, str(getattr(event, "sku_code", ""))[:64]]
        )
        entry[0] += 1
    if not per_merchant:
        return
    shops: dict[int, list[int]] = {}
    for pk, merchant_id in (
        Connection.objects.filter(merchant_id__in=list(per_merchant), push_stock=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .order_by("pk")
        .values_list("pk", "merchant_id")
    ):
        shops.setdefault(merchant_id, []).append(pk)
    if not shops:
        return
    rows: list[StockSync] = []
    bumps: dict[int, Q] = {}  # events per SKU in this batch -> the rows to bump by that much
    for merchant_id, skus in per_merchant.items():
        connection_ids = shops.get(merchant_id)
        if not connection_ids:
            continue
        for sku_id, (_events, sku_code) in skus.items():
            rows.extend(
                StockSync(merchant_id=merchant_id, connection_id=pk, sku_id=sku_id, sku_code=sku_code)
                for pk in connection_ids
            )
        for events in {events for events, _code in skus.values()}:
            same = [sku_id for sku_id, (count, _code) in skus.items() if count == events]
            bumps[events] = bumps.get(events, Q(pk__in=[])) | Q(connection_id__in=connection_ids, sku_id__in=same)
    StockSync.objects.bulk_create(rows, ignore_conflicts=True)
    now = clock.now()
    for events, which in sorted(bumps.items()):
        StockSync.objects.filter(which).update(
            generation=F("generation") + events, changed_at=Coalesce(F("changed_at"), now)
        )
    _stock_push_after_commit(pk for connection_ids in shops.values() for pk in connection_ids)


def _stock_push_after_commit(connection_ids: Iterable[int]) -> None:
    ids = sorted(set(connection_ids))

    def enqueue() -> None:
        from quai.integrations.tasks import connection_stock_push as task

        for pk in ids:
            try:
                task.delay(pk)
            except Exception:
                logger.exception("could not enqueue the stock push of connection %s", pk)

    transaction.on_commit(enqueue, robust=True)


def _stock_lease(connection_id: int, now: datetime) -> bool:
    return bool(
        Connection.objects.filter(pk=connection_id, push_stock=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .filter(Q(stock_lease_until__isnull=True) | Q(stock_lease_until__lte=now))
        .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
        .update(stock_lease_until=now + LEASE)
    )


def _dirty(connection_id: int) -> list[tuple[int, int, int, datetime | None]]:
    return list(
        StockSync.objects.filter(connection_id=connection_id, generation__gt=F("pushed_generation"))
        .order_by("sku_id")
        .values_list("pk", "sku_id", "generation", "changed_at")[:500]
    )


def connection_stock_push(*, connection_id: int, client: httpx.Client | None = None, rounds: int = 20) -> int:
    """Push every dirty SKU's current level to one shop (one push at a time per shop); returns SKUs pushed."""

    pushed = 0
    for _round in range(rounds):
        now = clock.now()
        if not _dirty(connection_id) or not _stock_lease(connection_id, now):
            return pushed
        try:
            connection = Connection.objects.get(pk=connection_id)
            interval = int((connection.settings or {}).get("stock_interval_ms", DEFAULT_STOCK_INTERVAL_MS)) / 1000
            if connection.last_stock_push_at is not None:
                wait = interval - (clock.now() - connection.last_stock_push_at).total_seconds()
                if 0 < wait <= 5:
                    time.sleep(wait)  # the shop's rate limit: at most one push per interval
            pushed += _stock_push_once(connection, connection_adapter(connection, client))
        finally:
            Connection.objects.filter(pk=connection_id).update(stock_lease_until=None)
    return pushed


def _stock_push_once(connection: Connection, adapter: Any) -> int:
    rows = _dirty(connection.pk)
    if not rows:
        return 0
    levels = _levels_by_sku_id(connection, [sku_id for _pk, sku_id, _g, _c in rows])
    to_push = [levels[sku_id] for _pk, sku_id, _g, _c in rows if sku_id in levels]
    started = clock.now()
    try:
        report = adapter.push_stock(to_push, f"{connection.pk}:{started.timestamp()}")
    except ConnectorError as exc:
        connection_failure_record(connection.pk, exc, retry_after=exc.retry_after)
        return 0
    now = clock.now()
    oldest = min((changed for *_rest, changed in rows if changed is not None), default=None)
    for pk, sku_id, generation, _changed in rows:
        level = levels.get(sku_id)
        error = ""
        if level is None:
            error = "SKU not found in Quai"
        elif level.sku in report.unknown:
            error = "SKU not in the shop"
        elif level.sku in report.failed:
            error = report.failed[level.sku]
        values: dict[str, Any] = {"pushed_generation": generation, "pushed_at": now, "last_error": error[:2000]}
        if level is not None:
            values.update(sku_code=level.sku, pushed_quantity=None if error else level.available)
        # Clean only if no change landed meanwhile; otherwise it stays dirty and goes in the next round.
        StockSync.objects.filter(pk=pk, generation=generation).update(changed_at=None, **values)
        StockSync.objects.filter(pk=pk, generation__gt=generation).update(**values)
    lag = int((now - oldest).total_seconds() * 1000) if oldest is not None else None
    connection_success_record(connection.pk, last_stock_push_at=now, last_sync_at=now, lag_ms=lag)
    return len(report.updated)
