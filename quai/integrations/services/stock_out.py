"""Stock out (``on_stock_event`` -> ``connection_stock_push``).

A stock or reservation event marks (connection, SKU) dirty in the outbox relay's transaction; after the commit a task
pushes, per connection, the *current* availability of every dirty SKU (latest level wins: ten changes in a burst are
one number), one push at a time per shop (a lease on the connection row, taken by a conditional UPDATE) and at most
one per ``settings.stock_interval_ms``. A change landing during a push bumps the SKU's generation, so it stays dirty
and goes in the next round: nothing is lost. What a shop may sell is what the reservation guard allows (on hand −
reserved − safety buffers).

No task waits in its worker process: the lease is held by the push under way or by the round asked for at the end of
the shop's interval (a task with a countdown), and a change asks for a task only when the shop is neither leased nor
waited for. Why: with a task per relay batch and the interval slept inside the task, the connectors bench measured a
change's way to the shop as mostly time spent queued behind other push tasks (p99 5 s on a loaded machine).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    F,
    IntegerField,
    PositiveBigIntegerField,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from quai.core import clock
from quai.core.rows import ids_in, ids_param
from quai.integrations import domain
from quai.integrations.connectors.base import (
    ConnectorError,
    StockLevel,
    StockPushReport,
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
# One line per push at DEBUG (JSON, wall-clock seconds): when it was asked for, when its task started, how long it
# waited for the shop's interval, when it read the dirty SKUs, and the HTTP call's start and end. Off by default;
# the connectors bench turns it on in its worker to split the stock change -> shop delay into its parts.
timing = logging.getLogger("quai.integrations.stock_push.timing")
DEFAULT_STOCK_INTERVAL_MS = 100
# A round or a retry further ahead than this is left to beat's sweep rather than held by a worker as a timed
# message (Redis hands an unacknowledged message out again after its visibility timeout, an hour).
FOLLOW_UP_MAX_SECONDS = 900


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
    from quai.inventory.selectors import available_to_sell_many

    return {
        sku_id: StockLevel(
            sku=code,
            available=domain.availability_for_shop(
                available_to_sell=available, connection_buffer=connection.safety_buffer
            ),
        )
        for sku_id, (code, available) in available_to_sell_many(
            merchant_id=connection.merchant_id, sku_ids=list(sku_ids)
        ).items()
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
    _stock_syncs_in_order(Q(connection_id__in=connection_ids, sku_id=sku_id)).update(
        generation=F("generation") + 1, changed_at=Coalesce(F("changed_at"), now)
    )
    _stock_push_after_commit(connection_ids)


def _stock_shops(merchant_ids: Iterable[int]) -> list[tuple[int, int]]:
    """``(connection id, merchant id)`` of the merchants' stock-pushing shops not paused, by id: the rows of
    ``Connection.objects.filter(merchant_id__in=…, push_stock=True).exclude(status=PAUSED).order_by("pk")
    .values_list("pk", "merchant_id")`` by a statement written once (the ids one parameter). Every relay batch of
    stock events reads it (three handlers), and the ORM's compiling of it was nearly all of their time in a day
    whose merchants push no stock (profiled, 1,000-order day)."""
    with db_connection.cursor() as cursor:
        cursor.execute(
            _stock_shops_sql(db_connection.vendor),
            [True, ConnectionStatus.PAUSED.value, ids_param(sorted(merchant_ids))],
        )
        return [(int(pk), int(merchant_id)) for pk, merchant_id in cursor.fetchall()]


@functools.cache
def _stock_shops_sql(vendor: str) -> str:
    quote = db_connection.ops.quote_name
    meta = Connection._meta
    column = {field.attname: quote(str(field.column)) for field in meta.concrete_fields}
    return (
        f"SELECT {column['id']}, {column['merchant_id']} FROM {quote(meta.db_table)}"
        f" WHERE {column['push_stock']} = %s AND NOT ({column['status']} = %s)"
        f" AND {column['merchant_id']} {ids_in(vendor)} ORDER BY {column['id']}"
    )


def on_stock_events(items: Sequence[tuple[Any, Any]]) -> None:
    """Batch form of ``on_stock_event`` (``subscribe(..., batch=)``): exactly what it does for each event in turn,
    in three queries per relay batch instead of one to three per event.

    The batch's merchants' stock-pushing shops in one query; one insert of the (shop, SKU) rows not there yet (the
    SKU code of the SKU's first event, as per event); then each SKU's generation goes up by its number of events
    in the batch, in one update, so the rows end as the per-event form leaves them.
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
    for pk, merchant_id in _stock_shops(per_merchant):
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
    # One statement for every count, so the rows are locked in one go, in id order (``_stock_syncs_in_order``).
    which = Q(pk__in=[])
    for which_count in bumps.values():
        which |= which_count
    added = Case(
        *(When(which_count, then=Value(events)) for events, which_count in sorted(bumps.items())),
        default=Value(0),
        output_field=PositiveBigIntegerField(),
    )
    _stock_syncs_in_order(which).update(
        generation=F("generation") + added, changed_at=Coalesce(F("changed_at"), clock.now())
    )
    _stock_push_after_commit(pk for connection_ids in shops.values() for pk in connection_ids)


def _stock_syncs_in_order(which: Q) -> QuerySet[StockSync]:
    """The (shop, SKU) rows ``which``, for an update that locks them in id order (PostgreSQL: the rows chosen by a
    ``FOR UPDATE`` subquery sorted by id; SQLite has one writer at a time).

    Why: the marks (relay or priority pass) and a push's record update the same rows from two transactions at once;
    each locked them in its own scan order — the marks along the (shop, SKU) index, the record by id — and they
    deadlocked (the connectors bench, during the burst). PostgreSQL only finds a deadlock after
    ``deadlock_timeout`` (a second): meanwhile the marks' run held the priority lock, so no change reached a shop,
    and the push that lost failed whole. Locked in one order, they only wait for each other's commit."""
    locked = StockSync.objects.filter(which).order_by("pk").select_for_update().values("pk")
    return StockSync.objects.filter(pk__in=locked)


def _stock_push_after_commit(connection_ids: Iterable[int]) -> None:
    """After the marks' commit, a push task for each shop that is neither leased (a push under way or a round asked
    for: its holder looks for dirty SKUs after it lets the lease go, later than this commit) nor waited for (its
    retry is asked for already). Not one task per relay batch: in a burst those queued up by the thousand on
    ``shop_push``, each a lease attempt, and the round asked for at the interval's end waited behind them."""
    ids = sorted(set(connection_ids))

    def enqueue() -> None:
        from quai.integrations.tasks import connection_stock_push as task

        now = clock.now()
        free = list(
            Connection.objects.filter(pk__in=ids)
            .filter(Q(stock_lease_until__isnull=True) | Q(stock_lease_until__lte=now))
            .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        asked_at = time.time()
        for pk in free:
            try:
                task.delay(pk, asked_at=asked_at)
            except Exception:
                logger.exception("could not enqueue the stock push of connection %s", pk)

    transaction.on_commit(enqueue, robust=True)


def _stock_lease(connection_id: int, now: datetime) -> datetime | None:
    """The shop's push lease if it is free and the shop is not waited for (a retry time); its expiry is the token."""
    until = now + LEASE
    taken = (
        Connection.objects.filter(pk=connection_id, push_stock=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .filter(Q(stock_lease_until__isnull=True) | Q(stock_lease_until__lte=now))
        .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
        .update(stock_lease_until=until)
    )
    return until if taken else None


def _stock_lease_renew(connection_id: int, token: datetime, until: datetime) -> datetime | None:
    """The lease held under ``token``, given a new expiry (the new token); None if it is not held under it any more
    (it ran out and another task took it, or the shop was paused)."""
    renewed = (
        Connection.objects.filter(pk=connection_id, push_stock=True, stock_lease_until=token)
        .exclude(status=ConnectionStatus.PAUSED)
        .update(stock_lease_until=until)
    )
    return until if renewed else None


def _stock_lease_release(connection_id: int, token: datetime) -> None:
    Connection.objects.filter(pk=connection_id, stock_lease_until=token).update(stock_lease_until=None)


def _dirty(connection_id: int) -> list[tuple[int, int, int, datetime | None, int | None]]:
    """The shop's dirty (shop, SKU) rows: (pk, SKU, generation, changed at, quantity last pushed)."""
    return list(
        StockSync.objects.filter(connection_id=connection_id, generation__gt=F("pushed_generation"))
        .order_by("sku_id")
        .values_list("pk", "sku_id", "generation", "changed_at", "pushed_quantity")[:500]
    )


def _interval_left(connection: Connection) -> float:
    """Seconds until the shop may take its next push (``settings.stock_interval_ms`` after the last one started)."""
    if connection.last_stock_push_at is None:
        return 0.0
    interval = int((connection.settings or {}).get("stock_interval_ms", DEFAULT_STOCK_INTERVAL_MS)) / 1000
    return interval - (clock.now() - connection.last_stock_push_at).total_seconds()


def _stock_push_later(connection_id: int, delay: float, *, lease: datetime | None = None) -> bool:
    """Ask for a push task ``delay`` seconds from now; with ``lease``, that task alone resumes the lease (renewed
    here to outlast the wait, so a lost message only costs the lease's minute). False if it could not be asked for
    (a broker down: the caller does the work itself) or the lease is not held any more."""
    from quai.integrations.tasks import connection_stock_push as task

    token = None
    if lease is not None:
        token = _stock_lease_renew(connection_id, lease, clock.now() + timedelta(seconds=delay) + LEASE)
        if token is None:
            return False
    try:
        task.apply_async(
            (connection_id,),
            {"asked_at": time.time() + delay, "lease": token.isoformat() if token is not None else None},
            countdown=delay,
        )
    except Exception:
        logger.exception("could not enqueue the stock push of connection %s", connection_id)
        if token is not None:
            _stock_lease_release(connection_id, token)
        return False
    return True


def connection_stock_push(
    *,
    connection_id: int,
    client: httpx.Client | None = None,
    rounds: int = 20,
    lease: str | None = None,
    asked_at: float | None = None,
) -> int:
    """Push every dirty SKU's current level to one shop, one push at a time per shop and at most one per
    ``settings.stock_interval_ms``; returns the SKUs this call pushed.

    The lease on the connection row is held by the push under way *or by the round asked for next*. When the
    shop's interval has not run out, the task does not wait in its worker process (that would hold a process of the
    ``shop_push`` queue idle while other shops wait): it keeps the lease, asks for a task at the end of the interval
    (``lease``: the lease's token, so that task alone resumes it) and returns. A task that finds the lease taken
    returns at once, and nothing is lost: its change was marked (committed) before it asked for the lease, and the
    holder looks for dirty SKUs again after each push, so the change goes in the holder's next round. A push the
    shop refused for now (down, 429) asks for its retry at ``next_retry_at`` (Retry-After honoured); beat's sweep
    catches whatever a lost message or a dead worker left. ``asked_at`` (wall-clock seconds, when the push was asked
    for) only feeds the timing line.
    """
    pushed = 0
    started = time.time()
    resume = datetime.fromisoformat(lease) if lease else None
    for _round in range(rounds):
        now = clock.now()
        if resume is not None:
            token = _stock_lease_renew(connection_id, resume, now + LEASE)
            if token is None:
                return pushed  # the lease ran out meanwhile and another task has the shop: its rounds now
        elif not _dirty(connection_id) or (token := _stock_lease(connection_id, now)) is None:
            return pushed
        handed_over = False
        try:
            connection = Connection.objects.get(pk=connection_id)
            wait = _interval_left(connection)
            slept = 0.0
            if wait > 0 and resume is None:
                handed_over = _stock_push_later(connection_id, min(wait, FOLLOW_UP_MAX_SECONDS), lease=token)
                if handed_over:
                    return pushed
            if 0 < wait <= 5:
                # A round asked for at the interval's end that starts a little early (a timer's jitter; tasks run
                # eagerly in tests) or a broker that would not take the message: the rest of the interval here.
                time.sleep(wait)
                slept = wait
            trace = {"connection": connection_id, "asked": asked_at, "started": started, "slept": slept}
            adapter = connection_adapter(connection, client or _push_client(connection))
            pushed_now, retry_in = _stock_push_once(connection, adapter, trace)
            pushed += pushed_now
        finally:
            if not handed_over:
                _stock_lease_release(connection_id, token)
        if retry_in is not None:
            if retry_in <= FOLLOW_UP_MAX_SECONDS:
                _stock_push_later(connection_id, retry_in)
            return pushed
        resume = None
        asked_at = started = time.time()  # a further round: asked for by this one, started at once
    if _dirty(connection_id):
        _stock_push_later(connection_id, 0)  # changes kept coming for ``rounds`` pushes: the queue's turn to others
    return pushed


_clients: OrderedDict[tuple[int, int, str], httpx.Client] = OrderedDict()  # (process, shop, URL) -> client
_clients_lock = threading.Lock()
CLIENTS_KEPT = 64


def _push_client(connection: Connection) -> httpx.Client:
    """This shop's HTTP client for its pushes in this process, kept from one push to the next: building one loads
    the TLS trust store (22 ms of CPU measured, more than the push's own HTTP call on loopback) and a new client
    opens a new connection every time. One per shop, never shared between shops (its cookies and pooled
    connections stay that shop's); the least recently used is closed beyond ``CLIENTS_KEPT``. Keyed by the process
    too: a client never crosses a fork."""
    key = (os.getpid(), connection.pk, connection.base_url)
    with _clients_lock:
        client = _clients.get(key)
        if client is not None and not client.is_closed:
            _clients.move_to_end(key)
            return client
        client = _clients[key] = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))  # the adapters' default
        while len(_clients) > CLIENTS_KEPT:
            _key, oldest = _clients.popitem(last=False)
            oldest.close()
        return client


def _stock_push_once(connection: Connection, adapter: Any, trace: dict[str, Any]) -> tuple[int, float | None]:
    """One push of the shop's dirty SKUs: (SKUs updated, or seconds until the retry the shop's refusal asks for)."""
    trace["read"] = time.time()
    rows = _dirty(connection.pk)
    if not rows:
        return 0, None
    levels = _levels_by_sku_id(connection, [sku_id for _pk, sku_id, *_rest in rows])
    # With what we last set on the shop (``StockLevel.shown``): Shopify then writes without reading first.
    to_push = [
        dataclasses.replace(levels[sku_id], shown=shown) for _pk, sku_id, _g, _c, shown in rows if sku_id in levels
    ]
    started = clock.now()
    trace["http"] = time.time()
    try:
        report = adapter.push_stock(to_push, f"{connection.pk}:{started.timestamp()}")
    except ConnectorError as exc:
        connection_failure_record(connection.pk, exc, retry_after=exc.retry_after)
        _trace(trace, skus=len(to_push), error=exc.code)
        retry_at = Connection.objects.filter(pk=connection.pk).values_list("next_retry_at", flat=True).first()
        return 0, max(0.0, (retry_at - clock.now()).total_seconds()) if retry_at is not None else None
    _trace(trace, skus=len(to_push))
    now = clock.now()
    oldest = min((row[3] for row in rows if row[3] is not None), default=None)
    _stock_syncs_record(rows, levels, report, now)
    lag = int((now - oldest).total_seconds() * 1000) if oldest is not None else None
    # The push's start, not its end: the next may start one interval after it (at most one push started per
    # interval, one at a time), so a slow answer does not add a whole interval to every change's wait.
    connection_success_record(connection.pk, last_stock_push_at=started, last_sync_at=now, lag_ms=lag)
    return len(report.updated), None


def _stock_syncs_record(
    rows: Sequence[tuple[int, int, int, datetime | None, int | None]],
    levels: dict[int, StockLevel],
    report: StockPushReport,
    now: datetime,
) -> None:
    """What one push did to each (shop, SKU) row, in ONE statement whatever the number of SKUs (two a SKU before,
    on the shop's round trip): the generation pushed, when, the quantity or the error; a row is clean again
    (``changed_at`` cleared) only if its generation is still the one pushed: a change landing meanwhile keeps it
    dirty for the next round."""
    if not rows:
        return
    whens: dict[str, list[When]] = {
        name: [] for name in ("pushed_generation", "changed_at", "last_error", "sku_code", "pushed_quantity")
    }
    for pk, sku_id, generation, *_rest in rows:
        level = levels.get(sku_id)
        error = ""
        if level is None:
            error = "SKU not found in Quai"
        elif level.sku in report.unknown:
            error = "SKU not in the shop"
        elif level.sku in report.failed:
            error = report.failed[level.sku]
        whens["pushed_generation"].append(When(pk=pk, then=Value(generation, output_field=PositiveBigIntegerField())))
        whens["changed_at"].append(When(pk=pk, generation=generation, then=Value(None, output_field=DateTimeField())))
        whens["last_error"].append(When(pk=pk, then=Value(error[:2000], output_field=TextField())))
        if level is not None:
            quantity = None if error else level.available
            whens["sku_code"].append(When(pk=pk, then=Value(level.sku, output_field=CharField())))
            whens["pushed_quantity"].append(When(pk=pk, then=Value(quantity, output_field=IntegerField())))
    with transaction.atomic(savepoint=False):  # the lock's subquery needs one; still one statement
        _stock_syncs_in_order(Q(pk__in=[pk for pk, *_rest in rows])).update(
            pushed_at=now, **{name: Case(*cases, default=F(name)) for name, cases in whens.items() if cases}
        )


def _trace(trace: dict[str, Any], **values: Any) -> None:
    if timing.isEnabledFor(logging.DEBUG):
        timing.debug("%s", json.dumps({**trace, "done": time.time(), **values}))
