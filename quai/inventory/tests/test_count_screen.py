"""The cycle-count screen in Chromium: scans typed as keystrokes + Enter, as a handheld scanner does."""

from __future__ import annotations

import pytest

from conftest import login_page, screenshot
from quai.catalog.models import Barcode
from quai.inventory import services
from quai.inventory.models import CountTask, CountTaskStatus, StockQuantity
from quai.inventory.tests.factories import LocationFactory, SkuFactory, ZoneFactory
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _scan(page, code: str) -> str:
    """Type a scan, then wait for the screen's answer (its sound): what the operator hears, "ok" or "error"."""
    heard = page.evaluate("window.quaiSounds.length")
    page.locator("#scan").focus()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_function(f"window.quaiSounds.length > {heard}")
    return page.evaluate("window.quaiSounds[window.quaiSounds.length - 1]")


def _scan_to_new_page(page, code: str) -> str:
    """A scan that loads another page (start or finish a count): wait for it, then for its sound."""
    with page.expect_navigation():
        page.locator("#scan").focus()
        page.keyboard.type(code)
        page.keyboard.press("Enter")
    page.wait_for_function("window.quaiSounds.length > 0")
    return page.evaluate("window.quaiSounds[window.quaiSounds.length - 1]")


def _on_hand(sku, location) -> int:
    return sum(row.on_hand for row in StockQuantity.objects.filter(sku=sku, location=location))


def _shelf(code: str, *skus: tuple[str, str, int]):
    merchant = MerchantFactory(code="lumen")
    zone = ZoneFactory()
    location = LocationFactory(zone=zone, code=code)
    made = []
    for sku_code, gtin, quantity in skus:
        sku = SkuFactory(merchant=merchant, code=sku_code, gtin=gtin)
        Barcode.objects.get_or_create(merchant=merchant, code=gtin, defaults={"sku": sku})
        services.stock_receive(sku=sku, location=location, quantity=quantity, reason="test")
        made.append(sku)
    return location, made


def test_an_operator_counts_a_location_blind_and_the_count_is_applied(browser_page, live_server):
    location, (tee, cap) = _shelf(
        "C-01-01-01", ("LUM-TS-NOI-M", "03770016000017", 5), ("LUM-CAP-BLE", "03770016000024", 12)
    )
    page = browser_page
    login_page(page, StaffUserFactory(is_superuser=True), live_server.url)
    page.goto("/ops/inventory/count/")
    screenshot(page, "inventory-count-home")

    assert _scan_to_new_page(page, "C-01-01-01") == "ok"
    assert "C-01-01-01" in page.inner_text(".count-head")
    assert _scan(page, "3770016000017") == "ok"
    assert _scan(page, "3770016000017") == "ok"
    assert _scan(page, "NOT-A-CODE") == "error"
    page.fill("#quantity", "12")
    assert _scan(page, "3770016000024") == "ok"
    assert page.input_value("#quantity") == "1", "the quantity goes back to 1 after a counted scan"
    assert _scan(page, "3770016000017") == "ok"
    lines = page.inner_text("#count-lines")
    assert "LUM-TS-NOI-M" in lines and "LUM-CAP-BLE" in lines
    assert page.locator("#count-lines thead th").count() == 3, "blind: SKU, lot, counted; no expected column"
    assert page.locator("#count-lines tbody tr").count() == 2
    screenshot(page, "inventory-count-scanning")

    assert _scan_to_new_page(page, "C-01-01-01") == "ok"  # the location again: finished
    assert "C-01-01-01" in page.inner_text("#feedback")
    screenshot(page, "inventory-count-applied")

    task = CountTask.objects.get()
    assert task.status == CountTaskStatus.APPLIED
    assert (_on_hand(tee, location), _on_hand(cap, location)) == (3, 12)


def test_a_count_beyond_tolerance_is_sent_to_a_supervisor_with_the_finish_button(browser_page, live_server):
    location, (tee,) = _shelf("C-02-01-01", ("LUM-TS-NOI-L", "03770016000031", 10))
    waiting = LocationFactory(zone=location.zone, site=location.site, code="C-09-01-01")
    services.count_task_create(location=waiting, blind=False)
    page = browser_page
    login_page(page, StaffUserFactory(is_superuser=True), live_server.url)
    page.goto("/ops/inventory/count/")
    assert "C-09-01-01" in page.inner_text(".list-buttons")
    screenshot(page, "inventory-count-list")
    assert _scan_to_new_page(page, "C-02-01-01") == "ok"
    assert _scan(page, "3770016000031") == "ok"
    with page.expect_navigation():
        page.click("#count-finish")
    page.wait_for_function("window.quaiSounds.length > 0")
    assert page.evaluate("window.quaiSounds") == ["warn"]
    screenshot(page, "inventory-count-supervisor")

    assert CountTask.objects.get(location=location).status == CountTaskStatus.SUBMITTED
    assert _on_hand(tee, location) == 10, "nothing applied before a supervisor approves"


def test_an_unknown_location_is_refused_in_red_and_no_count_starts(browser_page, live_server):
    _shelf("C-03-01-01", ("LUM-X", "03770016000048", 1))
    page = browser_page
    login_page(page, StaffUserFactory(is_superuser=True), live_server.url)
    page.goto("/ops/inventory/count/")
    assert _scan_to_new_page(page, "NOWHERE-99") == "error"
    assert "NOWHERE-99" in page.inner_text("#feedback")
    screenshot(page, "inventory-count-refused")
    assert CountTask.objects.count() == 0
