"""Helpers shared by the stock services: input checks, the row lock order, the SKU counter and the stock event.

Private to ``quai.inventory.services``: every writer of quantities goes through these, so the lock order and the
guards stated in the package docstring hold whichever sub-module writes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from django.db import connection
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core.errors import InsufficientStock, ValidationFailed
from quai.core.outbox import event_record
from quai.inventory import domain
from quai.inventory.events import StockChanged
from quai.inventory.models import MovementKind, StockLevel, StockMovement, StockQuantity, StockStatus

T = TypeVar("T")

#: What a move of reserved units changes on a quantity row or a SKU's counter: on hand and reserved together.
QUANTITY_COLUMNS = ("on_hand", "reserved")


def _tracking(sku: Any) -> domain.Tracking:
    return domain.Tracking(lot=sku.lot_tracked, expiry=sku.expiry_tracked, serial=sku.serial_tracked)


def _status_check(status: str, field_name: str = "status") -> str:
    if status not in StockStatus.values:
        raise ValidationFailed(
            _("Unknown stock status '%(status)s'.") % {"status": status},
            code="invalid_status",
            details={"field": field_name, "value": status, "allowed": list(StockStatus.values)},
        )
    return status


def _kind_check(kind: str) -> str:
    if kind not in MovementKind.values:
        raise ValidationFailed(
            _("Unknown movement kind '%(kind)s'.") % {"kind": kind},
            code="invalid_kind",
            details={"value": kind, "allowed": list(MovementKind.values)},
        )
    return kind


def _actor(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None else None


def _lock_rows(ids: Iterable[int]) -> dict[int, StockQuantity]:
    """Lock quantity rows in primary-key order (the deterministic order every multi-row write uses)."""
    wanted = sorted(set(ids))
    rows = StockQuantity.objects.select_for_update().filter(pk__in=wanted).order_by("pk")
    return {row.pk: row for row in rows}


def _level_add(*, sku: Any, on_hand: int = 0, reserved: int = 0) -> None:
    """Change the SKU's counter; decreases of free stock are guarded (never below what is reserved)."""
    if on_hand == 0 and reserved == 0:
        return
    rows = StockLevel.objects.filter(sku_id=sku.pk)
    free_delta = on_hand - reserved
    if free_delta < 0:
        rows = rows.filter(on_hand__gte=F("reserved") - free_delta)
    updated = rows.update(on_hand=F("on_hand") + on_hand, reserved=F("reserved") + reserved)
    if updated:
        return
    if free_delta < 0 or on_hand < 0 or reserved < 0:
        level: Any = StockLevel.objects.filter(sku_id=sku.pk).values("on_hand", "reserved").first() or {}
        raise InsufficientStock(
            _("Insufficient stock: that stock is promised to reservations (available %(available)d).")
            % {"available": level.get("on_hand", 0) - level.get("reserved", 0)},
            details={"sku_id": sku.pk, "requested": -free_delta, **level},
        )
    StockLevel.objects.bulk_create([StockLevel(merchant_id=sku.merchant_id, sku_id=sku.pk)], ignore_conflicts=True)
    StockLevel.objects.filter(sku_id=sku.pk).update(on_hand=F("on_hand") + on_hand, reserved=F("reserved") + reserved)


def _per_index(items: Iterable[tuple[int, T]], count: int) -> list[list[T]]:
    """A many-form's answer: what each of its ``count`` inputs got (``items``: input index, thing), in order."""
    grouped: list[list[T]] = [[] for _n in range(count)]
    for index, item in items:
        grouped[index].append(item)
    return grouped


def _counts(row: StockQuantity) -> bool:
    return row.status == StockStatus.SELLABLE and row.counted


def _stock_changed(
    movement: StockMovement, *, sku_code: str, from_location_code: str = "", to_location_code: str = ""
) -> None:
    """Record the movement's ``StockChanged``. The codes come from the caller, which already read them with the
    rows it wrote (the SKU it was given, the locations it checked): the event costs no query to find them."""
    level: Any = StockLevel.objects.filter(sku_id=movement.sku_id).values("on_hand", "reserved").first() or {}
    event_record(
        _stock_changed_event(
            movement, level, sku_code=sku_code, from_location_code=from_location_code, to_location_code=to_location_code
        ),
        merchant_id=movement.merchant_id,
    )


class _MovementFacts(Protocol):
    """What a ``StockChanged`` reads of a movement: a ``StockMovement``, or a many-form's row of one."""

    @property
    def pk(self) -> Any: ...
    @property
    def kind(self) -> str: ...
    @property
    def sku_id(self) -> int: ...
    @property
    def quantity(self) -> int: ...
    @property
    def lot(self) -> str: ...
    @property
    def from_location_id(self) -> int | None: ...
    @property
    def to_location_id(self) -> int | None: ...
    @property
    def from_status(self) -> str: ...
    @property
    def to_status(self) -> str: ...


def _stock_changed_event(
    movement: _MovementFacts, level: dict[str, int], *, sku_code: str, from_location_code: str, to_location_code: str
) -> StockChanged:
    """``_stock_changed``'s event with the SKU's counter given (a many-form computes it once for the batch)."""
    return StockChanged(
        movement_id=movement.pk,
        kind=movement.kind,
        sku_id=movement.sku_id,
        quantity=movement.quantity,
        lot=movement.lot,
        from_location_id=movement.from_location_id,
        to_location_id=movement.to_location_id,
        from_status=movement.from_status,
        to_status=movement.to_status,
        sellable_on_hand=level.get("on_hand", 0),
        reserved=level.get("reserved", 0),
        sku_code=sku_code,
        from_location_code=from_location_code,
        to_location_code=to_location_code,
    )


def _reserved_add_guarded(table: str, key: str, totals: Mapping[int, int]) -> int:
    """Add ``totals`` (units by ``key`` value) to ``table``'s ``reserved`` in one statement, each row only where
    ``on_hand - reserved`` still covers its units (the reservation guard); returns the rows updated, so the caller
    knows whether every one passed (all or nothing is the caller's transaction). The units are parameters whose
    number does not depend on the rows' (``_guarded_sql``, as ``_columns_add``'s): one statement text for any
    number of rows, prepared once per connection on PostgreSQL."""
    if not totals:
        return 0
    rows = sorted(totals.items())
    if connection.vendor == "postgresql":  # two arrays: the keys, then each key's units
        params: list[Any] = [[row_key for row_key, _n in rows], [units for _k, units in rows]]
    else:
        params = [json.dumps(rows)]
    with connection.cursor() as cursor:
        cursor.execute(_guarded_sql(table, key, connection.vendor), params)
        return int(cursor.rowcount)


@functools.cache
def _guarded_sql(table: str, key: str, vendor: str) -> str:
    """``_reserved_add_guarded``'s statement, its text the same for any number of rows: on PostgreSQL ``unnest`` of
    an array of keys and one of units (planned as a few rows: each row looked up by its index), on SQLite one JSON
    parameter, each row an array ``[key, units]``. Until 5 December 2026 it was a ``UNION ALL`` of one ``SELECT``
    per row, a text per number of rows, parsed and planned on every call (docs/SIMULATION.md, 2026-12-05, H6)."""
    quote = connection.ops.quote_name
    quoted, column = quote(table), quote(key)
    if vendor == "postgresql":
        target, head = "target", f"UPDATE {quoted} AS target SET "
        source = f"unnest(CAST(%s AS BIGINT[]), CAST(%s AS INTEGER[])) AS wanted({column}, n)"
    else:  # SQLite: the updated table is not aliased
        target, head = quoted, f"UPDATE {quoted} SET "
        source = (
            f"(SELECT json_extract(value, '$[0]') AS {column}, json_extract(value, '$[1]') AS n "
            "FROM json_each(%s)) AS wanted"
        )
    return (
        f"{head}reserved = {target}.reserved + wanted.n FROM {source} "
        f"WHERE {target}.{column} = wanted.{column} AND {target}.on_hand - {target}.reserved >= wanted.n"
    )


def _columns_add(model: Any, deltas: Mapping[int, Sequence[int]], columns: Sequence[str], *, key: str = "id") -> int:
    """Add to each row (found by ``key``) its own amounts, one per column of ``columns``, in ONE statement:
    ``UPDATE … SET c = c + amounts.c FROM (the amounts) AS amounts``, without the ORM's ``CASE WHEN`` per row
    (milliseconds of Python to compile for a batch). The amounts are parameters whose number does not depend on
    the rows' (``_amounts_sql``), so the statement's text is always the same: PostgreSQL prepares it once per
    connection (psycopg's ``prepare_threshold``) instead of parsing and planning it on every call. Unguarded:
    the caller decided the amounts under its locks. Returns the rows updated."""
    if not deltas:
        return 0
    rows = sorted(deltas.items())
    for _row_key, values in rows:
        if len(values) != len(columns):
            raise ValueError(f"{len(values)} amounts given for {len(columns)} columns")
    sql = _amounts_sql(model._meta.db_table, key, tuple(columns), connection.vendor)
    if connection.vendor == "postgresql":  # an array per column: the keys, then each column's amounts
        params: list[Any] = [[row_key for row_key, _v in rows]]
        params.extend([values[n] for _k, values in rows] for n in range(len(columns)))
    else:
        params = [json.dumps([[row_key, *values] for row_key, values in rows])]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


@functools.cache
def _amounts_sql(table: str, key: str, columns: tuple[str, ...], vendor: str) -> str:
    """``_columns_add``'s statement, its text the same for any number of rows. PostgreSQL: the amounts as one array
    per column (``unnest``), which the planner takes for a few rows, so it looks each row up by its index; the
    JSON form ``values_update`` reads (a function of unknown size) was taken for a hundred rows and joined to a
    scan of the whole table. SQLite: one JSON parameter, each row an array (the key, then an amount per column).

    Why not a ``UNION ALL`` of one ``SELECT`` per row (its form until 5 December 2026): that text changed with the
    number of rows, so PostgreSQL parsed and planned it on every call, and planning a few hundred branches cost
    far more than running them (see docs/SIMULATION.md, 2026-12-05, H8)."""
    quote = connection.ops.quote_name
    quoted, names = quote(table), [quote(f"d{n}") for n in range(len(columns))]
    if vendor == "postgresql":
        target, head = "target", f"UPDATE {quoted} AS target SET "
        arrays = ", ".join(["CAST(%s AS BIGINT[])"] + ["CAST(%s AS INTEGER[])"] * len(columns))
        source = f"unnest({arrays}) AS amounts({', '.join([quote(key), *names])})"
    else:  # SQLite: the updated table is not aliased
        target, head = quoted, f"UPDATE {quoted} SET "
        picked = ", ".join(
            [f"json_extract(value, '$[0]') AS {quote(key)}"]
            + [f"json_extract(value, '$[{n}]') AS {name}" for n, name in enumerate(names, start=1)]
        )
        source = f"(SELECT {picked} FROM json_each(%s)) AS amounts"
    sets = ", ".join(f"{quote(c)} = {target}.{quote(c)} + amounts.{n}" for c, n in zip(columns, names, strict=True))
    return f"{head}{sets} FROM {source} WHERE {target}.{quote(key)} = amounts.{quote(key)}"
