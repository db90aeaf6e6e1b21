"""The outbox's retention (``quai.core.retention.outbox_purge``): only events relayed before the cut-off go, with
their handled rows, in chunks; pending and failing events stay whatever their age; a dry run changes nothing; a
purge running beside relays (PostgreSQL, real parallel connections) loses no pending event."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import ClassVar

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from quai.celery import app as celery_app
from quai.core import clock
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record, events_record_many, outbox_relay, outbox_sweep
from quai.core.retention import PurgeResult, outbox_purge

pytestmark = pytest.mark.django_db

T0 = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class PurgeNoted(Event):
    """A test event with one recorded handler (``test.purge_seen``), so a relayed event has a handled row."""

    name: ClassVar[str] = "test.purge_noted"
    aggregate: ClassVar[str] = "purge"

    n: int

    @property
    def aggregate_id(self) -> int:
        return self.n


@pytest.fixture
def seen(settings) -> Iterator[Counter[int]]:
    settings.QUAI_OUTBOX_NUDGE = False
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def note(event: PurgeNoted, envelope: Envelope) -> None:
        with lock:
            counts[event.n] += 1

    subscribe(PurgeNoted.name, "test.purge_seen", note)
    yield counts
    unsubscribe("test.purge_seen")


def _relayed(*ns: int) -> list[OutboxEvent]:
    """Events recorded now and relayed now (each with its handled row)."""
    rows = [event_record(PurgeNoted(n=n)) for n in ns]
    while outbox_relay(batch=100):
        pass
    return rows


def _state() -> tuple[list[tuple[int, object, int]], list[tuple[int, str]]]:
    events = list(OutboxEvent.objects.order_by("pk").values_list("pk", "relayed_at", "attempts"))
    handled = list(HandledEvent.objects.order_by("event_id", "handler").values_list("event_id", "handler"))
    return events, handled


def test_relayed_events_past_the_retention_go_with_their_handled_rows_pending_and_failing_ones_stay(seen):
    clock.set_now(T0)
    old = _relayed(1, 2, 3)
    pending = event_record(PurgeNoted(n=4))  # never relayed: its relay is behind, its lease far ahead
    OutboxEvent.objects.filter(pk=pending.pk).update(next_attempt_at=T0 + timedelta(days=40))
    failing = event_record(PurgeNoted(n=5))  # a handler keeps failing: another handler done, the event pending
    OutboxEvent.objects.filter(pk=failing.pk).update(
        attempts=7, last_error="boom", next_attempt_at=T0 + timedelta(days=40)
    )
    HandledEvent.objects.create(event=failing, handler="test.other_handler")
    late = event_record(PurgeNoted(n=6))  # occurred long ago, relayed only recently (it failed for days)
    clock.set_now(T0 + timedelta(days=25))
    while outbox_relay(batch=100):
        pass
    assert OutboxEvent.objects.get(pk=late.pk).relayed_at == T0 + timedelta(days=25)
    young = _relayed(7, 8)
    clock.set_now(T0 + timedelta(days=31))

    result = outbox_purge(days=30)

    assert (result.events, result.handled, result.chunks, result.skipped) == (3, 3, 1, "")
    assert result.cutoff == T0 + timedelta(days=1)
    left = set(OutboxEvent.objects.values_list("pk", flat=True))
    assert left == {pending.pk, failing.pk, late.pk, *(row.pk for row in young)}
    assert not HandledEvent.objects.filter(event_id__in=[row.pk for row in old]).exists()
    assert set(HandledEvent.objects.values_list("event_id", "handler")) == {
        (failing.pk, "test.other_handler"),
        (late.pk, "test.purge_seen"),
        *((row.pk, "test.purge_seen") for row in young),
    }
    # the pending and the failing one are relayed as before, the handler done on the failing one skipped
    clock.set_now(T0 + timedelta(days=41))
    seen.clear()
    outbox_sweep()
    assert dict(seen) == {4: 1, 5: 1}
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    # and ten days later they go too (relayed at day 41, kept 30 days)
    clock.set_now(T0 + timedelta(days=72))
    assert outbox_purge(days=30).events == 5
    assert not OutboxEvent.objects.exists() and not HandledEvent.objects.exists()


def test_the_retention_setting_is_the_default_and_zero_keeps_everything(seen, settings):
    clock.set_now(T0)
    _relayed(1, 2)
    clock.set_now(T0 + timedelta(days=500))
    settings.QUAI_OUTBOX_RETENTION_DAYS = 0
    before = _state()
    result = outbox_purge()
    assert result.skipped and result.events == 0 and _state() == before
    settings.QUAI_OUTBOX_RETENTION_DAYS = 501
    assert outbox_purge().events == 0
    settings.QUAI_OUTBOX_RETENTION_DAYS = 499
    assert outbox_purge().events == 2


def test_chunks_each_delete_at_most_their_size_and_walk_past_pending_events(seen):
    clock.set_now(T0)
    events_record_many([(PurgeNoted(n=n), None) for n in range(23)])
    while outbox_relay(batch=100):
        pass
    ids = list(OutboxEvent.objects.order_by("pk").values_list("pk", flat=True))
    clock.set_now(T0 + timedelta(days=15))
    _relayed(100)  # young
    kept = [ids[3], ids[4], ids[11], ids[22]]  # pending (a relay far behind, say), among the old ones
    OutboxEvent.objects.filter(pk__in=kept).update(relayed_at=None)
    clock.set_now(T0 + timedelta(days=40))
    totals: list[tuple[int, int, int]] = []

    with CaptureQueriesContext(connection) as context:
        result = outbox_purge(days=30, chunk=5, progress=lambda r: totals.append((r.chunks, r.events, r.handled)))

    # 19 old relayed among 23, 5 a chunk: the walk passes the pending ones (never read into a chunk) and stops at
    # the young event
    assert totals == [(1, 5, 5), (2, 10, 10), (3, 15, 15), (4, 19, 19)]
    assert (result.events, result.handled, result.chunks) == (19, 19, 4)
    assert set(OutboxEvent.objects.filter(pk__lte=ids[-1]).values_list("pk", flat=True)) == set(kept)
    assert set(HandledEvent.objects.filter(event_id__lte=ids[-1]).values_list("event_id", flat=True)) == set(kept)
    assert OutboxEvent.objects.filter(pk__gt=ids[-1]).count() == 1
    deletes = [q["sql"] for q in context.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 8  # two statements a chunk: the events, then their handled rows


def test_a_dry_run_counts_what_a_purge_deletes_and_changes_nothing(seen):
    clock.set_now(T0)
    _relayed(*range(12))
    HandledEvent.objects.create(event=OutboxEvent.objects.first(), handler="test.second")
    event_record(PurgeNoted(n=99))  # pending
    clock.set_now(T0 + timedelta(days=31))
    before = _state()
    dry = outbox_purge(days=30, chunk=5, dry_run=True)
    assert _state() == before
    assert (dry.events, dry.handled, dry.chunks, dry.dry_run) == (12, 13, 3, True)
    done = outbox_purge(days=30, chunk=5)
    assert (done.events, done.handled, done.chunks) == (dry.events, dry.handled, dry.chunks)
    assert list(OutboxEvent.objects.values_list("payload", flat=True)) == [{"n": 99}]


def test_a_second_purge_finds_nothing_left(seen):
    clock.set_now(T0)
    _relayed(1, 2, 3)
    clock.set_now(T0 + timedelta(days=31))
    assert outbox_purge(days=30).events == 3
    assert (outbox_purge(days=30).events, outbox_purge(days=30).chunks) == (0, 0)


def test_the_command_prints_its_progress_and_a_summary(seen):
    clock.set_now(T0)
    _relayed(*range(7))
    clock.set_now(T0 + timedelta(days=10))
    out = StringIO()
    call_command("outbox_purge", "--days", "5", "--chunk", "3", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "chunk 1: would purge 3 events and 3 handled rows so far" in text
    assert "chunk 3: would purge 7 events and 7 handled rows so far" in text
    assert "Dry run: would purge 7 outbox events and 7 handled rows relayed before 2031-03-06 09:00 UTC" in text
    assert OutboxEvent.objects.count() == 7
    out = StringIO()
    call_command("outbox_purge", "--days", "5", stdout=out)
    text = out.getvalue()
    assert "Purged 7 outbox events and 7 handled rows" in text and "(5 days kept) in 1 chunks" in text
    assert not OutboxEvent.objects.exists()
    out = StringIO()
    call_command("outbox_purge", "--days", "0", stdout=out)
    assert "Nothing purged: retention off" in out.getvalue()


def test_beat_runs_the_purge_daily_through_its_task(seen, settings):
    import quai.core.tasks  # noqa: F401 - what the worker imports (its autodiscovery), not imported by the tests

    entry = django_settings.CELERY_BEAT_SCHEDULE["outbox-purge"]
    assert entry["task"] in celery_app.tasks
    schedule = entry["schedule"]
    assert schedule.hour == {2} and schedule.minute == {30}  # once a day
    clock.set_now(T0)
    _relayed(1, 2)
    clock.set_now(T0 + timedelta(days=91))
    settings.QUAI_OUTBOX_RETENTION_DAYS = 90
    assert celery_app.tasks[entry["task"]].delay().get() == 2
    assert not OutboxEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_purge_leaves_while_one_runs():
    if connection.vendor != "postgresql":
        pytest.skip("the purge's lock is PostgreSQL's")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            from quai.core.retention import _purge_lock

            with _purge_lock() as taken:
                assert taken
                held.set()
                release.wait(10)
        finally:
            connections["default"].close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        result = outbox_purge(days=1)
        assert result.skipped == "another purge is running" and result.events == 0
    finally:
        release.set()
        thread.join(10)
    assert outbox_purge(days=1).skipped == ""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_purge_beside_relays_loses_no_pending_event(seen):
    """Old relayed events interleaved with a backlog of old pending ones (ids among theirs, some with a handler done
    already); two relays sweep the backlog while a purge deletes the old relayed rows in small chunks, each on its
    own connection. Every pending event is handled exactly once (its done handler skipped), ends relayed and stays
    (relayed now, inside the retention) with its handled rows; every old relayed one is gone with its rows."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    clock.set_now(T0)
    events_record_many([(PurgeNoted(n=n), None) for n in range(3000)])
    rows = list(OutboxEvent.objects.order_by("pk").values_list("pk", "payload"))
    backlog = {pk: payload["n"] for pk, payload in rows if payload["n"] % 10 == 3}  # 300 pending, old
    old = [pk for pk, _ in rows if pk not in backlog]
    OutboxEvent.objects.filter(pk__in=old).update(relayed_at=T0, attempts=1)
    HandledEvent.objects.bulk_create([HandledEvent(event_id=pk, handler="test.purge_seen") for pk in old])
    done_before = [pk for pk, n in backlog.items() if n % 100 == 3]  # handled by the priority pass, say
    HandledEvent.objects.bulk_create([HandledEvent(event_id=pk, handler="test.purge_seen") for pk in done_before])
    clock.set_now(T0 + timedelta(days=40))
    start = threading.Barrier(3)
    results: list[PurgeResult] = []
    errors: list[BaseException] = []

    def run(work) -> None:  # type: ignore[no-untyped-def]
        try:
            start.wait(10)
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections["default"].close()

    def relay() -> None:
        while outbox_relay(batch=7):
            pass

    pending_seen: list[int] = []  # the backlog still pending, as the purge saw it after each chunk

    def purge_progress(result: PurgeResult) -> None:
        pending_seen.append(OutboxEvent.objects.filter(relayed_at=None).count())
        for _ in range(200):  # after its first chunk, the purge waits for the relays to be under way
            if result.chunks > 1 or pending_seen[-1] < len(backlog):
                return
            time.sleep(0.05)
            pending_seen[-1] = OutboxEvent.objects.filter(relayed_at=None).count()

    threads = [
        threading.Thread(target=run, args=(relay,)),
        threading.Thread(target=run, args=(relay,)),
        threading.Thread(
            target=run, args=(lambda: results.append(outbox_purge(days=30, chunk=40, progress=purge_progress)),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    assert results[0].events == len(old) and results[0].handled == len(old)
    assert results[0].chunks >= len(old) // 40
    assert any(0 < n < len(backlog) for n in pending_seen), pending_seen  # the chunks ran while relays did
    assert dict(seen) == {n: 1 for pk, n in backlog.items() if pk not in done_before}
    left = dict(OutboxEvent.objects.values_list("pk", "relayed_at"))
    assert set(left) == set(backlog)
    assert set(left.values()) == {T0 + timedelta(days=40)}
    assert Counter(HandledEvent.objects.values_list("event_id", flat=True)) == dict.fromkeys(backlog, 1)
