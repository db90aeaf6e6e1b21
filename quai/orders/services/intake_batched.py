"""Intake that absorbs a flash sale: orders validated in the request's thread, written in shared commits.

``order_intake`` is what the API's intake routes call. The request thread runs ``order_validate`` (reads only:
fields, address, phone, the merchant's SKUs) and reads the merchant's release buffer, then hands ``order_write`` of
the checked draft to the process's group committer (``quai.core.batching``), which writes many orders in one
transaction, each in its own savepoint, and answers only once that transaction has committed. A unit that meets
the unique external id is answered afterwards, in the request's thread, with the order holding it.
docs/INTAKE.md gives the design, its invariants and limits.

Each order declares the SKUs it will reserve; the committer locks the union of its batch's SKU counters in SKU
order before any order runs (``stock_levels_lock``, which also reads their free units), so two processes' batches
never deadlock on two hot SKUs taken in opposite orders. The batch's orders are then written together by
``orders_write_many`` (a handful of statements per batch, stock decided per SKU by priority then age); if that
fails, each order runs alone (``order_write``) and fails alone.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import IntegrityError, connection
from django.db.models import ForeignObjectRel, Model
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.signals import post_init, pre_init

from quai.core import clock
from quai.core.batching import GroupCommitter, committer
from quai.core.states import InsertedStep, transitions_of_inserted
from quai.inventory.services import LockedLevels, ReservationRequest, reservations_create_many, stock_levels_lock
from quai.orders import domain
from quai.orders.events import OrderAllocated, OrderBackordered, OrderReceived, OrderStatusChanged
from quai.orders.models import Order, OrderLine, OrderStatus
from quai.orders.services.allocation import DOCUMENT_TYPE, _line_entries
from quai.orders.services.intake import (
    OrderCreated,
    OrderDraft,
    order_already_there,
    order_validate,
    order_write,
    release_buffer_minutes_for,
    skus_known_for,
)
from quai.orders.services.rows import events_insert, model_rows_insert, rows_insert
from quai.orders.services.transitions import ORDER_MACHINE

# Orders per POST /api/v1/orders/batch.
BATCH_MAX_ORDERS = 500
_M = TypeVar("_M", bound=Model)


@dataclass(frozen=True)
class IntakeItem:
    """One validated order waiting for its batch: what ``orders_write_many`` writes for it."""

    draft: OrderDraft
    actor: Any
    release_buffer_minutes: int
    received_at: datetime


def intake_committer() -> GroupCommitter:
    return committer("orders.intake", prepare=stock_levels_lock, bulk=orders_write_many)


def _taken(draft: OrderDraft) -> IntegrityError:
    """What a unit whose external id is taken answers from a batch: the request thread then reads the holder."""
    return IntegrityError(f"order {draft.channel}:{draft.external_id} of merchant {draft.merchant_id} is taken")


@dataclass(frozen=True)
class _InitPlan:
    fields: tuple[tuple[str, str, Any], ...]  # (name, attname, field) of each field __init__ sets, in its order
    attnames: frozenset[str]
    related: dict[str, str]  # a relation field's name -> its attname
    ids: frozenset[str]  # the attnames whose attribute is a foreign key's id (ForeignKeyDeferredAttribute)


@functools.cache
def _init_plan(model: type[Model]) -> _InitPlan | None:
    """What ``model(**values)`` sets, field by field, in ``Model.__init__``'s order (not a virtual or generated
    field); None when storing an attribute of the model does more than store the value (a descriptor with a setter
    other than a foreign key's id, whose setter, on a new instance, only stores it)."""
    fields = tuple(
        (field.name, field.attname, field)
        for field in model._meta.fields
        if field.column is not None and not field.generated
    )
    ids: set[str] = set()
    for _name, attname, _field in fields:
        descriptor = inspect.getattr_static(model, attname, None)
        if isinstance(descriptor, ForeignKeyDeferredAttribute):
            ids.add(attname)
        elif hasattr(descriptor, "__set__"):
            return None
    return _InitPlan(
        fields=fields,
        attnames=frozenset(attname for _name, attname, _field in fields),
        related={name: attname for name, attname, field in fields if isinstance(field.remote_field, ForeignObjectRel)},
        ids=frozenset(ids),
    )


def _model_new(model: type[_M], values: Mapping[str, Any], related: Mapping[str, Model] | None = None) -> _M:
    """The instance ``model(**values, **related)`` makes (``values`` by attname, ``related``: related rows by field
    name), without ``Model.__init__``'s per-field loop: its ``ModelState``, each value (or its field's default)
    stored, each related row set through its descriptor (its id, its cache, the instance's database) at its
    field's place. Anything that form would do otherwise — an init signal listening to the model, a value of no
    field, a related row of no relation, both a relation's row and its id — goes through ``Model.__init__``
    itself. For a batch's orders and lines: ~2-3 µs each instead of 8-12, on the committer's serial path (a test
    compares the two forms)."""
    plan = _init_plan(model)
    rows = related or {}
    if (
        plan is None
        or pre_init.has_listeners(model)
        or post_init.has_listeners(model)
        or not values.keys() <= plan.attnames
        or not rows.keys() <= plan.related.keys()
        or any(plan.related[name] in values for name in rows)
    ):
        return model(**values, **rows)
    instance = model.__new__(model)
    instance._state = ModelState()
    stored = instance.__dict__
    if rows:
        for name, attname, field in plan.fields:
            if name in rows:
                setattr(instance, name, rows[name])
            else:
                stored[attname] = values[attname] if attname in values else field.get_default()
    else:
        stored.update(
            {
                attname: values[attname] if attname in values else field.get_default()
                for _name, attname, field in plan.fields
            }
        )
    if any(stored[attname] is not None for attname in plan.ids):
        # What a foreign key id's setter does on a new instance given a value: it asks whether the related row is
        # cached, which makes the state's (lazy) cache.
        instance._state.fields_cache  # noqa: B018
    return instance


def _order_row(draft: OrderDraft, *, now: datetime, release_buffer_minutes: int) -> Order:
    """The order row ``order_write`` inserts, field for field (received, nothing reserved yet): what
    ``Order(**values)`` makes, built by ``_model_new``; a value of no field is refused as ``Order(**values)``
    refuses it."""
    return _model_new(Order, _order_values(draft, now=now, release_buffer_minutes=release_buffer_minutes))


def _order_values(draft: OrderDraft, *, now: datetime, release_buffer_minutes: int) -> dict[str, Any]:
    return dict(
        merchant_id=draft.merchant_id,
        channel=draft.channel,
        external_id=draft.external_id,
        status=OrderStatus.RECEIVED,
        priority=draft.priority,
        currency=draft.currency,
        carrier_service=draft.carrier_service,
        promise_id=draft.promise_id,
        promised_from=draft.promised_from,
        promised_to=draft.promised_to,
        gift_message=draft.gift_message,
        notes=draft.notes,
        shipping_total=draft.shipping_total,
        lines_total=draft.lines_total,
        total=draft.total,
        release_after=now + timedelta(minutes=release_buffer_minutes),
        fingerprint=draft.fingerprint,
        created_at=now,
        updated_at=now,
        **draft.shopper,
        **draft.address,
    )


def _orders_insert_new(orders: Sequence[Order]) -> None:
    """Insert ``orders`` in one statement per chunk, skipping those whose (merchant, channel, external id) is taken
    (``ON CONFLICT DO NOTHING``: a twin of another transaction is waited for, as a plain insert would); the
    inserted ones get their primary key, the skipped ones keep none. Keys must be distinct within ``orders``."""
    names = [field.attname for field in Order._meta.concrete_fields if not field.primary_key]
    by_key = {(order.merchant_id, order.channel, order.external_id): order for order in orders}
    returned = rows_insert(
        Order,
        [{name: getattr(order, name) for name in names} for order in orders],
        returning=("id", "merchant_id", "channel", "external_id"),
        skip_conflicts=True,
    )
    for pk, merchant_id, channel, external_id in returned:
        order = by_key[(merchant_id, channel, external_id)]
        order.pk = pk
        order._state.adding = False
        order._state.db = connection.alias


def orders_write_many(items: Sequence[IntakeItem], levels: LockedLevels | None) -> list[OrderCreated | Exception]:
    """The committer's bulk handler: ``order_write`` for a whole batch of orders in a handful of statements.

    ``levels``: the batch's SKU rows, locked in SKU order by ``prepare`` (``stock_levels_lock``) with their free
    units. Orders are inserted in arrival order, skipping any whose external id is taken (answered ``IntegrityError``:
    the request thread then answers the order holding it, as for a unit). Stock is decided here, under those locks:
    orders are served by priority class, then age (arrival), each line — in SKU then position order, as
    ``order_lines_reserve`` does — taking what it wants or, short, what is left (the rest backordered); then ONE
    guarded update of the SKUs' counters and the reservation rows through ``reservations_create_many``. Then the
    lines with what they got, the status steps (``transitions_of_inserted``: received → allocated | backordered,
    audit rows and ``order.status_changed``), and the ``order.allocated`` / ``order.backordered`` events.

    Every order's rows and events are exactly what ``order_write`` writes for it. Anything raised here rolls the
    whole bulk attempt back; the committer then runs each order alone (``order_write``), so one order's failure
    never fails another.
    """
    now = clock.now()
    outcomes: list[OrderCreated | Exception | None] = [None] * len(items)
    seen: set[tuple[int, str, str]] = set()
    fresh: list[tuple[int, IntakeItem, Order]] = []
    for index in sorted(range(len(items)), key=lambda i: (items[i].received_at, i)):
        item = items[index]
        key = (item.draft.merchant_id, item.draft.channel, item.draft.external_id)
        if key in seen:  # its twin in this very batch is inserted first: answered as a resend
            outcomes[index] = _taken(item.draft)
            continue
        seen.add(key)
        fresh.append((index, item, _order_row(item.draft, now=now, release_buffer_minutes=item.release_buffer_minutes)))
    _orders_insert_new([order for _i, _item, order in fresh])
    written: list[tuple[int, IntakeItem, Order]] = []
    for index, item, order in fresh:
        if order.pk is None:
            outcomes[index] = _taken(item.draft)
        else:
            written.append((index, item, order))
    if not written:
        return [outcome for outcome in outcomes if outcome is not None]
    events_insert(
        [
            (
                OrderReceived(
                    order_id=order.pk,
                    channel=order.channel,
                    external_id=order.external_id,
                    priority=order.priority,
                    currency=order.currency,
                    total=str(order.total),
                    carrier_service=order.carrier_service,
                    lines=[{"sku_code": line.sku_code, "quantity": line.quantity} for line in item.draft.lines],
                ),
                order.merchant_id,
            )
            for _index, item, order in written
        ]
    )
    # Who gets short stock first: priority class, then age; lines in SKU then position order within an order.
    served = sorted(
        written, key=lambda entry: (domain.priority_rank(entry[2].priority), entry[1].received_at, entry[0])
    )
    wants: list[tuple[OrderLine, ReservationRequest]] = []
    lines_of: dict[int, list[OrderLine]] = {}
    for _index, item, order in served:
        lines = lines_of[order.pk] = [
            _model_new(
                OrderLine,
                {
                    "position": line.position,
                    "sku_code": line.sku_code,
                    "quantity": line.quantity,
                    "unit_price": line.unit_price,
                    "backordered_quantity": line.quantity,
                },
                {"order": order, "sku": line.sku},
            )
            for line in item.draft.lines
        ]
        for line in sorted(lines, key=lambda entry: (entry.sku_id, entry.position)):
            wants.append(
                (
                    line,
                    ReservationRequest(
                        merchant_id=order.merchant_id,
                        sku=line.sku,
                        quantity=line.quantity,
                        document_type=DOCUMENT_TYPE,
                        document_id=f"{order.pk}/{line.position}",
                    ),
                )
            )
    if levels is None:
        levels = stock_levels_lock(sorted({request.sku.pk for _line, request in wants}))
    reserved = reservations_create_many(requests=[request for _line, request in wants], levels=levels)
    for (line, _request), reservation in zip(wants, reserved, strict=True):
        if reservation is not None:
            line.reservation_id = reservation.pk
            line.reserved_quantity = reservation.quantity
            line.backordered_quantity = line.quantity - reservation.quantity
    model_rows_insert([line for _i, _item, order in written for line in lines_of[order.pk]])
    covered = {
        order.pk: all(line.backordered_quantity == 0 for line in lines_of[order.pk]) for _i, _item, order in written
    }
    steps = transitions_of_inserted(
        [
            InsertedStep(
                obj=order,
                to_status=domain.status_after_allocation(lines_fully_covered=covered[order.pk]),
                event=functools.partial(_status_changed, order),
                actor=item.actor,
            )
            for _index, item, order in written
        ],
        machine=ORDER_MACHINE,
    )
    events_insert(
        [
            (
                (OrderAllocated if covered[order.pk] else OrderBackordered)(
                    order_id=order.pk,
                    channel=order.channel,
                    external_id=order.external_id,
                    lines=_line_entries(lines_of[order.pk]),
                ),
                order.merchant_id,
            )
            for _index, _item, order in written
        ]
    )
    for (index, _item, order), step in zip(written, steps, strict=True):
        outcomes[index] = OrderCreated(
            order=order,
            created=True,
            lines=tuple(sorted(lines_of[order.pk], key=lambda line: line.position)),
            timeline=(step,),
        )
    return [outcome for outcome in outcomes if outcome is not None]


def _status_changed(order: Order, step: Any) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order.pk,
        channel=order.channel,
        external_id=order.external_id,
        from_status=step.from_status,
        to_status=step.to_status,
        reason=step.reason,
    )


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
    # after the other, so a query inside a unit is a query on everyone's critical path. The draft's digest too.
    buffer_minutes = release_buffer_minutes_for(draft.merchant_id)
    _digested = draft.fingerprint
    try:
        return intake_committer().run(
            lambda: order_write(draft=draft, actor=actor, release_buffer_minutes=buffer_minutes),
            key=draft.merchant_id,
            locks=sorted({line.sku.pk for line in draft.lines}),
            item=IntakeItem(draft=draft, actor=actor, release_buffer_minutes=buffer_minutes, received_at=clock.now()),
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
    items: list[IntakeItem] = []
    drafts: list[tuple[int, OrderDraft]] = []
    key = merchant if isinstance(merchant, int) else merchant.pk
    # One read each for the whole request, outside the shared commit: the release buffer and every line's SKU.
    buffer_minutes = release_buffer_minutes_for(key)
    known_skus = skus_known_for(key, orders)
    for index, data in enumerate(orders):
        try:
            draft = order_validate(merchant=merchant, data=data, known_skus=known_skus)
        except Exception as exc:  # this order's own refusal; the others go on
            outcomes[index] = exc
            continue
        _digested = draft.fingerprint  # here, not on the committer's serial path
        works.append(functools.partial(order_write, draft=draft, actor=actor, release_buffer_minutes=buffer_minutes))
        locks.append(sorted({line.sku.pk for line in draft.lines}))
        items.append(
            IntakeItem(draft=draft, actor=actor, release_buffer_minutes=buffer_minutes, received_at=clock.now())
        )
        drafts.append((index, draft))
    answers = intake_committer().run_many(works, key=key, locks=locks, items=items)
    for (index, draft), outcome in zip(drafts, answers, strict=True):
        if isinstance(outcome, IntegrityError):
            try:
                outcome = _already_there(draft, outcome)
            except Exception as exc:  # 409: another order under that external id
                outcome = exc
        outcomes[index] = outcome
    return [outcome for outcome in outcomes if outcome is not None]
