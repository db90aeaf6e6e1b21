"""The back office: the site map page, zone closing with the refusal shown, location actions."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import translation

from quai.warehouse import services
from quai.warehouse.domain import ZoneCloseBlocker
from quai.warehouse.models import Location, LocationStatus, Site, Zone, ZoneStatus
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def small_rack():
    site = SiteFactory(code="lyon", name="Lyon Gerland")
    storage = services.zone_create(site=site, code="STO", name="Réserve", kind="storage")
    picking = services.zone_create(site=site, code="PICK", name="Picking", kind="picking")
    services.rack_bulk_create(site=site, zone=storage, aisles="A-C", bays=8, levels=2)
    services.rack_bulk_create(site=site, zone=picking, aisles="D", bays=8, levels=1, origin_x_m=9)
    return site


def test_the_admin_map_page_shows_the_svg_with_its_legend_and_zones(staff_client, small_rack):
    services.location_block(location=Location.objects.get(code="B-03-01-01"))
    url = reverse("admin:warehouse_site_map", args=[small_rack.pk])
    response = staff_client.get(url, headers={"Accept-Language": "en"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html
    assert html.count('class="slot') == 3 * 8 + 8
    assert html.count('class="slot blocked"') == 1
    assert 'class="map-legend"' in html and "Storage / reserve" in html and "Picking" in html
    assert reverse("admin:warehouse_zone_change", args=[Zone.objects.get(code="PICK").pk]) in html


def test_the_admin_map_speaks_french_by_default(staff_client, small_rack):
    with translation.override("fr"):
        url = reverse("admin:warehouse_site_map", args=[small_rack.pk])
    assert not url.startswith("/en/")
    html = staff_client.get(url).content.decode()
    assert "Légende" in html and "emplacement bloqué" in html


def test_the_site_change_page_links_to_the_map(staff_client, small_rack):
    html = staff_client.get(reverse("admin:warehouse_site_change", args=[small_rack.pk])).content.decode()
    assert reverse("admin:warehouse_site_map", args=[small_rack.pk]) in html


def test_the_admin_serves_the_raw_svg(staff_client, small_rack):
    response = staff_client.get(reverse("admin:warehouse_site_map_svg", args=[small_rack.pk]))
    assert response["Content-Type"].startswith("image/svg+xml")


def test_a_non_staff_user_cannot_see_the_map(client, small_rack, django_user_model):
    client.force_login(django_user_model.objects.create_user("shopper", password="x"))
    response = client.get(reverse("admin:warehouse_site_map", args=[small_rack.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_closing_a_zone_that_holds_something_from_the_admin_shows_why_and_closes_the_others(staff_client):
    full, empty = ZoneFactory(code="FULL"), ZoneFactory(code="EMPTY")
    LocationFactory(zone=full)

    def check(zone: Zone) -> list[ZoneCloseBlocker]:
        count = Location.objects.filter(zone=zone).count()
        return [ZoneCloseBlocker(kind="locations", message="locations still mapped", count=count)] if count else []

    services.register_zone_close_check("test.admin", check)
    try:
        url = reverse("admin:warehouse_zone_changelist")
        response = staff_client.post(
            url,
            {"action": "close_selected", "_selected_action": [full.pk, empty.pk]},
            headers={"Accept-Language": "en"},
        )
    finally:
        services.unregister_zone_close_check("test.admin")
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("FULL" in t and "locations still mapped (1)" in t for t in texts), texts
    assert any("1 zone closed" in t for t in texts), texts
    assert Zone.objects.get(pk=full.pk).status == ZoneStatus.OPEN
    assert Zone.objects.get(pk=empty.pk).status == ZoneStatus.CLOSED


def test_locations_are_blocked_and_moved_from_the_admin(staff_client):
    zone = ZoneFactory()
    target = ZoneFactory(site=zone.site, code="TARGET")
    locations = [LocationFactory(zone=zone) for _ in range(3)]
    url = reverse("admin:warehouse_location_changelist")
    staff_client.post(url, {"action": "block_selected", "_selected_action": [locations[0].pk]})
    assert Location.objects.get(pk=locations[0].pk).status == LocationStatus.BLOCKED
    staff_client.post(
        url,
        {"action": "move_selected_to_zone", "_selected_action": [loc.pk for loc in locations], "zone": target.pk},
    )
    assert Location.objects.filter(zone=target).count() == 3


def test_a_zone_added_in_the_admin_goes_through_the_rules(staff_client):
    site = SiteFactory()
    url = reverse("admin:warehouse_zone_add")
    data = {
        "site": site.pk,
        "code": "ve",
        "name": "Vente flash",
        "kind": "picking",
        "valid_from_0": "2026-12-01",
        "valid_from_1": "08:00",
        "valid_until_0": "2026-11-30",
        "valid_until_1": "08:00",
        "version": 1,
    }
    refused = staff_client.post(url, data)
    assert refused.status_code == 200  # the form comes back with the error
    assert not Zone.objects.exists()
    data["valid_until_0"] = "2026-12-04"
    staff_client.post(url, data)
    assert Zone.objects.get().code == "VE"  # created through zone_create, which upper-cases codes


def test_a_site_added_in_the_admin_keeps_its_rules_and_shows_a_refusal(staff_client):
    with translation.override("fr"):
        url = reverse("admin:warehouse_site_add")
    data = {
        "code": "nantes",
        "name": "Nantes",
        "country": "FR",
        "time_zone": "Europe/Atlantis",
        "opening_days": "[1, 2, 3, 4, 5, 6]",
        "opens_at": "07:00",
        "closes_at": "19:00",
    }
    refused = staff_client.post(url, data, follow=True)
    assert not Site.objects.exists()
    texts = [str(m) for m in get_messages(refused.wsgi_request)]
    assert texts == ["Fuseau horaire inconnu (utilisez un nom IANA comme Europe/Paris)."]
    data["time_zone"] = "Europe/Paris"
    staff_client.post(url, data)
    assert Site.objects.get().opening_days == [1, 2, 3, 4, 5, 6]
