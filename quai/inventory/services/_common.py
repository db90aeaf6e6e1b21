"""Helpers shared by the stock services: input checks, the row lock order, the SKU counter and the stock event.

Private to ``quai.inventory.services``: every writer of quantities goes through these, so the lock order and the
guards stated in the package docstring hold whichever sub-module writes.
"""

from __future__ import annotations

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
#: Rows per statement of ``_columns_add``: below SQLite's 500 terms of a compound SELECT.
ADD_CHUNK = 400

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
    knows whether every one passed (all or nothing is the caller's transaction)."""
    if not totals:
        return 0
    quoted = connection.ops.quote_name(table)
    wanted = " UNION ALL ".join([f"SELECT CAST(%s AS BIGINT) AS {key}, CAST(%s AS INTEGER) AS n"] * len(totals))
    params: list[int] = [value for pair in sorted(totals.items()) for value in pair]
    if connection.vendor == "postgresql":
        sql = (
            f"UPDATE {quoted} AS target SET reserved = target.reserved + wanted.n FROM ({wanted}) AS wanted "
            f"WHERE target.{key} = wanted.{key} AND target.on_hand - target.reserved >= wanted.n"
        )
    else:  # SQLite: the updated table is not aliased
        sql = (
            f"UPDATE {quoted} SET reserved = reserved + wanted.n FROM ({wanted}) AS wanted "
            f"WHERE {quoted}.{key} = wanted.{key} AND {quoted}.on_hand - {quoted}.reserved >= wanted.n"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def _columns_add(model: Any, deltas: Mapping[int, Sequence[int]], columns: Sequence[str], *, key: str = "id") -> int:
    """Add to each row (found by ``key``) its own amounts, one per column of ``columns``, in one statement per
    ``ADD_CHUNK`` rows: ``UPDATE … SET c = c + v.c FROM (the amounts) AS v``, the form ``_reserved_add_guarded``
    takes, without the ORM's ``CASE WHEN`` per row (milliseconds of Python to compile for a batch). Unguarded: the
    caller decided the amounts under its locks. Returns the rows updated."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = [quote(f"d{n}") for n in range(len(columns))]
    casts = ", ".join([f"CAST(%s AS BIGINT) AS {quote(key)}"] + [f"CAST(%s AS INTEGER) AS {n}" for n in names])
    if connection.vendor == "postgresql":
        target, head = "target", f"UPDATE {table} AS target SET "
    else:  # SQLite: the updated table is not aliased
        target, head = table, f"UPDATE {table} SET "
    sets = ", ".join(f"{quote(c)} = {target}.{quote(c)} + amounts.{n}" for c, n in zip(columns, names, strict=True))
    rows = sorted(deltas.items())
    updated = 0
    for start in range(0, len(rows), ADD_CHUNK):
        chunk = rows[start : start + ADD_CHUNK]
        params: list[int] = []
        for row_key, values in chunk:
            if len(values) != len(columns):
                raise ValueError(f"{len(values)} amounts given for {len(columns)} columns")
            params.append(row_key)
            params.extend(values)
        amounts = " UNION ALL ".join([f"SELECT {casts}"] * len(chunk))
        sql = f"{head}{sets} FROM ({amounts}) AS amounts WHERE {target}.{quote(key)} = amounts.{quote(key)}"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            updated += int(cursor.rowcount)
    return updated
