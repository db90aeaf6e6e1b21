"""The fulfilment reads packing and the simulation make for many orders at once give what the one-order reads give
for each: ``orders_picking_done`` as ``order_picking_done``, ``orders_tote_codes`` as the totes of
``order_picked_units``, ``order_picking_unfinished`` as an order with tasks not yet done, and their many-forms
(``orders_picking_unfinished``, ``orders_picked_units``) as the one-order reads."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from quai.fulfillment import selectors, services
from quai.fulfillment.models import PickTask
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.tenants.scope import Scope
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = pytest.mark.django_db
FLOOR = Scope.system("test")


def test_the_many_order_reads_answer_as_the_one_order_reads() -> None:
    floor = floor_for(MerchantFactory(code="acme"))
    orders = [released_order(floor, f"RD-{n}", [(n % 3, 1), ((n + 1) % 3, 2)]) for n in range(5)]
    wave = wave_for(floor, totes=6)
    waiting = released_order(floor, "RD-LATER", [(4, 1)])  # released after the wave: never waved
    batches = list(wave.batches.order_by("pk"))
    services.batch_start(batch_id=batches[0].pk, operator=StaffUserFactory(username="picker"))
    boss = StaffUserFactory(username="boss")
    boss.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    services.batch_confirm_picked(batch_id=batches[0].pk, operator=boss)
    ids = [o.pk for o in orders] + [waiting.pk]
    done = {pk for pk in ids if selectors.order_picking_done(scope=FLOOR, order_id=pk)}
    assert selectors.orders_picking_done(scope=FLOOR, order_ids=ids) == done
    assert done and waiting.pk not in done
    for pk in ids:  # every order but the late one was waved
        assert selectors.order_picking_unfinished(scope=FLOOR, order_id=pk) == (pk != waiting.pk and pk not in done)
    picked_units = selectors.orders_picked_units(scope=FLOOR, order_ids=ids)
    assert picked_units == {
        pk: units for pk in ids if (units := selectors.order_picked_units(scope=FLOOR, order_id=pk))
    }
    assert picked_units and waiting.pk not in picked_units
    totes = selectors.orders_tote_codes(scope=FLOOR, order_ids=ids)
    for pk in ids:
        codes = {u.tote_code for u in selectors.order_picked_units(scope=FLOOR, order_id=pk) if u.tote_code}
        assert totes.get(pk, set()) == codes
    assert any(totes.values())
    open_lines = selectors.site_open_pick_lines(scope=FLOOR, site_id=floor.site.pk)
    assert open_lines == sum(1 for b in batches[1:] for t in b.tasks.all() if t.status == "open")
    assert selectors.orders_awaiting_wave_exist(scope=FLOOR)
    # Picked: something picked, nothing left open; the never-waved order and the unpicked batches' are not.
    picked = selectors.orders_picked(scope=FLOOR, order_ids=ids)
    assert picked == {pk for pk in done if any(t.status == "picked" for t in PickTask.objects.filter(order_id=pk))}
    assert picked and waiting.pk not in picked
    first_task = PickTask.objects.filter(order_id=orders[0].pk).order_by("pk").first()
    assert first_task is not None
    # One of its picks reopened (a tote on its way): that order is still being picked.
    PickTask.objects.filter(pk=first_task.pk).update(status="open")
    unfinished = selectors.orders_picking_unfinished(scope=FLOOR, order_ids=ids)
    assert unfinished == {pk for pk in ids if selectors.order_picking_unfinished(scope=FLOOR, order_id=pk)}
    assert orders[0].pk in unfinished and waiting.pk not in unfinished


def test_orders_with_a_closed_parcel_are_those_whose_parcel_closed() -> None:
    from quai.packing.models import Parcel, ParcelStatus
    from quai.packing.selectors import orders_with_closed_parcel
    from quai.warehouse.models import Location

    floor = floor_for(MerchantFactory(code="acme"))
    orders = [released_order(floor, f"CP-{n}", [(n % 3, 1)]) for n in range(3)]
    station = Location.objects.get(code="PAK-01")
    for order, status in zip(orders, (ParcelStatus.CLOSED, ParcelStatus.OPEN, ParcelStatus.CLOSED), strict=True):
        Parcel.objects.create(
            merchant=order.merchant,
            order_id=order.pk,
            order_reference=order.external_id,
            station=station,
            status=status,
        )
    ids = [o.pk for o in orders]
    assert orders_with_closed_parcel(scope=FLOOR, order_ids=ids) == {orders[0].pk, orders[2].pk}
    other = Scope.merchant(MerchantFactory(code="other").pk)
    assert orders_with_closed_parcel(scope=other, order_ids=ids) == set()
