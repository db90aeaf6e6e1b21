"""The floor's order steps taken inside the caller's transaction (issue 17): ``orders_pack_many`` given the orders
the pack line's close locked (``locked``) and ``orders_picking_start_each`` inside a tick's transaction write what
one by one writes (statuses, versions, audit rows, events), without locking or reading the orders again and
without savepoints of their own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.errors import Conflict, NotFound
from quai.core.models import OutboxEvent
from quai.orders.models import Order
from quai.orders.services.floor_picking import (
    PickingStart,
    order_picking_start,
    orders_picking_start_each,
)
from quai.orders.services.floor_shipping import order_pack, orders_pack_many
from quai.orders.tests.test_picking_start_many import _set
from quai.orders.tests.test_release_many import _answer, _written

pytestmark = pytest.mark.django_db

#: orders of ``_set`` that may be packed (released: through picking first; picking), by their place in the set
PACKABLE = [0, 1, 2]


def _since() -> int:
    return OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _savepoints(queries: list[dict[str, Any]]) -> list[str]:
    return [q["sql"] for q in queries if "SAVEPOINT" in q["sql"].upper()]


def _order_reads(queries: list[dict[str, Any]]) -> list[str]:
    table = Order._meta.db_table
    return [q["sql"] for q in queries if q["sql"].upper().startswith("SELECT") and f'FROM "{table}"' in q["sql"]]


def _per_order(written: tuple[list[Any], list[Any], list[Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    """The rows, and each order's audit rows and events in their order (the many form writes every order's move
    to picking before the first one's packing; each order's own history is in one by one's order)."""
    rows, audits, events = written
    return rows, sorted(audits, key=lambda audit: audit[0]), sorted(events, key=lambda event: event[1])


def test_packing_orders_the_close_locked_writes_what_packing_them_one_by_one_does(shelf):
    now = clock.now()
    one_by_one, roles_one = _set("ONE", shelf, now)
    together, roles_all = _set("ALL", shelf, now)
    at = now + timedelta(minutes=5)

    since = _since()
    with clock.frozen(at):
        for place in PACKABLE:
            order_pack(order=one_by_one[place], actor="packer", parcel_id=100 + place)
    expected = _written(one_by_one, roles_one, since)

    since = _since()
    packed = [(together[place], 100 + place) for place in PACKABLE]
    with clock.frozen(at), transaction.atomic():
        # As the close's _relocked: the parcels' orders locked in id order, whole rows.
        locked = {o.pk: o for o in Order.objects.select_for_update().filter(pk__in=together).order_by("pk")}
        with CaptureQueriesContext(connection) as queries:
            answered = orders_pack_many(packed=packed, actor="packer", locked=locked)
    assert _per_order(_written(together, roles_all, since)) == _per_order(expected)
    assert [o.pk for o in answered] == [order_id for order_id, _parcel in packed]
    assert all(o is locked[o.pk] and o.status == "packed" for o in answered)  # moved in place
    assert not _order_reads(queries.captured_queries)
    assert not _savepoints(queries.captured_queries)


def test_packing_orders_the_close_locked_writes_what_locking_them_again_does(shelf):
    now = clock.now()
    relocking, roles_one = _set("ONE", shelf, now)
    given, roles_all = _set("ALL", shelf, now)
    at = now + timedelta(minutes=5)

    since = _since()
    with clock.frozen(at), transaction.atomic():
        orders_pack_many(packed=[(relocking[place], 100 + place) for place in PACKABLE], actor="packer")
    expected = _written(relocking, roles_one, since)

    since = _since()
    with clock.frozen(at), transaction.atomic():
        locked = {o.pk: o for o in Order.objects.select_for_update().filter(pk__in=given).order_by("pk")}
        orders_pack_many(packed=[(given[place], 100 + place) for place in PACKABLE], actor="packer", locked=locked)
    assert _written(given, roles_all, since) == expected


def test_packing_an_order_the_close_did_not_lock_is_not_found_with_nothing_written(shelf):
    ids, _roles = _set("ONE", shelf, clock.now())
    since = _since()
    with transaction.atomic():
        locked = {o.pk: o for o in Order.objects.select_for_update().filter(pk=ids[0])}
        with pytest.raises(NotFound):
            orders_pack_many(packed=[(ids[0], 1), (ids[1], 2)], locked=locked)
        assert Order.objects.get(pk=ids[0]).status == "released"
    assert not OutboxEvent.objects.filter(id__gt=since).exists()


def test_packing_a_held_order_the_close_locked_is_refused_with_nothing_written(shelf):
    ids, _roles = _set("ONE", shelf, clock.now())
    since = _since()
    with pytest.raises(Conflict) as refused, transaction.atomic():
        locked = {o.pk: o for o in Order.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        orders_pack_many(packed=[(ids[0], 1), (ids[3], 2)], locked=locked)  # ids[3] is on hold
    assert refused.value.code == "invalid_transition"
    assert Order.objects.get(pk=ids[0]).status == "released"
    assert not OutboxEvent.objects.filter(id__gt=since).exists()


def test_starting_orders_in_a_ticks_transaction_answers_and_writes_what_one_by_one_does(shelf):
    now = clock.now()
    one_by_one, roles_one = _set("ONE", shelf, now)
    together, roles_all = _set("ALL", shelf, now)
    at = now + timedelta(minutes=5)
    pickers = ["ann", "bob"]

    since = _since()
    answers_one = []
    with clock.frozen(at):
        for k, order_id in enumerate([*one_by_one, one_by_one[0]]):
            try:
                order_picking_start(order_id=order_id, actor=pickers[k % 2], reason=f"Batch {k % 2} started")
            except Conflict as refusal:
                answers_one.append(_answer(refusal))
            else:
                answers_one.append(None)
    expected = _written(one_by_one, roles_one, since)

    since = _since()
    asked = [*together, together[0]]
    starts = [PickingStart(order_id, pickers[k % 2], f"Batch {k % 2} started") for k, order_id in enumerate(asked)]
    with clock.frozen(at), transaction.atomic(), CaptureQueriesContext(connection) as queries:
        answers = orders_picking_start_each(starts=starts)
    assert [_answer(answers[order_id]) for order_id in asked] == answers_one
    assert _written(together, roles_all, since) == expected
    assert not _savepoints(queries.captured_queries)
    # One locked read of the orders, one update, one insert of the events, one of the audit rows.
    assert len(queries.captured_queries) == 4


def test_starting_orders_in_a_ticks_transaction_stops_at_an_unknown_one_with_nothing_written(shelf):
    ids, _roles = _set("ONE", shelf, clock.now())
    since = _since()
    with transaction.atomic():
        with pytest.raises(NotFound):
            orders_picking_start_each(starts=[PickingStart(ids[0]), PickingStart(999_999_999)])
        # The caller's transaction goes on: nothing was written, nothing asks for a rollback.
        assert Order.objects.get(pk=ids[0]).status == "released"
    assert not OutboxEvent.objects.filter(id__gt=since).exists()
