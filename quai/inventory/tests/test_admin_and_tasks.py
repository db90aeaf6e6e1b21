from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quai.core import clock
from quai.inventory import services
from quai.inventory.models import StockLevel
from quai.inventory.tasks import stock_counting_sweep
from quai.inventory.tests.factories import LocationFactory, ZoneFactory, stocked_sku

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "page", ["stockmovement", "stockquantity", "stocklevel", "reservation", "stockpolicy", "movetask"]
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
