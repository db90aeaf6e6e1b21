"""``quai.core.rows.Among``: a queryset's ``IN`` with its values as ONE parameter selects the rows ``__in`` selects
(ids and texts, an expression, negated, inside an OR, repeated and None values, no value at all), and its
statement's text is the same for any number of values (the ORM's ``IN (%s, …)`` has one text per length, which
PostgreSQL parses and plans at every call: psycopg prepares a text only after its 5th run)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Lower
from django.test.utils import CaptureQueriesContext

from quai.core.models import OutboxEvent
from quai.core.rows import Among
from quai.core.tests.sql_texts import statement_texts

pytestmark = pytest.mark.django_db


@pytest.fixture
def events() -> list[OutboxEvent]:
    return [
        OutboxEvent.objects.create(name=name, merchant_id=merchant, aggregate="order", aggregate_id=str(n))
        for n, (name, merchant) in enumerate(
            [("order.Received", 1), ("order.shipped", 2), ("stock.changed", None), ("Order.received", 3), ("x", 1)]
        )
    ]


def _rows(queryset: QuerySet[OutboxEvent]) -> list[tuple[Any, ...]]:
    return list(queryset.values_list("id", "name", "merchant_id"))


def test_among_selects_the_rows_of_in(events: list[OutboxEvent]) -> None:
    ids = [e.pk for e in events]
    base = OutboxEvent.objects.all()
    cases: list[tuple[Any, Any]] = [
        (Among(F("pk"), [ids[3], ids[0], ids[3], 999_999]), Q(pk__in=[ids[3], ids[0], ids[3], 999_999])),
        (Among(F("aggregate_id"), ["1", "3", "9"], texts=True), Q(aggregate_id__in=["1", "3", "9"])),
        (Among(F("name"), ["x", "order.shipped"], texts=True), Q(name__in=["x", "order.shipped"])),
        (Among(Lower("name"), ["order.received"], texts=True), Q(name_lower__in=["order.received"])),
        (Q(Among(F("pk"), [ids[1]])) | Q(Among(F("name"), ["x"], texts=True)), Q(pk__in=[ids[1]]) | Q(name__in=["x"])),
        (Q(Among(F("pk"), [])) | Q(Among(F("name"), ["x"], texts=True)), Q(pk__in=[]) | Q(name__in=["x"])),
    ]
    for among, lookup in cases:
        annotated = base.annotate(name_lower=Lower("name"))
        assert _rows(annotated.filter(among)) == _rows(annotated.filter(lookup))
        assert _rows(annotated.exclude(among)) == _rows(annotated.exclude(lookup))
    assert OutboxEvent.objects.filter(Among(F("pk"), ids[:2])).update(attempts=7) == 2
    assert sorted(OutboxEvent.objects.filter(attempts=7).values_list("pk", flat=True)) == ids[:2]


def test_among_of_no_value_selects_nothing_without_a_statement(events: list[OutboxEvent]) -> None:
    with CaptureQueriesContext(connection) as captured:
        assert _rows(OutboxEvent.objects.filter(Among(F("pk"), [None]))) == []
        assert OutboxEvent.objects.filter(Among(F("name"), [], texts=True)).update(attempts=1) == 0
    assert captured.captured_queries == []
    assert len(_rows(OutboxEvent.objects.exclude(Among(F("pk"), [])))) == len(events)
    # A nullable column: filtered, NULL rows are out as with ``__in`` (negated they are out too, SQL's NOT IN,
    # where ``exclude(__in)`` keeps them: the callers negate non-null columns only).
    assert _rows(OutboxEvent.objects.filter(Among(F("merchant_id"), {1, 3, None}))) == _rows(
        OutboxEvent.objects.filter(merchant_id__in={1, 3, None})
    )


def test_among_has_one_text_for_any_number_of_values(events: list[OutboxEvent]) -> None:
    ids = [e.pk for e in events]

    def texts(wanted: list[int], form: str) -> list[str]:
        lookup = Among(F("pk"), wanted) if form == "among" else Q(pk__in=wanted)
        return statement_texts(lambda: _rows(OutboxEvent.objects.filter(lookup, name__startswith="o")))

    assert len(texts(ids[:1], "among")) == 1
    assert texts(ids[:1], "among") == texts(ids, "among")
    assert texts(ids[:1], "in") != texts(ids, "in")  # the ORM's form, for the record
