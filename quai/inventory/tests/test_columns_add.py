"""``_columns_add`` adds each row's own amounts in one statement whose text does not depend on the number of rows
(more than SQLite takes in one compound SELECT: 500), and leaves the rows it is not given as they were: the same
rows, every column, as its former form (a ``UNION ALL`` of one ``SELECT`` per row, in chunks of 400, kept here as
the reference)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.forms.models import model_to_dict

from quai.catalog.tests.factories import SkuFactory
from quai.inventory.models import StockLevel, StockQuantity
from quai.inventory.services import stock_receive
from quai.inventory.services._common import QUANTITY_COLUMNS, _columns_add
from quai.tenants.tests.factories import MerchantFactory
from quai.warehouse.tests.factories import LocationFactory


def _union_all_add(model: Any, deltas: Mapping[int, Sequence[int]], columns: Sequence[str], key: str = "id") -> int:
    """``_columns_add`` as written until 5 December 2026 (one statement per 400 rows, a SELECT per row)."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = [quote(f"d{n}") for n in range(len(columns))]
    casts = ", ".join([f"CAST(%s AS BIGINT) AS {quote(key)}"] + [f"CAST(%s AS INTEGER) AS {n}" for n in names])
    target, head = (
        ("target", f"UPDATE {table} AS target SET ")
        if connection.vendor == "postgresql"
        else (
            table,
            f"UPDATE {table} SET ",
        )
    )
    sets = ", ".join(f"{quote(c)} = {target}.{quote(c)} + amounts.{n}" for c, n in zip(columns, names, strict=True))
    rows, updated = sorted(deltas.items()), 0
    for start in range(0, len(rows), 400):
        chunk = rows[start : start + 400]
        params = [value for row_key, values in chunk for value in (row_key, *values)]
        amounts = " UNION ALL ".join([f"SELECT {casts}"] * len(chunk))
        with connection.cursor() as cursor:
            cursor.execute(
                f"{head}{sets} FROM ({amounts}) AS amounts WHERE {target}.{quote(key)} = amounts.{quote(key)}", params
            )
            updated += int(cursor.rowcount)
    return updated


@contextmanager
def _texts() -> Iterator[list[str]]:
    """The statements' texts as given to the driver (placeholders, not values)."""
    texts: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        texts.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield texts


def _table(model: type[Model]) -> list[dict[str, Any]]:
    return [model_to_dict(row) | {"pk": row.pk} for row in model._default_manager.order_by("pk")]


def _world() -> tuple[list[Any], list[StockQuantity]]:
    merchant = MerchantFactory(code="acme")
    shelves = [LocationFactory() for _ in range(3)]
    skus: list[Any] = [SkuFactory(merchant=merchant, code=f"SKU-{n}") for n in range(4)]
    for n, sku in enumerate(skus):
        for m, shelf in enumerate(shelves):
            stock_receive(sku=sku, location=shelf, quantity=10 + n + m)
    return skus, list(StockQuantity.objects.filter(sku__in=skus).order_by("pk"))


@pytest.mark.django_db
def test_columns_add_adds_each_rows_amounts_in_one_statement() -> None:
    skus, rows = _world()
    missing = max(row.pk for row in rows) + 1
    # Far more keys than one compound SELECT takes: the rows not in the table match nothing.
    deltas: dict[int, tuple[int, int]] = {missing + n: (1, 1) for n in range(1200)}
    deltas[rows[0].pk] = (-3, 0)
    deltas[rows[2].pk] = (5, 2)
    with _texts() as big:
        assert _columns_add(StockQuantity, deltas, QUANTITY_COLUMNS) == 2
    assert sorted(
        StockQuantity.objects.filter(pk__in=[r.pk for r in rows[:3]]).values_list("pk", "on_hand", "reserved")
    ) == [
        (rows[0].pk, rows[0].on_hand - 3, 0),
        (rows[1].pk, rows[1].on_hand, 0),
        (rows[2].pk, rows[2].on_hand + 5, 2),
    ]
    with _texts() as small:
        assert _columns_add(StockLevel, {skus[1].pk: (-1, 1)}, QUANTITY_COLUMNS, key="sku_id") == 1
    level = StockLevel.objects.get(sku=skus[1])
    assert (level.on_hand, level.reserved) == (sum(10 + 1 + m for m in range(3)) - 1, 1)
    # One statement whatever the number of rows, and the same text for 1,202 rows as for 1 (prepared once).
    assert len(big) == 1 and len(small) == 1
    with _texts() as one:
        _columns_add(StockQuantity, {rows[1].pk: (0, 0)}, QUANTITY_COLUMNS)
    assert one == big
    assert _columns_add(StockQuantity, {}, QUANTITY_COLUMNS) == 0
    with pytest.raises(ValueError):
        _columns_add(StockQuantity, {rows[0].pk: (1,)}, QUANTITY_COLUMNS)


@pytest.mark.django_db
@pytest.mark.parametrize("size", [1, 5, 401, 900])
def test_columns_add_same_rows_as_the_union_all_form(size: int) -> None:
    """Every column of every row of the tables it writes, against the former form on the same data: negative, zero
    and positive amounts, keys given that match no row (``size`` of them), one column and two, ``key``."""
    skus, rows = _world()
    missing = max(row.pk for row in rows) + 1
    quantities = {row.pk: ((n % 5) - 2, (n % 3)) for n, row in enumerate(rows)}
    quantities.update({missing + n: (1, 1) for n in range(size)})
    levels = {sku.pk: (-(n % 2), n) for n, sku in enumerate(skus)}
    results = []
    for add in (_union_all_add, _columns_add):
        sid = connection.savepoint()
        assert sid is not None  # inside the test's transaction
        counts = (
            add(StockQuantity, quantities, QUANTITY_COLUMNS),
            add(StockLevel, levels, QUANTITY_COLUMNS, key="sku_id"),
            add(StockQuantity, {rows[0].pk: (7,), rows[-1].pk: (-1,)}, ("on_hand",)),
        )
        results.append((counts, _table(StockQuantity), _table(StockLevel)))
        connection.savepoint_rollback(sid)
    assert results[0] == results[1]
    assert results[1][0] == (len(rows), len(skus), 2)
