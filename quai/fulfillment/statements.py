"""The picking floor's hot reads written once (issue 17): each wave and each tick's paper picks ran a dozen ORM
queries whose compilation cost more CPU than the database's work (a 1,000-order SQLite day: waves 5.35 s of CPU
for 0.57 s inside SQLite, picking 4.50 s for 0.64 s). Here each is its SQL text, built once per database vendor
(and whether a merchant scope filters it), the ids one parameter (``quai.core.rows.ids_in``), so a call binds its
values and runs it. Each returns the rows its ORM form returned (``tests/test_floor_statements.py`` runs both on
the same floor); the callers in ``selectors`` and ``services`` say what they read.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.db import connection

from quai.catalog.models import Sku
from quai.core.rows import ids_in, ids_param
from quai.fulfillment.models import BatchStatus, PickBatch, PickTask, TaskStatus, Tote
from quai.orders.models import Order, OrderLine
from quai.warehouse.models import Location, Zone, ZoneKind

_TASKS = PickTask._meta.db_table
_BATCHES = PickBatch._meta.db_table


def fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return list(cursor.fetchall())


def _with(params: list[Any], merchant_id: int | None) -> list[Any]:
    return [*params, merchant_id] if merchant_id is not None else params


@functools.cache
def _task_rows_sql(vendor: str) -> str:
    return (
        "SELECT t.id, t.batch_id, t.status, t.order_id, t.merchant_id, t.quantity, t.picked_quantity, t.sku_id, "
        "t.reservation_id, t.location_id, t.lot, t.tote_id, s.code, l.code, o.code, o.location_id "
        f"FROM {_TASKS} t INNER JOIN {Sku._meta.db_table} s ON s.id = t.sku_id "
        f"INNER JOIN {Location._meta.db_table} l ON l.id = t.location_id "
        f"INNER JOIN {Tote._meta.db_table} o ON o.id = t.tote_id "
        f"WHERE t.batch_id {ids_in(vendor)} ORDER BY t.sequence, t.id"
    )


TaskRow = tuple[int, int, str, int, int, int, int, int, int, int, str, int, str, str, str, int]


def task_rows(batch_ids: Iterable[int]) -> list[TaskRow]:
    """The batches' tasks in route order (sequence, then id), each with its SKU's, place's and tote's codes and its
    tote's location (``services._task_rows``)."""
    return cast("list[TaskRow]", fetch(_task_rows_sql(connection.vendor), [ids_param(batch_ids)]))


@functools.cache
def _tasks_to_pick_sql(vendor: str, scoped: bool) -> str:
    merchant = " AND t.merchant_id = %s" if scoped else ""
    return (
        "SELECT t.batch_id, t.order_id, "
        f"EXISTS(SELECT 1 FROM {Order._meta.db_table} o WHERE o.id = t.order_id "
        f"AND o.status IN ('released', 'picking'){' AND o.merchant_id = t.merchant_id' if scoped else ''}) "
        f"FROM {_TASKS} t WHERE t.batch_id {ids_in(vendor)} AND t.status = '{TaskStatus.OPEN}'{merchant} ORDER BY t.id"
    )


def tasks_to_pick(batch_ids: Iterable[int], merchant_id: int | None) -> list[tuple[int, int, bool]]:
    """(batch, order, whether the order is released or picking) of each open task of these batches, in id order."""
    sql = _tasks_to_pick_sql(connection.vendor, merchant_id is not None)
    return [(int(b), int(o), bool(going)) for b, o, going in fetch(sql, _with([ids_param(batch_ids)], merchant_id))]


@functools.cache
def _open_pick_lines_sql(vendor: str, scoped: bool) -> str:
    return (
        f"SELECT COUNT(*) FROM {_TASKS} t INNER JOIN {_BATCHES} b ON b.id = t.batch_id "
        f"WHERE b.site_id = %s AND b.status = '{BatchStatus.OPEN}' AND t.status = '{TaskStatus.OPEN}'"
        + (" AND t.merchant_id = %s" if scoped else "")
    )


def open_pick_lines(site_id: int, merchant_id: int | None) -> int:
    [(count,)] = fetch(_open_pick_lines_sql(connection.vendor, merchant_id is not None), _with([site_id], merchant_id))
    return int(count)


@functools.cache
def _awaiting_wave_sql(vendor: str, scoped: bool) -> str:
    return (
        f"SELECT 1 FROM {Order._meta.db_table} o WHERE o.status = 'released'"
        + (" AND o.merchant_id = %s" if scoped else "")
        + f" AND NOT EXISTS(SELECT 1 FROM {_TASKS} u WHERE u.order_id = o.id AND u.status <> '{TaskStatus.CANCELLED}')"
        " LIMIT 1"
    )


def awaiting_wave_exist(merchant_id: int | None) -> bool:
    return bool(fetch(_awaiting_wave_sql(connection.vendor, merchant_id is not None), _with([], merchant_id)))


@functools.cache
def _wave_order_ids_sql(vendor: str, scoped: bool) -> str:
    return (
        f"SELECT DISTINCT t.order_id FROM {_TASKS} t INNER JOIN {_BATCHES} b ON b.id = t.batch_id WHERE b.wave_id = %s"
        + (" AND t.merchant_id = %s" if scoped else "")
        + " ORDER BY t.order_id"
    )


def wave_order_ids(wave_id: int, merchant_id: int | None) -> list[int]:
    sql = _wave_order_ids_sql(connection.vendor, merchant_id is not None)
    return [int(order_id) for (order_id,) in fetch(sql, _with([wave_id], merchant_id))]


@functools.cache
def _still_open_sql(vendor: str, scoped: bool) -> str:
    return (
        f"SELECT t.order_id, SUM(CASE WHEN t.status = '{TaskStatus.OPEN}' THEN 1 ELSE 0 END) FROM {_TASKS} t "
        f"WHERE t.order_id {ids_in(vendor)}" + (" AND t.merchant_id = %s" if scoped else "") + " GROUP BY t.order_id"
    )


def orders_still_open(order_ids: Iterable[int], merchant_id: int | None) -> list[tuple[int, int]]:
    """(order, its open tasks) of each of these orders with a task."""
    sql = _still_open_sql(connection.vendor, merchant_id is not None)
    return [(int(o), int(n)) for o, n in fetch(sql, _with([ids_param(order_ids)], merchant_id))]


@functools.cache
def _open_lines_sql(vendor: str) -> str:
    return (
        "SELECT l.id, l.order_id, l.reservation_id, l.sku_id, s.length_mm, s.width_mm, s.height_mm, s.weight_g "
        f"FROM {OrderLine._meta.db_table} l INNER JOIN {Sku._meta.db_table} s ON s.id = l.sku_id "
        f"WHERE l.order_id {ids_in(vendor)} AND l.reserved_quantity > 0 AND l.reservation_id IS NOT NULL "
        "ORDER BY l.order_id, l.position"
    )


def open_lines(order_ids: Iterable[int]) -> list[tuple[Any, ...]]:
    """The lines of these orders with units reserved, with their SKU's size and weight (``services._open_lines``)."""
    return fetch(_open_lines_sql(connection.vendor), [ids_param(order_ids)])


@functools.cache
def _aisle_spans_sql(vendor: str) -> str:
    return (
        f"SELECT zone_id, aisle, MIN(x_m), MAX(x_m), MIN(y_m), MAX(y_m) FROM {Location._meta.db_table} "
        f"WHERE zone_id {ids_in(vendor)} GROUP BY zone_id, aisle"
    )


def aisle_spans(zone_ids: Iterable[int]) -> list[tuple[Any, ...]]:
    """(zone, aisle, smallest and largest x, smallest and largest y) of the locations of these zones, per aisle."""
    return fetch(_aisle_spans_sql(connection.vendor), [ids_param(zone_ids)])


@functools.cache
def _stations_sql(vendor: str) -> str:
    return (
        f"SELECT l.x_m FROM {Location._meta.db_table} l INNER JOIN {Zone._meta.db_table} z ON z.id = l.zone_id "
        f"WHERE l.site_id = %s AND z.kind = '{ZoneKind.PACKING}'"
    )


def station_xs(site_id: int) -> list[Any]:
    """The x of each location in a packing zone of the site (its pack stations)."""
    return [x for (x,) in fetch(_stations_sql(connection.vendor), [site_id])]
