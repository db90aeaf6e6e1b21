"""Where the units to pack come from: ONE function, so the pack station reads what picking recorded.

An order picked on the floor (waves, totes) is packed from what fulfilment says was picked of it
(``quai.fulfillment.selectors.order_picked_units``): per SKU and lot, wherever its totes are, with the reservation
that holds the units (the ledger has them in the totes; closing the parcel moves them to the pack station). An
order no pick wave took (a packer picking a small order himself) is packed from its lines: what each line holds
in stock (its reserved quantity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from quai.fulfillment.selectors import PickedUnits, ToteContents, order_picked_units, tote_contents
from quai.orders.models import Order
from quai.orders.selectors import order_get
from quai.tenants.scope import Scope


@dataclass(frozen=True)
class UnitToPack:
    sku_id: int
    sku_code: str
    quantity: int
    lot: str = ""
    reservation_id: int | None = None
    tote_code: str = ""


def units_to_pack(*, scope: Scope, order: Order, picked: Sequence[PickedUnits] | None = None) -> list[UnitToPack]:
    """The units of ``order`` that must go into its parcel, one entry per SKU and lot (and reservation).
    ``picked``: what ``order_picked_units`` gives for it, when the caller read it for many orders at once."""
    if picked is None:
        picked = order_picked_units(scope=scope, order_id=order.pk)
    if picked:
        merged: dict[tuple[int, str, int], list[str | int]] = {}
        codes: dict[int, str] = {}
        for unit in picked:
            key = (unit.sku_id, unit.lot, unit.reservation_id)
            entry = merged.setdefault(key, [0, ""])
            entry[0] = int(entry[0]) + unit.quantity
            entry[1] = entry[1] or unit.tote_code
            codes[unit.sku_id] = unit.sku_code
        return [
            UnitToPack(
                sku_id=sku_id,
                sku_code=codes[sku_id],
                quantity=int(entry[0]),
                lot=lot,
                reservation_id=reservation_id,
                tote_code=str(entry[1]),
            )
            for (sku_id, lot, reservation_id), entry in sorted(merged.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        ]
    lines = order_get(scope=scope, order_id=order.pk).lines.all()
    return [
        UnitToPack(
            sku_id=line.sku_id,
            sku_code=line.sku_code,
            quantity=line.reserved_quantity,
            reservation_id=line.reservation_id,
        )
        for line in lines
        if line.reserved_quantity > 0
    ]


def tote_orders(*, scope: Scope, tote_code: str) -> ToteContents:
    """What a tote scanned at the pack station holds: its orders (``tote_not_found`` when it holds none)."""
    return tote_contents(scope=scope, tote_code=tote_code)
