"""The move screen in Chromium: scans typed as keystrokes + Enter, as a handheld scanner does."""

from __future__ import annotations

import pytest

from conftest import login_page, screenshot
from quai.inventory import services
from quai.inventory.models import StockQuantity
from quai.inventory.tests.factories import LocationFactory, SkuFactory, ZoneFactory
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory
from quai.warehouse.models import LocationStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _scan(page, code: str) -> str:
    """Type a scan, then wait for the screen's answer (its sound): what the operator hears, "ok" or "error"."""
    heard = page.evaluate("window.quaiSounds.length")
    page.locator("#scan").focus()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_function(f"window.quaiSounds.length > {heard}")
    return page.evaluate("window.quaiSounds[window.quaiSounds.length - 1]")


def _on_hand(sku, location) -> int:
    return sum(row.on_hand for row in StockQuantity.objects.filter(sku=sku, location=location))


def test_an_operator_moves_two_units_by_scanning_from_item_quantity_to(browser_page, live_server):
    merchant = MerchantFactory(code="lumen")
    zone = ZoneFactory()
    source = LocationFactory(zone=zone, code="A-01-01-01")
    target = LocationFactory(zone=zone, site=zone.site, code="A-01-02-01")
    sku = SkuFactory(merchant=merchant, code="LUM-TS-NOI-M", gtin="03770016000017")
    services.stock_receive(sku=sku, location=source, quantity=5, reason="test")
    page = browser_page
    login_page(page, StaffUserFactory(is_superuser=True), live_server.url)
    page.goto("/ops/inventory/move/")

    assert _scan(page, "A-01-01-01") == "ok"
    assert _scan(page, "3770016000017") == "ok"
    page.fill("#quantity", "2")
    assert _scan(page, "A-01-02-01") == "ok"
    assert "2 × LUM-TS-NOI-M" in page.inner_text("#feedback")
    assert page.locator("#quantity").count() == 0, "after a move the screen starts again from step 1"
    screenshot(page, "inventory-move-done")

    assert _on_hand(sku, source) == 3
    assert _on_hand(sku, target) == 2
    assert page.evaluate("window.quaiSounds") == ["ok", "ok", "ok"]


def test_a_blocked_destination_is_refused_in_red_and_nothing_moves(browser_page, live_server):
    merchant = MerchantFactory(code="lumen")
    zone = ZoneFactory()
    source = LocationFactory(zone=zone, code="B-01-01-01")
    LocationFactory(zone=zone, site=zone.site, code="B-01-02-01", status=LocationStatus.BLOCKED)
    sku = SkuFactory(merchant=merchant, gtin="03770016000024")
    services.stock_receive(sku=sku, location=source, quantity=4, reason="test")
    page = browser_page
    login_page(page, StaffUserFactory(is_superuser=True), live_server.url)
    page.goto("/ops/inventory/move/")

    assert _scan(page, "B-01-01-01") == "ok"
    assert _scan(page, "NOT-A-CODE") == "error"
    assert _scan(page, "3770016000024") == "ok"
    assert _scan(page, "B-01-02-01") == "error"
    assert "B-01-02-01" in page.inner_text("#feedback")
    screenshot(page, "inventory-move-refused")

    assert _on_hand(sku, source) == 4
    assert page.evaluate("window.quaiSounds") == ["ok", "error", "ok", "error"]
