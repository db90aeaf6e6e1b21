"""What counts toward availability: incoming stock (registered by inbound), which places count, stock policies.

The registry of incoming sources lives in ``quai.inventory.selectors`` (the availability reads call it, and
selectors never import services); registering a source is part of this module's public face, as
docs/CONTRACTS.md says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import NotFound, ValidationFailed
from quai.core.outbox import event_record
from quai.inventory.events import StockCountingChanged
from quai.inventory.models import StockLevel, StockPolicy, StockQuantity, StockStatus
from quai.inventory.selectors import (
    IncomingSource,
    incoming_sources,
    register_incoming_source,
    unregister_incoming_source,
)
from quai.inventory.services._common import _level_add, _lock_rows

__all__ = [
    "CountingSyncReport",
    "IncomingSource",
    "incoming_sources",
    "register_incoming_source",
    "stock_counting_sync",
    "stock_policy_set",
    "unregister_incoming_source",
]

# --- Which stock counts toward availability ---------------------------------------------------------------------


@dataclass(frozen=True)
class CountingSyncReport:
    added: int  # rows whose zone became active: their stock now counts
    removed: int  # rows whose zone is no longer active: taken out of availability
    held: int  # rows still counted because reservations rely on them (retried by the next sweep)


def stock_counting_sync(*, zone: Any = None, at: datetime | None = None) -> CountingSyncReport:
    """Bring ``StockQuantity.counted`` (and the SKU counters) in line with the zones' state at ``at``.

    Called by the periodic sweep (``quai.inventory.tasks.stock_counting_sweep``) and whenever a zone opens,
    closes or is re-shaped. One short transaction per row, so a long sweep never holds hot rows for long.
    See ``quai.inventory.models`` for why this is the one place where the flag changes.
    """
    from quai.warehouse.selectors import zone_active_q

    now = at or clock.now()
    active = zone_active_q(now, prefix="location__zone__")
    base = StockQuantity.objects.all()
    if zone is not None:
        base = base.filter(location__zone_id=zone.pk)
    # The codes the events name (SKU, location) come with the ids, in the two reads that find the rows; a row's
    # SKU and location never change, so reading them before its lock is safe.
    fields = ("pk", "sku__code", "location__code")
    to_add = list(base.filter(counted=False).filter(active).order_by("pk").values_list(*fields))
    to_remove = list(base.filter(counted=True).exclude(active).order_by("pk").values_list(*fields))
    added = removed = held = 0
    for (row_id, sku_code, location_code), counted in [(r, True) for r in to_add] + [(r, False) for r in to_remove]:
        with transaction.atomic():
            row = _lock_rows([row_id]).get(row_id)
            if row is None or row.counted == counted:
                continue
            if row.status == StockStatus.SELLABLE and row.on_hand:
                if counted:
                    _level_add(sku=row.sku, on_hand=row.on_hand)
                else:
                    ok = StockLevel.objects.filter(sku_id=row.sku_id, on_hand__gte=F("reserved") + row.on_hand).update(
                        on_hand=F("on_hand") - row.on_hand
                    )
                    if not ok:
                        held += 1
                        continue
                event_record(
                    StockCountingChanged(
                        sku_id=row.sku_id,
                        location_id=row.location_id,
                        counted=counted,
                        quantity=row.on_hand,
                        sku_code=sku_code,
                        location_code=location_code,
                    ),
                    merchant_id=row.merchant_id,
                )
            StockQuantity.objects.filter(pk=row_id).update(counted=counted)
            if counted:
                added += 1
            else:
                removed += 1
    return CountingSyncReport(added=added, removed=removed, held=held)


# --- Policy -----------------------------------------------------------------------------------------------------


@transaction.atomic
def stock_policy_set(
    *,
    merchant: Any,
    sku: Any = None,
    safety_buffer: int | None = None,
    min_shelf_life_days: int | None = None,
    count_tolerance_units: int | None = None,
    count_tolerance_percent: int | None = None,
) -> StockPolicy:
    """Set the safety buffer of a SKU (or the merchant's default), the merchant's minimum shelf life, and how far a
    cycle count may differ from the books before a supervisor must approve it (per SKU or merchant default)."""
    merchant_id = merchant if isinstance(merchant, int) else merchant.pk
    if sku is not None and sku.merchant_id != merchant_id:
        raise NotFound(_("SKU not found."), code="sku_not_found")
    for name, value in (
        ("safety_buffer", safety_buffer),
        ("min_shelf_life_days", min_shelf_life_days),
        ("count_tolerance_units", count_tolerance_units),
        ("count_tolerance_percent", count_tolerance_percent),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValidationFailed(
                _("%(field)s must be a whole number, zero or more.") % {"field": name},
                code="invalid_policy",
                details={"field": name, "value": value},
            )
    if sku is not None and min_shelf_life_days is not None:
        raise ValidationFailed(
            _("The minimum shelf life is set per merchant, not per SKU."), code="shelf_life_per_merchant"
        )
    policy = StockPolicy.objects.select_for_update().filter(merchant_id=merchant_id, sku=sku).first()
    if policy is None:
        policy = StockPolicy(merchant_id=merchant_id, sku=sku)
    if safety_buffer is not None:
        policy.safety_buffer = safety_buffer
    if min_shelf_life_days is not None:
        policy.min_shelf_life_days = min_shelf_life_days
    if count_tolerance_units is not None:
        policy.count_tolerance_units = count_tolerance_units
    if count_tolerance_percent is not None:
        policy.count_tolerance_percent = count_tolerance_percent
    policy.save()
    return policy
