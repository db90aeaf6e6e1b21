from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

import pytest
from django.db import connection, transaction

from quai.core import clock
from quai.core.events import (
    Envelope,
    Event,
    register_upcaster,
    subscribe,
    subscribers_for,
    subscriptions_for,
    unsubscribe,
)
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import backoff_delay, event_record, outbox_relay, outbox_sweep
from quai.core.tasks import outbox_sweep as outbox_sweep_task

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class ThingHappened(Event):
    """Something happened to a thing (a test event)."""

    name: ClassVar[str] = "test.thing_happened"
    aggregate: ClassVar[str] = "thing"

    thing_id: int
    on: date
    price: Decimal

    @property
    def aggregate_id(self) -> int:
        return self.thing_id


@pytest.fixture
def calls() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def good(event: ThingHappened, envelope: Envelope) -> None:
        seen.append(("good", str(envelope.event_id)))

    subscribe(ThingHappened.name, "test.good", good)
    yield seen
    for key in ("test.good", "test.flaky", "test.prefix", "test.everything", "test.typed"):
        unsubscribe(key)


def _thing(n: int = 1) -> ThingHappened:
    return ThingHappened(thing_id=n, on=date(2030, 1, 2), price=Decimal("9.90"))


def test_an_event_is_recorded_with_a_json_payload_and_its_aggregate():
    row = event_record(_thing(7), merchant_id=3)
    stored = OutboxEvent.objects.get(pk=row.pk)
    assert (stored.name, stored.schema_version) == ("test.thing_happened", 1)
    assert stored.payload == {"thing_id": 7, "on": "2030-01-02", "price": "9.90"}
    assert (stored.aggregate, stored.aggregate_id, stored.merchant_id) == ("thing", "7", 3)
    assert stored.relayed_at is None


def test_only_a_registered_typed_event_can_be_recorded():
    @dataclass(frozen=True)
    class Untyped:
        name: ClassVar[str] = "test.untyped"
        aggregate_id: int

    @dataclass(frozen=True)
    class Abstract(Event):
        aggregate_id: int

    for wrong in (Untyped(1), Abstract(1), {"name": "test.thing_happened"}):
        with pytest.raises(TypeError):
            event_record(wrong)  # type: ignore[arg-type]
    assert not OutboxEvent.objects.exists()


def test_an_event_exists_only_if_the_change_committed():
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(_thing())
        raise RuntimeError("the change failed")
    assert not OutboxEvent.objects.exists()


def test_one_nudge_per_transaction_however_many_events(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        for n in range(3):
            event_record(_thing(n))
    assert len(callbacks) == 1


def test_the_nudge_relays_after_commit_in_embedded_mode(calls, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        row = event_record(_thing())
        assert calls == []  # nothing runs before the commit
    assert calls == [("good", str(row.event_id))]
    row.refresh_from_db()
    assert row.relayed_at is not None
    assert row.attempts == 1


def test_a_handler_runs_once_per_event_even_when_relayed_again(calls):
    row = event_record(_thing())
    assert outbox_relay() == 1
    OutboxEvent.objects.filter(pk=row.pk).update(relayed_at=None)  # as if the relay died before marking it
    assert outbox_relay() == 1
    assert calls == [("good", str(row.event_id))]
    assert HandledEvent.objects.filter(event=row, handler="test.good").count() == 1


def test_a_failing_handler_is_retried_with_backoff_and_the_others_are_not_rerun(calls):
    clock.set_now(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    failures = {"left": 1}

    def flaky(event: ThingHappened, envelope: Envelope) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ValueError("carrier down")

    subscribe(ThingHappened.name, "test.flaky", flaky)
    row = event_record(_thing())

    outbox_relay()
    row.refresh_from_db()
    assert row.relayed_at is None
    assert row.attempts == 1
    assert "carrier down" in row.last_error
    assert row.next_attempt_at == clock.now() + timedelta(seconds=5)

    assert outbox_relay() == 0  # not before its time
    clock.advance(timedelta(seconds=5))
    assert outbox_relay() == 1
    row.refresh_from_db()
    assert row.relayed_at is not None
    assert row.attempts == 2
    assert len(calls) == 1  # the good handler succeeded the first time and was not run again


def test_backoff_doubles_and_is_capped():
    assert [backoff_delay(n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert backoff_delay(50) == timedelta(hours=1)


def test_the_sweep_relays_everything_pending_in_batches(calls):
    for n in range(25):
        event_record(_thing(n))
    assert outbox_sweep(batch=10) == 25
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    assert len(calls) == 25
    assert outbox_sweep_task.delay().get() == 0  # the periodic task, run eagerly


def test_events_without_handlers_are_marked_relayed():
    event_record(_thing())
    assert outbox_relay() == 1
    assert OutboxEvent.objects.get().relayed_at is not None


def test_handlers_receive_the_typed_event_and_its_envelope(calls):
    received: list[tuple[Event, Envelope]] = []
    subscribe(ThingHappened.name, "test.typed", lambda event, envelope: received.append((event, envelope)))
    clock.set_now(datetime(2030, 1, 1, 12, 0, tzinfo=UTC))
    row = event_record(_thing(4), merchant_id=9)
    outbox_relay()
    [(event, envelope)] = received
    assert event == _thing(4)  # dates and decimals come back as dates and decimals
    assert (envelope.event_id, envelope.name, envelope.schema_version) == (row.event_id, "test.thing_happened", 1)
    assert (envelope.occurred_at, envelope.merchant_id) == (clock.now(), 9)
    assert (envelope.aggregate, envelope.aggregate_id) == ("thing", "4")


def test_handlers_subscribed_by_prefix_or_to_everything_receive_the_event(calls):
    seen: list[str] = []
    subscribe("test.*", "test.prefix", lambda event, envelope: seen.append("prefix"))
    subscribe("*", "test.everything", lambda event, envelope: seen.append("everything"))
    event_record(_thing())
    outbox_relay()
    assert sorted(seen) == ["everything", "prefix"]
    assert HandledEvent.objects.filter(handler__in=["test.prefix", "test.everything"]).count() == 2


def test_a_row_written_by_older_code_reaches_handlers_in_the_current_shape(calls, monkeypatch):
    # given a v1 row in the outbox, then the event's schema moves to v2 (price becomes price_cents)
    @dataclass(frozen=True)
    class PriceSet(Event):
        """A price was set (a test event whose schema moved to version 2)."""

        name: ClassVar[str] = "test.price_set"
        aggregate: ClassVar[str] = "thing"
        schema_version: ClassVar[int] = 2
        aggregate_id: int
        price_cents: int

    row = event_record(PriceSet(aggregate_id=1, price_cents=990))
    OutboxEvent.objects.filter(pk=row.pk).update(schema_version=1, payload={"aggregate_id": 1, "price": "9.90"})
    register_upcaster(
        "test.price_set",
        1,
        lambda payload: {"aggregate_id": payload["aggregate_id"], "price_cents": int(Decimal(payload["price"]) * 100)},
    )
    received: list[Event] = []
    subscribe("test.price_set", "test.typed", lambda event, envelope: received.append(event))
    outbox_relay()
    assert received == [PriceSet(aggregate_id=1, price_cents=990)]


def test_a_row_that_cannot_be_read_back_stays_pending_with_the_reason(calls):
    row = event_record(_thing())
    OutboxEvent.objects.filter(pk=row.pk).update(payload={"thing_id": 1, "colour": "red"})
    outbox_relay()
    row.refresh_from_db()
    assert row.relayed_at is None and row.attempts == 1
    assert "cannot read the event back" in row.last_error and "colour" in row.last_error
    assert calls == []


def test_the_back_office_lists_events_read_only(admin_client):
    event_record(_thing())
    response = admin_client.get("/admin/core/outboxevent/?relayed=no&name=test.thing_happened")
    assert response.status_code == 200
    assert b"test.thing_happened" in response.content
    assert admin_client.get("/admin/core/outboxevent/add/").status_code == 403


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_relays_share_the_work_without_waiting_on_each_other(settings):
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL")
    settings.QUAI_OUTBOX_NUDGE = False  # autocommit would relay each event at once, in this thread
    handled: list[int] = []
    lock = threading.Lock()
    first_claimed = threading.Event()
    let_go = threading.Event()

    def slow(event: ThingHappened, envelope: Envelope) -> None:
        with lock:
            handled.append(OutboxEvent.objects.get(event_id=envelope.event_id).pk)
        if threading.current_thread().name == "relay-a":
            first_claimed.set()
            let_go.wait(10)

    subscribe(ThingHappened.name, "test.slow", slow)
    try:
        ids = [event_record(_thing(n)).pk for n in range(30)]

        def relay_a() -> None:
            try:
                outbox_relay(batch=10)
            finally:
                connection.close()

        worker = threading.Thread(target=relay_a, name="relay-a")
        worker.start()
        assert first_claimed.wait(10)
        claimed_by_b = outbox_relay(batch=100)  # must not wait for relay A's locked rows
        let_go.set()
        worker.join(10)
        assert claimed_by_b == 20
        assert sorted(handled) == sorted(ids)
        assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    finally:
        let_go.set()
        unsubscribe("test.slow")


def test_a_relay_batch_costs_per_handler_not_per_event(calls, django_assert_max_num_queries):
    subscribe(ThingHappened.name, "test.everything", lambda event, envelope: None)
    for n in range(30):
        event_record(_thing(n))
    handlers = len(subscribers_for(ThingHappened.name))  # ours, and the apps' "*" (the webhook fan-out)
    # The claim (1, one statement that commits on its own and reads what was handled already); per handler: its
    # own transaction (a savepoint inside the test's: 2) and one insert of its successes (1); the relayed mark (1).
    # Before the batch forms: a savepoint and an insert per handler per event; before the claim read what was
    # handled: one query more.
    with django_assert_max_num_queries(1 + 3 * handlers + 1):
        assert outbox_relay(batch=100) == 30
    # each recorded handler's successes: the webhook fan-out is subscribed unrecorded (its deliveries are unique)
    recorded = sum(1 for sub in subscriptions_for(ThingHappened.name).values() if sub.recorded)
    assert recorded == handlers - 1
    assert HandledEvent.objects.count() == 30 * recorded
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    assert [event_id for _name, event_id in calls] == [
        str(event_id) for event_id in OutboxEvent.objects.order_by("id").values_list("event_id", flat=True)
    ]  # each handler sees the batch's events in the order they happened


def test_a_handler_failing_on_one_event_of_a_batch_fails_only_that_event(calls):
    seen: list[int] = []

    def flaky(event: ThingHappened, envelope: Envelope) -> None:
        if event.thing_id == 2:
            raise RuntimeError("thing 2 is refused")
        seen.append(event.thing_id)

    subscribe(ThingHappened.name, "test.flaky", flaky)
    rows = [event_record(_thing(n)) for n in range(4)]
    outbox_relay()
    assert sorted(set(seen)) == [0, 1, 3]
    failed = OutboxEvent.objects.get(pk=rows[2].pk)
    assert failed.relayed_at is None and "thing 2 is refused" in failed.last_error and failed.attempts == 1
    assert OutboxEvent.objects.filter(relayed_at__isnull=False).count() == 3
    # The good handler succeeded on every event, the flaky one on all but thing 2: each recorded once.
    assert HandledEvent.objects.filter(handler="test.good").count() == 4
    assert set(HandledEvent.objects.filter(handler="test.flaky").values_list("event_id", flat=True)) == {
        rows[0].pk,
        rows[1].pk,
        rows[3].pk,
    }


def test_a_handler_s_batch_form_gets_its_events_of_a_relay_batch_in_one_call(calls):
    batches: list[list[int]] = []
    singles: list[int] = []

    def one(event: ThingHappened, envelope: Envelope) -> None:
        singles.append(event.thing_id)

    def many(items: list[tuple[ThingHappened, Envelope]]) -> None:
        batches.append([event.thing_id for event, _envelope in items])

    subscribe(ThingHappened.name, "test.typed", one, batch=many)
    for n in range(5):
        event_record(_thing(n))
    assert outbox_relay() == 5
    assert (batches, singles) == ([[0, 1, 2, 3, 4]], [])  # one call, in the order the events happened
    assert HandledEvent.objects.filter(handler="test.typed").count() == 5


def test_a_batch_form_that_fails_is_undone_and_each_event_runs_alone_failing_alone(calls):
    written: list[int] = []

    def one(event: ThingHappened, envelope: Envelope) -> None:
        if event.thing_id == 2:
            raise RuntimeError("thing 2 is refused")
        written.append(event.thing_id)

    def many(items: list[tuple[ThingHappened, Envelope]]) -> None:
        for event, envelope in items:
            event_record(_thing(100 + event.thing_id))  # a write the failure must undo
            one(event, envelope)

    subscribe(ThingHappened.name, "test.typed", one, batch=many)
    rows = [event_record(_thing(n)) for n in range(4)]
    outbox_relay(batch=4)
    assert written == [0, 1, 0, 1, 3]  # the batch got to 2 and was rolled back; then one by one
    assert not OutboxEvent.objects.filter(payload__thing_id__gte=100).exists()
    assert set(HandledEvent.objects.filter(handler="test.typed").values_list("event_id", flat=True)) == {
        rows[0].pk,
        rows[1].pk,
        rows[3].pk,
    }
    failed = OutboxEvent.objects.get(pk=rows[2].pk)
    assert failed.relayed_at is None and "thing 2 is refused" in failed.last_error


def test_one_nudge_relays_everything_its_transaction_recorded_even_beyond_one_batch(calls):
    from quai.core.tasks import outbox_relay_task

    with transaction.atomic():
        for n in range(230):  # one transaction (a group commit), one nudge, more events than a relay batch
            event_record(_thing(n))
    assert outbox_relay_task(batch=100) == 230
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    assert len(calls) == 230
