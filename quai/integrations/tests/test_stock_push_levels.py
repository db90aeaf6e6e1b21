"""The stock push's read of what each dirty SKU may sell (``_levels_by_sku_id``, on inventory's
``available_to_sell_many``): the very levels the availability list gives the shops (on hand − reserved − the SKU's
or else the merchant's safety buffer − the shop's, never below zero), in one query whatever the number of SKUs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.integrations.services.stock_out import _levels_by_sku_id, connection_stock_levels
from quai.integrations.tests.factories import ConnectionFactory
from quai.inventory import services as inventory
from quai.warehouse.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


def test_the_push_reads_each_skus_level_as_the_availability_list_gives_it_in_one_query(merchant, other_merchant):
    location = LocationFactory()
    shop = ConnectionFactory(merchant=merchant, push_stock=True, safety_buffer=1)
    skus = [SkuFactory(merchant=merchant, code=f"S{n}", name=f"S{n}") for n in range(5)]
    for sku, quantity in zip(skus[:4], (10, 6, 3, 20), strict=True):  # the last SKU has no stock at all
        inventory.stock_receive(sku=sku, location=location, quantity=quantity, reason="test stock")
    inventory.reservation_create(merchant=merchant, sku=skus[1], quantity=4)
    inventory.reservation_create(merchant=merchant, sku=skus[2], quantity=3)  # none left: zero, not below
    inventory.stock_policy_set(merchant=merchant, safety_buffer=2)  # every SKU's default ...
    inventory.stock_policy_set(merchant=merchant, sku=skus[3], safety_buffer=5)  # ... but this one's
    theirs = SkuFactory(merchant=other_merchant, code="THEIRS", name="Theirs")
    inventory.stock_receive(sku=theirs, location=location, quantity=9, reason="test stock")

    expected = {level.sku: level.available for level in connection_stock_levels(connection=shop)}
    with CaptureQueriesContext(connection) as context:
        levels = _levels_by_sku_id(shop, [sku.pk for sku in skus] + [theirs.pk])

    assert {level.sku: level.available for level in levels.values()} == expected
    assert expected == {"S0": 7, "S1": 0, "S2": 0, "S3": 14, "S4": 0}
    assert set(levels) == {sku.pk for sku in skus}  # another merchant's SKU is not this shop's
    assert all(levels[sku.pk].sku == sku.code for sku in skus)
    assert len(context.captured_queries) == 1
