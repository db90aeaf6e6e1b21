"""The outbox's raw multi-row inserts (``quai.core.rows``): ``events_record_many`` writes, column for column, the rows
``bulk_create`` wrote for the same events (in the order given, their event ids returned in that order), and the
relay's ``HandledEvent`` rows of a batch are those ``bulk_create`` wrote — a handler recorded twice still refused by
the unique constraint, so the batch falls back to one event at a time as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from django.db import IntegrityError, transaction

from quai.core import clock
from quai.core.events import Envelope, Event, aggregate_id_of, event_payload, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import _dispatch_all, _handled_record, events_record_many
from quai.core.rows import rows_insert

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class ParcelWeighed(Event):
    """A test event with every kind of payload value the outbox stores."""

    name: ClassVar[str] = "test.rows_parcel_weighed"
    aggregate: ClassVar[str] = "parcel"

    parcel_id: int
    grams: Decimal
    on: date
    label: str
    tags: tuple[str, ...] = ()

    @property
    def aggregate_id(self) -> int:
        return self.parcel_id


def _event(n: int) -> ParcelWeighed:
    return ParcelWeighed(
        parcel_id=n, grams=Decimal(f"{n}.25"), on=date(2030, 1, n % 28 + 1), label=f"É'\"{n}", tags=("a", "b")
    )


def _bulk_created(events: list[tuple[Event, int | None]]) -> list[OutboxEvent]:
    """What ``events_record_many`` wrote before (``bulk_create``)."""
    now = clock.now()
    rows = [
        OutboxEvent(
            event_id=uuid.uuid4(),
            name=type(event).name,
            schema_version=type(event).schema_version,
            merchant_id=merchant_id,
            aggregate=type(event).aggregate,
            aggregate_id=aggregate_id_of(event),
            payload=event_payload(event),
            occurred_at=now,
        )
        for event, merchant_id in events
    ]
    return OutboxEvent.objects.bulk_create(rows)


def _stored(pk: int) -> dict[str, Any]:
    stored = OutboxEvent.objects.get(pk=pk)
    return {
        field.attname: getattr(stored, field.attname)
        for field in OutboxEvent._meta.concrete_fields
        if field.attname not in ("id", "event_id")
    }


def _recorded(event_ids: list[uuid.UUID]) -> list[OutboxEvent]:
    """The rows ``events_record_many`` wrote, by the event ids it returned, in that order."""
    rows = {row.event_id: row for row in OutboxEvent.objects.filter(event_id__in=event_ids)}
    return [rows[event_id] for event_id in event_ids]


def test_events_record_many_writes_the_rows_bulk_create_wrote_in_order_and_returns_their_event_ids() -> None:
    clock.set_now(datetime(2030, 1, 7, 9, 30, 15, 123456, tzinfo=UTC))
    try:
        events: list[tuple[Event, int | None]] = [(_event(n), None) for n in range(1, 6)]
        expected = _bulk_created(events)
        event_ids = events_record_many(events)
    finally:
        clock.reset()
    assert all(isinstance(event_id, uuid.UUID) for event_id in event_ids)
    written = _recorded(event_ids)
    assert [row.pk for row in written] == sorted(row.pk for row in written)  # ids ascending in the order given
    assert [row.aggregate_id for row in written] == ["1", "2", "3", "4", "5"]
    for orm_row, raw_row in zip(expected, written, strict=True):
        assert _stored(raw_row.pk) == _stored(orm_row.pk)
        assert OutboxEvent.objects.get(pk=raw_row.pk).event_id == raw_row.event_id
    assert OutboxEvent.objects.get(pk=written[2].pk).payload == {
        "parcel_id": 3,
        "grams": "3.25",
        "on": "2030-01-04",
        "label": "É'\"3",
        "tags": ["a", "b"],
    }


def test_the_relay_s_handled_rows_are_those_bulk_create_wrote_and_a_second_record_is_refused() -> None:
    rows = _recorded(events_record_many([(_event(n), None) for n in range(1, 4)]))
    now = datetime(2030, 1, 7, 9, 30, 15, 123456, tzinfo=UTC)
    clock.set_now(now)
    try:
        _handled_record("test.raw", [row.pk for row in rows])  # the relay's one statement
    finally:
        clock.reset()
    rows_insert(HandledEvent, [{"event_id": row.pk, "handler": "test.rows", "handled_at": now} for row in rows])
    HandledEvent.objects.bulk_create([HandledEvent(event=row, handler="test.orm", handled_at=now) for row in rows])
    raw = list(
        HandledEvent.objects.filter(handler="test.raw").order_by("event_id").values_list("event_id", "handled_at")
    )
    orm = list(
        HandledEvent.objects.filter(handler="test.orm").order_by("event_id").values_list("event_id", "handled_at")
    )
    assert raw == orm
    assert (
        list(
            HandledEvent.objects.filter(handler="test.rows").order_by("event_id").values_list("event_id", "handled_at")
        )
        == orm
    )
    assert [row.pk for row in rows] == list(
        HandledEvent.objects.filter(handler="test.raw").order_by("pk").values_list("event_id", flat=True)
    )  # in the order given
    with pytest.raises(IntegrityError), transaction.atomic():
        _handled_record("test.raw", [rows[0].pk])
    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(HandledEvent, [{"event_id": rows[0].pk, "handler": "test.raw", "handled_at": now}])


@pytest.fixture
def seen() -> Iterator[list[int]]:
    calls: list[int] = []

    def handler(event: ParcelWeighed, envelope: Envelope) -> None:
        calls.append(event.parcel_id)

    subscribe(ParcelWeighed.name, "test.rows_handler", handler)
    yield calls
    unsubscribe("test.rows_handler")


def test_a_batch_whose_handled_row_exists_already_falls_back_and_runs_only_the_others(seen: list[int]) -> None:
    rows = _recorded(events_record_many([(_event(n), None) for n in range(1, 4)]))
    # another relay recorded the handler on the second event after this relay read what was done (``done`` empty)
    HandledEvent.objects.create(event=rows[1], handler="test.rows_handler", handled_at=clock.now())
    errors = _dispatch_all(list(OutboxEvent.objects.filter(pk__in=[row.pk for row in rows]).order_by("pk")), set())
    # the batch ran on all three, undone by the refused insert; then one by one, the second refused before it ran
    assert seen == [1, 2, 3, 1, 3]
    assert errors == {row.pk: [] for row in rows}
    assert HandledEvent.objects.filter(handler="test.rows_handler").count() == 3
