"""The outbox's retention: relayed events older than ``QUAI_OUTBOX_RETENTION_DAYS`` are deleted with their
``HandledEvent`` rows, in bounded chunks, once a day (beat's ``outbox-purge``, ``manage.py outbox_purge``).

Why: every order writes ~30 events and ~27 handled rows, and nothing else ever deletes them: a warehouse that sells
100,000 orders on a sale day adds ~3 million events and ~2 million handled rows that day, and every index on the two
tables grows with them. What may go, and why it is safe (every reader of the two tables checked, docs/OUTBOX.md,
"Retention"):

- Only events relayed (``relayed_at`` set) before the cut-off, and that occurred before it: a pending event (never
  relayed, failing, leased, backing off) is never deleted, whatever its age. A relayed row never changes again (the
  relay's claim and updates touch pending rows only), and each delete says the condition again, so a chunk read a
  moment earlier cannot take a row that is not relayed when it is deleted.
- Its ``HandledEvent`` rows go with it, in the same transaction: those of the chunk's id range whose event is gone.
  They exist to skip the handlers already done when the event is relayed again, which a relayed event never is; an
  event the chunk kept keeps its rows.
- What reads old events: the back office's outbox page (it shows fewer) and the service desk's order story
  (``quai.service.warehouse``: the picks, totes and parcels events of an order, with their operator), which is why
  the default keeps 90 days, beyond a merchant's 30-day return window after delivery. The order's status history is
  ``core.StateTransition``, which this never touches; a webhook delivery and its replay carry their own snapshot of
  the body (``quai.integrations``), so they need no event.
- Chunks of ``PURGE_CHUNK`` ids (SQLite: ``PURGE_CHUNK_SQLITE``), each its own short transaction of two deletes, by
  primary key and by the handled rows' unique index: never a long lock, nor a huge transaction. The ids are read
  walking the primary key from where the last chunk ended up to the first event younger than the cut-off, so each
  chunk reads about the rows it deletes (a pending old event is walked past once, not read again by every chunk).
- Concurrent relays touch pending rows only, so they never wait on a purge nor it on them. Two purges at once on
  PostgreSQL: the second leaves at once (an advisory lock); without it they would still be correct (the second's
  deletes find the rows gone), only twice the reads. SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from quai.core import clock
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.rows import ids_in, ids_param

logger = logging.getLogger(__name__)

# Ids per chunk: each chunk deletes this many events and their handled rows (~0.7 an event) in one transaction.
# PostgreSQL: 5,000 (a sale day's 3 million events are 600 chunks, ~60 ms of server time each; the relay never waits
# on them). SQLite: 1,000, since a chunk holds the database's one write lock, which intake and the relay wait for:
# ~16-20 ms a chunk against ~95 ms at 5,000 in a 5,000-order day's outbox, the whole purge as fast (docs/OUTBOX.md).
PURGE_CHUNK = 5000
PURGE_CHUNK_SQLITE = 1000
# The PostgreSQL advisory lock held by a running purge ("quap"; the relay's priority lock is "quai").
_PURGE_LOCK = 0x71756170


@dataclass
class PurgeResult:
    """What a purge did (or, ``dry_run``, would do): events and handled rows deleted, in how many chunks; ``skipped``
    says why it did nothing (retention off, another purge running)."""

    cutoff: datetime | None
    dry_run: bool = False
    events: int = 0
    handled: int = 0
    chunks: int = 0
    skipped: str = ""


@cache
def _sql(vendor: str) -> dict[str, str]:
    quote = connection.ops.quote_name
    outbox = quote(OutboxEvent._meta.db_table)
    handled = quote(HandledEvent._meta.db_table)
    pk, event, relayed, occurred = quote("id"), quote("event_id"), quote("relayed_at"), quote("occurred_at")
    ids_of = ids_in(vendor).replace("%s", "%(ids)s")
    # What may go, said again in the delete itself: the chunk's ids were read a moment earlier, outside its transaction.
    old = f"{relayed} IS NOT NULL AND {relayed} < %(cutoff)s AND {occurred} < %(cutoff)s"
    return {
        "old": old,
        "events": f"DELETE FROM {outbox} WHERE {pk} {ids_of} AND {old}",
        # The handled rows of the chunk's id range whose event is gone (deleted by the statement above, in the same
        # transaction): an event the chunk kept (not relayed after all) keeps its rows. By the range, not the ids:
        # PostgreSQL then reads the range of the unique index (event, handler) and the outbox's primary key, whatever
        # the tables' sizes; with ``= ANY`` of 5,000 ids it chose to scan the whole table (a 5,000-order day's
        # 100,000 rows: 1,072 pages a chunk, the table's size, where the range reads ~60).
        "handled": (
            f"DELETE FROM {handled} WHERE {event} BETWEEN %(first)s AND %(last)s"
            f" AND NOT EXISTS (SELECT 1 FROM {outbox} o WHERE o.{pk} = {handled}.{event})"
        ),
        "handled_count": (
            f"SELECT count(*) FROM {handled} WHERE {event} BETWEEN %(first)s AND %(last)s"
            f" AND EXISTS (SELECT 1 FROM {outbox} o WHERE o.{pk} = {handled}.{event} AND {old})"
        ),
    }


# --- What every purge of an append-mostly log shares (the outbox here, quai.integrations.retention's logs) --------


def purge_chunk(chunk: int | None) -> int:
    """The rows a chunk deletes: ``chunk``, or the database's default (``PURGE_CHUNK``; SQLite
    ``PURGE_CHUNK_SQLITE``)."""
    if chunk is None:
        return PURGE_CHUNK if connection.vendor == "postgresql" else PURGE_CHUNK_SQLITE
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    return chunk


@contextlib.contextmanager
def purge_lock(key: int) -> Iterator[bool]:
    """PostgreSQL: the session's advisory lock ``key``, tried, not waited for (False: another purge holds it);
    released on the way out. SQLite: always True (one writer at a time)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        (taken,) = cursor.fetchone()
    try:
        yield bool(taken)
    finally:
        if taken:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _purge_lock() -> contextlib.AbstractContextManager[bool]:
    """The outbox purge's lock."""
    return purge_lock(_PURGE_LOCK)


def purge_walk(*, table: str, since: str, old: str, params: Mapping[str, Any], chunk: int) -> Iterator[list[int]]:
    """The ids of each chunk of ``table`` (quoted) whose rows match ``old`` (SQL naming its parameters as
    ``%(name)s`` from ``params``), oldest first: the primary key (``id``) walked from where the last chunk ended up
    to the first row whose ``since`` (an indexed time column, quoted; one index entry read) is at or after
    ``params["cutoff"]`` (or the last row when none is), so each chunk reads about the rows it deletes and a row
    kept is walked past once. The ids are read outside any transaction: the caller deletes them, saying ``old``
    again, before the next chunk is read. Ids follow time but for rows of transactions that committed out of order:
    an old row above the first young one is left to the next purge."""
    pk = connection.ops.quote_name("id")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {pk} FROM {table} WHERE {since} >= %(cutoff)s ORDER BY {since} LIMIT 1", params)
        found = cursor.fetchone()
        if found is None:  # every row is older than the cut-off: up to the last one
            cursor.execute(f"SELECT max({pk}) FROM {table}")
            found = cursor.fetchone()
    top = found[0] if found and found[0] is not None else 0
    select = (
        f"SELECT {pk} FROM {table} WHERE {pk} > %(after)s AND {pk} <= %(top)s AND {old} ORDER BY {pk} LIMIT %(chunk)s"
    )
    after = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(select, {**params, "after": after, "top": top, "chunk": chunk})
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        yield ids
        after = ids[-1]
        if len(ids) < chunk:
            return


def outbox_purge(
    *,
    days: int | None = None,
    chunk: int | None = None,
    dry_run: bool = False,
    progress: Callable[[PurgeResult], None] | None = None,
) -> PurgeResult:
    """Delete the events relayed more than ``days`` ago (default ``QUAI_OUTBOX_RETENTION_DAYS``; 0 keeps them all)
    and their ``HandledEvent`` rows, ``chunk`` events a transaction (default: ``PURGE_CHUNK``, on SQLite
    ``PURGE_CHUNK_SQLITE``), oldest first; ``dry_run`` counts what would
    go and deletes nothing. ``progress`` is called with the running totals after each chunk. Run it outside a
    transaction: each chunk commits on its own (inside one, they are savepoints of the caller's)."""
    days = settings.QUAI_OUTBOX_RETENTION_DAYS if days is None else days
    if days <= 0:
        return PurgeResult(cutoff=None, dry_run=dry_run, skipped="retention off (0 days: events are kept forever)")
    chunk = purge_chunk(chunk)
    cutoff = clock.now() - timedelta(days=days)
    result = PurgeResult(cutoff=cutoff, dry_run=dry_run)
    sql = _sql(connection.vendor)
    moment = connection.ops.adapt_datetimefield_value(cutoff)
    with purge_lock(_PURGE_LOCK) as taken:
        if not taken:
            result.skipped = "another purge is running"
            return result
        outbox, occurred = (
            connection.ops.quote_name(OutboxEvent._meta.db_table),
            connection.ops.quote_name("occurred_at"),
        )
        for ids in purge_walk(table=outbox, since=occurred, old=sql["old"], params={"cutoff": moment}, chunk=chunk):
            span = {"first": ids[0], "last": ids[-1], "cutoff": moment}
            if dry_run:
                with connection.cursor() as cursor:
                    cursor.execute(sql["handled_count"], span)
                    result.handled += cursor.fetchone()[0]
                result.events += len(ids)
            else:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(sql["events"], {"ids": ids_param(ids), "cutoff": moment})
                    deleted = cursor.rowcount
                    if deleted:
                        cursor.execute(sql["handled"], span)
                        result.handled += cursor.rowcount
                    result.events += deleted
            result.chunks += 1
            if progress is not None:
                progress(result)
    if not dry_run and result.events:
        logger.info(
            "outbox purge: %d events and %d handled rows relayed before %s deleted in %d chunks",
            result.events,
            result.handled,
            cutoff.isoformat(),
            result.chunks,
        )
    return result
