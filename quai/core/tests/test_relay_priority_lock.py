"""The priority pass never waits on the priority lock (PostgreSQL): a pass that finds another run of the handlers
relayed first under way leaves at once, leaving a mark; the run under way looks again (a pass reads once more, a
relay batch queues a pass), so nothing committed meanwhile waits for the relay's turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from django.db import connection, connections, transaction

from quai.core import outbox
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.marks import mark_pop, mark_take
from quai.core.models import HandledEvent
from quai.core.outbox import PRIORITY_AGAIN_KEY, events_record_many, outbox_relay, outbox_relay_priority, relay_first
from quai.core.tests.local_redis import redis_up, redis_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FIRST = "test.lock_first_mark"


@dataclass(frozen=True)
class ShelfCounted(Event):
    name: ClassVar[str] = "test.lock_shelf_counted"
    aggregate: ClassVar[str] = "shelf"

    n: int

    @property
    def aggregate_id(self) -> int:
        return self.n


@pytest.fixture
def first_handler(settings: Any) -> Iterator[list[int]]:
    if connection.vendor != "postgresql":
        pytest.skip("the priority lock is PostgreSQL's")
    settings.QUAI_OUTBOX_NUDGE = False
    seen: list[int] = []

    def handler(event: ShelfCounted, envelope: Envelope) -> None:
        seen.append(event.n)

    subscribe(ShelfCounted.name, FIRST, handler)
    saved = set(outbox._PRIORITY_KEYS)
    relay_first(FIRST)
    yield seen
    unsubscribe(FIRST)
    outbox._PRIORITY_KEYS.clear()
    outbox._PRIORITY_KEYS.update(saved)


def _holding_the_lock() -> tuple[threading.Event, threading.Event, threading.Thread]:
    """Another connection holds the priority lock until ``release`` is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [outbox._PRIORITY_LOCK])
                held.set()
                release.wait(30)
        finally:
            connections["default"].close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    return held, release, thread


def test_a_priority_pass_that_finds_the_lock_held_leaves_at_once_and_the_next_one_runs_the_handlers(
    first_handler: list[int],
) -> None:
    events_record_many([(ShelfCounted(n=n), None) for n in range(3)])
    _held, release, thread = _holding_the_lock()
    try:
        started = time.monotonic()
        assert outbox_relay_priority() == 0
        assert time.monotonic() - started < 2  # it did not wait for the holder's commit
        assert first_handler == [] and not HandledEvent.objects.filter(handler=FIRST).exists()
    finally:
        release.set()
        thread.join(30)
    assert outbox_relay_priority() == 3
    assert first_handler == [0, 1, 2]


def test_the_mark_a_leaving_pass_leaves_makes_a_relay_batch_queue_a_pass_and_a_pass_read_again(
    first_handler: list[int], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not redis_up():
        pytest.skip("needs the local Redis")
    settings.REDIS_URL = redis_url()
    mark_pop(PRIORITY_AGAIN_KEY)
    queued: list[int] = []
    monkeypatch.setattr(outbox, "_queue_priority_pass", lambda: queued.append(1))
    events_record_many([(ShelfCounted(n=n), None) for n in range(2)])
    _held, release, thread = _holding_the_lock()
    try:
        assert outbox_relay_priority() == 0
    finally:
        release.set()
        thread.join(30)
    # the relay batch that held the lock (played here after the fact) finds the mark and queues a pass
    assert outbox_relay(batch=10) == 2
    assert queued == [1]
    assert not mark_pop(PRIORITY_AGAIN_KEY)
    # a pass that finds the mark when it has read everything reads once more, and takes the mark away
    events_record_many([(ShelfCounted(n=9), None)])
    assert mark_take(PRIORITY_AGAIN_KEY, 30)
    reads: list[int] = []
    real = outbox._dispatch_all

    def counting(*args: Any, **kwargs: Any) -> Any:
        reads.append(len(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(outbox, "_dispatch_all", counting)
    assert outbox_relay_priority() == 1
    assert reads == [1] and not mark_pop(PRIORITY_AGAIN_KEY)
    assert first_handler == [0, 1, 9]
