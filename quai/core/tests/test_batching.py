"""The group committer: shared commits, a unit failing alone, no answer before the commit, fairness, real threads."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, connection, transaction

from quai.core.batching import CommitFailed, GroupCommitter, Overloaded
from quai.core.errors import ValidationFailed
from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_nudge

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def make_committer() -> Iterator[Any]:
    made: list[GroupCommitter] = []

    def make(**options: Any) -> GroupCommitter:
        committer = GroupCommitter(name=f"test-{len(made)}", **options)
        made.append(committer)
        return committer

    yield make
    for committer in made:
        committer.close()


def _event(name: str = "test.unit", pk: int | None = None) -> Any:
    """A small real unit of work: one outbox row (its id is its key, so a row given a taken one fails like one)."""

    def work() -> int:
        return OutboxEvent.objects.create(pk=pk, name=name, event_id=uuid.uuid4(), payload={}).pk

    return work


def _gate() -> tuple[threading.Event, threading.Event, Any]:
    """A unit that holds its batch open until released: ``started`` is set when it runs."""
    started, release = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        assert release.wait(10), "the test never released the gate"
        return "gate"

    return started, release, work


def test_units_that_arrive_together_share_one_commit(make_committer):
    committer = make_committer(window=0.3, max_batch=50)
    futures = [committer.submit(_event(f"test.{i}")) for i in range(20)]
    ids = [committer.wait(future) for future in futures]
    assert committer.stats.batches == 1
    assert committer.stats.units == 20
    assert OutboxEvent.objects.filter(pk__in=ids).count() == 20


def test_a_failing_unit_rolls_back_alone_and_gets_its_own_error(make_committer):
    committer = make_committer(window=0.3)
    taken = OutboxEvent.objects.create(name="test.first", event_id=uuid.uuid4(), payload={}).pk

    def refused() -> None:
        OutboxEvent.objects.create(name="test.half-written", payload={})
        raise ValidationFailed("bad input", code="bad_input")

    good = committer.submit(_event("test.good"))
    bad = committer.submit(refused)
    duplicate = committer.submit(_event("test.duplicate", pk=taken))
    also_good = committer.submit(_event("test.also-good"))

    assert OutboxEvent.objects.filter(pk=committer.wait(good)).exists()
    assert OutboxEvent.objects.filter(pk=committer.wait(also_good)).exists()
    with pytest.raises(ValidationFailed):
        committer.wait(bad)
    with pytest.raises(IntegrityError):
        committer.wait(duplicate)
    assert committer.stats.batches == 1
    assert not OutboxEvent.objects.filter(name__in=["test.half-written", "test.duplicate"]).exists()


def test_a_commit_that_fails_fails_every_waiter_and_keeps_nothing(make_committer):
    committer = make_committer(window=0.3)

    def dangling() -> None:
        # A foreign key to nothing: deferred, so only the COMMIT itself fails (PostgreSQL and SQLite alike). Not a
        # HandledEvent's: its event has no database constraint (quai.core.models).
        Permission.objects.create(name="dangling", codename="dangling", content_type_id=987654321)

    futures = [committer.submit(_event("test.lost")) for _ in range(3)]
    futures.append(committer.submit(dangling))
    for future in futures:
        with pytest.raises(CommitFailed) as raised:
            committer.wait(future)
        assert raised.value.status == 503
    assert not OutboxEvent.objects.filter(name="test.lost").exists()
    assert committer.stats.failed_commits == 1
    # The committer goes on: the next batch commits.
    assert OutboxEvent.objects.filter(pk=committer.run(_event("test.after"))).exists()


def test_no_unit_is_answered_before_the_commit_of_its_batch(make_committer):
    committer = make_committer(window=0.3)
    first = committer.submit(_event("test.first"))
    started, release, gate = _gate()
    held = committer.submit(gate)
    assert started.wait(10)
    # The first unit's work is done, but its batch has not committed: no answer, and nobody else sees its row.
    assert not first.done()
    if connection.vendor == "postgresql":  # the in-memory SQLite of the tests locks the table instead
        assert not OutboxEvent.objects.filter(name="test.first").exists()
    release.set()
    pk = committer.wait(first)
    assert committer.wait(held) == "gate"
    assert OutboxEvent.objects.filter(pk=pk).exists()


def test_a_burst_of_one_merchant_does_not_starve_another(make_committer):
    committer = make_committer(window=0.01, max_batch=20, per_key_cap=10)
    started, release, gate = _gate()
    blocker = committer.submit(gate, key="blocker")
    assert started.wait(10)

    def batch_number() -> int:
        return committer.stats.batches  # batches finished before this unit's: its batch's number minus one

    burst = [committer.submit(batch_number, key="merchant-a") for _ in range(200)]
    late = [committer.submit(batch_number, key="merchant-b") for _ in range(5)]
    release.set()
    committer.wait(blocker)
    # Merchant B arrived after 200 orders of A, and still rides the very next batch.
    assert {committer.wait(future) for future in late} == {1}
    burst_batches = [committer.wait(future) for future in burst]
    assert burst_batches.count(1) == 10  # A takes only its share of that batch
    assert max(burst_batches) >= 10


def test_a_full_queue_refuses_more_of_that_merchant_only(make_committer):
    committer = make_committer(window=0.01, max_pending_per_key=3)
    started, release, gate = _gate()
    blocker = committer.submit(gate, key="blocker")
    assert started.wait(10)
    queued = [committer.submit(_event(), key="a") for _ in range(3)]
    with pytest.raises(Overloaded) as refused:
        committer.submit(_event(), key="a")
    assert refused.value.status == 503
    other = committer.submit(_event(), key="b")
    release.set()
    committer.wait(blocker)
    assert all(committer.wait(future) for future in [*queued, other])


def test_a_unit_still_queued_after_the_wait_is_withdrawn_and_never_written(make_committer):
    committer = make_committer(window=0.01, wait_timeout=0.2)
    started, release, gate = _gate()
    blocker = committer.submit(gate)
    assert started.wait(10)
    late = committer.submit(_event("test.withdrawn"))
    with pytest.raises(Overloaded):
        committer.wait(late)
    release.set()
    committer.wait(blocker)
    committer.run(_event("test.after"))  # one more batch: the withdrawn unit had its chance to (wrongly) run
    assert not OutboxEvent.objects.filter(name="test.withdrawn").exists()


def test_prepare_takes_the_batchs_locks_sorted_before_any_unit(make_committer):
    seen: list[list[int]] = []
    committer = make_committer(window=0.3, prepare=lambda locks: seen.append(list(locks)))
    futures = [committer.submit(_event(), locks=locks) for locks in ([9, 3], [3], [], [7, 1])]
    for future in futures:
        committer.wait(future)
    assert seen == [[1, 3, 7, 9]]


def test_a_run_batch_answers_each_unit_its_own_outcome(make_committer):
    committer = make_committer(window=0.05)

    def refused() -> None:
        raise ValidationFailed("no", code="bad_input")

    outcomes = committer.run_many([_event(), refused, _event()], key="a")
    assert isinstance(outcomes[1], ValidationFailed)
    assert OutboxEvent.objects.filter(pk__in=[outcomes[0], outcomes[2]]).count() == 2


def test_a_caller_already_in_a_transaction_runs_inline_in_it(make_committer):
    committer = make_committer(window=0.01)
    with transaction.atomic():
        pk = committer.run(_event("test.inline"))
        # Visible at once on the caller's own connection: it ran here, not on the committer's.
        assert OutboxEvent.objects.filter(pk=pk).exists()
    assert committer.stats.batches == 0


@pytest.mark.postgres
def test_many_threads_share_few_commits_and_every_unit_is_written_once(make_committer):
    if connection.vendor != "postgresql":
        pytest.skip("real parallel connections: PostgreSQL")
    committer = make_committer(window=0.002, max_batch=100)
    threads, per_thread = 16, 40

    def client(number: int) -> list[int]:
        ids = [committer.run(_event(f"test.thread-{number}"), key=number % 3) for _ in range(per_thread)]
        connection.close()
        return ids

    with ThreadPoolExecutor(threads) as pool:
        ids = [pk for chunk in pool.map(client, range(threads)) for pk in chunk]
    assert len(ids) == len(set(ids)) == threads * per_thread
    assert OutboxEvent.objects.filter(name__startswith="test.thread-").count() == threads * per_thread
    assert committer.stats.units == threads * per_thread
    assert committer.stats.batches < threads * per_thread / 2  # commits were shared


def _nudging(name: str, *, fails: bool = False) -> Any:
    """A unit that records an outbox row and asks for the relay's nudge, as ``event_record`` does."""

    def work() -> int:
        pk = _event(name)()
        outbox_nudge()
        if fails:
            raise ValidationFailed("no", code="bad_input")
        return pk

    return work


@pytest.fixture
def nudges(monkeypatch: pytest.MonkeyPatch, settings: Any) -> list[int]:
    """The relay's nudges published (each one is a broker round trip on the committer's path, after its commit)."""
    from quai.core.tasks import outbox_relay_task

    settings.QUAI_OUTBOX_NUDGE = True
    published: list[int] = []
    monkeypatch.setattr(outbox_relay_task, "delay", lambda *args, **kwargs: published.append(1))
    return published


def test_a_batch_of_units_that_record_events_nudges_the_relay_once_not_once_per_unit(make_committer, nudges):
    committer = make_committer(window=0.3, max_batch=50)
    futures = [committer.submit(_nudging(f"test.nudge-{i}")) for i in range(20)]
    for future in futures:
        committer.wait(future)
    assert committer.stats.batches == 1
    assert len(nudges) == 1


def test_a_batch_whose_first_nudging_unit_failed_still_nudges_once_for_the_others(make_committer, nudges):
    committer = make_committer(window=0.3, max_batch=50)
    outcomes = committer.run_many(
        [_nudging("test.nudge-failed", fails=True), _nudging("test.nudge-a"), _nudging("test.nudge-b")], key="a"
    )
    assert isinstance(outcomes[0], ValidationFailed)
    assert committer.stats.batches == 1
    assert len(nudges) == 1  # the failed unit's nudge went with its savepoint; the next unit asked again


# --- bulk units: one handler for the batch, each unit's work as its fallback --------------------------------------


def _bulk_rows(items: Any, prepared: Any) -> list[Any]:
    """A bulk handler writing every item's outbox row in one insert; an item "bad" is answered its own error."""
    good = [item for item in items if item != "bad"]
    rows = OutboxEvent.objects.bulk_create(
        [OutboxEvent(name=f"test.bulk.{item}", event_id=uuid.uuid4(), payload={"prepared": prepared}) for item in good]
    )
    made = iter(rows)
    return [ValidationFailed("bad item", code="bad_input") if item == "bad" else next(made).pk for item in items]


def test_bulk_units_of_a_batch_are_written_together_and_each_answered_its_outcome(make_committer):
    committer = make_committer(window=0.3, bulk=_bulk_rows, prepare=lambda locks: list(locks))
    futures = [
        committer.submit(_event("test.fallback"), item=item, locks=[index])
        for index, item in enumerate(["a", "bad", "c"])
    ]
    futures.append(committer.submit(_event("test.alone")))  # no item: runs alone, after the bulk units
    outcomes: list[Any] = []
    for future in futures:
        try:
            outcomes.append(committer.wait(future))
        except ValidationFailed as exc:
            outcomes.append(exc)
    assert isinstance(outcomes[1], ValidationFailed)
    assert OutboxEvent.objects.get(pk=outcomes[0]).name == "test.bulk.a"
    assert OutboxEvent.objects.get(pk=outcomes[2]).payload == {"prepared": [0, 1, 2]}  # what prepare returned
    assert OutboxEvent.objects.get(pk=outcomes[3]).name == "test.alone"
    assert not OutboxEvent.objects.filter(name="test.fallback").exists()
    assert (committer.stats.batches, committer.stats.bulk_batches, committer.stats.bulk_fallbacks) == (1, 1, 0)


def test_a_bulk_handler_that_fails_leaves_nothing_and_each_unit_runs_alone_and_fails_alone(make_committer):
    def broken_bulk(items: Any, prepared: Any) -> list[Any]:
        OutboxEvent.objects.create(name="test.half_written", event_id=uuid.uuid4(), payload={})
        raise IntegrityError("a bulk statement failed")

    def refused() -> None:
        raise ValidationFailed("no", code="bad_input")

    committer = make_committer(window=0.3, bulk=broken_bulk)
    futures = [committer.submit(work, item=index) for index, work in enumerate([_event("test.one"), refused])]
    futures.append(committer.submit(_event("test.two"), item=2))
    assert isinstance(committer.wait(futures[0]), int)
    with pytest.raises(ValidationFailed):
        committer.wait(futures[1])
    assert isinstance(committer.wait(futures[2]), int)
    assert not OutboxEvent.objects.filter(name="test.half_written").exists()  # the bulk attempt rolled back
    assert OutboxEvent.objects.filter(name__in=["test.one", "test.two"]).count() == 2
    assert (committer.stats.batches, committer.stats.bulk_fallbacks, committer.stats.failed_units) == (1, 1, 1)


def test_a_batch_of_bulk_units_only_runs_its_bulk_attempt_without_a_savepoint_of_its_own(make_committer):
    seen: list[tuple[bool, int]] = []

    def watching_bulk(items: Any, prepared: Any) -> list[Any]:
        seen.append((connection.in_atomic_block, len([sid for sid in connection.savepoint_ids if sid])))
        return _bulk_rows(items, prepared)

    committer = make_committer(window=0.3, bulk=watching_bulk)
    futures = [committer.submit(_event("test.fallback"), item=item) for item in ["a", "b"]]
    assert all(isinstance(committer.wait(future), int) for future in futures)
    # With a unit that has no item in the batch, the bulk attempt keeps its savepoint (that unit runs after it).
    mixed = [committer.submit(_event("test.fallback"), item="c"), committer.submit(_event("test.alone"))]
    assert all(isinstance(committer.wait(future), int) for future in mixed)
    assert seen == [(True, 0), (True, 1)]
    assert sorted(OutboxEvent.objects.values_list("name", flat=True)) == [
        "test.alone",
        "test.bulk.a",
        "test.bulk.b",
        "test.bulk.c",
    ]


def test_a_failed_bulk_attempt_in_the_committer_s_own_transaction_leaves_nothing_of_it_not_even_its_hooks(
    make_committer,
):
    """Without a savepoint of its own, the failed attempt's whole transaction is rolled back: its rows, its locks
    and its on-commit hooks go with it; the units then run alone in a new transaction whose locks are taken again,
    in the same order, before any of them, and only their hooks run."""
    hooks: list[str] = []
    prepared: list[list[int]] = []

    def broken_bulk(items: Any, locks: Any) -> list[Any]:
        OutboxEvent.objects.create(name="test.half_written", event_id=uuid.uuid4(), payload={})
        transaction.on_commit(lambda: hooks.append("bulk"))
        raise IntegrityError("a bulk statement failed")

    def unit(name: str) -> Any:
        def work() -> int:
            transaction.on_commit(lambda: hooks.append(name))
            return _event(name)()

        return work

    committer = make_committer(window=0.3, bulk=broken_bulk, prepare=lambda locks: prepared.append(list(locks)))
    futures = [committer.submit(unit(name), item=name, locks=[lock]) for name, lock in [("test.b", 2), ("test.a", 1)]]
    assert all(isinstance(committer.wait(future), int) for future in futures)
    assert prepared == [[1, 2], [1, 2]]
    assert sorted(hooks) == ["test.a", "test.b"]
    assert sorted(OutboxEvent.objects.values_list("name", flat=True)) == ["test.a", "test.b"]
    assert (committer.stats.batches, committer.stats.bulk_fallbacks, committer.stats.failed_units) == (1, 1, 0)


def test_inline_bulk_units_run_through_the_handler_in_the_callers_transaction(make_committer):
    committer = make_committer(bulk=_bulk_rows)
    with transaction.atomic():
        outcomes = committer.run_many([_event("test.fallback")] * 3, items=["x", "bad", "y"])
        single = committer.run(_event("test.fallback"), item="z")
    assert isinstance(outcomes[1], ValidationFailed)
    names = set(OutboxEvent.objects.values_list("name", flat=True))
    assert names == {"test.bulk.x", "test.bulk.y", "test.bulk.z"}
    assert OutboxEvent.objects.get(pk=single).name == "test.bulk.z"
    assert committer.stats.batches == 0


def test_no_bulk_unit_is_answered_before_the_commit_of_its_batch(make_committer):
    started, release = threading.Event(), threading.Event()

    def slow_bulk(items: Any, prepared: Any) -> list[Any]:
        rows = _bulk_rows(items, prepared)
        started.set()
        assert release.wait(10), "the test never released the batch"
        return rows

    committer = make_committer(window=0.01, bulk=slow_bulk)
    future = committer.submit(_event("test.fallback"), item="held")
    assert started.wait(10)
    try:
        assert not future.done()  # written, not committed: no answer yet
        if connection.vendor == "postgresql":  # the in-memory SQLite of the tests locks the table instead
            assert not OutboxEvent.objects.filter(name="test.bulk.held").exists()
    finally:
        release.set()
    pk = committer.wait(future)
    assert OutboxEvent.objects.get(pk=pk).name == "test.bulk.held"


class _PausedAfterQueuing:
    """The committer's condition, as seen from a request thread that the machine deschedules each time it lets the
    condition go (a loaded machine): the committer then runs while that thread is still queuing its units."""

    def __init__(self, inner: threading.Condition, pause: float) -> None:
        self.inner, self.pause, self.slowed = inner, pause, threading.current_thread()

    def __enter__(self) -> bool:
        return self.inner.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)
        if threading.current_thread() is self.slowed:
            time.sleep(self.pause)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize("pause", [0.0, 0.02])
def test_a_run_batch_falls_into_the_same_batches_however_slowly_its_thread_queues_it(make_committer, pause):
    # The batches a request's units fall into decide the order of what they write (a batch's rows and events
    # together): it must not depend on the machine's speed. Window 0: a committer that takes at once what is queued.
    batches: list[list[int]] = []
    committer = make_committer(window=0.0, max_batch=8, per_key_cap=4, prepare=lambda locks: batches.append(locks))
    committer.run(_event("test.warm"), key="a", locks=[99])  # the committer's thread is up and waiting
    committer._condition = _PausedAfterQueuing(committer._condition, pause)  # type: ignore[assignment]
    outcomes = committer.run_many([_event() for _ in range(12)], key="a", locks=[[i] for i in range(12)])
    assert all(isinstance(pk, int) for pk in outcomes)
    assert batches[1:] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
