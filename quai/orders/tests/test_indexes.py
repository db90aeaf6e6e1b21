"""The indexes of the day's most written tables (docs/SIMULATION.md, "The indexes of the day's hottest tables"): each
index is one more entry at every insert and at every update PostgreSQL cannot make HOT (an order's status step, a
stock row's, an allocation's), so none may repeat another's leading column (but where SQLite needs it), and a
``CharField`` is indexed by ``Meta.indexes`` rather than ``db_index``/``unique``, whose PostgreSQL
``varchar_pattern_ops`` twin serves ``LIKE`` only (no read of these tables filters an indexed column with
``startswith``/``contains``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models.functions import Upper

from quai.orders.models import Order

pytestmark = pytest.mark.django_db

HOT_TABLES = (
    "orders_order",
    "orders_orderline",
    "inventory_reservation",
    "inventory_reservationallocation",
    "inventory_stockquantity",
    "inventory_stockmovement",
    "core_statetransition",
    "labor_productivityentry",
    "shipping_shipment",
    "packing_parcel",
    "fulfillment_picktask",
    "promise_promiserecord",
)

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's catalogue")


def _indexes(table: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def test_an_order_is_indexed_by_merchant_status_and_time_its_key_its_number_in_any_case_status_and_service():
    indexed = {tuple(spec["columns"]) for spec in _indexes("orders_order").values() if spec["index"] or spec["unique"]}
    assert {
        ("merchant_id",),
        ("merchant_id", "status", "created_at"),
        ("merchant_id", "external_id", "channel"),
        ("status",),
        ("carrier_service",),
        ("created_at",),
        ("promised_to",),
    } <= indexed
    assert "order_external_id_upper_idx" in _indexes("orders_order")


@postgresql_only
def test_no_hot_table_has_a_like_twin_nor_a_single_column_index_another_index_starts_with():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.relname, pg_get_indexdef(i.oid), x.indnatts, x.indisunique, x.indpred IS NOT NULL,
                   x.indkey[0], x.indexprs IS NOT NULL
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relname = ANY(%s)
            """,
            [list(HOT_TABLES)],
        )
        rows = cursor.fetchall()
    twins = [name for _table, name, definition, *_ in rows if "pattern_ops" in definition]
    assert twins == []
    # A plain one-column index is redundant when a full (not partial) index of more columns starts with its column;
    # but these are kept for SQLite, where a one-column index is (column, rowid): it reads the rows of one merchant
    # (of one status) newest first, the lists' and the admin's order, which the composite would sort.
    leading = {
        (table, first)
        for table, _name, _def, columns, _unique, partial, first, _expr in rows
        if columns > 1 and not partial
    }
    redundant = [
        name
        for table, name, _def, columns, unique, partial, first, expr in rows
        if columns == 1 and not unique and not partial and not expr and (table, first) in leading
    ]
    assert sorted(redundant) == [
        "inventory_reservation_merchant_id_7da668a0",
        "inventory_stockmovement_merchant_id_90ceaceb",
        "orders_order_merchant_id_ab634f2d",
        "promise_record_status_idx",
    ]


@postgresql_only
def test_the_pack_rounds_lookup_by_order_number_in_any_case_reads_the_upper_index():
    # ``_orders_for_codes``' locking read (``UPPER(external_id) IN``) and ``_order_for_code``'s ``iexact``
    # (``UPPER(external_id::text) = UPPER(...)``): one expression, one index. Sequential scans off: the test's table
    # is a few rows, which a scan reads as cheaply; the question is whether an index can serve the read at all.
    reads = [
        Order.objects.annotate(reference=Upper("external_id")).filter(reference__in=["A-1", "B-2"]),
        Order.objects.filter(external_id__iexact="a-1").order_by("-id")[:2],
    ]
    for read in reads:
        sql, params = read.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            plan = " ".join(row[0] for row in cursor.fetchall())
        assert "order_external_id_upper_idx" in plan, plan
