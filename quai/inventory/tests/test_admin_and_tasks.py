from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quai.core import clock
from quai.inventory import selectors, services
from quai.inventory.models import StockLevel
from quai.inventory.tasks import stock_counting_sweep
from quai.inventory.tests.factories import LocationFactory, ZoneFactory, stocked_sku

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "page", ["stockmovement", "stockquantity", "stocklevel", "reservation", "stockpolicy", "movetask", "counttask"]
)
def test_the_back_office_lists_stock_read_only(admin_client, merchant, page):
    sku, _location = stocked_sku(merchant=merchant, quantity=3)
    services.reservation_create(merchant=merchant, sku=sku, quantity=1)
    response = admin_client.get(f"/admin/inventory/{page}/", headers={"accept-language": "en"})
    assert response.status_code == 200
    if page != "stockpolicy":
        assert admin_client.get(f"/admin/inventory/{page}/add/").status_code == 403


def test_the_periodic_sweep_takes_an_ended_window_out_of_availability(merchant):
    start = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    clock.set_now(start)
    zone = ZoneFactory(valid_from=start - timedelta(hours=1), valid_until=start + timedelta(hours=1))
    sku, _location = stocked_sku(merchant=merchant, quantity=4, location=LocationFactory(zone=zone))
    assert StockLevel.objects.get(sku=sku).on_hand == 4
    clock.advance(timedelta(hours=2))
    assert stock_counting_sweep.delay().get() == {"added": 0, "removed": 1, "held": 0}
    assert StockLevel.objects.get(sku=sku).on_hand == 0


def test_a_temporary_zone_whose_window_moves_to_now_counts_at_once_without_the_sweep(merchant):
    from quai.warehouse.services import zone_update

    start = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    clock.set_now(start)
    zone = ZoneFactory(valid_from=start + timedelta(days=2), valid_until=start + timedelta(days=3))
    location = LocationFactory(zone=zone)
    sku, _location = stocked_sku(merchant=merchant, quantity=4, location=location)
    assert StockLevel.objects.get(sku=sku).on_hand == 0, "before its window the zone's stock does not count"

    zone = zone_update(zone=zone, version=zone.version, valid_from=start - timedelta(minutes=1))
    assert StockLevel.objects.get(sku=sku).on_hand == 4

    zone_update(zone=zone, version=zone.version, valid_until=start)
    assert StockLevel.objects.get(sku=sku).on_hand == 0, "a window ended now takes the stock out at once"


def test_locations_moved_into_a_zone_before_its_window_leave_availability_at_once(merchant):
    from quai.warehouse.services import locations_move_to_zone

    start = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    clock.set_now(start)
    sku, location = stocked_sku(merchant=merchant, quantity=5)
    later = ZoneFactory(site=location.site, valid_from=start + timedelta(days=1))
    locations_move_to_zone(zone=later, location_ids=[location.pk])
    assert StockLevel.objects.get(sku=sku).on_hand == 0
    locations_move_to_zone(zone=ZoneFactory(site=location.site), location_ids=[location.pk])
    assert StockLevel.objects.get(sku=sku).on_hand == 5
    assert selectors.stock_drift() == []
