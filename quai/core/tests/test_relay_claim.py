"""The relay's own statements (issues 12 and 17): a claimed row holds what the ORM reads from the outbox, the claim
reads the handlers already done in the same statement, and ``quai.core.rows``'s direct preparation of the commonest
values gives exactly what the ORM's ``get_db_prep_save`` gives them, on the database the tests run on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, models, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import _CLAIM_SLOTS, event_record, events_record_many, outbox_claim, outbox_relay
from quai.core.rows import _preparer, _slow

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class CrateWeighed(Event):
    name: ClassVar[str] = "test.claim_crate_weighed"
    aggregate: ClassVar[str] = "crate"

    crate_id: int
    grams: Decimal
    on: date
    at: datetime
    label: str
    tags: tuple[str, ...] = ()

    @property
    def aggregate_id(self) -> int:
        return self.crate_id


def _crate(n: int) -> CrateWeighed:
    return CrateWeighed(
        crate_id=n,
        grams=Decimal(f"{n}.50"),
        on=date(2031, 2, n % 28 + 1),
        at=datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=ZoneInfo("Europe/Paris")),
        label=f"É'\"{n}",
        tags=("x", "y"),
    )


@pytest.fixture
def seen() -> Iterator[list[int]]:
    calls: list[int] = []

    def handler(event: CrateWeighed, envelope: Envelope) -> None:
        calls.append(event.crate_id)

    subscribe(CrateWeighed.name, "test.claim_a", handler)
    subscribe(CrateWeighed.name, "test.claim_b", handler)
    yield calls
    unsubscribe("test.claim_a")
    unsubscribe("test.claim_b")


def test_a_claimed_row_holds_what_the_orm_reads_and_the_handlers_already_done(settings) -> None:
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, 0, 123456, tzinfo=UTC))
    try:
        event_ids = events_record_many([(_crate(n), 7 if n % 2 else None) for n in range(1, 5)])
        stored = {row.event_id: row for row in OutboxEvent.objects.filter(event_id__in=event_ids)}
        rows = [stored[event_id] for event_id in event_ids]
        HandledEvent.objects.create(event=rows[1], handler="test.claim_a")
        HandledEvent.objects.create(event=rows[1], handler="test.claim_b")
        HandledEvent.objects.create(event=rows[2], handler="test.claim_b")
        with CaptureQueriesContext(connection) as context:
            claimed = outbox_claim(clock.now(), 10)
    finally:
        clock.reset()
    assert len(context.captured_queries) == 1  # the lease and what was done, one statement
    assert [row.pk for row in claimed] == [row.pk for row in rows]
    for row in claimed:
        stored = OutboxEvent.objects.get(pk=row.pk)
        for slot in _CLAIM_SLOTS:
            assert getattr(row, slot) == getattr(stored, "pk" if slot == "pk" else slot), slot
            assert type(getattr(row, slot)) is type(getattr(stored, "pk" if slot == "pk" else slot)), slot
        assert row.occurred_at.tzinfo == stored.occurred_at.tzinfo  # the claim's fast path for SQLite's datetimes
    assert [sorted(row.handled) for row in claimed] == [[], ["test.claim_a", "test.claim_b"], ["test.claim_b"], []]


def test_a_relayed_batch_skips_what_was_done_and_marks_every_event_relayed(seen, settings) -> None:
    settings.QUAI_OUTBOX_NUDGE = False
    clock.set_now(datetime(2031, 3, 10, 9, 0, tzinfo=UTC))
    try:
        rows = [event_record(_crate(n)) for n in range(1, 4)]
        outbox_claim(clock.now(), 10)  # a relay that died after its claim, once a handler had committed
        HandledEvent.objects.create(event=rows[0], handler="test.claim_a")
        clock.advance(timedelta(minutes=5))
        assert outbox_relay() == 3
        assert sorted(seen) == [1, 2, 2, 3, 3]  # the first event's handler done already is not run again
        relayed = OutboxEvent.objects.filter(pk__in=[row.pk for row in rows])
        assert set(relayed.values_list("relayed_at", "next_attempt_at", "attempts")) == {(clock.now(), None, 1)}
        assert HandledEvent.objects.filter(event__in=rows, handler__startswith="test.claim_").count() == 6
    finally:
        clock.reset()


def _due_by_orm(now: datetime, batch: int) -> list[int]:
    """What the claim must take: the ORM's read of the oldest due events."""
    due = OutboxEvent.objects.filter(relayed_at=None).filter(Q(next_attempt_at=None) | Q(next_attempt_at__lte=now))
    return list(due.order_by("pk").values_list("pk", flat=True)[:batch])


def test_the_claim_takes_the_oldest_due_events_around_relayed_leased_and_failed_ones(settings) -> None:
    # The claim reads from the first pending id on (PostgreSQL): an event leased or backed off below the due ones,
    # relayed ones between them, must change nothing in what it takes, now or once the lease is over.
    settings.QUAI_OUTBOX_NUDGE = False
    now = datetime(2031, 3, 10, 9, 0, tzinfo=UTC)
    event_ids = events_record_many([(_crate(n), None) for n in range(1, 9)])
    pks = {row.event_id: row.pk for row in OutboxEvent.objects.filter(event_id__in=event_ids)}
    ids = [pks[event_id] for event_id in event_ids]
    OutboxEvent.objects.filter(pk__in=[ids[0], ids[2], ids[5]]).update(relayed_at=now, attempts=1)
    OutboxEvent.objects.filter(pk=ids[1]).update(next_attempt_at=now + timedelta(seconds=60))  # leased
    OutboxEvent.objects.filter(pk=ids[4]).update(next_attempt_at=now + timedelta(hours=1), attempts=2)  # failed
    for at, batch in ((now, 2), (now, 10), (now + timedelta(seconds=61), 10), (now + timedelta(hours=2), 10)):
        expected = _due_by_orm(at, batch)
        with transaction.atomic():
            assert [row.pk for row in outbox_claim(at, batch)] == expected, (at, batch)
            transaction.set_rollback(True)
    assert _due_by_orm(now, 10) == [ids[3], ids[6], ids[7]]
    assert _due_by_orm(now + timedelta(hours=2), 10) == [ids[1], ids[3], ids[4], ids[6], ids[7]]


_NOW = datetime(2031, 3, 10, 9, 0, 0, 123456, tzinfo=UTC)
_VALUES: list[tuple[models.Field[Any, Any], list[Any]]] = [
    (models.DateTimeField(), [_NOW, _NOW.astimezone(ZoneInfo("Europe/Paris")), datetime(2031, 1, 1, tzinfo=UTC), None]),
    (models.DateTimeField(null=True), [None, _NOW]),
    (models.UUIDField(), [uuid.UUID("12345678-1234-5678-1234-567812345678"), None]),
    (models.JSONField(default=dict), [{"a": [1, "é", None, True]}, [1, 2], {}, [], "text", 3, None]),
    (models.BooleanField(), [True, False]),
    (models.CharField(max_length=20), ["", "é'\"", None, 12]),
    (models.TextField(blank=True), ["long text"]),
    (models.IntegerField(), [0, -3, 2**40, None, True]),
    (models.PositiveSmallIntegerField(), [1]),
    (models.BigIntegerField(null=True), [None, 5]),
    (models.DecimalField(max_digits=9, decimal_places=2), [Decimal("1.50")]),
    (models.DateField(), [date(2031, 3, 10)]),
]


@pytest.mark.parametrize(("field", "values"), _VALUES, ids=[type(field).__name__ for field, _values in _VALUES])
def test_the_direct_preparation_gives_what_get_db_prep_save_gives(field: models.Field[Any, Any], values: list[Any]):
    """In the form ``rows_insert`` binds on this database: SQLite's parameters (same value, same type: the driver
    adapts by type), PostgreSQL's JSON document (the same JSON text)."""
    json_doc = connection.vendor == "postgresql"
    fast, orm = _preparer(field, connection.vendor, json_doc), _slow(field, json_doc)
    for value in values:
        expected, got = orm(value, connection), fast(value, connection)
        if json_doc:
            assert json.dumps(got) == json.dumps(expected), value
        else:
            assert (got, type(got)) == (expected, type(expected)), value
