"""The floor's reads and writes by a list of ids (issue 17, "left items") have ONE statement text whatever the
list's length (``quai.core.rows.Among``): the ORM's ``IN (%s, …)`` wrote a text per length, which PostgreSQL parsed
and planned at every call. Each test runs the code on a short list and on a longer one and compares the texts of
the statements in question; the rows they select are the ``__in`` form's (the selectors compared with it below,
the services by their own tests: ``test_wave_release_many``, ``test_paper_picked_many``, ``test_totes_many``)."""

from __future__ import annotations

from typing import Any

import pytest

from quai.core import clock
from quai.core.tests.sql_texts import statement_texts, texts_with
from quai.fulfillment import domain, selectors, services
from quai.fulfillment.models import PickTask, Tote
from quai.fulfillment.tests.factories import floor_for, released_order
from quai.fulfillment.tests.test_batch_confirm import PICK_AT
from quai.fulfillment.tests.test_paper_picked_many import _world
from quai.fulfillment.tests.test_totes_many import _release_world
from quai.tenants.scope import Scope
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

FLOOR = Scope.system("test")


@pytest.mark.parametrize(
    "marker",
    [
        'FROM "inventory_reservation" INNER JOIN',  # the run's reservations, locked (AllocationRun.load)
        '"inventory_reservationallocation"."reservation_id" AS',  # their allocations (load)
        'FROM "inventory_stockquantity"',  # their SKUs' eligible stock (_stock_load)
        'UPDATE "inventory_reservation" SET "updated_at"',  # the run's write
        'FROM "promise_promiserecord"',  # the orders' ship-by (promise.selectors.ship_by_for_orders)
    ],
)
def test_a_wave_release_reads_by_one_text_for_few_orders_and_many(merchant: Any, marker: str) -> None:
    floor = floor_for(merchant, skus=6)
    for n in range(40):
        services.tote_ensure(site=floor.site, code=f"TOTE-{n + 1:04d}")

    def release(count: int) -> set[str]:
        for n in range(count):
            released_order(floor, f"Q{count}-{n}", [(n % 6, 1), ((n + 1) % 6, 1)])
        criteria, cart = domain.WaveCriteria(capacity=count), domain.Cart(totes=5)
        return texts_with(
            statement_texts(lambda: services.wave_release(site=floor.site, criteria=criteria, cart=cart)), marker
        )

    few, many = release(2), release(12)
    assert few and few == many


@pytest.mark.parametrize(
    "marker",
    [
        'FROM "fulfillment_pickbatch"',  # the batches locked, the pickers' busy check
        'UPDATE "fulfillment_picktask"',  # the tasks picked
        '"inventory_reservationallocation"."id" AS "pk"',  # the reservations' allocations (reservation_pick_to_many)
        'FROM "inventory_stocklevel"',  # the SKUs' counters (reservation_pick_to_many)
        'FROM "orders_order" WHERE',  # the orders locked for their picking step (orders_picking_start_each)
    ],
)
def test_a_tick_of_paper_picks_reads_by_one_text_for_one_batch_and_many(marker: str) -> None:
    supervisor = StaffUserFactory(username="chef", is_superuser=True)
    pickers = [StaffUserFactory(username="picker-1"), StaffUserFactory(username="picker-2")]

    def picked(code: str, first_only: bool) -> set[str]:
        _floor, _orders, batches = _world(code)
        chosen = batches[:1] if first_only else batches
        clock.set_now(PICK_AT)
        picks = [services.PaperPick(batch.pk, pickers[k % 2]) for k, batch in enumerate(chosen)]
        texts = statement_texts(lambda: services.batches_paper_picked_many(picks=picks, supervisor=supervisor))
        return texts_with(texts, marker)

    one, many = picked("one", True), picked("many", False)
    assert one and one == many


@pytest.mark.parametrize(
    "marker",
    ['FROM "fulfillment_tote"', 'FROM "inventory_stockquantity"', 'UPDATE "fulfillment_tote"'],
)
def test_totes_given_back_together_read_and_write_by_one_text_for_one_tote_and_more(marker: str) -> None:
    one_site, many_site = _release_world("one"), _release_world("many")
    services.tote_ensure(site=many_site, code="TOTE-0003")
    one = statement_texts(lambda: services.totes_release_many(releases=[(one_site, "TOTE-0001")]))
    asked = ["TOTE-0001", "TOTE-0002", "TOTE-0003"]
    many = statement_texts(lambda: services.totes_release_many(releases=[(many_site, code) for code in asked]))
    assert texts_with(one, marker) and texts_with(one, marker) == texts_with(many, marker)
    assert Tote.objects.filter(site=many_site, code="TOTE-0003", batch=None, slot=0).exists()


def test_the_pack_line_s_picking_reads_select_what_the_in_form_selected_by_one_text() -> None:
    supervisor = StaffUserFactory(username="chef", is_superuser=True)
    _floor, orders, batches = _world("read")
    clock.set_now(PICK_AT)
    services.batches_paper_picked_many(
        picks=[services.PaperPick(batches[0].pk, StaffUserFactory(username="p"))], supervisor=supervisor
    )
    ids = [order.pk for order in orders.values()] + [999_999]
    unfinished = PickTask.objects.filter(order_id__in=ids, status="open").filter(FLOOR.q())
    assert selectors.orders_picking_unfinished(scope=FLOOR, order_ids=ids) == set(
        unfinished.order_by().values_list("order_id", flat=True).distinct()
    )
    old_units: dict[int, list[Any]] = {}
    for unit in selectors._picked(PickTask.objects.filter(order_id__in=ids).filter(FLOOR.q())):
        old_units.setdefault(unit.order_id, []).append(unit)
    picked = selectors.orders_picked_units(scope=FLOOR, order_ids=ids)
    assert picked == old_units and picked  # something picked, something not
    assert selectors.orders_picking_unfinished(scope=FLOOR, order_ids=ids) - set(picked)

    for read in (selectors.orders_picking_unfinished, selectors.orders_picked_units):
        one = statement_texts(lambda read=read: read(scope=FLOOR, order_ids=ids[:1]))  # type: ignore[misc]
        many = statement_texts(lambda read=read: read(scope=FLOOR, order_ids=ids))  # type: ignore[misc]
        assert len(one) == 1 and one == many
