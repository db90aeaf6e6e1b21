"""Where the units to pack come from: ONE function, so the pack station can be pointed at fulfilment's picked
units (``quai.fulfillment.selectors.order_picked_units``) once picking records them, without touching the flow.

Until then the order's own lines are the units: what each line holds in stock (its reserved quantity), with the
reservation that holds it (the ledger moves those units to the pack station when the parcel closes).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def units_to_pack(*, scope: Scope, order: Order) -> list[UnitToPack]:
    """The units of ``order`` that must go into its parcel, one entry per SKU (and lot, when picking tells it)."""
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
