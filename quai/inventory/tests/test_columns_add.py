"""``_columns_add`` adds each row's own amounts in a few statements, whatever the number of rows (more than SQLite
takes in one compound SELECT: 500), and leaves the rows it is not given as they were."""

from __future__ import annotations

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.inventory.models import StockLevel, StockQuantity
from quai.inventory.services import stock_receive
from quai.inventory.services._common import QUANTITY_COLUMNS, _columns_add
from quai.tenants.tests.factories import MerchantFactory
from quai.warehouse.tests.factories import LocationFactory


@pytest.mark.django_db
def test_columns_add_adds_each_rows_amounts_across_many_statements() -> None:
    merchant = MerchantFactory(code="acme")
    shelf = LocationFactory()
    skus = [SkuFactory(merchant=merchant, code=f"SKU-{n}") for n in range(3)]
    for n, sku in enumerate(skus):
        stock_receive(sku=sku, location=shelf, quantity=10 + n)
    rows = list(StockQuantity.objects.filter(sku__in=skus).order_by("pk"))
    missing = max(row.pk for row in rows) + 1
    # Far more keys than one statement takes: the rows not in the table match nothing.
    deltas: dict[int, tuple[int, int]] = {missing + n: (1, 1) for n in range(1200)}
    deltas[rows[0].pk] = (-3, 0)
    deltas[rows[2].pk] = (5, 2)
    assert _columns_add(StockQuantity, deltas, QUANTITY_COLUMNS) == 2
    assert sorted(StockQuantity.objects.filter(sku__in=skus).values_list("pk", "on_hand", "reserved")) == [
        (rows[0].pk, 7, 0),
        (rows[1].pk, 11, 0),
        (rows[2].pk, 17, 2),
    ]
    assert _columns_add(StockLevel, {skus[1].pk: (-1, 1)}, QUANTITY_COLUMNS, key="sku_id") == 1
    assert StockLevel.objects.get(sku=skus[1]).on_hand == 10 and StockLevel.objects.get(sku=skus[1]).reserved == 1
    with pytest.raises(ValueError):
        _columns_add(StockQuantity, {rows[0].pk: (1,)}, QUANTITY_COLUMNS)
