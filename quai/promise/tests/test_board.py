"""The supervisor's promise page: kept rates by merchant, carrier and day, the orders at risk, widened lanes."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from django.test import Client

from conftest import login_page, screenshot
from quai.core import clock
from quai.orders.tests.factories import order_for
from quai.promise.models import PromiseRecord, TransitLane
from quai.tenants.tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.fromisoformat("2025-03-14T11:00:00+01:00")


def _records(merchant, configured):
    day = date(2025, 3, 14)
    rows = [
        ("kept", "", 0),
        ("kept", "", 0),
        ("broken", "carrier_late", 0),
        ("kept", "", 1),
        ("broken", "warehouse_late", 2),
    ]
    for index, (status, cause, back) in enumerate(rows):
        order = order_for(merchant, external_id=f"B-{merchant.code}-{index}")
        PromiseRecord.objects.create(
            merchant=merchant,
            order=order,
            source="intake",
            service="colissimo_home",
            carrier="colissimo",
            delivery_by=day,
            status=status,
            cause=cause,
            closed_on=day - timedelta(days=back),
        )
    risky = order_for(merchant, external_id=f"RISK-{merchant.code}")
    PromiseRecord.objects.create(
        merchant=merchant,
        order=risky,
        source="intake",
        service="colissimo_home",
        status="at_risk",
        ship_by=TODAY,
        delivery_by=day + timedelta(days=2),
        at_risk_since=TODAY,
    )
    TransitLane.objects.filter(service__code="colissimo_home", zone="FR-MAINLAND").update(
        widened=True, kept=18, broken=3
    )


def test_the_board_shows_rates_at_risk_orders_and_widened_lanes(staff_user, merchant, configured):
    clock.set_now(TODAY)
    _records(merchant, configured)
    client = Client()
    client.force_login(staff_user)
    page = client.get("/ops/promise/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"RISK-{merchant.code}" in html and "<svg" in html and "FR-MAINLAND" in html
    assert "60 %" in html and "67%" in html  # 3 of 5 kept for the merchant, 2 of 3 today
    fragment = client.get("/ops/promise/at-risk/")
    assert f"RISK-{merchant.code}" in fragment.content.decode()


def test_a_non_supervisor_is_refused(merchant, configured):
    from quai.tenants.tests.factories import StaffUserFactory

    picker = StaffUserFactory(username="picker")
    client = Client()
    client.force_login(picker)
    assert client.get("/ops/promise/").status_code == 403


@pytest.mark.browser
def test_the_board_in_a_browser(browser_page, live_server, staff_user, merchant, configured):
    clock.set_now(TODAY)
    _records(merchant, configured)
    _records(MerchantFactory(code="lumen", name="Lumen"), configured)
    login_page(browser_page, staff_user, live_server.url)
    browser_page.set_viewport_size({"width": 1200, "height": 900})
    browser_page.goto("/ops/promise/")
    assert browser_page.locator("svg rect").count() >= 3
    assert browser_page.locator("#at-risk tbody tr").count() == 2
    screenshot(browser_page, "promise-board-fr")
