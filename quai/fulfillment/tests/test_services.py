from __future__ import annotations

import pytest

from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent
from quai.fulfillment import selectors, services
from quai.fulfillment.models import BatchStatus, PickScan, TaskStatus
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.inventory.models import MovementKind, StockMovement, StockQuantity
from quai.inventory.selectors import stock_drift
from quai.orders.models import Order
from quai.orders.services import order_hold
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def _pick_all(batch, operator):  # type: ignore[no-untyped-def]
    task = services.current_task(batch)
    while task is not None:
        services.pick_scan(batch_id=batch.pk, operator=operator, code=task.location.code)
        services.pick_scan(batch_id=batch.pk, operator=operator, code=task.sku.gtin)
        task = services.pick_scan(batch_id=batch.pk, operator=operator, code=task.tote.code)


def test_a_wave_batches_released_orders_along_an_optimal_route(merchant):
    floor = floor_for(merchant)
    for n in range(5):
        released_order(floor, f"W-{n}", [(n, 1), (n + 1, 2)])
    wave = wave_for(floor, totes=3)
    assert wave.order_count == 5
    batches = list(wave.batches.all())
    assert sum(b.tasks.values("order_id").distinct().count() for b in batches) == 5
    for batch in batches:
        assert batch.routing == "optimal"
        assert batch.route_m <= batch.s_shape_m + 1e-6
        assert batch.route_m <= batch.largest_gap_m + 1e-6
        assert batch.route_m <= batch.order_by_order_m + 1e-6
        assert batch.totes.count() <= 3


def test_picking_a_batch_moves_units_into_totes_and_keeps_them_in_the_ledger(merchant, staff_user):
    floor = floor_for(merchant)
    order = released_order(floor, "P-1", [(0, 2), (3, 1)])
    batch = wave_for(floor).batches.get()
    services.batch_start(batch_id=batch.pk, operator=staff_user)
    assert Order.objects.get(pk=order.pk).status == "picking"
    _pick_all(batch, staff_user)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
    assert Order.objects.get(pk=order.pk).status == "picking"  # the packer moves it on
    tote = batch.totes.get()
    in_tote = StockQuantity.objects.filter(location=tote.location)
    assert sum(row.on_hand for row in in_tote) == 3 and sum(row.reserved for row in in_tote) == 3
    assert StockMovement.objects.filter(kind=MovementKind.PICK, to_location=tote.location).count() == 2
    assert stock_drift() == []
    contents = selectors.tote_contents(scope=Scope.merchant(merchant), tote_code=tote.code)
    assert contents.order_ids == [order.pk] and contents.complete
    assert sorted((u.sku_code, u.quantity) for u in contents.units) == [("FL-00", 2), ("FL-03", 1)]
    assert sum(u.quantity for u in selectors.order_picked_units(scope=Scope.merchant(merchant), order_id=order.pk)) == 3
    names = list(OutboxEvent.objects.values_list("name", flat=True))
    assert names.count("fulfilment.pick_confirmed") == 2 and names.count("fulfilment.tote_completed") == 1
    assert PickScan.objects.filter(batch=batch, accepted=True, operator=staff_user).count() >= 6


def test_a_wrong_item_or_location_is_refused_and_recorded(merchant, staff_user):
    floor = floor_for(merchant)
    released_order(floor, "R-1", [(0, 1)])
    released_order(floor, "R-2", [(4, 1)])
    batch = wave_for(floor).batches.get()
    services.batch_start(batch_id=batch.pk, operator=staff_user)
    task = services.current_task(batch)
    with pytest.raises(QuaiError) as refused:
        services.pick_scan(batch_id=batch.pk, operator=staff_user, code="Z-99-99-99")
    assert refused.value.code == "wrong_location"
    services.pick_scan(batch_id=batch.pk, operator=staff_user, code=task.location.code)
    other = next(s for s in floor.skus[:5] if s.pk != task.sku_id and s.code in ("FL-00", "FL-04"))
    with pytest.raises(QuaiError) as refused:
        services.pick_scan(batch_id=batch.pk, operator=staff_user, code=other.gtin)
    assert refused.value.code == "wrong_item"
    assert refused.value.details["other_order"] is True
    with pytest.raises(QuaiError) as refused:
        services.pick_scan(batch_id=batch.pk, operator=staff_user, code="nothing-like-it")
    assert refused.value.code == "unknown_code"
    refusals = list(PickScan.objects.filter(batch=batch, accepted=False).values_list("error_code", flat=True))
    assert refusals == ["wrong_location", "wrong_item", "unknown_code"]


def test_a_quantity_below_one_at_the_tote_is_refused_recorded_and_moves_nothing(merchant, staff_user):
    # A typed -3 (the screen stops it now; a service caller need not) was refused, then its refused scan's record
    # broke the quantity column's check (positive): IntegrityError, a 500, and no record.
    floor = floor_for(merchant)
    released_order(floor, "Q-1", [(0, 2)])
    batch = wave_for(floor).batches.get()
    services.batch_start(batch_id=batch.pk, operator=staff_user)
    task = services.current_task(batch)
    services.pick_scan(batch_id=batch.pk, operator=staff_user, code=task.location.code)
    services.pick_scan(batch_id=batch.pk, operator=staff_user, code=task.sku.gtin)
    for typed in (-3, 0):
        with pytest.raises(QuaiError) as refused:
            services.pick_scan(batch_id=batch.pk, operator=staff_user, code=task.tote.code, quantity=typed)
        assert refused.value.code == "invalid_quantity"
    refusals = list(PickScan.objects.filter(batch=batch, accepted=False).values_list("error_code", "quantity"))
    assert refusals == [("invalid_quantity", None), ("invalid_quantity", 0)]
    task.refresh_from_db()
    assert task.picked_quantity == 0
    assert not StockMovement.objects.filter(kind=MovementKind.PICK).exists()


def test_a_held_order_stops_being_picked_with_a_clear_message(merchant, staff_user):
    floor = floor_for(merchant)
    held = released_order(floor, "H-1", [(0, 1)])
    kept = released_order(floor, "H-2", [(2, 1)])
    batch = wave_for(floor).batches.get()
    services.batch_start(batch_id=batch.pk, operator=staff_user)
    order_hold(order=held.pk, reason="fraud")
    first = services.current_task(batch)
    with pytest.raises(QuaiError) as stopped:
        services.pick_scan(batch_id=batch.pk, operator=staff_user, code=first.location.code)
        services.pick_scan(batch_id=batch.pk, operator=staff_user, code=first.sku.gtin)
    assert stopped.value.code == "order_on_hold"
    assert "H-1" in str(stopped.value.message)
    assert not batch.tasks.filter(order_id=held.pk, status=TaskStatus.OPEN).exists()
    _pick_all(batch, staff_user)
    assert Order.objects.get(pk=kept.pk).status == "picking"


def test_one_batch_at_a_time_and_pause_resume(merchant, staff_user):
    floor = floor_for(merchant)
    for n in range(3):
        released_order(floor, f"O-{n}", [(n, 2)])
    batches = list(wave_for(floor, totes=1).batches.all())
    assert len(batches) == 3
    services.batch_start(batch_id=batches[0].pk, operator=staff_user)
    with pytest.raises(QuaiError) as busy:
        services.batch_start(batch_id=batches[1].pk, operator=staff_user)
    assert busy.value.code == "operator_busy"
    services.batch_pause(batch_id=batches[0].pk, operator=staff_user)
    with pytest.raises(QuaiError) as paused:
        services.pick_scan(batch_id=batches[0].pk, operator=staff_user, code="M-01-01-01")
    assert paused.value.code == "pick_batch_not_picking"
    services.batch_resume(batch_id=batches[0].pk, operator=staff_user)


def test_a_short_pick_is_backordered_or_taken_elsewhere(merchant, staff_user):
    floor = floor_for(merchant)
    order = released_order(floor, "S-1", [(0, 3)])
    batch = wave_for(floor).batches.get()
    services.batch_start(batch_id=batch.pk, operator=staff_user)
    task = services.current_task(batch)
    services.pick_scan(batch_id=batch.pk, operator=staff_user, code=task.location.code)
    services.pick_scan(batch_id=batch.pk, operator=staff_user, code=task.sku.gtin)
    services.pick_short(batch_id=batch.pk, operator=staff_user, found_quantity=1, resolution="backorder")
    line = Order.objects.get(pk=order.pk).lines.get()
    assert (line.reserved_quantity, line.backordered_quantity) == (1, 2)
    assert OutboxEvent.objects.filter(name="fulfilment.pick_short").count() == 1
    assert stock_drift() == []
    batch.refresh_from_db()
    assert batch.status == BatchStatus.DONE
    tote = batch.totes.get()
    assert sum(r.reserved for r in StockQuantity.objects.filter(location=tote.location)) == 1


def test_the_schedule_releases_the_next_n_waiting_orders(merchant):
    floor = floor_for(merchant)
    for n in range(4):
        released_order(floor, f"N-{n}", [(n, 2)])
    assert services.waves_release_scheduled(size=0) == []
    (wave_id,) = services.waves_release_scheduled(size=3)
    from quai.fulfillment.models import Wave

    assert Wave.objects.get(pk=wave_id).order_count == 3 and Wave.objects.get(pk=wave_id).scheduled
    (second,) = services.waves_release_scheduled(size=3)
    assert Wave.objects.get(pk=second).order_count == 1


def test_a_supervisor_releases_a_wave_from_the_back_office(merchant, client, staff_user):
    floor = floor_for(merchant)
    released_order(floor, "BO-1", [(0, 2)])
    client.force_login(staff_user)
    answer = client.post(
        "/admin/fulfillment/wave/add/",
        {"site": floor.site.pk, "capacity": 10, "totes": 4, "carrier_services": "", "promised_by": ""},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    from quai.fulfillment.models import PickBatch, Wave

    wave = Wave.objects.get()
    assert wave.order_count == 1 and wave.created_by == staff_user
    batch = PickBatch.objects.get()
    assert client.get(f"/admin/fulfillment/pickbatch/{batch.pk}/change/").status_code == 200
