"""The floor's hot reads written once (``quai.fulfillment.statements``) return what their ORM forms returned: each
ORM form is kept here as it was, and both run on the same floor — two merchants, two waves, a started batch, a
picked one, a cancelled task, a held order, an order still waiting — for every scope (the system's, each
merchant's) and for nothing to read."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Count, Max, Min, Q

from quai.catalog.tests.factories import SkuFactory
from quai.fulfillment import selectors, services, statements
from quai.fulfillment.models import BatchStatus, PickBatch, PickTask, TaskStatus
from quai.fulfillment.tests.factories import Floor, floor_for, released_order, wave_for
from quai.inventory.services import stock_receive
from quai.orders.models import Order, OrderLine
from quai.orders.selectors import order_list
from quai.tenants.scope import Scope
from quai.warehouse.models import Location, ZoneKind

pytestmark = pytest.mark.django_db


def _floor(merchant: Any, other_merchant: Any) -> dict[str, Any]:
    floor = floor_for(merchant, skus=4)
    rival = Floor(site=floor.site, zone=floor.zone, merchant=other_merchant)
    for k, shelf in enumerate(list(floor.places.values())[:2]):
        sku = SkuFactory(merchant=other_merchant, code=f"RV-{k}", weight_g=150, length_mm=90, width_mm=80, height_mm=40)
        stock_receive(sku=sku, location=shelf, quantity=50)
        rival.skus.append(sku)
    for n in range(3):
        released_order(floor, f"A-{n}", [(n % 4, 1), ((n + 1) % 4, 2)])
        released_order(rival, f"B-{n}", [(n % 2, 1)])
    first = wave_for(floor, capacity=4, totes=2)
    second = wave_for(floor, capacity=10, totes=2)
    waiting = released_order(floor, "WAIT", [(3, 1)])  # after the waves: it waits
    batches = list(PickBatch.objects.order_by("pk"))
    services.batches_paper_picked_many(
        picks=[services.PaperPick(batch_id=batches[0].pk, picker=_picker("p1"))], supervisor=_supervisor()
    )
    PickBatch.objects.filter(pk=batches[1].pk).update(status=BatchStatus.PICKING)
    cancelled = PickTask.objects.filter(batch_id=batches[-1].pk).order_by("pk").first()
    assert cancelled is not None
    PickTask.objects.filter(pk=cancelled.pk).update(status=TaskStatus.CANCELLED)
    held = PickTask.objects.filter(status=TaskStatus.OPEN).order_by("-pk").first()
    assert held is not None
    Order.objects.filter(pk=held.order_id).update(status="held")
    return {
        "floor": floor,
        "waves": [first.pk, second.pk, 999_999],
        "batches": [b.pk for b in batches] + [999_999],
        "orders": [*Order.objects.order_by("pk").values_list("pk", flat=True), 999_999],
        "waiting": waiting,
        "scopes": [
            Scope.system("statements test"),
            Scope.merchant(merchant.pk),
            Scope.merchant(other_merchant.pk),
            Scope.merchant(other_merchant.pk + 100),
        ],
    }


def _picker(name: str) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=name, password=None)


def _supervisor() -> Any:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from quai.tenants.models import StaffRole

    user = get_user_model().objects.create_user(username="boss", password=None, is_staff=True)
    group, _created = Group.objects.get_or_create(name=StaffRole.SUPERVISOR)
    user.groups.add(group)
    return user


# --- The ORM forms, as they were -------------------------------------------------------------------------------


def _orm_picking_done(scope: Scope, order_ids: list[int]) -> set[int]:
    rows = (
        PickTask.objects.filter(order_id__in=list(order_ids))
        .filter(scope.q())
        .values("order_id")
        .annotate(still_open=Count("pk", filter=Q(status=TaskStatus.OPEN)))
        .values_list("order_id", "still_open")
        .order_by()
    )
    return {int(order_id) for order_id, still_open in rows if not still_open}


def _orm_open_pick_lines(scope: Scope, site_id: int) -> int:
    return (
        PickTask.objects.filter(batch__site_id=site_id, batch__status=BatchStatus.OPEN, status=TaskStatus.OPEN)
        .filter(scope.q())
        .count()
    )


def _orm_wave_order_ids(scope: Scope, wave_id: int) -> list[int]:
    rows = (
        PickTask.objects.filter(batch__wave_id=wave_id)
        .filter(scope.q())
        .values_list("order_id", flat=True)
        .distinct()
        .order_by("order_id")
    )
    return [int(order_id) for order_id in rows]


def _orm_tasks_to_pick(scope: Scope, batch_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {int(pk): [] for pk in batch_ids}
    rows = list(
        PickTask.objects.filter(batch_id__in=list(batch_ids), status=TaskStatus.OPEN)
        .filter(scope.q())
        .order_by("pk")
        .values_list("batch_id", "order_id")
    )
    going = set(
        order_list(scope=scope)
        .filter(pk__in={order_id for _batch, order_id in rows}, status__in=["released", "picking"])
        .order_by()
        .values_list("pk", flat=True)
    )
    for batch_id, order_id in rows:
        if order_id in going:
            found[int(batch_id)].append(int(order_id))
    return found


def _orm_awaiting(scope: Scope) -> bool:
    return order_list(scope=scope).filter(status="released").exclude(selectors.in_a_batch()).exists()


def _orm_task_rows(batch_ids: list[int]) -> list[tuple[Any, ...]]:
    return list(
        PickTask.objects.filter(batch_id__in=list(batch_ids))
        .order_by("sequence", "pk")
        .values_list(
            "pk",
            "batch_id",
            "status",
            "order_id",
            "merchant_id",
            "quantity",
            "picked_quantity",
            "sku_id",
            "reservation_id",
            "location_id",
            "lot",
            "tote_id",
            "sku__code",
            "location__code",
            "tote__code",
            "tote__location_id",
        )
    )


def _orm_open_lines(order_ids: list[int]) -> list[tuple[Any, ...]]:
    return list(
        OrderLine.objects.filter(order_id__in=order_ids, reserved_quantity__gt=0, reservation_id__isnull=False)
        .order_by("order_id", "position")
        .values_list(
            "pk",
            "order_id",
            "reservation_id",
            "sku_id",
            "sku__length_mm",
            "sku__width_mm",
            "sku__height_mm",
            "sku__weight_g",
        )
    )


def _orm_spans(zone_ids: list[int]) -> set[tuple[Any, ...]]:
    rows = (
        Location.objects.filter(zone_id__in=zone_ids)
        .values("zone_id", "aisle")
        .annotate(min_x=Min("x_m"), max_x=Max("x_m"), min_y=Min("y_m"), max_y=Max("y_m"))
        .order_by()
        .values_list("zone_id", "aisle", "min_x", "max_x", "min_y", "max_y")
    )
    return {(z, a, *(float(v) for v in figures)) for z, a, *figures in rows}


def _orm_stations(site_id: int) -> list[float]:
    rows = Location.objects.filter(site_id__in=[site_id], zone__kind=ZoneKind.PACKING).values_list("site_id", "x_m")
    return [float(x) for _site, x in rows]


# --- Old and new, side by side ---------------------------------------------------------------------------------


def test_the_floor_s_reads_written_once_return_what_their_orm_forms_returned(merchant, other_merchant):
    world = _floor(merchant, other_merchant)
    floor, orders, batches = world["floor"], world["orders"], world["batches"]
    assert PickTask.objects.filter(status=TaskStatus.PICKED).exists()  # the floor has every kind of task
    assert PickTask.objects.filter(status=TaskStatus.CANCELLED).exists()
    assert PickTask.objects.filter(status=TaskStatus.OPEN).exists()

    for scope in world["scopes"]:
        assert selectors.orders_picking_done(scope=scope, order_ids=orders) == _orm_picking_done(scope, orders)
        assert selectors.orders_picking_done(scope=scope, order_ids=[]) == set()
        site = floor.site.pk
        assert selectors.site_open_pick_lines(scope=scope, site_id=site) == _orm_open_pick_lines(scope, site)
        for wave_id in world["waves"]:
            expected = _orm_wave_order_ids(scope, wave_id)
            assert selectors.wave_order_ids(scope=scope, wave_id=wave_id) == expected
        assert selectors.batches_tasks_to_pick(scope=scope, batch_ids=batches) == _orm_tasks_to_pick(scope, batches)
        assert selectors.batches_tasks_to_pick(scope=scope, batch_ids=[]) == {}
        assert selectors.orders_awaiting_wave_exist(scope=scope) == _orm_awaiting(scope)
    assert selectors.orders_awaiting_wave_exist(scope=world["scopes"][0]) is True
    assert selectors.orders_awaiting_wave_exist(scope=world["scopes"][3]) is False

    assert statements.task_rows(batches) == _orm_task_rows(batches)
    assert statements.task_rows([]) == []
    assert statements.open_lines(orders) == _orm_open_lines(orders)
    zones = [*Location.objects.values_list("zone_id", flat=True).distinct(), 999_999]
    spans = statements.aisle_spans(zones)
    assert {(z, a, *(float(v) for v in figures)) for z, a, *figures in spans} == _orm_spans(zones)
    assert len(spans) == len(_orm_spans(zones))
    assert [float(x) for x in statements.station_xs(floor.site.pk)] == _orm_stations(floor.site.pk)


def test_nothing_waits_for_a_wave_once_every_released_order_is_in_a_batch(merchant, other_merchant):
    floor = floor_for(merchant, skus=2)
    released_order(floor, "ONLY", [(0, 1)])
    system = Scope.system("statements test")
    assert selectors.orders_awaiting_wave_exist(scope=system) is True
    wave_for(floor)
    assert selectors.orders_awaiting_wave_exist(scope=system) is False == _orm_awaiting(system)
    task = PickTask.objects.get()
    PickTask.objects.filter(pk=task.pk).update(status=TaskStatus.CANCELLED)  # a cancelled pick: it waits again
    assert selectors.orders_awaiting_wave_exist(scope=system) is True == _orm_awaiting(system)
