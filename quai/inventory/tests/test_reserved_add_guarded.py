"""``_reserved_add_guarded`` adds units to ``reserved`` only where ``on_hand - reserved`` covers them (never
oversold), in one statement whose text does not depend on the number of rows, and tells how many rows it updated:
the same rows, every column, and the same count as its former form (a ``UNION ALL`` of one ``SELECT`` per row,
kept here as the reference)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from django.db import connection

from quai.inventory.models import StockLevel, StockQuantity
from quai.inventory.services._common import _reserved_add_guarded
from quai.inventory.tests.test_columns_add import _table, _texts, _world


def _union_all_guarded(table: str, key: str, totals: Mapping[int, int]) -> int:
    """``_reserved_add_guarded`` as written until 5 December 2026 (a SELECT per row), in chunks of 200 rows as
    ``allocations._reserved_add`` called it (SQLite takes 500 terms in one compound SELECT)."""
    quoted = connection.ops.quote_name(table)
    items, updated = sorted(totals.items()), 0
    for start in range(0, len(items), 200):
        chunk = items[start : start + 200]
        wanted = " UNION ALL ".join([f"SELECT CAST(%s AS BIGINT) AS {key}, CAST(%s AS INTEGER) AS n"] * len(chunk))
        params: list[int] = [value for pair in chunk for value in pair]
        if connection.vendor == "postgresql":
            sql = (
                f"UPDATE {quoted} AS target SET reserved = target.reserved + wanted.n FROM ({wanted}) AS wanted "
                f"WHERE target.{key} = wanted.{key} AND target.on_hand - target.reserved >= wanted.n"
            )
        else:
            sql = (
                f"UPDATE {quoted} SET reserved = reserved + wanted.n FROM ({wanted}) AS wanted "
                f"WHERE {quoted}.{key} = wanted.{key} AND {quoted}.on_hand - {quoted}.reserved >= wanted.n"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            updated += int(cursor.rowcount)
    return updated


def _units(rows: list[StockQuantity], extra: int) -> dict[int, int]:
    """Units per row on the guard's edge: all that is free (passes), one more than that (refused), none, a few,
    a release of what it holds (negative where it holds some); then ``extra`` keys that match no row."""
    totals: dict[int, int] = {}
    for n, row in enumerate(rows):
        free = row.on_hand - row.reserved
        totals[row.pk] = [free, free + 1, 0, 1, -row.reserved][n % 5]
    missing = max(row.pk for row in rows) + 1
    totals.update({missing + n: 1 for n in range(extra)})
    return totals


@pytest.mark.django_db
@pytest.mark.parametrize("extra", [0, 1, 5, 401, 900])
def test_the_guarded_add_updates_the_rows_the_union_all_form_updated(extra: int) -> None:
    skus, rows = _world()
    StockQuantity.objects.filter(pk=rows[1].pk).update(reserved=3)  # a row already partly reserved
    rows = list(StockQuantity.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk"))
    quantities = _units(rows, extra)
    levels = {sku.pk: [1_000, 5, 0][n % 3] for n, sku in enumerate(skus)}  # 1,000 more than any SKU holds
    results = []
    for add in (_union_all_guarded, _reserved_add_guarded):
        sid = connection.savepoint()
        assert sid is not None  # inside the test's transaction
        counts = (
            add(StockQuantity._meta.db_table, "id", quantities),
            add(StockLevel._meta.db_table, "sku_id", levels),
            add(StockQuantity._meta.db_table, "id", {rows[0].pk: 1}),  # nothing left free there: refused
        )
        results.append((counts, _table(StockQuantity), _table(StockLevel)))
        connection.savepoint_rollback(sid)
    assert results[0] == results[1]
    # Refused: every "free + 1" row, the SKU asked 1,000, the last call; nothing went above on hand.
    refused = sum(1 for n in range(len(rows)) if n % 5 == 1)
    assert results[1][0] == (len(rows) - refused, len(skus) - len(range(0, len(skus), 3)), 0)
    assert all(row["reserved"] <= row["on_hand"] for row in results[1][1])


@pytest.mark.django_db
def test_the_guarded_add_is_one_statement_of_one_text_for_any_number_of_rows() -> None:
    _skus, rows = _world()
    with _texts() as one:
        assert _reserved_add_guarded(StockQuantity._meta.db_table, "id", {rows[0].pk: 1}) == 1
    with _texts() as many:
        assert _reserved_add_guarded(StockQuantity._meta.db_table, "id", _units(rows, 1200)) > 1
    assert len(one) == 1 and one == many
    with _texts() as none:
        assert _reserved_add_guarded(StockQuantity._meta.db_table, "id", {}) == 0
    assert none == []
