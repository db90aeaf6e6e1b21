"""The layout API: staff only, thin over the services, errors with their codes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from quai.warehouse import services
from quai.warehouse.domain import ZoneCloseBlocker
from quai.warehouse.models import Location, Site, Zone, ZoneStatus
from quai.warehouse.tests.factories import ISOLATION_FACTORIES, LocationFactory, SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site() -> Site:
    return SiteFactory(code="lyon", name="Lyon Gerland")


@pytest.fixture
def zone(site: Site) -> Zone:
    return ZoneFactory(site=site, code="STO", kind="storage")


def test_staff_create_a_site_a_zone_and_a_rack_then_list_the_locations(staff_api):
    site = staff_api.post(
        "warehouse/sites",
        {
            "code": "lille",
            "name": "Lille Nord",
            "city": "Lille",
            "opening_days": [1, 2, 3, 4, 5, 6],
            "opens_at": "06:00",
        },
    )
    assert site.status_code == 201, site.json()
    site_id = site.json()["id"]
    assert site.json()["opening_days"] == [1, 2, 3, 4, 5, 6]

    zone = staff_api.post("warehouse/zones", {"site_id": site_id, "code": "sto", "name": "Réserve", "kind": "storage"})
    assert zone.status_code == 201, zone.json()
    assert (zone.json()["code"], zone.json()["version"]) == ("STO", 1)

    rack = staff_api.post(
        f"warehouse/sites/{site_id}/racks",
        {"zone_id": zone.json()["id"], "aisles": "A-B", "bays": "1-10", "levels": 3, "max_weight_g": 200000},
    )
    assert rack.status_code == 201, rack.json()
    assert rack.json()["count"] == 60

    page = staff_api.get("warehouse/locations", site_id=site_id, aisle="b", code_prefix="B-0", limit=5)
    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 27  # B-01 … B-09, three levels each
    assert len(body["items"]) == 5
    assert all(item["code"].startswith("B-0") for item in body["items"])
    assert body["items"][0]["max_weight_g"] == 200000


def test_a_merchant_key_gets_403_staff_only_on_the_layout(api, site, zone):
    assert api.get("warehouse/sites").json()["error"]["code"] == "staff_only"
    response = api.post("warehouse/zones", {"site_id": site.pk, "code": "X", "name": "X", "kind": "storage"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "staff_only"
    response = api.post(f"warehouse/zones/{zone.pk}/close")
    assert response.status_code == 403
    assert Zone.objects.get(pk=zone.pk).status == ZoneStatus.OPEN


def test_every_warehouse_route_refuses_a_merchant_key(api, merchant):
    from quai.warehouse.api import router

    seen = 0
    for path, view in router.path_operations.items():
        url = f"/api/v1/warehouse{path}"
        for parameter, make in ISOLATION_FACTORIES.items():
            url = url.replace("{" + parameter + "}", str(make(merchant)))
        assert "{" not in url, f"no isolation factory for a parameter of {path}"
        for operation in view.operations:
            for method in operation.methods:
                response = getattr(api, method.lower())(url)
                assert response.status_code == 403, (method, url, response.content)
                assert response.json()["error"]["code"] == "staff_only"
                seen += 1
    assert seen >= 18


def test_a_bad_zone_kind_is_422_with_its_code_and_writes_nothing(staff_api, site):
    response = staff_api.post("warehouse/zones", {"site_id": site.pk, "code": "F", "name": "Froid", "kind": "freezer"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_zone_kind"
    assert not Zone.objects.exists()


def test_a_duplicate_location_code_is_409_with_its_code(staff_api, zone):
    first = staff_api.post("warehouse/locations", {"zone_id": zone.pk, "code": "A-01-01-01", "x_m": "1.5"})
    assert first.status_code == 201
    assert (first.json()["aisle"], first.json()["side"], first.json()["x_m"]) == ("A", "left", "1.50")
    again = staff_api.post("warehouse/locations", {"zone_id": zone.pk, "code": "a-01-01-01"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_location_code"
    assert Location.objects.count() == 1


def test_a_rack_clashing_with_an_existing_code_is_409_and_creates_nothing(staff_api, site, zone):
    LocationFactory(zone=zone, code="A-02-01-01")
    response = staff_api.post(
        f"warehouse/sites/{site.pk}/racks", {"zone_id": zone.pk, "aisles": "A", "bays": 4, "levels": 2}
    )
    assert response.status_code == 409
    assert response.json()["error"]["details"]["codes"] == ["A-02-01-01"]
    assert Location.objects.count() == 1


def test_closing_a_zone_that_still_holds_something_is_409_with_the_blockers(staff_api, zone):
    services.register_zone_close_check(
        "test.locations",
        lambda z: (
            [ZoneCloseBlocker("locations", "locations", n)] if (n := Location.objects.filter(zone=z).count()) else []
        ),
    )
    try:
        location = LocationFactory(zone=zone)
        refused = staff_api.post(f"warehouse/zones/{zone.pk}/close")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "zone_not_empty"
        assert refused.json()["error"]["details"]["blockers"] == [
            {"kind": "locations", "message": "locations", "count": 1}
        ]
        other = ZoneFactory(site=zone.site, code="OTHER")
        moved = staff_api.post(f"warehouse/zones/{other.pk}/locations", {"location_ids": [location.pk]})
        assert moved.json() == {"zone_id": other.pk, "moved": 1, "already_there": 0}
        closed = staff_api.post(f"warehouse/zones/{zone.pk}/close")
        assert (closed.status_code, closed.json()["status"]) == (200, "closed")
        reopened = staff_api.post(f"warehouse/zones/{zone.pk}/open")
        assert reopened.json()["status"] == "open"
    finally:
        services.unregister_zone_close_check("test.locations")


def test_a_zone_edit_with_a_stale_version_is_409(staff_api, zone):
    ok = staff_api.patch(f"warehouse/zones/{zone.pk}", {"version": 1, "name": "Réserve B"})
    assert (ok.status_code, ok.json()["version"]) == (200, 2)
    stale = staff_api.patch(f"warehouse/zones/{zone.pk}", {"version": 1, "name": "Réserve C"})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale_version"


def test_zones_are_filtered_by_kind_and_time(staff_api, site, zone):
    ZoneFactory(
        site=site, code="BF", kind="picking", valid_from="2026-11-27T06:00:00Z", valid_until="2026-11-30T22:00:00Z"
    )
    picking = staff_api.get("warehouse/zones", kind="picking")
    assert [z["code"] for z in picking.json()["items"]] == ["BF"]
    later = staff_api.get("warehouse/zones", active_at="2026-12-15T10:00:00Z")
    assert [z["code"] for z in later.json()["items"]] == ["STO"]


def test_a_location_is_blocked_and_unblocked_through_the_api(staff_api, zone):
    location = LocationFactory(zone=zone)
    blocked = staff_api.post(f"warehouse/locations/{location.pk}/block", {"reason": "inventaire"})
    assert (blocked.json()["status"], blocked.json()["blocked_reason"]) == ("blocked", "inventaire")
    assert staff_api.get("warehouse/locations", status="blocked").json()["count"] == 1
    unblocked = staff_api.post(f"warehouse/locations/{location.pk}/unblock")
    assert unblocked.json()["status"] == "active"


def test_the_site_map_is_served_as_svg(staff_api, site, zone):
    services.rack_bulk_create(site=site, zone=zone, aisles="A-C", bays=6, levels=2)
    response = staff_api.get(f"warehouse/sites/{site.pk}/map.svg")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_an_unknown_site_is_404_site_not_found(staff_api):
    response = staff_api.get("warehouse/sites/999999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "site_not_found"


def test_a_location_is_blocked_without_a_reason_and_moves_refuse_unknown_ids(staff_api, zone):
    location = LocationFactory(zone=zone)
    blocked = staff_api.post(f"warehouse/locations/{location.pk}/block")
    assert (blocked.status_code, blocked.json()["blocked_reason"]) == (200, "")
    refused = staff_api.post(f"warehouse/zones/{zone.pk}/locations", {"location_ids": [location.pk, 999999]})
    assert refused.status_code == 404
    assert refused.json()["error"]["details"]["location_ids"] == [999999]


def test_a_bad_rack_pattern_is_422_with_its_code(staff_api, site, zone):
    response = staff_api.post(
        f"warehouse/sites/{site.pk}/racks", {"zone_id": zone.pk, "aisles": "F-A", "bays": 3, "levels": 1}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_rack_pattern"
    assert not Location.objects.exists()


def test_a_merchant_users_session_is_refused_too(client, merchant, site):
    from quai.tenants.tests.factories import MerchantUserFactory

    member = MerchantUserFactory(merchant=merchant)
    client.force_login(member.user)
    response = client.get(f"/api/v1/warehouse/sites/{site.pk}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "staff_only"


def test_without_credentials_the_layout_answers_401(client, site):
    assert client.get(f"/api/v1/warehouse/sites/{site.pk}").status_code == 401
