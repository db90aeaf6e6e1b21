"""A handler subscribed ``recorded=False`` (idempotent by its own writes): the relay runs it as any other, records no
``HandledEvent`` row for it, and runs it again on each retry of its event, while the recorded handlers that
succeeded are still skipped; an error of its own (an ``IntegrityError`` too) fails the event; relayed first, it
writes its row only on the events no recorded handler relayed first marks for the priority pass."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from django.db import IntegrityError

from quai.core import clock, outbox
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record, outbox_relay, outbox_relay_priority, outbox_sweep, relay_first

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class LidClosed(Event):
    name: ClassVar[str] = "test.unrecorded_lid_closed"
    aggregate: ClassVar[str] = "lid"

    lid_id: int

    @property
    def aggregate_id(self) -> int:
        return self.lid_id


@pytest.fixture
def calls() -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {"free": [], "kept": [], "fail": set(), "integrity": set()}

    def free(event: LidClosed, envelope: Envelope) -> None:
        seen["free"].append(event.lid_id)
        if event.lid_id in seen["integrity"]:
            seen["integrity"].discard(event.lid_id)
            raise IntegrityError("its own write refused (injected)")

    def free_many(items: Any) -> None:
        for event, envelope in items:
            free(event, envelope)

    def kept(event: LidClosed, envelope: Envelope) -> None:
        if event.lid_id in seen["fail"]:
            raise RuntimeError("down (injected)")
        seen["kept"].append(event.lid_id)

    subscribe(LidClosed.name, "test.unrecorded_free", free, batch=free_many, recorded=False)
    subscribe(LidClosed.name, "test.unrecorded_kept", kept)
    yield seen
    unsubscribe("test.unrecorded_free")
    unsubscribe("test.unrecorded_kept")


def test_an_unrecorded_handler_runs_without_its_row_and_again_on_each_retry(calls, settings) -> None:
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, tzinfo=UTC))
    try:
        rows = [event_record(LidClosed(lid_id=n)) for n in (1, 2, 3)]
        calls["fail"].add(2)
        assert outbox_relay() == 3
        # the recorded handler's run over the batch stopped at 2 and was rolled back, then it ran one by one
        assert calls["free"] == [1, 2, 3] and calls["kept"] == [1, 1, 3]
        handled = set(HandledEvent.objects.filter(event__in=rows).values_list("event_id", "handler"))
        assert handled == {(rows[0].pk, "test.unrecorded_kept"), (rows[2].pk, "test.unrecorded_kept")}
        assert list(OutboxEvent.objects.filter(relayed_at=None).values_list("pk", flat=True)) == [rows[1].pk]
        calls["fail"].clear()
        clock.advance(timedelta(minutes=5))
        assert outbox_relay() == 1
        # the retry runs the unrecorded handler again (its own writes make that harmless), the recorded one once
        assert calls["free"] == [1, 2, 3, 2] and calls["kept"] == [1, 1, 3, 2]
        assert not OutboxEvent.objects.filter(pk__in=[row.pk for row in rows], relayed_at=None).exists()
        assert not HandledEvent.objects.filter(handler="test.unrecorded_free").exists()
    finally:
        clock.reset()


def test_an_integrity_error_of_an_unrecorded_handler_fails_its_event(calls, settings) -> None:
    """A recorded handler's ``IntegrityError`` on its own run may be its record refused (another relay ran it);
    an unrecorded handler has no record, so its ``IntegrityError`` is its own failure, retried."""
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, tzinfo=UTC))
    try:
        row = event_record(LidClosed(lid_id=7))
        calls["integrity"].add(7)
        assert outbox_relay() == 1
        failed = OutboxEvent.objects.get(pk=row.pk)
        assert failed.relayed_at is None and "test.unrecorded_free: IntegrityError" in failed.last_error
        clock.advance(timedelta(minutes=5))
        assert outbox_relay() == 1
        assert calls["free"] == [7, 7] and calls["kept"] == [7]
        assert OutboxEvent.objects.get(pk=row.pk).relayed_at is not None
    finally:
        clock.reset()


@dataclass(frozen=True)
class LidOpened(Event):
    name: ClassVar[str] = "test.unrecorded_lid_opened"
    aggregate: ClassVar[str] = "lid"

    lid_id: int

    @property
    def aggregate_id(self) -> int:
        return self.lid_id


MARK, RIDER = "test.unrecorded_first_mark", "test.unrecorded_first_rider"


@pytest.fixture
def lane() -> Iterator[dict[str, Any]]:
    """Two handlers relayed first: MARK (recorded) on LidClosed, RIDER (unrecorded) on both names; ``ran`` lists
    (handler, lid) in the order they ran, ``fail`` the lids RIDER fails on."""
    seen: dict[str, Any] = {"ran": [], "fail": set()}

    def mark(event: Any, envelope: Envelope) -> None:
        seen["ran"].append((MARK, event.lid_id))

    def rider(event: Any, envelope: Envelope) -> None:
        if event.lid_id in seen["fail"]:
            raise RuntimeError("down (injected)")
        seen["ran"].append((RIDER, event.lid_id))

    subscribe(LidClosed.name, MARK, mark)
    subscribe("test.*", RIDER, rider, recorded=False)
    saved = set(outbox._PRIORITY_KEYS)
    relay_first(MARK, RIDER)
    yield seen
    unsubscribe(MARK)
    unsubscribe(RIDER)
    outbox._PRIORITY_KEYS.clear()
    outbox._PRIORITY_KEYS.update(saved)


def test_an_unrecorded_handler_relayed_first_writes_its_row_only_where_no_recorded_one_marks_the_event(lane, settings):
    """The priority pass finds its work by the rows of the handlers relayed first: on LidClosed MARK's row is that
    mark and RIDER writes none (it runs again in the relay batch: its own writes make that harmless); on LidOpened
    RIDER is the only one, and writes its row, so neither the pass nor the relay runs it there again."""
    settings.QUAI_OUTBOX_NUDGE = False
    assert outbox.recorded_keys(LidClosed.name) == {MARK}
    assert outbox.recorded_keys(LidOpened.name) == {RIDER}
    closed, opened = event_record(LidClosed(lid_id=1)), event_record(LidOpened(lid_id=2))
    assert outbox_relay_priority() == 2
    assert lane["ran"] == [(MARK, 1), (RIDER, 1), (RIDER, 2)]
    rows = set(HandledEvent.objects.values_list("event_id", "handler"))
    assert rows == {(closed.pk, MARK), (opened.pk, RIDER)}
    assert outbox_relay_priority() == 0  # each event found once: by MARK's row, by RIDER's
    lane["ran"].clear()
    assert outbox_sweep() == 2
    assert lane["ran"] == [(RIDER, 1)]  # again where it has no row, not where it has one; MARK not again
    assert set(HandledEvent.objects.values_list("event_id", "handler")) == rows
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()


def test_an_unrecorded_handler_relayed_first_failing_in_the_pass_is_run_by_the_relay_and_retried(lane, settings):
    """At least once: MARK's row, committed by the pass, does not stand for RIDER, which failed there."""
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, tzinfo=UTC))
    try:
        rows = [event_record(LidClosed(lid_id=n)) for n in (1, 2, 3)]
        lane["fail"].add(2)
        assert outbox_relay_priority() == 3
        # Both handlers ran in the pass's transaction (no savepoint each); RIDER raised at 2, so the transaction was
        # rolled back whole (MARK's 1-3 and RIDER's 1 with it) and the pass ran again as a relay batch runs them:
        # MARK's batch in its savepoint, RIDER one event at a time (its batch had failed), 2 failing alone.
        undone = [(MARK, 1), (MARK, 2), (MARK, 3), (RIDER, 1)]
        assert lane["ran"] == [*undone, (MARK, 1), (MARK, 2), (MARK, 3), (RIDER, 1), (RIDER, 3)]
        assert outbox_relay_priority() == 0  # MARK's rows mark all three: the pass is done with them
        lane["ran"].clear()
        assert outbox_relay() == 3  # RIDER again on each, still failing on 2: the event waits for its retry
        assert lane["ran"] == [(RIDER, 1), (RIDER, 1), (RIDER, 3)]
        failed = OutboxEvent.objects.get(pk=rows[1].pk)
        assert failed.relayed_at is None and f"{RIDER}: RuntimeError" in failed.last_error
        lane["fail"].clear()
        clock.advance(timedelta(minutes=5))
        assert outbox_relay() == 1
        assert lane["ran"] == [(RIDER, 1), (RIDER, 1), (RIDER, 3), (RIDER, 2)]
        assert not OutboxEvent.objects.filter(relayed_at=None).exists()
        assert set(HandledEvent.objects.values_list("event_id", "handler")) == {(row.pk, MARK) for row in rows}
    finally:
        clock.reset()
