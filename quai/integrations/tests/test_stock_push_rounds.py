"""Stock push rounds without a sleeping worker: when the shop's interval has not run out, the push task keeps the
shop's lease, asks for a task at the interval's end and returns; nothing is lost (a change during a push goes in
the round asked for after it), the rate limit and Retry-After hold, and a lost message costs only the lease's
minute. The tasks' messages are caught by a fake broker here, so each test runs them when it chooses."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.outbox import outbox_relay
from quai.integrations import services, tasks
from quai.integrations.models import Connection, StockSync
from quai.integrations.services import stock_out
from quai.integrations.tests.fake_shops.woocommerce import CONSUMER_KEY, CONSUMER_SECRET, FakeWooCommerce
from quai.inventory import services as inventory
from quai.warehouse.tests.factories import LocationFactory

INTERVAL_MS = 3000  # long enough that a loaded machine's delays never eat it; the tests move the clock, not wait


@dataclass
class Message:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    countdown: float | None


@dataclass
class Broker:
    """The push task's messages, in the order they were sent; ``run`` delivers one (a worker taking it)."""

    messages: list[Message] = field(default_factory=list)

    def take(self) -> list[Message]:
        taken, self.messages = self.messages, []
        return taken

    def run(self, message: Message) -> int:
        return int(tasks.connection_stock_push.run(*message.args, **message.kwargs))


@pytest.fixture
def broker(monkeypatch):
    caught = Broker()

    def apply_async(args=(), kwargs=None, countdown=None, **options):  # type: ignore[no-untyped-def]
        caught.messages.append(Message(tuple(args), dict(kwargs or {}), countdown))

    monkeypatch.setattr(tasks.connection_stock_push, "apply_async", apply_async)
    return caught


@pytest.fixture
def shop():
    fake = FakeWooCommerce()
    with fake.running():
        yield fake


@pytest.fixture
def setup(merchant, shop, django_capture_on_commit_callbacks):
    location = LocationFactory()
    sku = SkuFactory(merchant=merchant, code="MUG-1")
    inventory.stock_receive(sku=sku, location=location, quantity=10, reason="test stock")
    shop.add_product("MUG-1", 0)
    connection = services.connection_create(
        merchant=merchant,
        name="Boutique",
        platform="woocommerce",
        base_url=shop.url,
        credentials={"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET, "webhook_secret": "x"},
        settings={"stock_interval_ms": INTERVAL_MS},
    )
    return connection, sku, location


def change(capture, sku, location, delta):  # type: ignore[no-untyped-def]
    """A stock change and its relay, as the relay's worker runs it: the SKU marked, a push task asked for."""
    with capture(execute=True):
        inventory.stock_adjust(sku=sku, location=location, quantity_delta=delta, reason="count")
    with capture(execute=True):
        outbox_relay()


def writes(shop):  # type: ignore[no-untyped-def]
    return len(shop.calls("POST", r"/products/batch$"))


def level(shop):  # type: ignore[no-untyped-def]
    return next(iter(shop.products.values()))["stock_quantity"]


def lease_of(connection):  # type: ignore[no-untyped-def]
    return Connection.objects.values_list("stock_lease_until", flat=True).get(pk=connection.pk)


def test_a_push_due_within_the_interval_is_asked_for_at_its_end_and_holds_no_worker(
    setup, shop, broker, django_capture_on_commit_callbacks
):
    connection, sku, location = setup
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        outbox_relay()  # the receipt: MUG-1 marked, a push asked for
    (first,) = broker.take()
    broker.run(first)
    assert (writes(shop), level(shop)) == (1, 10)

    # Given a change right after that push
    change(capture, sku, location, -1)
    (asked,) = broker.take()
    # When its task runs inside the interval
    began = time.monotonic()
    assert broker.run(asked) == 0
    # Then it did not wait in the worker: it asked for a round at the interval's end, which holds the shop's lease
    assert time.monotonic() - began < 1  # nowhere near the interval's rest
    assert writes(shop) == 1
    (round_,) = broker.take()
    assert 0 < round_.countdown <= INTERVAL_MS / 1000
    assert round_.kwargs["lease"] is not None and lease_of(connection) is not None

    # A further change meanwhile asks for no task: the round asked for holds the lease and will take it
    change(capture, sku, location, -2)
    assert broker.messages == []
    # and a task that comes anyway (beat's sweep) finds the lease held and returns
    assert broker.run(asked) == 0
    assert broker.messages == [] and writes(shop) == 1

    # The round at the interval's end pushes the latest level, once, and lets the lease go
    clock.advance(timedelta(seconds=round_.countdown))
    assert broker.run(round_) == 1
    assert (writes(shop), level(shop)) == (2, 7)
    assert lease_of(connection) is None
    assert not StockSync.objects.filter(changed_at__isnull=False).exists()
    assert broker.messages == []  # nothing dirty left: no round asked for


def test_a_change_landing_during_a_push_goes_in_the_round_asked_for_after_it(
    setup, shop, broker, django_capture_on_commit_callbacks, monkeypatch
):
    connection, sku, location = setup
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        outbox_relay()
    (first,) = broker.take()
    during: list[list[Message]] = []
    adapter_for = stock_out.connection_adapter

    class ChangedDuringThePush:
        """The shop's adapter, with a change committed and relayed while its push is on the wire."""

        def __init__(self, adapter: Any) -> None:
            self.adapter = adapter

        def push_stock(self, levels: Any, snapshot_id: str) -> Any:
            if not during:
                change(capture, sku, location, -3)
                during.append(broker.take())
                assert broker.run(first) == 0  # a task coming meanwhile (beat's sweep) finds the lease held
            return self.adapter.push_stock(levels, snapshot_id)

    monkeypatch.setattr(stock_out, "connection_adapter", lambda c, client=None: ChangedDuringThePush(adapter_for(c)))
    broker.run(first)
    assert (writes(shop), level(shop)) == (1, 10)  # the level read before the change
    assert during == [[]]  # the change asked for no task: the push under way holds the lease
    assert StockSync.objects.get().changed_at is not None  # the change is still to push

    (round_,) = broker.take()  # the holder looked again after its push and asked for the next round
    assert 0 < round_.countdown <= INTERVAL_MS / 1000 and round_.kwargs["lease"] is not None
    clock.advance(timedelta(seconds=round_.countdown))
    broker.run(round_)
    assert (writes(shop), level(shop)) == (2, 7)
    assert StockSync.objects.get().changed_at is None and lease_of(connection) is None


def test_a_throttled_push_asks_for_its_retry_at_the_time_the_shop_gave(
    setup, shop, broker, django_capture_on_commit_callbacks
):
    connection, _sku, _location = setup
    shop.fail_next(429, headers={"Retry-After": "30"}, path="/products")
    with django_capture_on_commit_callbacks(execute=True):
        outbox_relay()
    (first,) = broker.take()
    broker.run(first)
    assert writes(shop) == 0 and lease_of(connection) is None
    (retry,) = broker.take()
    assert 29 <= retry.countdown <= 30 and retry.kwargs["lease"] is None

    broker.run(retry)  # delivered early: the shop is still waited for
    assert writes(shop) == 0 and broker.messages == []
    clock.advance(timedelta(seconds=31))
    broker.run(retry)
    assert (writes(shop), level(shop)) == (1, 10)


def test_a_lost_round_costs_the_lease_then_the_sweep_pushes_and_the_stale_round_does_nothing(
    setup, shop, broker, django_capture_on_commit_callbacks
):
    connection, sku, location = setup
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        outbox_relay()
    broker.run(broker.take()[0])
    change(capture, sku, location, -4)
    broker.run(broker.take()[0])
    (lost,) = broker.take()  # the round asked for at the interval's end: its message never arrives

    with capture(execute=True):
        services.connections_sweep_due()
    (swept,) = broker.take()
    broker.run(swept)
    assert writes(shop) == 1  # the lease still holds the shop for the lost round

    clock.advance(stock_out.LEASE + timedelta(milliseconds=INTERVAL_MS + 1000))
    broker.run(swept)  # the sweep's next task, once the lease has run out
    assert (writes(shop), level(shop)) == (2, 6)
    broker.run(lost)  # arriving at last: not the lease's holder any more
    assert writes(shop) == 2 and lease_of(connection) is None


def test_a_shop_keeps_its_http_client_from_one_push_to_the_next_and_never_shares_it(
    setup, shop, broker, django_capture_on_commit_callbacks, monkeypatch
):
    connection, sku, location = setup
    used: list[Any] = []
    adapter_for = stock_out.connection_adapter

    def adapter(c, client=None):  # type: ignore[no-untyped-def]
        used.append(client)
        return adapter_for(c, client)

    monkeypatch.setattr(stock_out, "connection_adapter", adapter)
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        outbox_relay()
    broker.run(broker.take()[0])
    Connection.objects.filter(pk=connection.pk).update(last_stock_push_at=None)  # no interval to wait
    change(capture, sku, location, -1)
    broker.run(broker.take()[0])
    assert writes(shop) == 2 and len(used) == 2
    assert used[0] is used[1] and not used[0].is_closed
    other = Connection(pk=connection.pk + 1, base_url=connection.base_url)
    moved = Connection(pk=connection.pk, base_url=connection.base_url + "/elsewhere")
    assert stock_out._push_client(other) is not used[0]
    assert stock_out._push_client(moved) is not used[0]


def _recorded_one_by_one(rows, levels, report, now):  # type: ignore[no-untyped-def]
    """The one-by-one form ``_stock_syncs_record`` replaced (two statements a SKU), kept as the reference."""
    for pk, sku_id, generation, *_rest in rows:
        level = levels.get(sku_id)
        error = ""
        if level is None:
            error = "SKU not found in Quai"
        elif level.sku in report.unknown:
            error = "SKU not in the shop"
        elif level.sku in report.failed:
            error = report.failed[level.sku]
        values: dict[str, Any] = {"pushed_generation": generation, "pushed_at": now, "last_error": error[:2000]}
        if level is not None:
            values.update(sku_code=level.sku, pushed_quantity=None if error else level.available)
        StockSync.objects.filter(pk=pk, generation=generation).update(changed_at=None, **values)
        StockSync.objects.filter(pk=pk, generation__gt=generation).update(**values)


def test_a_push_records_its_skus_in_one_statement_as_the_one_by_one_form_did(setup, django_assert_num_queries):
    from quai.integrations.connectors.base import StockLevel, StockPushReport

    connection, sku, _location = setup
    others = [SkuFactory(merchant=connection.merchant, code=code) for code in ("CUP-2", "BOWL-3", "JUG-4", "GONE-5")]
    changed = clock.now() - timedelta(seconds=2)
    StockSync.objects.all().delete()
    for n, each in enumerate([sku, *others]):
        StockSync.objects.create(
            merchant_id=connection.merchant_id,
            connection=connection,
            sku_id=each.pk,
            sku_code=f"OLD-{n}",
            generation=3 + n,
            pushed_generation=1,
            changed_at=changed,
            pushed_quantity=99,
        )
    rows = stock_out._dirty(connection.pk)
    levels = {each.pk: StockLevel(sku=each.code, available=10 + n) for n, each in enumerate([sku, *others[:3]])}
    report = StockPushReport(updated=("MUG-1", "CUP-2"), unknown=("BOWL-3",), failed={"JUG-4": "locked " * 400})
    # A change lands on CUP-2 during the push: its row must stay dirty
    StockSync.objects.filter(sku_id=others[0].pk).update(generation=F("generation") + 1)
    initial = list(StockSync.objects.order_by("pk").values())
    now = clock.now()

    def recorded(record) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        for row in initial:
            StockSync.objects.filter(pk=row["id"]).update(**{k: v for k, v in row.items() if k != "id"})
        record(rows, levels, report, now)
        return list(StockSync.objects.order_by("pk").values())

    one_by_one = recorded(_recorded_one_by_one)
    with django_assert_num_queries(1):
        stock_out._stock_syncs_record(rows, levels, report, now)
    assert recorded(stock_out._stock_syncs_record) == one_by_one
    by_code = {row["sku_code"]: row for row in one_by_one}
    assert by_code["MUG-1"]["changed_at"] is None and by_code["MUG-1"]["pushed_quantity"] == 10
    assert by_code["CUP-2"]["changed_at"] == changed and by_code["CUP-2"]["pushed_generation"] == 4  # still dirty
    assert by_code["BOWL-3"]["last_error"] == "SKU not in the shop" and by_code["BOWL-3"]["pushed_quantity"] is None
    assert len(by_code["JUG-4"]["last_error"]) == 2000
    assert by_code["OLD-4"]["last_error"] == "SKU not found in Quai" and by_code["OLD-4"]["pushed_quantity"] == 99


def test_the_next_round_is_due_one_interval_after_the_last_push_started_not_after_its_answer(
    setup, shop, broker, django_capture_on_commit_callbacks, monkeypatch
):
    _connection, sku, location = setup
    capture = django_capture_on_commit_callbacks
    answer_takes = 1.0  # of the 3 s interval
    adapter_for = stock_out.connection_adapter
    starts: list[float] = []

    class SlowShop:
        """A shop that answers in a second, a change landing while it does."""

        def __init__(self, adapter: Any) -> None:
            self.adapter = adapter

        def push_stock(self, levels: Any, snapshot_id: str) -> Any:
            starts.append(time.monotonic())
            time.sleep(answer_takes)
            if len(starts) == 1:
                change(capture, sku, location, -1)
            return self.adapter.push_stock(levels, snapshot_id)

    monkeypatch.setattr(stock_out, "connection_adapter", lambda c, client=None: SlowShop(adapter_for(c)))
    with capture(execute=True):
        outbox_relay()
    (first,) = broker.take()
    broker.run(first)
    # The holder looked again after its push and asked for the next round: what is left of the interval counted
    # from the push's start, which was a second ago at least (not the whole interval counted from its answer)
    (round_,) = broker.take()
    assert 0 < round_.countdown <= (INTERVAL_MS / 1000) - answer_takes
    time.sleep(round_.countdown)
    broker.run(round_)
    assert (writes(shop), level(shop)) == (2, 9)
    assert starts[1] - starts[0] >= INTERVAL_MS / 1000 - 0.01  # the shop's rate limit still holds


def test_a_push_hands_the_adapter_what_it_last_set_on_the_shop(
    setup, shop, broker, django_capture_on_commit_callbacks, monkeypatch
):
    """``StockLevel.shown``: the quantity the last push set (the row's ``pushed_quantity``), none before the first;
    Shopify writes on it without reading first."""
    connection, sku, location = setup
    pushed: list[list[Any]] = []
    adapter_for = stock_out.connection_adapter

    def adapter(c, client=None):  # type: ignore[no-untyped-def]
        real = adapter_for(c, client)
        push = real.push_stock

        def recording(levels, snapshot_id):  # type: ignore[no-untyped-def]
            pushed.append(list(levels))
            return push(levels, snapshot_id)

        real.push_stock = recording
        return real

    monkeypatch.setattr(stock_out, "connection_adapter", adapter)
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        outbox_relay()
    broker.run(broker.take()[0])
    Connection.objects.filter(pk=connection.pk).update(last_stock_push_at=None)  # no interval to wait
    change(capture, sku, location, -3)
    broker.run(broker.take()[0])
    assert [[(level.sku, level.available, level.shown) for level in levels] for levels in pushed] == [
        [("MUG-1", 10, None)],
        [("MUG-1", 7, 10)],
    ]
