"""Layout routes fed what no warehouse has: answered 422 in the error format, never a 500 (found by fuzzing)."""

from __future__ import annotations

import pytest

from quai.warehouse.models import Location, Site
from quai.warehouse.tests.factories import SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone():  # type: ignore[no-untyped-def]
    return ZoneFactory(site=SiteFactory(code="lyon"), code="STO", kind="storage")


def _refused(response, field: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in [f["field"] for f in error["details"]["fields"]]


def test_a_rack_whose_origin_is_beyond_any_coordinate_is_refused_instead_of_a_server_error(staff_api, zone):
    # Was a 500: decimal.InvalidOperation while quantizing 1e30 metres to centimetres.
    body = {"zone_id": zone.pk, "aisles": "A", "bays": 1, "levels": 1, "origin_x_m": "1e30"}
    _refused(staff_api.post(f"warehouse/sites/{zone.site_id}/racks", body), "origin_x_m")
    _refused(
        staff_api.post(f"warehouse/sites/{zone.site_id}/racks", {**body, "origin_x_m": 0, "bay_width_m": 1e9}),
        "bay_width_m",
    )
    assert not Location.objects.exists()


def test_a_rack_pattern_longer_than_any_rack_is_refused(staff_api, zone):
    body = {"zone_id": zone.pk, "aisles": "A," * 200, "bays": 1, "levels": 1}
    _refused(staff_api.post(f"warehouse/sites/{zone.site_id}/racks", body), "aisles")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_volume_cm3", 10**20),  # was a 500: OverflowError, Python int too large for SQLite INTEGER
        ("pick_sequence", 3_000_000_000),  # beyond PositiveIntegerField: a 500 on PostgreSQL
        ("bay", 3_000_000_000),
        ("x_m", "1e20"),  # DecimalField(max_digits=8): a 500 on PostgreSQL
        ("aisle", "A" * 11),  # varchar(10)
    ],
)
def test_a_location_beyond_its_columns_is_refused_before_the_database(staff_api, zone, field, value):
    _refused(staff_api.post("warehouse/locations", {"zone_id": zone.pk, "code": "X-1", field: value}), field)
    assert not Location.objects.exists()


def test_a_site_with_an_address_longer_than_its_columns_is_refused(staff_api):
    _refused(staff_api.post("warehouse/sites", {"code": "S8", "name": "Site", "city": "c" * 101}), "city")
    site = SiteFactory(code="lyon")
    _refused(staff_api.patch(f"warehouse/sites/{site.pk}", {"postal_code": "9" * 21}), "postal_code")
    assert list(Site.objects.values_list("code", flat=True)) == ["lyon"]


def test_opening_hours_with_a_utc_offset_are_refused_instead_of_a_server_error(staff_api):
    # Fuzzer finding: POST /api/v1/warehouse/sites with opens_at "08:00:00Z" and a plain closes_at was a 500
    # (TypeError: can't compare offset-naive and offset-aware times).
    body = {"code": "S7", "name": "Site", "opens_at": "08:00:00Z", "closes_at": "18:00:00"}
    _refused(staff_api.post("warehouse/sites", body), "opens_at")
    site = SiteFactory(code="lyon")
    _refused(staff_api.patch(f"warehouse/sites/{site.pk}", {"closes_at": "18:00:00+02:00"}), "closes_at")
    assert list(Site.objects.values_list("code", flat=True)) == ["lyon"]
    created = staff_api.post("warehouse/sites", {**body, "opens_at": "08:00:00"})
    assert created.status_code == 201, created.content


def test_moving_locations_named_by_ids_beyond_any_database_integer_is_refused_instead_of_a_server_error(
    staff_api, zone
):
    # Fuzzer finding: POST /api/v1/warehouse/zones/{id}/locations with location_ids [10**21] was a 500 on SQLite
    # (OverflowError in the pk__in lookup of locations_move_to_zone).
    response = staff_api.post(f"warehouse/zones/{zone.pk}/locations", {"location_ids": [10**21]})
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"]["fields"][0]["field"].startswith("location_ids")
