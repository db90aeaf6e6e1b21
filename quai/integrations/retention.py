"""The integrations' logs kept for a while, then deleted in bounded chunks once a day (beat's
``integration-logs-purge``, ``manage.py integration_logs_purge``): the outbound webhook deliveries with their attempts,
the shops' inbound deliveries and the calls to shops.

Why: nothing else ever deletes them. A webhook delivery is written per subscribed event (a ``*`` subscription gets
every event: ~30 an order), an attempt per request; a sale day adds tens of thousands of each, and every index on the
tables grows with them. What may go, and why it is safe (every reader checked; docs/CONNECTORS.md, "Retention"):

- **Finished rows only**, never one that may still change: a webhook delivery ``succeeded``, ``failed`` or ``dead``
  (never ``pending``, which includes those waiting for a retry) finished before ``QUAI_WEBHOOK_LOG_RETENTION_DAYS``;
  an inbound delivery ``processed`` or ``failed`` (never ``received``, which includes those backing off, nor
  ``held``, which waits for a SKU) and a connector call ``succeeded``, ``failed`` or ``dead`` (never ``pending``), last
  changed before ``QUAI_SHOP_LOG_RETENTION_DAYS``. Each delete says the condition again, so a row read into a chunk
  and taken again meanwhile (a failed inbound delivery retried from the back office) is kept.
- **A webhook delivery goes with its attempts**, in the same transaction; one a replay still points at
  (``replay_of``) stays until the replay has gone (a later night): deleting it would leave the replay pointing
  nowhere, and setting the link to NULL would make two replays of one delivery break the unique rule of originals.
  A replay carries its own copy of the body and ``webhook-id``, so nothing needs the original to send it.
- **The inbound deliveries' dedupe.** ``(connection, delivery_key)`` is what makes a shop's retried webhook one
  delivery: a row must outlive the shop's retry window, so their cut-off is never later than
  ``INBOUND_DEDUPE_DAYS`` ago whatever the setting (Shopify retries for 4 hours, 48 before September 2024; Saleor
  for minutes). A poll's key is the order's id and modification time; the poll also skips an order whose
  ``ShopOrder`` has a Quai order, and ``ShopOrder`` (the link from a shop's order to Quai's) is never purged.
- **Connector calls**: their idempotency key makes a repeated request one call; every key names a Quai action made
  once (the accept of a shop order, the fulfilment of a set of parcels, a refund, a note about an address refused
  once), none repeated weeks later. Shopify's ``fetch_tracking_numbers`` callback answers from the fulfilment calls
  kept: tracking older than the retention is not answered there (it was pushed to the shop when the parcel left).
- Chunks and their walk as ``quai.core.retention`` (``purge_walk``: the primary key from where the last chunk ended,
  up to the first row created after the cut-off by the ``created_at`` index; ``PURGE_CHUNK`` a chunk, SQLite
  ``PURGE_CHUNK_SQLITE``), each its own short transaction; no index added: every statement uses the primary key,
  ``created_at`` or a foreign key's index. Workers touch unfinished rows only, so they never wait on a purge; two
  purges at once on PostgreSQL: the second leaves at once (an advisory lock of its own, not the outbox purge's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import connection, models, transaction

from quai.core import clock
from quai.core.retention import purge_chunk, purge_lock, purge_walk
from quai.core.rows import ids_in, ids_param
from quai.integrations.models import (
    CallStatus,
    ConnectorCall,
    DeliveryStatus,
    InboundDelivery,
    InboundStatus,
    WebhookAttempt,
    WebhookDelivery,
)

logger = logging.getLogger(__name__)

# The shops' retry window, with a margin: an inbound delivery is kept at least this long, whatever the setting.
INBOUND_DEDUPE_DAYS = 7
# The PostgreSQL advisory lock held by a running purge of these logs ("quaw"; the outbox purge's is "quap").
_PURGE_LOCK = 0x71756177


@dataclass
class LogsPurgeResult:
    """What a purge did (or, ``dry_run``, would do): rows deleted per table, in how many chunks (of any table);
    ``skipped`` says why it did nothing (retention off, another purge running)."""

    webhook_cutoff: datetime | None
    shop_cutoff: datetime | None
    dry_run: bool = False
    deliveries: int = 0
    attempts: int = 0
    inbound: int = 0
    calls: int = 0
    chunks: int = 0
    skipped: str = ""
    per_table: dict[str, int] = field(default_factory=dict)  # chunks per table


@dataclass(frozen=True)
class _Log:
    """One table's purge: its rows that may go (``old``), what keeps one anyway (``kept``), its dependent rows."""

    name: str
    model: type[models.Model]
    old: str
    kept: str = ""
    child: type[models.Model] | None = None
    child_fk: str = ""


def _finished(column: str, statuses: tuple[str, ...], times: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    listed = ", ".join(f"'{status}'" for status in statuses)  # the models' choices, not input
    return " AND ".join([f"{quote(column)} IN ({listed})", *(f"{quote(t)} < %(cutoff)s" for t in times)])


@cache
def _logs(vendor: str) -> tuple[_Log, ...]:
    quote = connection.ops.quote_name
    deliveries = quote(WebhookDelivery._meta.db_table)
    finished = (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.DEAD)
    return (
        _Log(
            "deliveries",
            WebhookDelivery,
            # finished_at is never before created_at: the walk's end (created after the cut-off) bounds them.
            _finished("status", tuple(s.value for s in finished), ("finished_at",)),
            kept=f"EXISTS (SELECT 1 FROM {deliveries} r WHERE r.{quote('replay_of_id')} = {deliveries}.{quote('id')})",
            child=WebhookAttempt,
            child_fk="delivery_id",
        ),
        _Log(
            "inbound",
            InboundDelivery,
            # updated_at: when it was processed or failed (or retried, which makes it young again).
            _finished(
                "status",
                (InboundStatus.PROCESSED.value, InboundStatus.FAILED.value),
                ("updated_at", "created_at"),
            ),
        ),
        _Log(
            "calls",
            ConnectorCall,
            _finished(
                "status",
                (CallStatus.SUCCEEDED.value, CallStatus.FAILED.value, CallStatus.DEAD.value),
                ("finished_at",),
            ),
        ),
    )


@cache
def _sql(log: _Log, vendor: str) -> dict[str, str]:
    quote = connection.ops.quote_name
    table, pk = quote(log.model._meta.db_table), quote("id")
    ids_of = ids_in(vendor).replace("%s", "%(ids)s")
    going = f"{pk} {ids_of} AND {log.old}" + (f" AND NOT {log.kept}" if log.kept else "")
    sql = {
        "table": table,
        "delete": f"DELETE FROM {table} WHERE {going}",
        "count": f"SELECT count(*) FROM {table} WHERE {going}",
    }
    if log.child is not None:
        child, fk = quote(log.child._meta.db_table), quote(log.child_fk)
        # The chunk's range of the foreign key's index, those whose parent is gone (deleted just before, in the same
        # transaction; the constraint is checked at commit): a delivery the chunk kept keeps its attempts. The parent
        # is looked for in the same range (the same rows): without it, at 5,000 a chunk PostgreSQL chose a hash anti
        # join over a scan of the whole deliveries table (120,200 rows: 14,900 pages read, 234 ms a chunk; a merge
        # of the two ranges with it: 806 pages, 16 ms).
        sql["child"] = (
            f"DELETE FROM {child} WHERE {fk} BETWEEN %(first)s AND %(last)s AND NOT EXISTS"
            f" (SELECT 1 FROM {table} p WHERE p.{pk} = {child}.{fk} AND p.{pk} BETWEEN %(first)s AND %(last)s)"
        )
        sql["child_count"] = (
            f"SELECT count(*) FROM {child} WHERE {fk} BETWEEN %(first)s AND %(last)s"
            f" AND {fk} IN (SELECT {pk} FROM {table} WHERE {going})"
        )
    return sql


def _cutoff(days: int, floor: int = 0) -> datetime | None:
    return None if days <= 0 else clock.now() - timedelta(days=max(days, floor))


def integration_logs_purge(
    *,
    days: int | None = None,
    shop_days: int | None = None,
    chunk: int | None = None,
    dry_run: bool = False,
    progress: Callable[[LogsPurgeResult], None] | None = None,
) -> LogsPurgeResult:
    """Delete the finished webhook deliveries older than ``days`` (default ``QUAI_WEBHOOK_LOG_RETENTION_DAYS``) with
    their attempts, and the finished inbound deliveries and connector calls older than ``shop_days`` (default
    ``QUAI_SHOP_LOG_RETENTION_DAYS``; inbound deliveries at least ``INBOUND_DEDUPE_DAYS``); 0 keeps a log whole.
    ``chunk`` rows a transaction (default ``PURGE_CHUNK``, SQLite ``PURGE_CHUNK_SQLITE``), oldest first;
    ``dry_run`` counts what would go and deletes nothing; ``progress`` gets the running totals after each chunk.
    Run it outside a transaction: each chunk commits on its own."""
    days = settings.QUAI_WEBHOOK_LOG_RETENTION_DAYS if days is None else days
    shop_days = settings.QUAI_SHOP_LOG_RETENTION_DAYS if shop_days is None else shop_days
    chunk = purge_chunk(chunk)
    webhook_cutoff, shop_cutoff = _cutoff(days), _cutoff(shop_days)
    result = LogsPurgeResult(webhook_cutoff=webhook_cutoff, shop_cutoff=shop_cutoff, dry_run=dry_run)
    cutoffs = {
        "deliveries": webhook_cutoff,
        "inbound": _cutoff(shop_days, INBOUND_DEDUPE_DAYS),
        "calls": shop_cutoff,
    }
    if webhook_cutoff is None and shop_cutoff is None:
        result.skipped = "retention off (0 days: the logs are kept forever)"
        return result
    with purge_lock(_PURGE_LOCK) as taken:
        if not taken:
            result.skipped = "another purge is running"
            return result
        for log in _logs(connection.vendor):
            cutoff = cutoffs[log.name]
            if cutoff is not None:
                _purge_log(log, cutoff, chunk, dry_run, result, progress)
    if not dry_run and result.chunks:
        logger.info(
            "integration logs purge: %d webhook deliveries, %d attempts, %d inbound deliveries, %d shop calls"
            " deleted in %d chunks",
            result.deliveries,
            result.attempts,
            result.inbound,
            result.calls,
            result.chunks,
        )
    return result


def _purge_log(
    log: _Log,
    cutoff: datetime,
    chunk: int,
    dry_run: bool,
    result: LogsPurgeResult,
    progress: Callable[[LogsPurgeResult], None] | None,
) -> None:
    sql = _sql(log, connection.vendor)
    moment = connection.ops.adapt_datetimefield_value(cutoff)
    since = connection.ops.quote_name("created_at")
    for ids in purge_walk(table=sql["table"], since=since, old=log.old, params={"cutoff": moment}, chunk=chunk):
        params = {"ids": ids_param(ids), "cutoff": moment, "first": ids[0], "last": ids[-1]}
        children = 0
        if dry_run:
            with connection.cursor() as cursor:
                cursor.execute(sql["count"], params)
                deleted = cursor.fetchone()[0]
                if log.child is not None:
                    cursor.execute(sql["child_count"], params)
                    children = cursor.fetchone()[0]
        else:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql["delete"], params)
                deleted = cursor.rowcount
                if deleted and log.child is not None:
                    cursor.execute(sql["child"], params)
                    children = cursor.rowcount
        if log.name == "deliveries":
            result.deliveries += deleted
            result.attempts += children
        elif log.name == "inbound":
            result.inbound += deleted
        else:
            result.calls += deleted
        result.chunks += 1
        result.per_table[log.name] = result.per_table.get(log.name, 0) + 1
        if progress is not None:
            progress(result)
