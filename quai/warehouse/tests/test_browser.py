"""The back-office site map, seen by a real browser."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from conftest import login_page, screenshot
from quai.warehouse import services
from quai.warehouse.models import Location
from quai.warehouse.tests.factories import SiteFactory


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_supervisor_sees_the_site_map_with_zones_locations_and_legend(browser_page, live_server, staff_user):
    site = SiteFactory(code="lyon", name="Lyon Gerland")
    storage = services.zone_create(site=site, code="STO", name="Réserve", kind="storage")
    picking = services.zone_create(site=site, code="PICK", name="Préparation", kind="picking")
    services.zone_create(site=site, code="RET", name="Retours", kind="returns")
    services.rack_bulk_create(site=site, zone=storage, aisles="A-C", bays="1-12", levels="1-3", bay_width_m="1.2")
    services.rack_bulk_create(site=site, zone=picking, aisles="D-E", bays="1-12", levels=1, origin_x_m=9)
    services.location_block(location=Location.objects.get(site=site, code="B-05-01-01"), reason="rack abîmé")
    with translation.override("fr"):
        url = reverse("admin:warehouse_site_map", args=[site.pk])

    page = browser_page
    page.set_viewport_size({"width": 1400, "height": 900})
    login_page(page, staff_user, live_server.url)
    page.goto(url)

    svg = page.locator("#site-map svg")
    svg.wait_for()
    box = svg.bounding_box()
    assert box is not None and box["width"] > 600 and box["height"] > 300
    assert page.locator("#site-map g.slot").count() == 3 * 12 + 2 * 12
    assert page.locator("#site-map g.slot.blocked").count() == 1
    assert page.locator(".map-legend").inner_text().count("\n") >= 3
    legend = page.locator(".map-legend").inner_text()
    assert "Stockage / réserve" in legend and "Préparation" in legend and "emplacement bloqué" in legend
    assert page.locator("table.map-zones tbody tr").count() == 3
    path = screenshot(page, "warehouse_site_map")
    assert path.exists() and path.stat().st_size > 10_000
