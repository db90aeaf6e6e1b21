"""The fulfilment reads packing and the simulation make for many orders at once give what the one-order reads give
for each: ``orders_picking_done`` as ``order_picking_done``, ``orders_tote_codes`` as the totes of
``order_picked_units``, ``order_picking_unfinished`` as an order with tasks not yet done."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from quai.fulfillment import selectors, services
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
    totes = selectors.orders_tote_codes(scope=FLOOR, order_ids=ids)
    for pk in ids:
        codes = {u.tote_code for u in selectors.order_picked_units(scope=FLOOR, order_id=pk) if u.tote_code}
        assert totes.get(pk, set()) == codes
    assert any(totes.values())
    open_lines = selectors.site_open_pick_lines(scope=FLOOR, site_id=floor.site.pk)
    assert open_lines == sum(1 for b in batches[1:] for t in b.tasks.all() if t.status == "open")
    assert selectors.orders_awaiting_wave_exist(scope=FLOOR)
