"""The relay claims a batch by leasing it in one statement and runs each handler in its own transaction: concurrent
relays never wait on each other's handler locks, and a relay that dies after its claim loses nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from django.db import connection, connections
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import LEASE_SECONDS, event_record, outbox_claim, outbox_relay

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class TallyTaken(Event):
    """A test event whose handler bumps one row shared by every event (a per-merchant tally, say)."""

    name: ClassVar[str] = "test.tally_taken"
    aggregate: ClassVar[str] = "tally"

    n: int

    @property
    def aggregate_id(self) -> int:
        return self.n


@pytest.fixture
def handled() -> Iterator[list[int]]:
    seen: list[int] = []
    subscribe(TallyTaken.name, "test.tally_seen", lambda event, envelope: seen.append(event.n))
    yield seen
    for key in ("test.tally_seen", "test.tally_shared", "test.tally_slow"):
        unsubscribe(key)


def test_a_claim_is_one_statement_that_leases_the_oldest_pending_events(handled, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    now = datetime(2031, 3, 10, 9, 0, tzinfo=UTC)
    clock.set_now(now)
    rows = [event_record(TallyTaken(n=n)) for n in range(5)]
    OutboxEvent.objects.filter(pk=rows[1].pk).update(next_attempt_at=now + timedelta(seconds=30))  # backing off
    OutboxEvent.objects.filter(pk=rows[2].pk).update(relayed_at=now)
    with CaptureQueriesContext(connection) as context:
        claimed = outbox_claim(now, 2)
    assert len(context.captured_queries) == 1
    assert [row.pk for row in claimed] == [rows[0].pk, rows[3].pk]
    assert claimed[0].payload == {"n": 0} and claimed[0].name == TallyTaken.name  # whole rows, read back typed
    lease = now + timedelta(seconds=LEASE_SECONDS)
    assert set(OutboxEvent.objects.filter(next_attempt_at=lease).values_list("pk", flat=True)) == {
        rows[0].pk,
        rows[3].pk,
    }
    assert [row.pk for row in outbox_claim(now, 10)] == [rows[4].pk]  # leased rows are not claimed twice


def test_events_of_a_relay_that_died_after_its_claim_are_relayed_once_its_lease_is_over(handled, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, tzinfo=UTC))
    rows = [event_record(TallyTaken(n=n)) for n in range(3)]
    assert len(outbox_claim(clock.now(), 10)) == 3  # ... and the relay died here
    assert outbox_relay() == 0  # the lease keeps the others off
    clock.advance(timedelta(seconds=LEASE_SECONDS - 1))
    assert outbox_relay() == 0
    clock.advance(timedelta(seconds=1))
    assert outbox_relay() == 3
    assert handled == [0, 1, 2]
    assert OutboxEvent.objects.filter(pk__in=[row.pk for row in rows], relayed_at=clock.now()).count() == 3
    assert set(OutboxEvent.objects.values_list("next_attempt_at", flat=True)) == {None}


def test_a_handler_that_committed_before_its_relay_died_is_not_run_again(handled, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, tzinfo=UTC))
    row = event_record(TallyTaken(n=7))
    outbox_claim(clock.now(), 10)
    HandledEvent.objects.create(event=row, handler="test.tally_seen")  # its transaction committed, then the crash
    clock.advance(timedelta(seconds=LEASE_SECONDS))
    assert outbox_relay() == 1
    assert handled == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_relay_does_not_wait_for_another_relay_s_handlers_to_release_a_shared_row(settings):
    """Relay A takes the shared row's lock in one handler, then sits in a slow handler; relay B, on other events,
    bumps the same row. With the claim's transaction around every handler (before), B waited for A's whole batch;
    each handler's own transaction lets B through at once."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    settings.QUAI_OUTBOX_NUDGE = False
    shared = event_record(TallyTaken(n=-1))
    OutboxEvent.objects.filter(pk=shared.pk).update(relayed_at=clock.now())  # the shared row: a relayed event
    a_is_slow, let_go = threading.Event(), threading.Event()

    def tally(event: TallyTaken, envelope: Envelope) -> None:
        OutboxEvent.objects.filter(pk=shared.pk).update(attempts=F("attempts") + 1)

    def slow(event: TallyTaken, envelope: Envelope) -> None:
        if threading.current_thread().name == "relay-a":
            a_is_slow.set()
            let_go.wait(15)

    subscribe(TallyTaken.name, "test.tally_shared", tally)
    subscribe(TallyTaken.name, "test.tally_slow", slow)
    b_claimed: list[int] = []
    try:
        for n in range(20):
            event_record(TallyTaken(n=n))

        def relay_a_run() -> None:
            try:
                outbox_relay(batch=10)
            finally:
                connections["default"].close()

        def relay_b_run() -> None:
            try:
                with connections["default"].cursor() as cursor:
                    cursor.execute("SET lock_timeout = '3s'")  # waiting on A's lock fails B's tally instead
                b_claimed.append(outbox_relay(batch=10))
            finally:
                connections["default"].close()

        relay_a = threading.Thread(target=relay_a_run, name="relay-a")
        relay_a.start()
        assert a_is_slow.wait(15)
        relay_b = threading.Thread(target=relay_b_run, name="relay-b")
        relay_b.start()
        relay_b.join(10)
        b_done = not relay_b.is_alive()
        let_go.set()
        relay_a.join(15)
        relay_b.join(15)
        assert b_done, "relay B waited for relay A"
        assert b_claimed == [10]
        assert not OutboxEvent.objects.filter(relayed_at=None).exists(), list(
            OutboxEvent.objects.exclude(last_error="").values_list("last_error", flat=True)
        )
        assert OutboxEvent.objects.get(pk=shared.pk).attempts == 20
    finally:
        let_go.set()
        unsubscribe("test.tally_shared")
        unsubscribe("test.tally_slow")
