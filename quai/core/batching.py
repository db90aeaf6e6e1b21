"""Group commit: many requests share one durable commit, each still answered only once its work is committed.

Why: a durable commit costs a disk flush, and a database takes only so many a second (about 1,200–1,600 on this
machine's PostgreSQL, far fewer on a cloud disk). One commit per order caps intake there, whatever the CPU. So the
request threads of a process hand their unit of work to ONE committer thread, which runs what arrived within a
short window in ONE transaction, each unit in its own savepoint, commits once, and only then answers every waiter.

Invariants (docs/INTAKE.md explains them and their limits):

- **No answer before the commit.** A unit's future is resolved only after the commit of the transaction that
  holds its writes returned; a request blocked on it therefore answers 2xx only for durable work.
- **A unit fails alone.** A unit that raises (bad input, insufficient stock, a duplicate) is rolled back to its
  savepoint and gets its own error; the others of the batch commit.
- **A failed commit fails everyone.** If the transaction itself fails (commit, connection lost, a savepoint that
  cannot roll back), every unit of the batch gets ``CommitFailed`` (503): nothing of it was acknowledged.
- **Fairness.** Work is queued per key (a merchant) and drained round-robin, at most ``per_key_cap`` units of one
  key per batch; admission is bounded per key too (``Overloaded``, 503 with Retry-After), so one merchant's burst
  neither fills another's batches nor its queue.
- **Deadlock-free across processes.** Units may declare the rows they will lock (``locks``, e.g. SKU ids); the
  optional ``prepare`` hook receives the union of a batch's locks, sorted, and takes them first, in that order, so
  two committers of two processes never wait on each other in a circle.
- **Bulk units, per-unit fallback.** A committer given a ``bulk`` handler hands the items of its batch's bulk units
  (``submit(…, item=…)``) to it in ONE savepoint — one statement per table for the whole batch instead of one per
  unit — with what ``prepare`` returned. If the handler raises, that savepoint is rolled back and every unit runs
  its own ``work`` in its own savepoint as before, so a unit still fails alone. A batch made of bulk units only
  runs the handler in its transaction without that savepoint (two round trips fewer); if it raises, the whole
  transaction is rolled back and the units run alone in a new one, their locks taken again first. The handler
  answers each item its own outcome (a value, or an exception instance: that unit's error, nothing of it written).
- **A caller inside a transaction runs inline.** Its work could not see the caller's uncommitted rows from the
  committer's connection, so it runs in the caller's thread, in a savepoint of the caller's transaction (tests,
  management commands, a service composing another). ``QUAI_GROUP_COMMIT=false`` makes every call inline.

The committer is generic: it imports no app. It works on SQLite too (one writer: the batch is one ``IMMEDIATE``
transaction instead of many that queue for the write lock).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils.translation import gettext as _

from quai.core.errors import QuaiError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Overloaded(QuaiError):
    """More work is queued than the committer can take in time: nothing was done; retry after ``retry_after``."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: int = 1, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class CommitFailed(QuaiError):
    """The shared transaction did not commit: nothing of this unit was written; it is safe to retry."""

    status = 503
    code = "commit_failed"


_NO_ITEM: Any = object()

#: A bulk handler: the items of a batch's bulk units (in batch order) and what ``prepare`` returned; one outcome per
#: item, in the same order — a value, or an exception instance for an item that failed alone (nothing of it written).
BulkHandler = Callable[[Sequence[Any], Any], Sequence[Any]]


@dataclass(eq=False)
class _Unit(Generic[T]):
    work: Callable[[], T]
    key: Hashable
    locks: tuple[Any, ...]
    item: Any = _NO_ITEM
    future: Future[T] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.perf_counter)


@dataclass
class CommitterStats:
    """What a committer did since it started (for the benchmark and for diagnostics)."""

    batches: int = 0
    units: int = 0
    failed_units: int = 0
    failed_commits: int = 0
    largest_batch: int = 0
    overloaded: int = 0
    bulk_batches: int = 0
    bulk_fallbacks: int = 0


class GroupCommitter:
    """One committer thread per process and name; request threads call ``run`` (or ``submit`` and wait).

    ``window``: how long the committer waits, once a unit is queued, for others to join it (seconds). While a batch
    is being committed, new units queue anyway, so under load batches fill without waiting.
    ``max_batch``: units per transaction. ``per_key_cap``: units of one key per transaction.
    ``max_pending_per_key`` / ``max_pending``: queued units beyond which ``submit`` refuses (``Overloaded``).
    ``wait_timeout``: how long a caller waits for its unit to START; a unit still queued then is withdrawn and the
    caller gets ``Overloaded`` (nothing done). A unit already running is always waited for: its outcome is coming.
    ``None``: a caller waits however long it takes (a simulated day, whose results must not depend on wall time).
    ``prepare(locks)``: called inside the batch's transaction before any unit, with the sorted union of the units'
    ``locks``; it takes those locks in that order (e.g. ``SELECT … ORDER BY id FOR UPDATE``). What it returns (say,
    the locked rows' counters) is handed to ``bulk``.
    ``bulk(items, prepared)``: runs the batch's bulk units together (see the module's docstring); ``work`` stays
    each unit's fallback.
    """

    def __init__(
        self,
        *,
        name: str,
        window: float = 0.002,
        max_batch: int = 200,
        per_key_cap: int = 100,
        max_pending_per_key: int = 2000,
        max_pending: int = 10000,
        wait_timeout: float | None = 30.0,
        prepare: Callable[[Sequence[Any]], Any] | None = None,
        bulk: BulkHandler | None = None,
        using: str = DEFAULT_DB_ALIAS,
    ) -> None:
        if per_key_cap < 1 or max_batch < 1:
            raise ValueError("max_batch and per_key_cap must be at least 1")
        self.name = name
        self.window = window
        self.max_batch = max_batch
        self.per_key_cap = min(per_key_cap, max_batch)
        self.max_pending_per_key = max_pending_per_key
        self.max_pending = max_pending
        self.wait_timeout = wait_timeout
        self.prepare = prepare
        self.bulk = bulk
        self.using = using
        self.stats = CommitterStats()
        self._queues: OrderedDict[Hashable, deque[_Unit[Any]]] = OrderedDict()
        self._pending = 0
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._pid = os.getpid()

    # --- The request side ---------------------------------------------------------------------------------------

    def submit(
        self, work: Callable[[], T], *, key: Hashable = None, locks: Iterable[Any] = (), item: Any = _NO_ITEM
    ) -> Future[T]:
        """Queue ``work`` for the next batch; its future resolves after the batch's commit (or with its error).

        ``item``: what the ``bulk`` handler needs to do this unit's work together with the batch's others."""
        unit: _Unit[T] = _Unit(work=work, key=key, locks=tuple(locks), item=item)
        with self._condition:
            self._ensure_thread()
            refused = self._enqueue(unit)
            if refused is not None:
                raise refused
            self._condition.notify()
        return unit.future

    def _enqueue(self, unit: _Unit[Any]) -> Overloaded | None:
        """Queue ``unit`` (the condition held), or the ``Overloaded`` that refuses it (nothing queued)."""
        queue = self._queues.get(unit.key)
        if self._pending >= self.max_pending or (queue is not None and len(queue) >= self.max_pending_per_key):
            self.stats.overloaded += 1
            return Overloaded(
                _("Too many orders are waiting to be written; nothing was done. Retry in a moment."),
                details={"queued": len(queue) if queue is not None else 0},
            )
        if queue is None:
            queue = self._queues[unit.key] = deque()
        queue.append(unit)
        self._pending += 1
        return None

    def run(self, work: Callable[[], T], *, key: Hashable = None, locks: Iterable[Any] = (), item: Any = _NO_ITEM) -> T:
        """Run ``work`` in a shared transaction and return its result once that transaction has committed."""
        if self._inline():
            (outcome,) = self._run_inline([_Unit(work=work, key=key, locks=tuple(locks), item=item)])
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome  # type: ignore[no-any-return]
        return self.wait(self.submit(work, key=key, locks=locks, item=item))

    def run_many(
        self,
        works: Sequence[Callable[[], T]],
        *,
        key: Hashable = None,
        locks: Sequence[Iterable[Any]] = (),
        items: Sequence[Any] = (),
    ) -> list[T | Exception]:
        """Several units (a batch request): each one's result or its own error, in order, all committed."""
        lock_lists = list(locks) or [()] * len(works)
        item_list = list(items) or [_NO_ITEM] * len(works)
        units: list[_Unit[T]] = [
            _Unit(work=work, key=key, locks=tuple(unit_locks), item=item)
            for work, unit_locks, item in zip(works, lock_lists, item_list, strict=True)
        ]
        if self._inline():
            if connections[self.using].in_atomic_block:
                # Inside the caller's transaction: the units are one batch of it (a test, a command).
                return self._run_inline(units)
            # QUAI_GROUP_COMMIT=false: one transaction per unit, as the setting says.
            return [outcome for unit in units for outcome in self._run_inline([unit])]
        # Every unit is queued under ONE hold of the condition: the committer sees none of them or all, so how the
        # request's units fall into batches (per_key_cap at a time, in order) does not depend on how fast this
        # thread queued them against the committer's window. Queued one by one, a request thread slowed between
        # two units (a loaded machine) had its first batch cut short, which moved every later batch's boundary:
        # the events' order, and with it what the outbox relay's batches saw (a simulated day's promises).
        futures: list[Future[T]] = []
        with self._condition:
            self._ensure_thread()
            for unit in units:
                refused = self._enqueue(unit)
                futures.append(unit.future if refused is None else _failed(refused))
            self._condition.notify()
        results: list[T | Exception] = []
        for future in futures:
            try:
                results.append(self.wait(future))
            except Exception as exc:
                results.append(exc)
        return results

    def wait(self, future: Future[T]) -> T:
        try:
            return future.result(timeout=self.wait_timeout)
        except FutureTimeout:
            if future.cancel():  # still queued: withdrawn, so nothing will be written for it
                with self._condition:
                    self.stats.overloaded += 1
                raise Overloaded(
                    _("Orders are waiting too long to be written; nothing was done. Retry in a moment."),
                    retry_after=2,
                ) from None
            return future.result()  # running: its commit is under way, and its outcome is the answer
        except CancelledError:
            raise Overloaded(_("The server is stopping; nothing was done. Retry in a moment.")) from None

    def _inline(self) -> bool:
        if not getattr(settings, "QUAI_GROUP_COMMIT", True):
            return True
        return connections[self.using].in_atomic_block

    # --- The committer thread ----------------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._pid != os.getpid():
            # Forked (a pre-loading server): the parent's thread and queues do not exist here.
            self._queues.clear()
            self._pending = 0
            self._thread = None
            self._pid = os.getpid()
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name=f"group-commit-{self.name}", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread once the queued work is done (tests; a process shutting down)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        try:
            while True:
                batch = self._collect()
                if batch is None:
                    return
                try:
                    self._run_batch(batch)
                except BaseException as exc:  # never leave a waiter hanging, whatever happened
                    logger.exception("group commit %s: batch crashed", self.name)
                    for unit in batch:
                        if not unit.future.done():
                            unit.future.set_exception(_commit_failed(exc))
        finally:
            connections.close_all()

    def _collect(self) -> list[_Unit[Any]] | None:
        with self._condition:
            while self._pending == 0:
                if self._stopping:
                    return None
                self._condition.wait()
            deadline = time.perf_counter() + self.window
            while self._pending < self.max_batch and not self._stopping:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._condition.wait(left)
            return self._take()

    def _take(self) -> list[_Unit[Any]]:
        """Round-robin over keys, one unit per key per round, at most ``per_key_cap`` per key: fairness."""
        batch: list[_Unit[Any]] = []
        taken: dict[Hashable, int] = {}
        while len(batch) < self.max_batch:
            progressed = False
            for key in list(self._queues):
                queue = self._queues[key]
                if taken.get(key, 0) >= self.per_key_cap:
                    continue
                batch.append(queue.popleft())
                taken[key] = taken.get(key, 0) + 1
                progressed = True
                if not queue:
                    del self._queues[key]
                if len(batch) >= self.max_batch:
                    break
            if not progressed:
                break
        # The keys served go behind those that were not, so the next batch starts with someone else.
        for key in taken:
            if key in self._queues:
                self._queues.move_to_end(key)
        self._pending -= len(batch)
        return batch

    def _run_inline(self, units: Sequence[_Unit[Any]]) -> list[Any]:
        """The units' outcomes (a value or the unit's own exception), run in this thread in one atomic block."""
        if len(units) != 1:
            with transaction.atomic(using=self.using):
                return [outcome for _unit, _ok, outcome in self._run_units(units)]
        # One unit: its own atomic block is its savepoint (no second one inside it), as a unit of a batch has one.
        (unit,) = units
        if self.bulk is not None and unit.item is not _NO_ITEM:
            try:
                with transaction.atomic(using=self.using):
                    (answer,) = self.bulk([unit.item], self._prepare(units))
            except Exception:
                logger.warning("group commit %s: bulk run of 1 unit failed; it runs alone", self.name, exc_info=True)
            else:
                return [answer]
        try:
            with transaction.atomic(using=self.using):
                return [unit.work()]
        except Exception as exc:
            return [exc]

    def _prepare(self, units: Sequence[_Unit[Any]]) -> Any:
        if self.prepare is None:
            return None
        locks = sorted(set(itertools.chain.from_iterable(unit.locks for unit in units)))
        return self.prepare(locks) if locks else None

    def _run_units(
        self, units: Sequence[_Unit[Any]], *, bulk: bool = True, own_transaction: bool = False
    ) -> list[tuple[_Unit[Any], bool, Any]]:
        """Inside the batch's transaction: take its locks, run its bulk units together (or each alone if that
        fails), then the others each in its own savepoint. Returns (unit, ok, value or error) in batch order.

        ``own_transaction``: the transaction holds nothing but this batch (the committer's own), so a batch made of
        bulk units only runs its bulk attempt without a savepoint of its own — two round trips fewer per batch on
        intake's serial path — and a failed attempt raises ``_BulkFailed``: the caller rolls the whole transaction
        back and runs the batch again with ``bulk=False``, each unit alone, as a rolled-back savepoint would have.
        ``bulk=False``: every unit runs its own ``work``."""
        prepared = self._prepare(units)
        results: dict[int, tuple[bool, Any]] = {}
        bulk_units = [unit for unit in units if unit.item is not _NO_ITEM] if bulk and self.bulk is not None else []
        if bulk_units and self.bulk is not None:
            alone = own_transaction and len(bulk_units) == len(units)
            try:
                with transaction.atomic(using=self.using, savepoint=not alone):
                    answers = list(self.bulk([unit.item for unit in bulk_units], prepared))
                    if len(answers) != len(bulk_units):
                        raise RuntimeError(f"bulk handler answered {len(answers)} of {len(bulk_units)} units")
            except Exception as exc:
                # Nothing of the bulk attempt stands (its savepoint, or the whole transaction, is rolled back); each
                # unit runs alone, below or in the caller's next transaction.
                logger.warning(
                    "group commit %s: bulk run of %d unit(s) failed; each runs alone",
                    self.name,
                    len(bulk_units),
                    exc_info=True,
                )
                with self._condition:
                    self.stats.bulk_fallbacks += 1
                if alone:
                    raise _BulkFailed from exc
            else:
                with self._condition:
                    self.stats.bulk_batches += 1
                for unit, answer in zip(bulk_units, answers, strict=True):
                    results[id(unit)] = (False, answer) if isinstance(answer, Exception) else (True, answer)
        outcomes: list[tuple[_Unit[Any], bool, Any]] = []
        for unit in units:
            if id(unit) in results:
                ok, value = results[id(unit)]
                outcomes.append((unit, ok, value))
                continue
            try:
                with transaction.atomic(using=self.using):
                    value = unit.work()
            except Exception as exc:
                outcomes.append((unit, False, exc))
            else:
                outcomes.append((unit, True, value))
        return outcomes

    def _run_batch(self, batch: list[_Unit[Any]]) -> None:
        units = [unit for unit in batch if unit.future.set_running_or_notify_cancel()]
        if not units:
            return
        try:
            try:
                with transaction.atomic(using=self.using):
                    outcomes = self._run_units(units, own_transaction=True)
            except _BulkFailed:
                with transaction.atomic(using=self.using):
                    outcomes = self._run_units(units, bulk=False)
        except Exception as exc:
            # Nothing of the batch is durable: every unit gets the commit's failure (a unit's own error would
            # wrongly suggest that the others' work stands). The connection may be broken: start afresh.
            logger.warning("group commit %s: the transaction of %d unit(s) failed", self.name, len(units), exc_info=exc)
            connection = connections[self.using]
            if connection.connection is not None and not connection.is_usable():
                connection.close()
            with self._condition:
                self.stats.failed_commits += 1
                self.stats.batches += 1
            for unit in units:
                unit.future.set_exception(_commit_failed(exc))
            return
        failed = 0
        for unit, ok, value in outcomes:
            if ok:
                unit.future.set_result(value)
            else:
                failed += 1
                unit.future.set_exception(value)
        with self._condition:
            self.stats.batches += 1
            self.stats.units += len(units)
            self.stats.failed_units += failed
            self.stats.largest_batch = max(self.stats.largest_batch, len(units))


class _BulkFailed(Exception):
    """A batch's bulk attempt failed in a transaction of its own: roll it back, run each unit alone in a new one."""


def _commit_failed(cause: BaseException) -> CommitFailed:
    error = CommitFailed(
        _("The order could not be written (the database did not commit); nothing was recorded. Retry in a moment.")
    )
    error.__cause__ = cause
    return error


def _failed(exc: Exception) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(exc)
    return future


_committers: dict[str, GroupCommitter] = {}
_committers_lock = threading.Lock()


def committer(name: str, **options: Any) -> GroupCommitter:
    """The process's committer called ``name`` (created with ``options`` on first use; later ``options`` ignored)."""
    with _committers_lock:
        found = _committers.get(name)
        if found is None:
            found = _committers[name] = GroupCommitter(name=name, **options)
        return found
