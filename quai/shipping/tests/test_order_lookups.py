"""An order's shipments and a shop's order number are found by their own index, not by reading every row of the
merchant (issue 17: a ticket's reads grew with the day's orders, SQLite choosing the merchant's index).

The reads are unchanged: the same rows as before, the merchant's only. On SQLite (no statistics: its planner picks
among the indexes by their shape) the plan is checked; on PostgreSQL (statistics decide) the indexes' columns."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from quai.orders import selectors as orders_selectors
from quai.orders.models import Order
from quai.shipping import selectors
from quai.shipping.models import Shipment
from quai.shipping.tests.factories import shipment_for
from quai.tenants.scope import Scope


def _plan(queryset: Any) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return " / ".join(str(row[-1]) for row in cursor.fetchall())


def _index_columns(table: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return [list(info["columns"]) for info in found.values() if info["index"] or info["unique"]]


def test_an_orders_shipments_are_its_own_in_id_order_within_the_merchant_only(merchant, other_merchant):
    first = shipment_for(merchant)
    second = shipment_for(merchant)
    Shipment.objects.filter(pk=second.pk).update(order_id=first.order_id)  # two parcels of one order
    shipment_for(merchant)  # another order's
    shipment_for(other_merchant)

    mine = list(selectors.shipments_of_order(scope=Scope.merchant(merchant), order_id=first.order_id))
    elsewhere = list(selectors.shipments_of_order(scope=Scope.merchant(other_merchant), order_id=first.order_id))

    assert [s.pk for s in mine] == sorted([first.pk, second.pk])
    assert elsewhere == []


def test_a_shop_order_number_without_its_channel_finds_the_merchants_order_only(merchant, other_merchant):
    mine = shipment_for(merchant, external_id="FS-1001")
    shipment_for(other_merchant, external_id="FS-1001")
    shipment_for(merchant, external_id="FS-1002")

    found = list(orders_selectors.order_list(scope=Scope.merchant(merchant)).filter(external_id__in=["FS-1001"]))

    assert [o.pk for o in found] == [mine.order_id]


@pytest.mark.django_db
def test_the_order_lookups_have_an_index_that_starts_with_their_columns():
    assert ["order_id", "merchant_id"] in _index_columns(Shipment._meta.db_table)
    assert ["merchant_id", "external_id", "channel"] in _index_columns(Order._meta.db_table)
    # The order's own index is the composite one now (one index written per shipment, as before).
    assert ["order_id"] not in _index_columns(Shipment._meta.db_table)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's plan: PostgreSQL's follows its statistics")
def test_sqlite_reads_an_orders_shipments_and_a_shop_order_number_by_their_index(merchant):
    shipment = shipment_for(merchant, external_id="FS-2001")
    scope = Scope.merchant(merchant)

    shipments = _plan(selectors.shipments_of_order(scope=scope, order_id=shipment.order_id))
    orders = _plan(orders_selectors.order_list(scope=scope).filter(external_id__in=["FS-2001", "FS-2002"])[:10])

    assert "shipment_order_idx (order_id=? AND merchant_id=?)" in shipments, shipments
    assert "merchant_id=? AND external_id=?" in orders, orders
