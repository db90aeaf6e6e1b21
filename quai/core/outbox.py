"""The transactional outbox: events recorded with the change, relayed to handlers at least once, handled once.

- ``event_record`` writes a past-tense event in the caller's transaction, so the event exists if and only if the
  change committed. It also asks for one relay run after the commit (the "nudge", a Celery task that relays until
  nothing is pending: one transaction may record many batches' worth). The periodic ``outbox_sweep`` task catches
  whatever a nudge missed (a dead worker, a failure).
- ``outbox_relay`` claims a batch of pending events in ONE statement that leases them (``next_attempt_at`` set a
  minute ahead, in an ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``; SQLite runs the same
  statement without the lock clause, one writer at a time) and commits at once, so several relays share the work
  and no row lock outlives the claim. It turns each row back into its typed event
  (``quai.core.events.event_from_row``) and runs every handler subscribed to its name or prefix
  (``quai.core.events.subscribe``) with the event and its envelope — or, for a handler with a batch form, all its
  events of the batch in one call — each handler in its OWN transaction, then marks the events relayed. Why not
  one transaction for the whole batch, as before: a handler's row locks (a customer, a stock mark, a backlog
  tally shared by a merchant's orders) were then held until every other handler of the batch had run, and the
  concurrent relays (the worker's processes, the nudges, beat's sweep) queued behind each other on them.
- Handlers are idempotent by event id: each (event, handler) success is recorded in ``HandledEvent`` in the same
  transaction as the handler's own writes, so a retried event skips the handlers that already succeeded. A relay
  that dies after its claim leaves its events leased: they are claimed again once the lease is over, and only the
  handlers that had not committed run again. A handler idempotent by its own writes alone may be subscribed
  ``recorded=False`` (the webhook fan-out): it has no such row, and runs again on each retry of its event. One
  relayed first still writes its row on the events no recorded handler relayed first runs on (``recorded_keys``).
- Handlers relayed first (``relay_first``: the shops' stock marks, a change a shop must show within a second): in
  each batch they run before the batch's other handlers, and a priority pass (``outbox_relay_priority``, its own
  task, nudged by the commits that recorded such events) runs them on pending events before any relay claims them,
  however deep the backlog of other events (a sale's order events) ahead of them. The pass only records their
  ``HandledEvent`` rows: the event stays pending, leased or not, until a relay claims it, runs its other handlers
  (those done are skipped) and marks it relayed — so every guarantee above holds for them too. Why: in a burst, a
  stock change's mark waited for the relay to work through every older event and, in its batch, for the order
  handlers listed before it (the connectors bench's relay part, p99 ~1 s of the 1 s target). A pass never waits for
  another run of these handlers (their advisory lock, tried, not waited for): it leaves at once, freeing its worker
  for the shops' pushes, and marks that the run under way must look again (``PRIORITY_AGAIN_KEY``). A pass reads
  from the ids its process has already looked at on (less a margin, ``_PRIORITY_SEEN``), not the whole backlog:
  an event it skips that way is only not hurried, its relay batch runs these handlers first.
- What each event costs the database: one insert and two updates (the claim's lease, then relayed), and a
  ``HandledEvent`` row per recorded handler. So the table keeps only the indexes a read needs (``OutboxEvent``'s
  comment), the handled rows have no foreign-key check, and on PostgreSQL the table's pages are half empty
  (fillfactor 50) so the claim's update, which touches no indexed column, stays on its page (HOT) and writes no
  index entry; the claim reads from the first pending id on (``_claim_sql``). Why and the figures:
  docs/OUTBOX.md.
- A failing handler leaves the event pending with ``attempts``, ``last_error`` and ``next_attempt_at``
  (exponential backoff, capped); the other handlers of the event still run. A row that cannot be read back into
  its typed event (no such event any more, a payload no upcaster explains) fails the same way, loudly, rather than
  being skipped.
"""

from __future__ import annotations

import functools
import json
import logging
import operator
import traceback
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction

from quai.core import clock
from quai.core.db import insert_returning_id
from quai.core.events import (
    Envelope,
    Event,
    Handler,
    StoredEvent,
    Subscription,
    aggregate_id_of,
    event_from_row,
    event_payload,
    subscriptions,
    subscriptions_for,
)
from quai.core.marks import mark_clear, mark_pop, mark_take, marks_take
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.rows import ids_in, ids_param, rows_insert

logger = logging.getLogger(__name__)


class Relayed(StoredEvent, Protocol):
    """What the relay hands out: a stored event and its row's id (an ``OutboxEvent``, or a ``ClaimedEvent``)."""

    @property
    def pk(self) -> Any: ...


BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 3600
# How long a claimed batch is left to its relay before another may claim it again (a relay that died): far longer
# than a batch's handlers take, short enough that a dead worker's events wait a minute, not until an operator.
LEASE_SECONDS = 60
_NUDGE_MARK = "_quai_outbox_nudge"
_PRIORITY_MARK = "_quai_outbox_priority"
# Handlers relayed first (``relay_first``), and the queue of the priority pass's task (None: the default queue).
_PRIORITY_KEYS: set[str] = set()
_PRIORITY_QUEUE: list[str | None] = [None]
# The PostgreSQL advisory lock that serialises the runs of the handlers relayed first (the pass's and each relay
# batch's), so one never waits on the other's HandledEvent insert to fail on its unique constraint ("quai").
_PRIORITY_LOCK = 0x71756169
# The priority pass's floor, per process: the highest event id up to which a pass of this process has looked at
# every pending event (handled it, or left it to the relay). A pass reads from ``PRIORITY_REREAD_IDS`` below it on,
# not from the oldest pending event: in a sale the backlog ahead of the relay grew to 100,000 events, and each pass
# (one per nudge) walked all of them and every HandledEvent row of their handlers (~15 ms at 23,000 pending, per
# pass, back to back). The margin re-reads the ids of transactions that were still open when the floor was set; an
# event committed later still is not lost, only not hurried: its relay batch runs these handlers first.
_PRIORITY_SEEN = [0]
PRIORITY_REREAD_IDS = 2000


def relay_first(*keys: str, queue: str | None = None) -> None:
    """Relay the handlers subscribed under ``keys`` first (see the module's docstring); their priority pass's task
    goes to ``queue`` (a queue whose worker is not the relay's, so the pass does not wait behind relay runs).

    Only for a handler whose effect does not depend on the order it sees events in relative to the other handlers
    of the same events, nor to events not yet relayed (a counter bumped per event, say): the pass runs it on an
    event before older events of other names are relayed. Each event still reaches it once, in id order per pass.

    A handler subscribed unrecorded (``recorded=False``, idempotent by its own writes) may be relayed first too: the
    pass finds its work by the ``HandledEvent`` rows of the handlers relayed first, so it writes its row only on
    the events no recorded handler relayed first runs on (``recorded_keys``), and on the others runs without one
    — again on each retry, and again in the event's relay batch after the pass."""
    _PRIORITY_KEYS.update(keys)
    if queue is not None:
        _PRIORITY_QUEUE[0] = queue


def event_record(event: Event, *, merchant_id: int | None = None) -> OutboxEvent:
    """Write ``event`` (an instance of a registered ``quai.core.events.Event``) to the outbox in the current
    transaction, with its schema version, its aggregate and aggregate id (so the back office can find every event
    about one thing) and the merchant it concerns."""
    cls = type(event)
    if not isinstance(event, Event) or cls.__dict__.get("name") is None:
        raise TypeError(f"{cls.__name__} is not a registered event: derive it from quai.core.events.Event")
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "name": cls.name,
        "schema_version": cls.schema_version,
        "merchant_id": merchant_id,
        "aggregate": cls.aggregate,
        "aggregate_id": aggregate_id_of(event),
        "payload": event_payload(event),
        "occurred_at": clock.now(),
    }
    row = OutboxEvent(id=insert_returning_id(OutboxEvent, values), **values)
    row._state.adding = False
    _nudge_after_commit(priority=_priority_wanted([cls.name]))
    return row


def events_record_many(events: Sequence[tuple[Event, int | None]]) -> list[uuid.UUID]:
    """``event_record`` for many events in ONE insert (a batch's hot path): ``(event, merchant_id)`` pairs, stored
    in that order (ascending ids, so the relay sees each aggregate's events in the order given), each row exactly
    what ``event_record`` writes; one relay nudge after the commit. Returns the events' ``event_id``, in that order:
    what every caller reads (the audit rows of ``quai.core.states``), not the rows — building an ``OutboxEvent`` per
    row and reading the ids back were a fifth of this function's time (127,000 events in a 5,000-order day)."""
    if not events:
        return []
    now = clock.now()
    values: list[dict[str, Any]] = []
    names: set[str] = set()
    for event, merchant_id in events:
        cls = type(event)
        name = cls.__dict__.get("name")
        if name is None or not isinstance(event, Event):
            raise TypeError(f"{cls.__name__} is not a registered event: derive it from quai.core.events.Event")
        names.add(name)
        values.append(
            {
                "event_id": uuid.uuid4(),
                "name": name,
                "schema_version": cls.schema_version,
                "merchant_id": merchant_id,
                "aggregate": cls.aggregate,
                "aggregate_id": aggregate_id_of(event),
                "payload": event_payload(event),
                "occurred_at": now,
                "relayed_at": None,
                "attempts": 0,
                "last_error": "",
                "next_attempt_at": None,
            }
        )
    # One raw multi-row insert (``quai.core.rows``): the same rows as ``bulk_create``, without compiling the
    # statement again per call, nor an ``OutboxEvent`` built per row and read back into a dict to be written.
    rows_insert(OutboxEvent, values)
    _nudge_after_commit(priority=_priority_wanted(list(names)))
    return [row["event_id"] for row in values]


def outbox_nudge() -> None:
    """For writers that insert outbox rows in their own SQL (one-statement hot paths): ask for the relay run (and the
    priority pass, not knowing which events were written)."""
    _nudge_after_commit(priority=True)


# "A relay task is queued" (quai.core.marks): a commit queues a relay task only if none is waiting, and the task gives
# the mark up as it starts, before its first claim. An event committed before that is claimed by the task's sweep;
# one committed after it takes the mark again and queues the next task. During a sale the relay's queue so holds at
# most one waiting task instead of one per commit (thousands, ahead of any other task on that queue).
RELAY_QUEUED_KEY = "quai:outbox:relay-queued"
RELAY_QUEUED_SECONDS = 30
# The same for the priority pass's task (``relay_first``).
PRIORITY_QUEUED_KEY = "quai:outbox:priority-queued"
# "A priority pass left because another run held the priority lock": that run looks again before it ends.
PRIORITY_AGAIN_KEY = "quai:outbox:priority-again"


def outbox_relay_nudged(batch: int = 100) -> int:
    """The nudged task's run: give the mark up, then relay until nothing is pending."""
    mark_clear(RELAY_QUEUED_KEY)
    return outbox_sweep(batch)


def outbox_relay_priority_nudged(batch: int = 200) -> int:
    """The nudged priority task's run: give its mark up, then run the handlers relayed first until none is due."""
    mark_clear(PRIORITY_QUEUED_KEY)
    return outbox_relay_priority(batch)


def _priority_wanted(names: Sequence[str]) -> bool:
    """Whether one of these event names has a handler relayed first."""
    if not _PRIORITY_KEYS:
        return False
    return any(sub.key in _PRIORITY_KEYS and sub.matches(name) for sub in subscriptions() for name in set(names))


def _queue(send: Callable[[], Any], mark: str, *, taken: bool | None = None) -> None:
    """Send if the mark is taken now (or was: ``taken``, the caller's ``marks_take``); give it back if it fails."""
    if taken if taken is not None else mark_take(mark, RELAY_QUEUED_SECONDS):
        try:
            send()
        except Exception:
            mark_clear(mark)  # nothing queued after all: the next nudge must queue one
            raise


def _nudge_after_commit(*, priority: bool = False) -> None:
    """Ask for one relay run after the commit — one per transaction, however many events it recorded — and, when
    ``priority`` (an event with a handler relayed first was recorded), one priority pass before it."""
    if not getattr(settings, "QUAI_OUTBOX_NUDGE", True):
        return
    priority = priority and bool(_PRIORITY_KEYS)
    if connection.in_atomic_block:
        for entry in connection.run_on_commit:
            if getattr(entry[1], _NUDGE_MARK, False):
                if priority:
                    setattr(entry[1], _PRIORITY_MARK, True)
                return

    def nudge() -> None:
        from quai.core.tasks import outbox_relay_task

        # Both marks in one round trip to Redis: the nudge runs on the group committer's serial path, once a batch.
        wanted = getattr(nudge, _PRIORITY_MARK, False)
        taken = marks_take(
            (RELAY_QUEUED_KEY, PRIORITY_QUEUED_KEY) if wanted else (RELAY_QUEUED_KEY,), RELAY_QUEUED_SECONDS
        )
        if wanted:
            _queue_priority_pass(taken=taken[1])
        try:
            _queue(outbox_relay_task.delay, RELAY_QUEUED_KEY, taken=taken[0])
        except Exception:  # a nudge is a hint: the periodic sweep relays anything it missed
            logger.exception("outbox nudge failed; the sweep will relay the events")

    setattr(nudge, _NUDGE_MARK, True)
    setattr(nudge, _PRIORITY_MARK, priority)
    transaction.on_commit(nudge, robust=True)


def _queue_priority_pass(*, taken: bool | None = None) -> None:
    """Queue a priority pass's task unless one is waiting already (``PRIORITY_QUEUED_KEY``; ``taken``: its mark as
    the caller took it)."""
    from quai.core.tasks import outbox_relay_priority_task

    try:
        queue = _PRIORITY_QUEUE[0]
        _queue(lambda: outbox_relay_priority_task.apply_async(queue=queue), PRIORITY_QUEUED_KEY, taken=taken)
    except Exception:  # a hint too: the relay runs these handlers first in its batches anyway
        logger.exception("outbox priority nudge failed; the relay will run its handlers")


def backoff_delay(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, … capped at one hour (the first delay is the setting QUAI_OUTBOX_BACKOFF_SECONDS)."""
    base = float(getattr(settings, "QUAI_OUTBOX_BACKOFF_SECONDS", BACKOFF_BASE_SECONDS))
    seconds = min(BACKOFF_MAX_SECONDS, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds)


@cache
def _handled_sql(vendor: str, skip_taken: bool) -> str:
    quote = connection.ops.quote_name
    columns = f"{quote('event_id')}, {quote('handler')}, {quote('handled_at')}"
    source = (
        "SELECT unnest(%s::bigint[]), %s::text, %s::timestamptz"
        if vendor == "postgresql"
        else "SELECT value, %s, %s FROM json_each(%s)"
    )
    sql = f"INSERT INTO {quote(HandledEvent._meta.db_table)} ({columns}) {source}"
    if skip_taken:  # ``WHERE true``: SQLite would read ``ON`` as a join's after ``FROM json_each(…)``
        where = "" if vendor == "postgresql" else " WHERE true"
        sql += f"{where} ON CONFLICT DO NOTHING RETURNING {quote('event_id')}"
    return sql


def _handled_record(key: str, ids: Sequence[int], *, skip_taken: bool = False) -> list[int]:
    """Record that handler ``key`` succeeded on the events ``ids``, in ONE statement whose text is the same for any
    number of events (the rows ``HandledEvent.objects.create`` writes, one per event, in that order); the unique
    constraint refuses a second record (``IntegrityError``) — or, with ``skip_taken``, the events already recorded
    are left out. Returns the ids recorded (with ``skip_taken``; else ``ids``)."""
    handled_at = connection.ops.adapt_datetimefield_value(clock.now())
    if connection.vendor == "postgresql":
        params = [list(ids), key, handled_at]
    else:
        params = [key, handled_at, json.dumps(list(ids))]
    with connection.cursor() as cursor:
        cursor.execute(_handled_sql(connection.vendor, skip_taken), params)
        return [int(event_id) for (event_id,) in cursor.fetchall()] if skip_taken else list(ids)


def recorded_keys(name: str) -> frozenset[str]:
    """The handlers of events named ``name`` whose success the relay records (a ``HandledEvent`` row): those
    subscribed recorded, and a handler relayed first but subscribed unrecorded unless a recorded handler relayed
    first runs on the event too. Why: the priority pass finds the events it has not run on yet by the rows of the
    handlers relayed first (``outbox_relay_priority``), so each of its events needs one; one is enough, and the
    other handlers relayed first, idempotent by their own writes, may run again. The availability lane's webhook
    fan-out wrote a row beside the shops' stock mark's on every stock and reservation event (137,000 rows of the
    450,000 a 20,000-order day wrote)."""
    subs = subscriptions_for(name)
    marked = any(sub.recorded and key in _PRIORITY_KEYS for key, sub in subs.items())
    return frozenset(key for key, sub in subs.items() if sub.recorded or (key in _PRIORITY_KEYS and not marked))


def _handle(
    row: Relayed, key: str, fn: Handler, event: Event, envelope: Envelope, *, first: bool = False, record: bool = True
) -> None:
    """Run one handler with its success record in one transaction: both happen, or neither. ``first``: a handler
    relayed first, whose transaction takes the priority lock before anything. ``record=False``: a handler
    subscribed unrecorded (``subscribe(..., recorded=False)``), run without its record."""
    with transaction.atomic():
        if first:
            _priority_lock()
        if record:
            _handled_record(key, [row.pk])
        fn(event, envelope)


def _handle_together(
    sub: Subscription,
    work: list[tuple[Relayed, Event, Envelope]],
    *,
    skip_taken: bool = False,
    unmarked: frozenset[int] = frozenset(),
) -> bool:
    """Run one handler over several events (in id order) — its batch form in one call if it has one — and record
    their successes in ONE insert, all in ONE transaction (a savepoint inside a caller's): all of it happens, or none
    of it (False: the caller runs them one by one). With ``skip_taken`` (the handlers relayed first) the
    transaction takes the priority lock, then the insert comes first and leaves out the events another run
    recorded meanwhile, which the handler then skips: the read of those events is that insert's ``RETURNING``
    (except the ``unmarked`` ones, run without a row: see ``_run_handler``)."""
    key = sub.key
    try:
        with transaction.atomic():
            if skip_taken:
                _priority_lock()
                _first_together(sub, work, unmarked)
                return True
            if sub.batch is not None:
                sub.batch([(event, envelope) for _row, event, envelope in work])
            else:
                for _row, event, envelope in work:
                    sub.fn(event, envelope)
            if sub.recorded:
                _handled_record(key, [row.pk for row, _e, _v in work])
    except Exception:
        return False
    return True


def _first_together(
    sub: Subscription, work: list[tuple[Relayed, Event, Envelope]], unmarked: frozenset[int] = frozenset()
) -> None:
    """A handler relayed first over several events, in the caller's transaction, which holds the priority lock:
    the insert of its successes first, leaving out the events another run recorded meanwhile, which the handler then
    skips (the read of those events is that insert's ``RETURNING``), except the ``unmarked`` ones, run without a row
    (see ``_run_handler``); then the handler — its batch form in one call if it has one."""
    marked = [row.pk for row, _e, _v in work if row.pk not in unmarked]
    mine = set(_handled_record(sub.key, marked, skip_taken=True)) if marked else set()
    work = [item for item in work if item[0].pk in mine or item[0].pk in unmarked]
    if not work:
        return
    if sub.batch is not None:
        sub.batch([(event, envelope) for _row, event, envelope in work])
    else:
        for _row, event, envelope in work:
            sub.fn(event, envelope)


class _PassUndone(Exception):
    """A handler relayed first raised in the priority pass's transaction (``_dispatch_all(..., together=True)``):
    the pass undoes that transaction whole and runs its events again handler by handler. ``key``: the handler;
    ``single``: the event, when it was that handler's only one (already its one-at-a-time run)."""

    def __init__(self, key: str, single: int | None) -> None:
        super().__init__(key)
        self.key, self.single = key, single


def _dispatch_all(
    rows: Sequence[Relayed],
    done: set[tuple[int, str]],
    *,
    only: set[str] | None = None,
    together: bool = False,
    singly: frozenset[str] = frozenset(),
) -> dict[int, list[str]]:
    """Run the handlers of ``rows`` that have not succeeded yet (of those, only the ``only`` keys if given); returns
    each row's errors (none: all done).

    Handler by handler, each over all its events of the batch in one transaction of its own with one insert of
    their ``HandledEvent`` rows (two round trips and one insert per handler per batch, instead of per event), so
    its locks are held while it runs and no longer; a handler with a batch form (``subscribe(..., batch=)``) gets
    them in one call, so its own reads can be per batch too.
    If that fails — a handler raised on one event, or another relay recorded one first — it is rolled back and that
    handler's events run one at a time, each in its own transaction, so one event's failure is its own.
    Each handler still sees its events in id order (per resource, the order they happened). The handlers relayed
    first (``relay_first``) run before the others, each transaction under the priority lock, skipping the events
    the priority pass handled since ``done`` was read.

    ``together`` (the priority pass, whose transaction already holds the priority lock): the handlers relayed first
    run in the caller's transaction, one after the other, with no savepoint and no second lock (four statements
    per handler fewer); the first that raises raises ``_PassUndone``, and the caller rolls its transaction back
    and calls again without ``together``. ``singly``: handlers run one event at a time from the start (their batch
    already failed)."""
    errors: dict[int, list[str]] = {row.pk: [] for row in rows}
    per_handler: dict[str, tuple[Subscription, list[tuple[Relayed, Event, Envelope]]]] = {}
    of_name: dict[str, dict[str, Subscription]] = {}  # a batch holds a few names: their handlers looked up once
    # Per name, the handlers relayed first subscribed unrecorded that write no row on its events (``recorded_keys``),
    # and per such handler the events of the batch it runs on without one.
    unrecorded_first: dict[str, frozenset[str]] = {}
    unmarked: dict[str, set[int]] = {}
    for row in rows:
        handlers = of_name.get(row.name)
        if handlers is None:
            handlers = of_name[row.name] = {
                key: sub for key, sub in subscriptions_for(row.name).items() if only is None or key in only
            }
            recorded = recorded_keys(row.name)
            unrecorded_first[row.name] = frozenset(
                key for key in handlers if key in _PRIORITY_KEYS and key not in recorded
            )
        if done:
            handlers = {key: sub for key, sub in handlers.items() if (row.pk, key) not in done}
        if not handlers:
            continue
        try:
            event = event_from_row(row)
        except Exception as exc:
            logger.warning("outbox event %s %s cannot be read back", row.name, row.event_id)
            errors[row.pk].append(f"cannot read the event back: {type(exc).__name__}: {exc}")
            continue
        envelope = Envelope.of(row)
        for key, sub in handlers.items():
            per_handler.setdefault(key, (sub, []))[1].append((row, event, envelope))
        for key in unrecorded_first[row.name]:
            if key in handlers:
                unmarked.setdefault(key, set()).add(row.pk)
    first = {key: entry for key, entry in per_handler.items() if key in _PRIORITY_KEYS}
    if first:
        # Each in its own transaction, which takes the priority lock first (``skip_taken``): in a relay batch that
        # is a transaction per handler, as for the others, rather than savepoints inside one transaction holding
        # the lock for all of them (two statements less per handler). The priority pass may have run them on some
        # of these events since ``done`` was read: each handler's insert of its successes comes first and skips
        # those, one statement for both.
        for key, (sub, work) in first.items():
            unmarked_here = frozenset(unmarked.get(key, ()))
            if together:
                try:
                    _first_together(sub, work, unmarked_here)
                except Exception as exc:
                    raise _PassUndone(key, work[0][0].pk if len(work) == 1 else None) from exc
                continue
            _run_handler(key, sub, work, errors, skip_taken=True, unmarked=unmarked_here, singly=key in singly)
        if only is None and mark_pop(PRIORITY_AGAIN_KEY):
            # a priority pass left while this batch held the lock: one must look for what was committed meanwhile
            _queue_priority_pass()
    for key, (sub, work) in per_handler.items():
        if key not in first:
            _run_handler(key, sub, work, errors)
    return errors


def _run_handler(
    key: str,
    sub: Subscription,
    work: list[tuple[Relayed, Event, Envelope]],
    errors: dict[int, list[str]],
    *,
    skip_taken: bool = False,
    unmarked: frozenset[int] = frozenset(),
    singly: bool = False,
) -> None:
    """``unmarked``: the events of ``work`` on which this handler (relayed first, subscribed unrecorded) runs
    without its row (``recorded_keys``). ``singly``: one event at a time from the start."""
    if not work or (
        len(work) > 1 and not singly and _handle_together(sub, work, skip_taken=skip_taken, unmarked=unmarked)
    ):
        return
    # One at a time (one event, or the batch failed): each insert comes first, so an event recorded meanwhile is
    # refused (IntegrityError) before its handler runs.
    for row, event, envelope in work:
        record = (sub.recorded or skip_taken) and row.pk not in unmarked
        try:
            _handle(row, key, sub.fn, event, envelope, first=skip_taken, record=record)
        except IntegrityError as exc:
            if record:
                # another relay recorded this handler first: it ran once, which is what we want
                continue
            logger.warning("outbox handler %s failed on %s %s", key, row.name, row.event_id)
            errors[row.pk].append(f"{key}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
        except Exception as exc:
            logger.warning("outbox handler %s failed on %s %s", key, row.name, row.event_id)
            errors[row.pk].append(f"{key}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")


def _priority_lock(*, wait: bool = True) -> bool:
    """Inside a transaction: take the lock of the runs of the handlers relayed first, until the commit — waiting for
    the other runs to commit, or, with ``wait=False``, not at all (False: another run holds it). PostgreSQL only;
    SQLite has one writer at a time already."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PRIORITY_LOCK])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_PRIORITY_LOCK])
        (taken,) = cursor.fetchone()
        return bool(taken)


def _outbox_top() -> int:
    """The highest event id (0: none), as ``OutboxEvent.objects.aggregate(Max("pk"))`` reads it."""
    with connection.cursor() as cursor:
        cursor.execute(_top_sql())
        (top,) = cursor.fetchone()
    return int(top or 0)


@cache
def _top_sql() -> str:
    quote = connection.ops.quote_name
    return f"SELECT MAX({quote('id')}) FROM {quote(OutboxEvent._meta.db_table)}"


@functools.lru_cache(maxsize=64)
def _priority_sql(vendor: str, patterns: tuple[str, ...], keys: int) -> tuple[str, tuple[str, ...]]:
    """The priority pass's read, written once per set of patterns (the statement and the parameters its patterns
    take): what ``OutboxEvent.objects.filter(<the patterns>, relayed_at=None, attempts=0, pk__gt=floor)
    .filter(~Exists(<a HandledEvent of one of the keys, event_id > floor>)).order_by("pk")[:batch]`` reads (the
    ORM's own LIKE operator for a prefix, so SQLite's stays its ``ESCAPE``), with the claim's columns. The ORM built
    and compiled it on every pass, and read each row into an ``OutboxEvent``: a quarter of the pass's CPU."""
    quote = connection.ops.quote_name
    table = quote(OutboxEvent._meta.db_table)
    handled = quote(HandledEvent._meta.db_table)
    name = f"{table}.{quote('name')}"
    like = connection.operators["startswith"] % "%s"  # type: ignore[attr-defined]  # every backend has it
    conditions: list[str] = []
    params: list[str] = []
    for pattern in patterns:
        if pattern == "*":
            conditions = ["1 = 1"]
            params = []
            break
        if pattern.endswith(".*"):
            conditions.append(f"{name} {like}")
            params.append(f"{connection.ops.prep_for_like_query(pattern[:-1])}%")
        else:
            conditions.append(f"{name} = %s")
            params.append(pattern)
    columns = ", ".join(f"{table}.{quote(column)}" for column in _CLAIM_COLUMNS)
    marks = ", ".join(["%s"] * keys)
    sql = (
        f"SELECT {columns}, NULL FROM {table} WHERE ({' OR '.join(conditions) or '1 = 0'})"
        f" AND {table}.{quote('relayed_at')} IS NULL AND {table}.{quote('attempts')} = 0"
        f" AND {table}.{quote('id')} > %s AND NOT EXISTS (SELECT 1 FROM {handled} h"
        f" WHERE h.{quote('event_id')} = {table}.{quote('id')} AND h.{quote('event_id')} > %s"
        f" AND h.{quote('handler')} IN ({marks})) ORDER BY {table}.{quote('id')} LIMIT %s"
    )
    return sql, tuple(params)


def _priority_rows(patterns: tuple[str, ...], keys: tuple[str, ...], floor: int, batch: int) -> list[ClaimedEvent]:
    """The priority pass's events: pending (``relayed_at`` NULL), never failed (``attempts`` 0), above ``floor``,
    named by one of ``patterns``, that none of ``keys`` has handled, oldest first, up to ``batch``; as a claim
    reads them (``ClaimedEvent``, no handler done)."""
    db = connections[DEFAULT_DB_ALIAS]
    sql, names = _priority_sql(db.vendor, patterns, len(keys))
    with db.cursor() as cursor:
        cursor.execute(sql, [*names, floor, floor, *keys, batch])
        fetched = cursor.fetchall()
    return _claimed_rows(fetched, db)


def outbox_relay_priority(batch: int = 200, max_batches: int = 20) -> int:
    """The priority pass: run the handlers relayed first (``relay_first``) on pending events — leased by a relay or
    not, oldest first, up to ``batch`` at a time until none is left — that none of them has handled yet and that
    have never failed (a failed event's retries are its relay's, with their backoff). Records their ``HandledEvent``
    rows only: each event stays pending until a relay claims it, runs its other handlers and marks it relayed.
    Returns how many events it handled. A handler that fails here is left to the relay, which records the error.

    A pass that finds another run of these handlers under way (the priority lock held: another pass, or a relay
    batch running them on its own events) leaves at once rather than wait for it, freeing its worker (the shop
    pushes' own) for the pushes; it leaves a mark (``PRIORITY_AGAIN_KEY``) so the run under way looks again for
    events committed since it read: a pass reads once more before it leaves, a relay batch queues a pass."""
    subs = [sub for sub in subscriptions() if sub.key in _PRIORITY_KEYS]
    if not subs:
        return 0
    keys = {sub.key for sub in subs}
    patterns = tuple(sorted({sub.pattern for sub in subs}))
    ordered_keys = tuple(sorted(keys))
    total = passes = 0
    # The handlers run in the pass's transaction, which holds the priority lock, one after the other
    # (``together``): no savepoint and no second lock per handler (9 statements a pass of the intake bench's
    # sale, against 15). If one raises, the transaction is rolled back whole and the pass runs again as a relay
    # batch runs these handlers, each in its savepoint (its failure its own), the one that raised one event at a
    # time — except on the event it raised on alone, which is left to the relay as before.
    together, singly, skip = True, frozenset[str](), set[tuple[int, str]]()
    while passes < max_batches:
        try:
            with transaction.atomic():
                if not _priority_lock(wait=False):
                    mark_take(PRIORITY_AGAIN_KEY, RELAY_QUEUED_SECONDS)
                    break
                # Read before the rows: every event up to it that committed by now is in what the query below sees.
                top = _outbox_top()
                if top < _PRIORITY_SEEN[0]:  # ids went back (a restored database, a test's rollback): all again
                    _PRIORITY_SEEN[0] = 0
                floor = max(0, _PRIORITY_SEEN[0] - PRIORITY_REREAD_IDS)
                rows = _priority_rows(patterns, ordered_keys, floor, batch)
                if rows:
                    _dispatch_all(rows, skip, only=keys, together=together, singly=singly)
        except _PassUndone as undone:
            if undone.single is not None:
                logger.warning("outbox handler %s failed on event %s in the priority pass", undone.key, undone.single)
            together, singly = False, frozenset({undone.key})
            skip = {(undone.single, undone.key)} if undone.single is not None else set()
            continue
        together, singly, skip = True, frozenset(), set()
        passes += 1
        _PRIORITY_SEEN[0] = max(_PRIORITY_SEEN[0], rows[-1].pk if len(rows) == batch else top)
        total += len(rows)
        if len(rows) < batch and not mark_pop(PRIORITY_AGAIN_KEY):
            break
    return total


# The outbox's columns, in the model's order, and, of them, what a claim reads back (``_CLAIM_COLUMNS``, the
# handlers already done come last) into a ``ClaimedEvent``'s slots — one list, so they cannot drift apart.
_OUTBOX_FIELDS = tuple(str(field.attname) for field in OutboxEvent._meta.concrete_fields)
_CLAIM_COLUMNS = tuple(name for name in _OUTBOX_FIELDS if name not in ("relayed_at", "last_error", "next_attempt_at"))
_CLAIM_SLOTS = ("pk", *_CLAIM_COLUMNS[1:])


class ClaimedEvent:
    """An outbox row as a relay claimed it: what ``event_from_row`` and ``Envelope.of`` read, its id, its attempts
    so far and the handlers that already succeeded on it (``handled``, read by the claim's own statement). Not an
    ``OutboxEvent``: building a model instance, every column through the ORM's converters, was a fifth of the
    relay's own time per event, for columns (``last_error``, ``relayed_at``, the lease) it never reads."""

    __slots__ = (*_CLAIM_SLOTS, "handled")

    pk: int
    event_id: uuid.UUID
    name: str
    schema_version: int
    merchant_id: int | None
    aggregate: str
    aggregate_id: str
    payload: Any
    occurred_at: datetime
    attempts: int
    handled: tuple[str, ...]

    def __repr__(self) -> str:
        return f"<ClaimedEvent {self.pk} {self.name}>"


@cache
def _claim_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    table = quote(OutboxEvent._meta.db_table)
    handled = quote(HandledEvent._meta.db_table)
    columns = ", ".join(f"{table}.{quote(name)}" for name in _CLAIM_COLUMNS)
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    # The handlers done already, in the same statement (was a second query per batch): nearly always none — a row
    # has some only when a relay died after them, a handler failed on it, or the priority pass ran on it.
    agg = "array_agg(h.handler)" if vendor == "postgresql" else "json_group_array(h.handler)"
    done = f"(SELECT {agg} FROM {handled} h WHERE h.{quote('event_id')} = {table}.{quote('id')})"
    due = (
        f"{quote('relayed_at')} IS NULL"
        f" AND ({quote('next_attempt_at')} IS NULL OR {quote('next_attempt_at')} <= %(now)s)"
    )
    # PostgreSQL: from the first pending event on. The pending index keeps an entry for every event relayed since
    # the last VACUUM (its old row versions); a bitmap scan of it, which the planner chose (its estimate a handful
    # of pending rows, the plan kept for the day), visited all of them on every claim (58,000 entries, 2,600 pages,
    # 13 ms a claim late in a 1,000-order day). The first pending id is read by a plain index scan — chosen even at
    # such estimates because it stops at its first entry, which the same read with the lease's condition did not
    # (then the planner took the bitmap again) — and that scan marks the dead entries it passes, so the next claims
    # skip them; the claim's own scan, of either kind, starts there. The same rows: none below it is pending.
    floor = (
        f" AND {quote('id')} >= (SELECT {quote('id')} FROM {table} WHERE {quote('relayed_at')} IS NULL"
        f" ORDER BY {quote('id')} LIMIT 1)"
        if vendor == "postgresql"
        else ""
    )
    return (
        f"UPDATE {table} SET {quote('next_attempt_at')} = %(lease)s WHERE {quote('id')} IN ("
        f"SELECT {quote('id')} FROM {table} WHERE {due}{floor}"
        f" ORDER BY {quote('id')} LIMIT %(batch)s{lock}) RETURNING {columns}, {done}"
    )


@cache
def _claim_converters(vendor: str) -> tuple[tuple[Any, tuple[Any, ...]], ...]:
    """Per claimed column: the expression and the converters the ORM applies to its value (``from_db_value``, the
    backend's), so a claimed row holds exactly what ``OutboxEvent`` read through the ORM would."""
    converters = []
    fields = {field.attname: field for field in OutboxEvent._meta.concrete_fields}
    for name in _CLAIM_COLUMNS:
        field = fields[name]
        col = field.get_col(OutboxEvent._meta.db_table)
        convert = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        if vendor == "sqlite" and field.get_internal_type() == "DateTimeField" and settings.USE_TZ:
            convert = [functools.partial(_sqlite_moment, convert)]
        converters.append((col, tuple(convert)))
    return tuple(converters)


def _sqlite_moment(slow: list[Any], value: Any, col: Any, db: Any) -> Any:
    """SQLite's datetime as the ORM reads it (``convert_datetimefield_value``: ``parse_datetime`` unless sqlite3's
    own converter parsed the column already, then ``make_aware`` in the connection's time zone: both amount to this
    for what Django writes), without their per-value checks; any other value goes the ORM's way. Why both: a
    RETURNING column keeps its declared type, so sqlite3 hands a naive ``datetime``, not text — the text-only fast
    path missed every claimed row (5 of the claim's 20 s, profiled, in a 5,000-order day)."""
    kind = type(value)
    if kind is datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=db.timezone)
    elif kind is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is None:
            return moment.replace(tzinfo=db.timezone)
    for converter in slow:
        value = converter(value, col, db)
    return value


def outbox_claim(now: datetime, batch: int) -> list[ClaimedEvent]:
    """Lease up to ``batch`` pending events (oldest first) to this relay, in one statement; in id order.

    The lease is ``next_attempt_at``: another relay skips the rows until it is over, so nothing is held while the
    handlers run. ``SKIP LOCKED`` (PostgreSQL) lets concurrent claims take different rows instead of waiting.
    """
    # The connection itself, not ``django.db.connection``: that proxy looks the thread's connection up on every
    # attribute read, and the converters read one per value (``db.timezone``: 0.8 of the claim's 4.4 s, profiled,
    # in a 5,000-order day).
    db = connections[DEFAULT_DB_ALIAS]
    adapt = db.ops.adapt_datetimefield_value
    with db.cursor() as cursor:
        lease = adapt(now + timedelta(seconds=LEASE_SECONDS))
        cursor.execute(_claim_sql(db.vendor), {"lease": lease, "now": adapt(now), "batch": batch})
        fetched = cursor.fetchall()
    rows = _claimed_rows(fetched, db)
    rows.sort(key=_pk_of)
    return rows


def _claimed_rows(fetched: Sequence[Sequence[Any]], db: Any) -> list[ClaimedEvent]:
    """``ClaimedEvent``s of rows read as ``_CLAIM_COLUMNS`` then the handlers done (NULL: none), each column through
    the ORM's converters (``_claim_plan``): the claim's, and the priority pass's (``_priority_rows``)."""
    plain, converted = _claim_plan(db.vendor)
    new = object.__new__
    rows: list[ClaimedEvent] = []
    for record in fetched:
        row = new(ClaimedEvent)
        for slot, index in plain:
            setattr(row, slot, record[index])
        for slot, index, col, convert in converted:
            value = record[index]
            if value is not None:  # every converter of these columns gives None for None
                for converter in convert:
                    value = converter(value, col, db)
            setattr(row, slot, value)
        handled = record[-1]
        if handled == "[]" or handled is None:  # SQLite: a JSON array ("[]" nearly always); PostgreSQL: a list/NULL
            row.handled = ()
        else:
            if isinstance(handled, str):
                handled = json.loads(handled)
            row.handled = tuple(handler for handler in handled if handler is not None)
        rows.append(row)
    return rows


_pk_of = operator.attrgetter("pk")


@cache
def _claim_plan(vendor: str) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int, Any, tuple[Any, ...]], ...]]:
    """``_claim_converters`` split once: the columns read as they come (slot, index) and those converted (slot,
    index, column, converters), so the claim's loop per row does not look at each column's converters again."""
    plain, converted = [], []
    for index, (slot, (col, convert)) in enumerate(zip(_CLAIM_SLOTS, _claim_converters(vendor), strict=True)):
        if convert:
            converted.append((slot, index, col, convert))
        else:
            plain.append((slot, index))
    return tuple(plain), tuple(converted)


@cache
def _relayed_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    ids = ids_in(vendor)
    return (
        f"UPDATE {quote(OutboxEvent._meta.db_table)} SET {quote('attempts')} = {quote('attempts')} + 1,"
        f" {quote('relayed_at')} = %s, {quote('next_attempt_at')} = NULL WHERE {quote('id')} {ids}"
    )


def outbox_relay(batch: int = 100) -> int:
    """Relay up to ``batch`` pending events to their handlers; returns how many were claimed."""
    now = clock.now()
    events = outbox_claim(now, batch)
    if not events:
        return 0
    done = {(event.pk, handler) for event in events for handler in event.handled}
    errors = _dispatch_all(events, done)
    relayed: list[int] = []
    for event in events:
        if errors[event.pk]:
            attempts = event.attempts + 1
            OutboxEvent.objects.filter(pk=event.pk).update(
                attempts=attempts,
                last_error="\n".join(errors[event.pk])[:10_000],
                next_attempt_at=now + backoff_delay(attempts),
                relayed_at=None,
            )
        else:
            relayed.append(event.pk)
    if relayed:  # one statement for every event relayed (a failed one keeps its own update above)
        with connection.cursor() as cursor:
            cursor.execute(
                _relayed_sql(connection.vendor),
                [connection.ops.adapt_datetimefield_value(now), ids_param(relayed)],
            )
    return len(events)


def outbox_sweep(batch: int = 100, max_batches: int = 50) -> int:
    """Relay batches until nothing is pending (or ``max_batches`` ran); returns how many events were claimed."""
    total = 0
    for _ in range(max_batches):
        claimed = outbox_relay(batch)
        total += claimed
        if claimed < batch:
            break
    return total
