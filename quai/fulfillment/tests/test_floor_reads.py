"""The floor's reads that a wave and the simulated day make at every release: the zones' layouts read together,
the orders a release sent to the floor, the open batches found through the site's index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.fulfillment import domain, selectors, services
from quai.fulfillment.tests.factories import Floor, floor_for, released_order, wave_for
from quai.inventory.services import stock_receive
from quai.tenants.scope import Scope
from quai.tenants.tests.factories import MerchantFactory
from quai.warehouse.models import Location, ZoneKind
from quai.warehouse.services import location_create, rack_bulk_create, zone_create

pytestmark = pytest.mark.django_db

SCOPE = Scope.system("floor reads test")


def test_the_zones_layouts_read_together_are_each_zone_s_own_layout(merchant):
    floor = floor_for(merchant, skus=2)
    reserve = zone_create(site=floor.site, code="RSV", name="Reserve", kind=ZoneKind.STORAGE)
    rack_bulk_create(site=floor.site, zone=reserve, aisles="A-C", bays=4, levels=2, origin_x_m=40, origin_y_m=12)
    loose = zone_create(site=floor.site, code="LSE", name="Loose", kind=ZoneKind.PICKING)
    location_create(site=floor.site, zone=loose, code="LSE-01", x_m=3, y_m=7)
    location_create(site=floor.site, zone=loose, code="LSE-02", x_m=5, y_m=2)
    # A second pack station off the first one's x: the depot stands between them, as one zone at a time puts it.
    packing = Location.objects.get(code="PAK-01").zone
    location_create(site=floor.site, zone=packing, code="PAK-02", x_m=9.5, y_m=5)
    other = floor_for(merchant, skus=1, site_code="other", prefix="OT")
    zone_ids = [reserve.pk, floor.zone.pk, loose.pk, other.zone.pk, reserve.pk]

    with CaptureQueriesContext(connection) as together:
        layouts = services.zone_layouts(zone_ids=zone_ids)

    assert list(layouts) == [reserve.pk, floor.zone.pk, loose.pk, other.zone.pk]
    for zone_id, layout in layouts.items():
        assert layout == services.zone_layout(zone_id=zone_id)
    assert layouts[floor.zone.pk] != layouts[other.zone.pk]  # each site's own pack stations set its depot
    assert len(together.captured_queries) == 3  # the zones, their locations, the sites' pack stations


def test_a_wave_s_layouts_from_its_lines_are_the_zones_own_layouts(merchant):
    """``wave_layouts`` draws each zone's aisles from the database's smallest and largest coordinates per aisle and
    takes the places from the lines: the same layout and the same places as ``zone_layouts`` reads location by
    location, for racks with aisles of different lengths, loose places, and pack stations off the aisles."""
    floor = floor_for(merchant, skus=2)
    reserve = zone_create(site=floor.site, code="RSV", name="Reserve", kind=ZoneKind.STORAGE)
    rack_bulk_create(site=floor.site, zone=reserve, aisles="A-C", bays=4, levels=2, origin_x_m=40, origin_y_m=12)
    rack_bulk_create(site=floor.site, zone=reserve, aisles="D", bays=7, levels=1, origin_x_m=52.25, origin_y_m=11.5)
    loose = zone_create(site=floor.site, code="LSE", name="Loose", kind=ZoneKind.PICKING)
    location_create(site=floor.site, zone=loose, code="LSE-01", x_m=3.33, y_m=7.07)
    location_create(site=floor.site, zone=loose, code="LSE-02", x_m=5, y_m=2.01)
    packing = Location.objects.get(code="PAK-01").zone
    location_create(site=floor.site, zone=packing, code="PAK-02", x_m=9.55, y_m=5)
    zones = [reserve.pk, floor.zone.pk, loose.pk]
    lines = [
        domain.PickLine(
            line_id=k,
            reservation_id=k,
            sku_id=1,
            location_id=loc.pk,
            zone_id=loc.zone_id,
            aisle=loc.aisle,
            x=float(loc.x_m),
            y=float(loc.y_m),
            lot="",
            quantity=1,
        )
        for k, loc in enumerate(list(Location.objects.filter(zone_id__in=zones).order_by("pk"))[::3])
    ]

    with CaptureQueriesContext(connection) as read:
        layouts = services.wave_layouts(site_id=floor.site.pk, lines=lines)

    expected = services.zone_layouts(zone_ids=zones)
    assert sorted(layouts) == sorted({line.zone_id for line in lines})
    for zone_id, layout in layouts.items():
        assert layout.layout == expected[zone_id].layout
        assert layout.places == {
            line.location_id: expected[zone_id].places[line.location_id] for line in lines if line.zone_id == zone_id
        }
    assert len(read.captured_queries) == 2  # the zones' aisles, the site's pack stations
    assert services.wave_layouts(site_id=floor.site.pk, lines=[]) == {}


def test_a_zone_not_found_has_no_layout(merchant):
    floor = floor_for(merchant, skus=1)
    assert list(services.zone_layouts(zone_ids=[floor.zone.pk, 999_999])) == [floor.zone.pk]
    assert services.zone_layouts(zone_ids=[]) == {}


def test_a_wave_s_orders_are_those_of_its_batches_not_of_the_earlier_open_ones(merchant):
    floor = floor_for(merchant, skus=4)
    first = [released_order(floor, f"W1-{n}", [(n % 4, 1)]) for n in range(3)]
    wave_one = wave_for(floor, capacity=10, totes=2)
    second = [released_order(floor, f"W2-{n}", [(n % 4, 1), ((n + 1) % 4, 1)]) for n in range(4)]
    wave_two = wave_for(floor, capacity=10, totes=2)

    assert selectors.wave_order_ids(scope=SCOPE, wave_id=wave_one.pk) == sorted(o.pk for o in first)
    assert selectors.wave_order_ids(scope=SCOPE, wave_id=wave_two.pk) == sorted(o.pk for o in second)
    # Both waves' batches are still open: the site's open batches hold both waves' orders.
    assert selectors.site_open_batch_order_ids(scope=SCOPE, site_id=floor.site.pk) == sorted(
        o.pk for o in first + second
    )
    assert selectors.wave_order_ids(scope=Scope.merchant(merchant.pk + 1), wave_id=wave_two.pk) == []


def test_the_open_batches_of_a_site_are_found_through_its_site_and_status_index(merchant):
    floor = floor_for(merchant, skus=2)
    released_order(floor, "IDX-1", [(0, 1)])
    wave_for(floor)
    query = selectors.batch_list(site_id=floor.site.pk, status="open").query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = " ".join(str(row) for row in cursor.fetchall())
            assert "pick_batch_site_status_idx" in plan, plan
        else:
            # PostgreSQL's planner picks by its statistics (a few rows: a sequential scan); the index exists.
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname = 'pick_batch_site_status_idx'")
            assert cursor.fetchall()


def test_a_release_room_counts_its_merchant_s_waves_of_the_last_hour_only(merchant):
    noon = datetime(2030, 3, 5, 12, tzinfo=UTC)
    clock.set_now(noon - timedelta(hours=3))
    floor = floor_for(merchant, skus=3)
    rival = MerchantFactory(code="rival")
    rival_floor = Floor(site=floor.site, zone=floor.zone, merchant=rival)
    for k, shelf in enumerate(list(floor.places.values())):
        sku = SkuFactory(merchant=rival, code=f"RV-{k}", weight_g=200, length_mm=100, width_mm=100, height_mm=50)
        stock_receive(sku=sku, location=shelf, quantity=20)
        rival_floor.skus.append(sku)
    services.release_limit_set(merchant=merchant, site=floor.site, source="campaign:1", orders_per_hour=10)
    services.release_limit_set(merchant=merchant, site=floor.site, source="manual", lines_per_hour=20)
    for n in range(2):  # two hours before noon: out of the window
        released_order(floor, f"OLD-{n}", [(0, 1), (1, 1)])
    wave_for(floor)
    clock.set_now(noon - timedelta(minutes=30))
    for n in range(3):
        released_order(floor, f"NEW-{n}", [(n % 3, 1), ((n + 1) % 3, 1)])
    for n in range(4):
        released_order(rival_floor, f"RIV-{n}", [(n % 3, 1)])
    assert wave_for(floor).order_count == 7
    clock.set_now(noon)

    with CaptureQueriesContext(connection) as reads:
        rooms = selectors.release_rooms(scope=SCOPE, site_id=floor.site.pk, at=noon)

    assert list(rooms) == [merchant.pk]  # the rival has no limit: its orders are not counted for anyone
    assert (rooms[merchant.pk].orders_left, rooms[merchant.pk].lines_left) == (10 - 3, 20 - 6)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN QUERY PLAN " + reads.captured_queries[-1]["sql"])
            plan = " ".join(str(row) for row in cursor.fetchall())
        # From the window's waves to their batches' tasks, not through every task the merchant ever had.
        assert "wave_site_created_idx" in plan and "picktask_batch_id" in plan, plan
        assert "picktask_merchant_id" not in plan, plan
