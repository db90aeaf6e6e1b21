"""The promise's handlers on the relay: their batch forms do what the single forms do, in a few queries per relay
batch; the backlog is append-only moves that sum to the count of the orders whatever the events, batches and
compactions, and two relays (or a relay and a compaction) never wait on each other (PostgreSQL, real connections)."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.events import Envelope, event_from_row
from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_relay
from quai.inventory.services import stock_receive
from quai.orders import services as order_services
from quai.orders.events import OrderStatusChanged
from quai.orders.models import Order, OrderStatus
from quai.orders.tests.conftest import order_data
from quai.promise import selectors, services
from quai.promise.models import BacklogDelta, PromiseRecord
from quai.tenants.scope import Scope

MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")
SYSTEM = Scope.system("test")
Items = list[tuple[Any, Envelope]]


@pytest.fixture
def frozen_monotonic(monkeypatch):  # type: ignore[no-untyped-def]
    """The caches' clock stands still: what a warm relay worker reads is what it read a moment ago."""
    monkeypatch.setattr(selectors, "monotonic", SimpleNamespace(monotonic=lambda: 1000.0))


@pytest.fixture
def no_nudge(settings):  # type: ignore[no-untyped-def]
    settings.QUAI_OUTBOX_NUDGE = False


def _order(merchant, external_id: str, lines: int, **changes: Any) -> Order:  # type: ignore[no-untyped-def]
    data = order_data(external_id, lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "9.90"}] * lines, **changes)
    return order_services.order_create(merchant=merchant, data=data).order


def _flash_sale(merchant, other_merchant, shelf) -> None:  # type: ignore[no-untyped-def]
    """Orders of two merchants, of one to four lines, one to Corsica, some released, one held, one cancelled: their
    events wait in the outbox (no relay ran)."""
    clock.set_now(MONDAY)
    stock_receive(sku=SkuFactory(merchant=other_merchant, code="SHIRT-M"), location=shelf, quantity=50)
    orders = [_order(merchant, f"A-{n}", lines=1 + n % 4) for n in range(8)]
    orders.append(
        _order(
            merchant,
            "A-CORSICA",
            lines=2,
            shipping_address={"line1": "1 cours Napoléon", "postcode": "20000", "city": "Ajaccio", "country": "FR"},
        )
    )
    orders += [_order(other_merchant, f"B-{n}", lines=2 + n % 2) for n in range(4)]
    for order in orders[:5]:
        order_services.order_release(order=order, now=order.release_after)
    order_services.order_hold(order=orders[5], reason="fraud")
    order_services.order_cancel(order=orders[6])
    order_services.order_release(order=orders[9], now=orders[9].release_after)


def _pending(name: str) -> Items:
    rows = OutboxEvent.objects.filter(name=name, relayed_at=None).order_by("id")
    return [(event_from_row(row), Envelope.of(row)) for row in rows]


def _outcome() -> tuple[Any, ...]:
    records = sorted(
        PromiseRecord.objects.values_list(
            "order_id",
            "merchant_id",
            "promise_site_id",
            "source",
            "service",
            "carrier",
            "zone",
            "ship_by",
            "ship_date",
            "delivery_from",
            "delivery_by",
            "confidence",
        )
    )
    recorded = sorted(
        (row.merchant_id, sorted(row.payload.items())) for row in OutboxEvent.objects.filter(name="promise.recorded")
    )
    return selectors.backlog_sums(scope=SYSTEM), records, recorded


def _then_undone(apply: Callable[[], None]) -> tuple[Any, ...]:
    """What ``apply`` leaves in the database, then rolled back: both forms start from the same state."""
    with transaction.atomic():
        apply()
        outcome = _outcome()
        transaction.set_rollback(True)
    return outcome


def _each(items: Items, fn: Callable[[Any, Envelope], None]) -> None:
    for event, envelope in items:
        fn(event, envelope)


@pytest.mark.django_db
def test_the_batch_forms_do_what_the_single_forms_do_event_by_event(
    merchant, other_merchant, configured, shelf, shirt, no_nudge, frozen_monotonic
):
    _flash_sale(merchant, other_merchant, shelf)
    received, changed = _pending("order.received"), _pending("order.status_changed")

    def one_by_one() -> None:
        _each(received, services.on_order_received)
        _each(changed, services.on_order_changed)

    def together() -> None:
        services.on_orders_received(received)
        services.on_orders_changed(changed)

    single, batch = _then_undone(one_by_one), _then_undone(together)
    assert batch == single
    backlog, records, recorded = batch
    assert len(records) == len(recorded) == 13
    assert {r[6] for r in records} == {"FR-MAINLAND", "FR-CORSICA"}
    # Acme: five released, two allocated (the held and the cancelled left the backlog); rival: one and three.
    assert backlog == {
        (merchant.pk, "released"): 1 + 2 + 3 + 4 + 1,
        (merchant.pk, "allocated"): 4 + 2,
        (other_merchant.pk, "released"): 2,
        (other_merchant.pk, "allocated"): 3 + 2 + 3,
    }
    with transaction.atomic():
        together()
        assert selectors.backlog_sums(scope=SYSTEM) == {
            key: lines for key, lines in selectors.backlog_counted_from_orders(scope=SYSTEM).items() if lines
        }
        services.on_orders_received(received)  # delivered again: each order keeps its one promise
        assert PromiseRecord.objects.count() == 13
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_the_relay_hands_the_handlers_their_batch_and_a_record_written_meanwhile_falls_back_to_one_by_one(
    merchant, other_merchant, configured, shelf, shirt, no_nudge
):
    _flash_sale(merchant, other_merchant, shelf)
    first = _pending("order.received")[0][0]
    services.promise_record_for_order(merchant_id=merchant.pk, order_id=first.order_id)  # another relay, first
    while outbox_relay():
        pass
    assert PromiseRecord.objects.count() == 13
    assert OutboxEvent.objects.filter(name="promise.recorded").count() == 13
    assert selectors.backlog_sums(scope=SYSTEM) == {
        key: lines for key, lines in selectors.backlog_counted_from_orders(scope=SYSTEM).items() if lines
    }


@pytest.mark.django_db
def test_the_batch_forms_cost_a_few_queries_per_relay_batch_not_per_order(
    merchant, other_merchant, configured, shelf, shirt, no_nudge, frozen_monotonic
):
    _flash_sale(merchant, other_merchant, shelf)
    received, changed = _pending("order.received"), _pending("order.status_changed")
    services.promise_quote(merchant_id=merchant.pk, lines=[("SHIRT-M", 1)], country="FR", postcode="75011")
    services.promise_quote(merchant_id=other_merchant.pk, lines=[("SHIRT-M", 1)], country="FR", postcode="75011")
    figures = {}
    for name, items, single, batch in (
        ("promise.record_on_order", received, services.on_order_received, services.on_orders_received),
        ("promise.backlog_refresh", changed, services.on_order_changed, services.on_orders_changed),
    ):
        with CaptureQueriesContext(connection) as one_by_one:
            _then_undone(lambda single=single, items=items: _each(items, single))
        with CaptureQueriesContext(connection) as together:
            _then_undone(lambda batch=batch, items=items: batch(items))
        # ``_then_undone``'s own: its savepoint, rollback and release, and the outcome's 3 reads.
        figures[name] = (len(items), len(one_by_one) - 6, len(together) - 6)
    # The orders with their lines (and whether each has its promise already), the stamps of the configuration and
    # of labour's roster, the records' insert, the events' insert.
    assert figures["promise.record_on_order"][2] <= 4, figures
    # The orders' line counts, the moves' insert.
    assert figures["promise.backlog_refresh"][2] <= 2, figures
    # One by one: the same, per event (the record's existence, the order, its lines, two inserts; a count, an insert).
    assert figures["promise.record_on_order"][1] <= 5 * len(received), figures
    assert figures["promise.backlog_refresh"][1] <= 2 * len(changed), figures


@pytest.mark.django_db
def test_a_step_of_an_order_gone_or_of_another_merchant_moves_nothing(merchant, other_merchant, configured, shirt):
    clock.set_now(MONDAY)
    order = _order(merchant, "X-1", lines=2)
    steps = [
        services.BacklogStep(other_merchant.pk, order.pk, "allocated", "released"),
        services.BacklogStep(merchant.pk, 999_999, "allocated", "released"),
    ]
    assert services.backlog_apply(steps=steps) == 0
    assert services.backlog_apply(steps=[services.BacklogStep(merchant.pk, order.pk, "allocated", "released")]) == 2


@pytest.mark.django_db
def test_compaction_folds_the_moves_into_one_row_per_merchant_and_status_and_keeps_the_sums(merchant, other_merchant):
    for status, lines in [("allocated", 5), ("allocated", -2), ("released", 2), ("allocated", 4), ("picking", 0)]:
        BacklogDelta.objects.create(merchant=merchant, status=status, lines=lines)
    BacklogDelta.objects.create(merchant=other_merchant, status="released", lines=3)
    BacklogDelta.objects.create(merchant=other_merchant, status="released", lines=-3)
    before = selectors.backlog_sums(scope=SYSTEM)
    assert services.backlog_compact() == 7
    assert (
        selectors.backlog_sums(scope=SYSTEM) == before == {(merchant.pk, "allocated"): 7, (merchant.pk, "released"): 2}
    )
    assert BacklogDelta.objects.count() == 2
    assert services.backlog_compact() == 0  # nothing to fold: no write


# --- Property: whatever the events, batches and compactions, the moves sum to the orders' own count -------------

STATUSES = [choice.value for choice in OrderStatus]
_numbers = itertools.count(1)


def _step_event(order: Order, to_status: str) -> tuple[Any, Envelope]:
    event = OrderStatusChanged(
        order_id=order.pk,
        channel=order.channel,
        external_id=order.external_id,
        from_status=order.status,
        to_status=to_status,
    )
    envelope = Envelope(
        event_id=uuid.uuid4(),
        name=event.name,
        schema_version=1,
        occurred_at=clock.now(),
        merchant_id=order.merchant_id,
        aggregate="order",
        aggregate_id=str(order.pk),
    )
    return event, envelope


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(STATUSES)), min_size=1, max_size=12),
    cuts=st.lists(st.integers(1, 4), min_size=1, max_size=12),
    batched=st.lists(st.booleans(), min_size=1, max_size=12),
    compact_after=st.sets(st.integers(0, 12), max_size=3),
)
def test_the_backlog_is_the_count_of_the_orders_after_any_events_batches_and_compactions(
    merchant, configured, shirt, steps, cuts, batched, compact_after
):
    clock.set_now(MONDAY)
    run = next(_numbers)
    orders = [_order(merchant, f"P-{run}-{n}", lines=n + 1) for n in range(4)]
    services.backlog_recount()  # the orders' own steps were not relayed: start from their count
    events = []
    for index, to_status in steps:
        order = Order.objects.get(pk=orders[index].pk)
        if to_status == order.status:
            continue
        events.append(_step_event(order, to_status))
        Order.objects.filter(pk=order.pk).update(status=to_status)
    # The relay hands the events over in batches of any size, by batch form or one by one, compacting in between.
    position = 0
    for number, (size, as_batch) in enumerate(zip(itertools.cycle(cuts), itertools.cycle(batched), strict=False)):
        if position >= len(events):
            break
        batch = events[position : position + size]
        position += size
        if as_batch:
            services.on_orders_changed(batch)
        else:
            _each(batch, services.on_order_changed)
        if number in compact_after:
            services.backlog_compact()
    counted = selectors.backlog_counted_from_orders(scope=SYSTEM)
    assert selectors.backlog_sums(scope=SYSTEM) == {key: lines for key, lines in counted.items() if lines}
    assert services.backlog_recount() == 0


# --- PostgreSQL: two relays at once, and a compaction beside them ------------------------------------------------


def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


def _in_thread(work: Callable[[], None], failures: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections["default"].close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _no_lock_wait() -> None:
    """A statement of this transaction that waits on a lock fails at once instead (what the test forbids)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '1s'")


def _released(orders: Sequence[Order]) -> list[services.BacklogStep]:
    return [services.BacklogStep(o.merchant_id, o.pk, "allocated", "released") for o in orders]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_relays_append_the_same_merchants_moves_at_once_without_waiting(merchant, configured, shirt):
    _postgres_only()
    clock.set_now(MONDAY)
    orders = [_order(merchant, f"C-{n}", lines=2) for n in range(6)]
    services.backlog_recount()
    first_appended, second_done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def first_relay() -> None:
        with transaction.atomic():
            services.backlog_apply(steps=_released(orders[:3]))
            first_appended.set()
            # Still open: the second relay's moves go in and commit meanwhile.
            assert second_done.wait(20), "the second relay waited on the first"

    def second_relay() -> None:
        assert first_appended.wait(20)
        with transaction.atomic():
            _no_lock_wait()
            services.backlog_apply(steps=_released(orders[3:]))
        second_done.set()

    threads = [_in_thread(first_relay, failures), _in_thread(second_relay, failures)]
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert selectors.backlog_sums(scope=SYSTEM) == {(merchant.pk, "released"): 12}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_compaction_beside_a_relay_and_beside_another_compaction_counts_every_move_once(merchant, configured, shirt):
    _postgres_only()
    clock.set_now(MONDAY)
    orders = [_order(merchant, f"D-{n}", lines=1 + n) for n in range(4)]
    services.backlog_recount()
    for order in orders[:2]:
        services.backlog_apply(steps=_released([order]))
    relay_appended, compacted = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def relay() -> None:
        with transaction.atomic():
            services.backlog_apply(steps=_released(orders[2:]))
            relay_appended.set()
            assert compacted.wait(20), "the compaction waited on the relay"

    def compaction() -> None:
        assert relay_appended.wait(20)
        with transaction.atomic():
            _no_lock_wait()
            services.backlog_compact()
        compacted.set()

    threads = [_in_thread(relay, failures), _in_thread(compaction, failures)]
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert selectors.backlog_sums(scope=SYSTEM) == {(merchant.pk, "released"): 1 + 2 + 3 + 4}

    # Two compactions at once: the second waits for the first (they delete the same rows) and re-inserts only what
    # it deleted itself, so nothing is counted twice.
    for order in orders:
        services.backlog_apply(steps=[services.BacklogStep(merchant.pk, order.pk, "released", "picking")])
    first_folded, first_may_commit = threading.Event(), threading.Event()

    def first_compaction() -> None:
        with transaction.atomic():
            services.backlog_compact()
            first_folded.set()
            assert first_may_commit.wait(20)

    def second_compaction() -> None:
        assert first_folded.wait(20)
        services.backlog_compact()

    threads = [_in_thread(first_compaction, failures), _in_thread(second_compaction, failures)]
    with connections["default"].cursor() as cursor:
        for _ in range(200):  # until the second compaction waits on the first's rows
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
            threading.Event().wait(0.05)
    first_may_commit.set()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert selectors.backlog_sums(scope=SYSTEM) == {(merchant.pk, "picking"): 10}
    assert BacklogDelta.objects.count() == 1
