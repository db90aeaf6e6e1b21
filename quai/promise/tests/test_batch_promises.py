"""A relay batch's promises are the ones each order gets alone: the carts' drains behind the backlog remembered for
the batch (``domain.CartDrains``) and the quote without its tokens give the same dates, confidence and source."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from quai.core import clock
from quai.promise import domain, selectors, services
from quai.promise.domain import Capacity, SiteCalendar
from quai.promise.models import BacklogDelta
from quai.promise.tests.test_relay_handlers import _order, _pending, _then_undone

CALENDAR = SiteCalendar(
    time_zone="Europe/Paris",
    opening_days=frozenset({1, 2, 3, 4, 5, 6}),
    opens_at=time(8),
    closes_at=time(18),
    holiday_country="FR",
    closures=frozenset({date(2025, 3, 12)}),
)
MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")


@pytest.fixture
def still(monkeypatch, settings):  # type: ignore[no-untyped-def]
    """The caches' clock stands still (a warm relay worker) and the relay is not nudged."""
    monkeypatch.setattr(selectors, "monotonic", SimpleNamespace(monotonic=lambda: 1000.0))
    settings.QUAI_OUTBOX_NUDGE = False


def _hourly(figure: float) -> dict[str, dict[datetime, float]]:
    first = datetime.fromisoformat("2025-03-10T09:00:00+00:00")
    return {"pick": {first + timedelta(hours=n): figure + n for n in range(30)}}


def test_the_remembered_drain_is_the_computed_one_and_forgets_when_the_capacity_changes():
    drains = domain.CartDrains()
    capacities = [
        Capacity(lines_per_hour={"pick": 200, "pack": 300}, backlog_lines={"pick": 400, "pack": 50}),
        Capacity(lines_per_hour={"pick": 100}, backlog_lines={"pick": 900}, hourly=_hourly(40)),
        Capacity(lines_per_hour={"pick": 100}, backlog_lines={"pick": 900}, hourly=_hourly(80)),  # equal keys
    ]
    instants = [MONDAY + timedelta(minutes=m) for m in (0, 0, 7, 7, 600, 2 * 24 * 60)]
    # Capacities in turn, each instant twice (remembered), release later or not, carts of one to three lines.
    for capacity, now, delay, lines in itertools.product(capacities * 2, instants, (0, 90), (1, 3)):
        starts_at = now + timedelta(minutes=delay)
        expected = domain.cart_done_at(CALENDAR, capacity, cart_lines=lines, now=now, starts_at=starts_at)
        assert drains.done_at(CALENDAR, capacity, cart_lines=lines, now=now, starts_at=starts_at) == expected


@pytest.mark.django_db
def test_a_batch_of_orders_at_a_few_instants_gets_each_order_s_own_promise_and_walks_once_per_instant(
    merchant, configured, shelf, shirt, still, monkeypatch
):
    """Orders at three instants, of one to three units, behind a backlog of 900 lines (four and a half hours of
    picking): the batch's records and events are the single form's, field by field; the batch walks the calendar
    once per instant (one SKU: every cart is one line), not once per order."""
    BacklogDelta.objects.create(merchant=merchant, status="released", lines=900)
    for n, minutes in enumerate([0] * 5 + [3] * 4 + [250] * 3):
        clock.set_now(MONDAY + timedelta(minutes=minutes))
        _order(merchant, f"A-{n}", lines=1 + n % 3)
    received = _pending("order.received")
    assert len(received) == 12
    walks: list[Any] = []
    computed = domain.cart_done_at

    def counted(*args: Any, **kwargs: Any) -> datetime:
        walks.append(kwargs["now"])
        return computed(*args, **kwargs)

    monkeypatch.setattr(domain, "cart_done_at", counted)

    def one_by_one() -> None:
        for event, envelope in received:
            services.on_order_received(event, envelope)

    single = _then_undone(one_by_one)
    alone = len(walks)
    walks.clear()
    batch = _then_undone(lambda: services.on_orders_received(received))
    assert batch == single
    assert len(batch[1]) == 12
    assert alone == 12
    assert len(walks) == 3
