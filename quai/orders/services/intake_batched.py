"""Intake that absorbs a flash sale: orders validated in the request's thread, written in shared commits.

``order_intake`` is what the API's intake routes call. The request thread runs ``order_validate`` (reads only:
fields, address, phone, the merchant's SKUs), then hands ``order_create`` of the checked draft to the process's
group committer (``quai.core.batching``), which writes many orders in one transaction, each in its own savepoint,
and answers only once that transaction has committed. docs/INTAKE.md gives the design, its invariants and limits.

Each order declares the SKUs it will reserve; the committer locks the union of its batch's SKU counters in SKU
order before any order runs, so two processes' batches never deadlock on two hot SKUs taken in opposite orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection

from quai.core.batching import GroupCommitter, committer
from quai.inventory.models import StockLevel
from quai.orders.services.intake import OrderCreated, order_create, order_validate, release_buffer_minutes_for

# Orders per POST /api/v1/orders/batch.
BATCH_MAX_ORDERS = 500


def _stock_levels_lock(sku_ids: Sequence[Any]) -> None:
    """Take the SKU counters a batch will update, in SKU order (PostgreSQL; SQLite's IMMEDIATE already serialises)."""
    if connection.vendor != "postgresql":
        return
    list(StockLevel.objects.select_for_update().filter(sku_id__in=list(sku_ids)).order_by("sku_id").values_list("pk"))


def intake_committer() -> GroupCommitter:
    return committer("orders.intake", prepare=_stock_levels_lock)


def order_intake(*, merchant: Any, data: Mapping[str, Any], actor: Any = None) -> OrderCreated:
    """Validate one order here, write it in a shared commit; return once it is durably written (or raise)."""
    draft = order_validate(merchant=merchant, data=data)
    # Every read that can happen here does, in parallel with the other requests: the committer runs its units one
    # after the other, so a query inside a unit is a query on everyone's critical path.
    buffer_minutes = release_buffer_minutes_for(draft.merchant_id)
    return intake_committer().run(
        lambda: order_create(merchant=merchant, data=draft, actor=actor, release_buffer_minutes=buffer_minutes),
        key=draft.merchant_id,
        locks=sorted({line.sku.pk for line in draft.lines}),
    )


def order_intake_many(
    *, merchant: Any, orders: Sequence[Mapping[str, Any]], actor: Any = None
) -> list[OrderCreated | Exception]:
    """Up to ``BATCH_MAX_ORDERS`` orders: each one's outcome (the order, or its own error), in order, all durable."""
    outcomes: list[OrderCreated | Exception | None] = [None] * len(orders)
    works, locks, positions = [], [], []
    key = merchant if isinstance(merchant, int) else merchant.pk
    buffer_minutes = release_buffer_minutes_for(key)  # one read for the whole request, outside the shared commit
    for index, data in enumerate(orders):
        try:
            draft = order_validate(merchant=merchant, data=data)
        except Exception as exc:  # this order's own refusal; the others go on
            outcomes[index] = exc
            continue
        works.append(
            lambda draft=draft: order_create(
                merchant=merchant, data=draft, actor=actor, release_buffer_minutes=buffer_minutes
            )
        )
        locks.append(sorted({line.sku.pk for line in draft.lines}))
        positions.append(index)
    for index, outcome in zip(positions, intake_committer().run_many(works, key=key, locks=locks), strict=True):
        outcomes[index] = outcome
    return [outcome for outcome in outcomes if outcome is not None]
