"""A handler subscribed ``recorded=False`` (idempotent by its own writes): the relay runs it as any other, records no
``HandledEvent`` row for it, and runs it again on each retry of its event, while the recorded handlers that
succeeded are still skipped; an error of its own (an ``IntegrityError`` too) fails the event; it cannot be relayed
first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from django.db import IntegrityError

from quai.core import clock
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record, outbox_relay, relay_first

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


def test_a_handler_relayed_first_must_be_recorded(calls) -> None:
    with pytest.raises(ValueError, match=r"test\.unrecorded_free"):
        relay_first("test.unrecorded_free")
