"""Handlers relayed first (``outbox.relay_first``): run before the other handlers of their batch, and by the priority
pass on pending events however many older events wait ahead of them — each still once per event, the event still
relayed (its other handlers run, marked relayed) by a relay, failures still recorded with their backoff."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from django.db import connection, connections, transaction
from django.db.models import F

from quai.core import clock, outbox
from quai.core import tasks as core_tasks
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import (
    event_record,
    events_record_many,
    outbox_claim,
    outbox_relay,
    outbox_relay_priority,
    outbox_sweep,
    relay_first,
)

pytestmark = pytest.mark.django_db

FIRST = "test.first_mark"
OTHER = "test.other_work"


@dataclass(frozen=True)
class LevelMoved(Event):
    name: ClassVar[str] = "test.level_moved"
    aggregate: ClassVar[str] = "level"

    n: int

    @property
    def aggregate_id(self) -> int:
        return self.n


@dataclass(frozen=True)
class OrderTaken(Event):
    name: ClassVar[str] = "test.order_taken"
    aggregate: ClassVar[str] = "order"

    n: int

    @property
    def aggregate_id(self) -> int:
        return self.n


@pytest.fixture
def calls() -> Iterator[list[tuple[str, str, int]]]:
    """(handler, event name, n) in the order the handlers ran; FIRST on LevelMoved relayed first, OTHER on both."""
    seen: list[tuple[str, str, int]] = []
    subscribe(LevelMoved.name, FIRST, lambda event, envelope: seen.append((FIRST, event.name, event.n)))
    subscribe("test.*", OTHER, lambda event, envelope: seen.append((OTHER, event.name, event.n)))
    saved = set(outbox._PRIORITY_KEYS), list(outbox._PRIORITY_QUEUE)
    relay_first(FIRST)
    yield seen
    unsubscribe(FIRST)
    unsubscribe(OTHER)
    outbox._PRIORITY_KEYS.clear()
    outbox._PRIORITY_KEYS.update(saved[0])
    outbox._PRIORITY_QUEUE[:] = saved[1]


def test_in_a_batch_the_handlers_relayed_first_run_before_the_others(calls, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    for n in range(3):
        event_record(OrderTaken(n=n))
        event_record(LevelMoved(n=n))
    assert outbox_relay() == 6
    assert calls[:3] == [(FIRST, LevelMoved.name, n) for n in range(3)]
    assert sorted(calls[3:]) == sorted(
        [(OTHER, OrderTaken.name, n) for n in range(3)] + [(OTHER, LevelMoved.name, n) for n in range(3)]
    )
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()


def test_the_priority_pass_reaches_events_behind_a_backlog_and_leaves_them_to_the_relay(calls, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    for n in range(30):
        event_record(OrderTaken(n=n))  # a sale's order events, older than the stock changes
    moved = [event_record(LevelMoved(n=n)) for n in range(3)]
    assert outbox_relay_priority(batch=2) == 3  # two passes' worth, in one call
    assert calls == [(FIRST, LevelMoved.name, n) for n in range(3)]
    assert set(HandledEvent.objects.values_list("event_id", "handler")) == {(row.pk, FIRST) for row in moved}
    assert OutboxEvent.objects.filter(relayed_at=None).count() == 33  # nothing relayed: the relay's work
    assert outbox_relay_priority() == 0  # handled once
    calls.clear()
    assert outbox_sweep(batch=10) == 33
    assert FIRST not in {key for key, _name, _n in calls}  # not run again
    assert sorted(n for key, name, n in calls if name == LevelMoved.name) == [0, 1, 2]
    assert len(calls) == 33
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()


def test_the_priority_pass_reaches_events_a_relay_has_claimed_and_the_relay_then_skips_them(calls, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, tzinfo=UTC))
    rows = [event_record(LevelMoved(n=n)) for n in range(4)]
    claimed = outbox_claim(clock.now(), 10)  # a relay's claim; it reads what is done, then runs its handlers
    assert len(claimed) == 4
    assert outbox_relay_priority() == 4  # meanwhile
    done = set(HandledEvent.objects.filter(event__in=[row.pk for row in claimed]).values_list("event_id", "handler"))
    assert outbox._dispatch_all(claimed, set()) == {row.pk: [] for row in rows}  # the relay, with a stale ``done``
    assert [key for key, _name, _n in calls].count(FIRST) == 4  # skipped by the relay: once each
    assert [key for key, _name, _n in calls].count(OTHER) == 4
    assert done == {(row.pk, FIRST) for row in rows}
    assert HandledEvent.objects.filter(handler__in=[FIRST, OTHER]).count() == 8


def test_a_handler_failing_in_the_priority_pass_is_left_to_the_relay_which_records_the_error(settings):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, tzinfo=UTC))
    tries: list[int] = []

    def broken(event: LevelMoved, envelope: Envelope) -> None:
        tries.append(event.n)
        raise RuntimeError("the mark's table is gone")

    subscribe(LevelMoved.name, FIRST, broken)
    saved = set(outbox._PRIORITY_KEYS)
    relay_first(FIRST)
    try:
        row = event_record(LevelMoved(n=7))
        assert outbox_relay_priority() == 1
        assert not HandledEvent.objects.exists()
        row.refresh_from_db()
        assert (row.attempts, row.last_error, row.relayed_at) == (0, "", None)  # nothing recorded by the pass
        assert outbox_relay() == 1
        row.refresh_from_db()
        assert row.attempts == 1 and "the mark's table is gone" in row.last_error and row.relayed_at is None
        assert row.next_attempt_at is not None and row.next_attempt_at > clock.now()
        assert outbox_relay_priority() == 0  # a failed event's retries are the relay's, with their backoff
        assert tries == [7, 7]
    finally:
        unsubscribe(FIRST)
        outbox._PRIORITY_KEYS.clear()
        outbox._PRIORITY_KEYS.update(saved)


@pytest.mark.django_db(transaction=True)
def test_a_commit_that_recorded_a_priority_event_queues_the_priority_pass_beside_the_relay(
    calls, settings, monkeypatch
):
    """Real commits (the test's own transaction would keep the first commit's nudge pending)."""
    settings.REDIS_URL = ""
    settings.QUAI_OUTBOX_NUDGE = True
    relay_first(FIRST, queue="shop_push")
    relays: list[int] = []
    passes: list[dict[str, object]] = []
    monkeypatch.setattr(core_tasks.outbox_relay_task, "delay", lambda: relays.append(1))
    monkeypatch.setattr(core_tasks.outbox_relay_priority_task, "apply_async", lambda **kw: passes.append(kw))
    with transaction.atomic():
        events_record_many([(OrderTaken(n=1), None), (OrderTaken(n=2), None)])
    assert (relays, passes) == ([1], [])  # no event relayed first: the relay alone
    with transaction.atomic():
        event_record(OrderTaken(n=3))
        event_record(LevelMoved(n=3))  # the transaction's one nudge now asks for the pass too
    assert (relays, passes) == ([1, 1], [{"queue": "shop_push"}])
    with transaction.atomic():
        outbox.outbox_nudge()  # rows written in the caller's own SQL: which events is not known, so the pass too
    assert (relays, len(passes)) == ([1, 1, 1], 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_relays_and_priority_passes_run_each_handler_once_per_event(settings):
    """Two relays sweeping and two priority passes at once, on real parallel connections: each handler's committed
    effect (a counter bumped in its transaction) is exactly one per event, and every event ends relayed."""
    if connection.vendor != "postgresql":
        pytest.skip("real parallel connections: PostgreSQL")
    settings.QUAI_OUTBOX_NUDGE = False
    counters = {key: event_record(OrderTaken(n=-1 - i)) for i, key in enumerate((FIRST, OTHER))}
    OutboxEvent.objects.filter(pk__in=[row.pk for row in counters.values()]).update(relayed_at=clock.now())

    def bump(key: str):  # type: ignore[no-untyped-def]
        def handler(event: Event, envelope: Envelope) -> None:
            OutboxEvent.objects.filter(pk=counters[key].pk).update(attempts=F("attempts") + 1)

        return handler

    subscribe(LevelMoved.name, FIRST, bump(FIRST))
    subscribe(LevelMoved.name, OTHER, bump(OTHER))
    saved = set(outbox._PRIORITY_KEYS)
    relay_first(FIRST)
    events = 240
    try:
        events_record_many([(LevelMoved(n=n), None) for n in range(events)])
        failures: list[BaseException] = []
        start = threading.Barrier(4)

        def run(fn) -> None:  # type: ignore[no-untyped-def]
            try:
                start.wait(10)
                for _ in range(30):
                    fn()
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)
            finally:
                connections["default"].close()

        threads = [
            threading.Thread(target=run, args=(lambda: outbox_sweep(batch=20, max_batches=2),)),
            threading.Thread(target=run, args=(lambda: outbox_sweep(batch=15, max_batches=2),)),
            threading.Thread(target=run, args=(lambda: outbox_relay_priority(batch=25, max_batches=1),)),
            threading.Thread(target=run, args=(lambda: outbox_relay_priority(batch=10, max_batches=1),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not failures, failures
        outbox_sweep(batch=100)
        assert not OutboxEvent.objects.filter(relayed_at=None).exists()
        assert not OutboxEvent.objects.exclude(last_error="").exists()
        for key, row in counters.items():
            row.refresh_from_db()
            assert row.attempts == events, key
            assert HandledEvent.objects.filter(handler=key).count() == events
    finally:
        unsubscribe(FIRST)
        unsubscribe(OTHER)
        outbox._PRIORITY_KEYS.clear()
        outbox._PRIORITY_KEYS.update(saved)


def test_the_priority_pass_reads_from_its_floor_on_and_an_event_below_it_is_still_handled_by_the_relay(
    calls, settings, monkeypatch
):
    """The pass does not walk the whole backlog each time: it reads from the ids it has already looked at (less a
    margin) on. An event below that (committed late, after a pass set the floor past its id) is not hurried, but
    nothing is lost: its relay batch runs the handler first, once."""
    settings.QUAI_OUTBOX_NUDGE = False
    monkeypatch.setattr(outbox, "PRIORITY_REREAD_IDS", 0)
    monkeypatch.setattr(outbox, "_PRIORITY_SEEN", [0])
    late = event_record(LevelMoved(n=1))
    for n in range(5):
        event_record(OrderTaken(n=n))
    outbox._PRIORITY_SEEN[0] = late.pk  # as if a pass had looked past it before it committed
    assert outbox_relay_priority() == 0
    assert not HandledEvent.objects.exists()
    assert outbox._PRIORITY_SEEN[0] == OutboxEvent.objects.order_by("-pk").first().pk  # looked up to the newest
    later = event_record(LevelMoved(n=2))
    assert outbox_relay_priority() == 1  # above the floor
    assert set(HandledEvent.objects.values_list("event_id", "handler")) == {(later.pk, FIRST)}
    calls.clear()
    assert outbox_sweep(batch=10) == 7
    assert calls[0] == (FIRST, LevelMoved.name, 1)  # the late one, handled first in its batch
    assert [key for key, _name, _n in calls].count(FIRST) == 1
    assert HandledEvent.objects.filter(handler=FIRST).count() == 2
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()


def test_the_priority_pass_looks_at_everything_again_when_the_ids_went_back(calls, settings, monkeypatch):
    settings.QUAI_OUTBOX_NUDGE = False
    monkeypatch.setattr(outbox, "PRIORITY_REREAD_IDS", 0)
    row = event_record(LevelMoved(n=1))
    monkeypatch.setattr(outbox, "_PRIORITY_SEEN", [row.pk + 1_000_000])  # a floor from another database's ids
    assert outbox_relay_priority() == 1
    assert HandledEvent.objects.filter(event=row, handler=FIRST).exists()
