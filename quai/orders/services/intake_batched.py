"""Intake that absorbs a flash sale: orders validated in the request's thread, written in shared commits.

``order_intake`` is what the API's intake routes call. The request thread runs ``order_validate`` (reads only:
fields, address, phone, the merchant's SKUs) and reads the merchant's release buffer, then hands ``order_write`` of
the checked draft to the process's group committer (``quai.core.batching``), which writes many orders in one
transaction, each in its own savepoint, and answers only once that transaction has committed. A unit that meets
the unique external id is answered afterwards, in the request's thread, with the order holding it.
docs/INTAKE.md gives the design, its invariants and limits.

Each order declares the SKUs it will reserve; the committer locks the union of its batch's SKU counters in SKU
order before any order runs, so two processes' batches never deadlock on two hot SKUs taken in opposite orders.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.db import IntegrityError, connection

from quai.core.batching import GroupCommitter, committer
from quai.inventory.models import StockLevel
from quai.orders.services.intake import (
    OrderCreated,
    OrderDraft,
    order_already_there,
    order_validate,
    order_write,
    release_buffer_minutes_for,
)

# Orders per POST /api/v1/orders/batch.
BATCH_MAX_ORDERS = 500


def _stock_levels_lock(sku_ids: Sequence[Any]) -> None:
    """Take the SKU counters a batch will update, in SKU order (PostgreSQL; SQLite's IMMEDIATE already serialises)."""
    if connection.vendor != "postgresql":
        return
    list(StockLevel.objects.select_for_update().filter(sku_id__in=list(sku_ids)).order_by("sku_id").values_list("pk"))


def intake_committer() -> GroupCommitter:
    return committer("orders.intake", prepare=_stock_levels_lock)


def _already_there(draft: OrderDraft, error: IntegrityError) -> OrderCreated:
    """A unit whose insert met the unique external id: its savepoint is rolled back and its batch committed, so the
    order holding the id (a resend's, or a twin's from the same batch or another process) is there to answer."""
    answer = order_already_there(draft)
    if answer is None:
        raise error
    return answer


def order_intake(*, merchant: Any, data: Mapping[str, Any], actor: Any = None) -> OrderCreated:
    """Validate one order here, write it in a shared commit; return once it is durably written (or raise)."""
    draft = order_validate(merchant=merchant, data=data)
    # Every read that can happen here does, in parallel with the other requests: the committer runs its units one
    # after the other, so a query inside a unit is a query on everyone's critical path.
    buffer_minutes = release_buffer_minutes_for(draft.merchant_id)
    try:
        return intake_committer().run(
            lambda: order_write(draft=draft, actor=actor, release_buffer_minutes=buffer_minutes),
            key=draft.merchant_id,
            locks=sorted({line.sku.pk for line in draft.lines}),
        )
    except IntegrityError as exc:
        return _already_there(draft, exc)


def order_intake_many(
    *, merchant: Any, orders: Sequence[Mapping[str, Any]], actor: Any = None
) -> list[OrderCreated | Exception]:
    """Up to ``BATCH_MAX_ORDERS`` orders: each one's outcome (the order, or its own error), in order, all durable."""
    outcomes: list[OrderCreated | Exception | None] = [None] * len(orders)
    works: list[Callable[[], OrderCreated]] = []
    locks: list[list[Any]] = []
    drafts: list[tuple[int, OrderDraft]] = []
    key = merchant if isinstance(merchant, int) else merchant.pk
    buffer_minutes = release_buffer_minutes_for(key)  # one read for the whole request, outside the shared commit
    for index, data in enumerate(orders):
        try:
            draft = order_validate(merchant=merchant, data=data)
        except Exception as exc:  # this order's own refusal; the others go on
            outcomes[index] = exc
            continue
        works.append(functools.partial(order_write, draft=draft, actor=actor, release_buffer_minutes=buffer_minutes))
        locks.append(sorted({line.sku.pk for line in draft.lines}))
        drafts.append((index, draft))
    for (index, draft), outcome in zip(drafts, intake_committer().run_many(works, key=key, locks=locks), strict=True):
        if isinstance(outcome, IntegrityError):
            try:
                outcome = _already_there(draft, outcome)
            except Exception as exc:  # 409: another order under that external id
                outcome = exc
        outcomes[index] = outcome
    return [outcome for outcome in outcomes if outcome is not None]
