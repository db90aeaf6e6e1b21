"""The outbox's priority pass reads its events by a statement written once (``outbox._priority_rows``) instead of
the ORM's query built and compiled on every pass: the same events, in the same order, each read as the claim reads
it (``ClaimedEvent``: the same values as the ``OutboxEvent`` the ORM gave) — prefixes (with LIKE's own specials
escaped), exact names, the floor, the handled rows of the keys and of others, relayed and failed events."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Exists, Max, OuterRef, Q

from quai.core import clock
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import _outbox_top, _priority_rows

pytestmark = pytest.mark.django_db

_READ = ("event_id", "name", "schema_version", "merchant_id", "aggregate", "aggregate_id", "payload", "occurred_at")


def _orm_rows(patterns: tuple[str, ...], keys: tuple[str, ...], floor: int, batch: int) -> list[OutboxEvent]:
    """The pass's read as the ORM wrote it before (c. 76ab071)."""
    names = Q(pk__in=[])
    for pattern in patterns:
        names |= Q(name__startswith=pattern[:-1]) if pattern.endswith(".*") else Q(name=pattern)
    handled = HandledEvent.objects.filter(event=OuterRef("pk"), event_id__gt=floor, handler__in=list(keys))
    return list(
        OutboxEvent.objects.filter(names, relayed_at=None, attempts=0, pk__gt=floor)
        .filter(~Exists(handled))
        .order_by("pk")[:batch]
    )


def _event(name: str, n: int, **values: Any) -> OutboxEvent:
    return OutboxEvent.objects.create(
        name=name,
        schema_version=1 + n % 2,
        merchant_id=None,
        aggregate="thing",
        aggregate_id=str(n % 5),
        payload={"n": n, "label": f"é{n}", "nested": {"list": [n, None]}},
        occurred_at=clock.now(),
        **values,
    )


@pytest.fixture
def events() -> list[OutboxEvent]:
    rows = []
    names = ["stock.moved", "stock.counted", "stockx.moved", "sto_k.moved", "shelf.moved", "shelf.filled", "order.x"]
    for n in range(60):
        row = _event(names[n % len(names)], n)
        rows.append(row)
    # Relayed, failed, handled by a key, handled by another handler only.
    OutboxEvent.objects.filter(pk__in=[rows[0].pk, rows[8].pk]).update(relayed_at=clock.now())
    OutboxEvent.objects.filter(pk__in=[rows[1].pk, rows[15].pk]).update(attempts=2, last_error="boom")
    for row in rows[2:50:6]:
        HandledEvent.objects.create(event_id=row.pk, handler="first.a", handled_at=clock.now())
    for row in rows[3:50:5]:
        HandledEvent.objects.create(event_id=row.pk, handler="other.handler", handled_at=clock.now())
    for row in rows[4:50:9]:
        HandledEvent.objects.create(event_id=row.pk, handler="first.b", handled_at=clock.now())
    return rows


@pytest.mark.parametrize(
    ("patterns", "keys"),
    [
        (("stock.*",), ("first.a",)),
        (("shelf.filled", "stock.*"), ("first.a", "first.b")),
        (("sto_k.*",), ("first.b",)),  # the underscore is a letter, not LIKE's any-character
        (("shelf.moved", "shelf.filled"), ("first.a", "first.b", "nobody")),
        (("nothing.*",), ("first.a",)),
    ],
)
def test_the_written_read_takes_the_events_the_orm_read_took(events, patterns, keys):
    first = events[0].pk
    for floor in (0, first + 10, first + 40, first + 100):
        for batch in (1, 7, 200):
            orm = _orm_rows(patterns, keys, floor, batch)
            written = _priority_rows(patterns, keys, floor, batch)
            assert [row.pk for row in written] == [row.pk for row in orm], (patterns, keys, floor, batch)
            for mine, theirs in zip(written, orm, strict=True):
                assert [getattr(mine, name) for name in _READ] == [getattr(theirs, name) for name in _READ]
                assert mine.attempts == theirs.attempts == 0
                assert mine.handled == ()
    if patterns != ("nothing.*",):
        assert _priority_rows(patterns, keys, 0, 200)  # the cases read something


def test_the_top_is_the_highest_event_id(events):
    assert _outbox_top() == OutboxEvent.objects.aggregate(top=Max("pk"))["top"]
    OutboxEvent.objects.all().delete()
    assert _outbox_top() == 0
