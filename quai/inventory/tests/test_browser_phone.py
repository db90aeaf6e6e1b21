"""The operator screens on a 412×915 phone (issue 11, item 11), scans typed as keystrokes + Enter, in French and
English; the back office on a 1366×768 desk screen. Every test saves what it saw under var/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import Group

from conftest import login_page, screenshot
from quai.inventory import services
from quai.inventory.models import CountLine, StockQuantity
from quai.inventory.tests.factories import LocationFactory, SkuFactory, ZoneFactory
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 412, "height": 915}
DESK = {"width": 1366, "height": 768}
PASSWORD = "quai-handheld-2031"


def _page(chromium: Any, live_server: Any, *, locale: str, viewport: dict[str, int]) -> Iterator[Any]:
    context = chromium.new_context(
        viewport=viewport,
        locale=locale,
        base_url=live_server.url,
        is_mobile=viewport is PHONE,
        has_touch=viewport is PHONE,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def phone(chromium, live_server):  # type: ignore[no-untyped-def]
    """A phone-sized handheld in French (the installation's language)."""
    yield from _page(chromium, live_server, locale="fr-FR", viewport=PHONE)


@pytest.fixture
def phone_en(chromium, live_server):  # type: ignore[no-untyped-def]
    yield from _page(chromium, live_server, locale="en-GB", viewport=PHONE)


@pytest.fixture
def desk(chromium, live_server):  # type: ignore[no-untyped-def]
    yield from _page(chromium, live_server, locale="fr-FR", viewport=DESK)


def _scan(page: Any, code: str) -> str:
    """Type a scan, then wait for the screen's answer (its sound): what the operator hears, "ok" or "error"."""
    heard = page.evaluate("window.quaiSounds.length")
    page.locator("#scan").focus()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.quaiSounds.length > {heard}", timeout=3_000)
    return str(page.evaluate("window.quaiSounds[window.quaiSounds.length - 1]"))


def _scan_to_new_page(page: Any, code: str) -> str:
    with page.expect_navigation():
        page.locator("#scan").focus()
        page.keyboard.type(code)
        page.keyboard.press("Enter")
    page.wait_for_function("() => window.quaiSounds.length > 0")
    return str(page.evaluate("window.quaiSounds[window.quaiSounds.length - 1]"))


def _operator(username: str = "olga") -> Any:
    user = StaffUserFactory(username=username, is_superuser=False)
    user.set_password(PASSWORD)
    user.save()
    for role in ("picker", "receiver"):
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def _on_hand(sku: Any, location: Any) -> int:
    return sum(row.on_hand for row in StockQuantity.objects.filter(sku=sku, location=location))


def _shelf() -> tuple[Any, Any, Any]:
    """A shelf holding 5 T-shirts with a long SKU code, and an empty shelf beside it (same site)."""
    merchant = MerchantFactory(code="lumen", name="Lumen Paris")
    zone = ZoneFactory()
    source = LocationFactory(zone=zone, code="RESERVE-A-01-01-01")
    target = LocationFactory(zone=zone, site=zone.site, code="RESERVE-A-01-02-01")
    sku = SkuFactory(
        merchant=merchant, code="LUM-TSHIRT-NOIR-XXL-BIO", name="T-shirt noir XXL coton bio", gtin="03770016000017"
    )
    services.stock_receive(sku=sku, location=source, quantity=5, reason="test")
    return sku, source, target


# --- Move: every refusal is the screen's own red answer ------------------------------------------------------------


def test_a_quantity_above_the_free_stock_is_refused_in_red_with_the_error_beep_not_by_the_browser(phone, live_server):
    sku, source, target = _shelf()
    page = phone
    login_page(page, _operator(), live_server.url)
    page.goto("/ops/inventory/move/")
    assert _scan(page, source.code) == "ok"
    assert _scan(page, "3770016000017") == "ok"
    page.fill("#quantity", "9")

    heard = _scan(page, target.code)
    screenshot(page, "phone-move-too-many")

    assert heard == "error"
    assert page.get_attribute("#feedback", "data-result") == "error"
    assert "libres" in page.inner_text("#feedback"), "the screen's own message, in French"
    assert page.locator("body.flash-error").count() == 1
    assert page.evaluate("document.querySelector('.scan-form').noValidate"), "no browser bubble on a scan screen"
    assert _on_hand(sku, source) == 5 and _on_hand(sku, target) == 0
    # the operator corrects the quantity and scans the destination again: it goes through
    page.fill("#quantity", "5")
    assert _scan(page, target.code) == "ok"
    assert _on_hand(sku, target) == 5


def test_an_item_that_is_not_at_the_location_is_said_to_be_not_there_on_move_and_count(phone, live_server):
    sku, source, _target = _shelf()
    cream = SkuFactory(
        merchant=sku.merchant, code="CREAM-50", gtin="03770016000024", lot_tracked=True, expiry_tracked=True
    )
    page = phone
    login_page(page, _operator(), live_server.url)

    SkuFactory(merchant=MerchantFactory(code="rival"), code="RIVAL-MUG", gtin="03770016000031")
    page.goto("/ops/inventory/move/")
    assert _scan(page, source.code) == "ok"
    assert _scan(page, "3770016000024") == "error"
    text = page.inner_text("#feedback")
    assert "pas dans cet emplacement" in text and "Plusieurs lots" not in text
    screenshot(page, "phone-move-item-not-there")
    # another merchant's item (no stock of that merchant here), then a code nobody knows
    assert _scan(page, "RIVAL-MUG") == "error"
    assert "RIVAL-MUG n'est pas dans cet emplacement" in page.inner_text("#feedback")
    assert _scan(page, "NOBODY-123") == "error"
    assert "Code inconnu" in page.inner_text("#feedback")

    page.goto("/ops/inventory/count/")
    assert _scan_to_new_page(page, source.code) == "ok"
    assert _scan(page, "3770016000024") == "error"
    text = page.inner_text("#feedback")
    screenshot(page, "phone-count-lot-item-not-there")
    assert "Plusieurs lots" not in text, text
    assert "3770016000024" in text and "n'est pas à cet emplacement" in text, text
    assert not CountLine.objects.filter(sku=cream).exists(), "nothing counted without its lot"


# --- Signing in and out --------------------------------------------------------------------------------------------


def test_signing_in_at_the_ops_login_page_and_again_after_signing_out_lands_on_the_menu(phone, live_server):
    _operator("olga")
    page = phone
    page.goto("/ops/login/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click(".login-form button[type=submit]")
    screenshot(page, "phone-signed-in")
    assert page.url.rstrip("/").endswith("/ops"), page.url
    from quai.views import SCREENS

    assert page.locator(".menu-tile").count() == len(SCREENS)

    who = page.locator("#signed-in")
    assert who.is_visible() and "olga" in who.inner_text()
    logout = page.locator("#logout")
    assert logout.is_visible()
    screenshot(page, "phone-menu-signed-in")
    with page.expect_navigation():
        logout.click()
    assert page.url.endswith("/ops/login/"), page.url
    screenshot(page, "phone-signed-out")

    page.fill("#id_username", "olga")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click(".login-form button[type=submit]")
    assert page.url.rstrip("/").endswith("/ops"), page.url


@pytest.mark.parametrize(
    "path",
    ["/ops/", "/ops/inventory/move/", "/ops/inventory/count/", "/ops/inbound/receiving/", "/ops/inbound/putaway/"],
)
def test_every_operator_screen_shows_who_is_signed_in_and_a_log_out_within_the_first_screenful(
    phone, live_server, path
):
    ZoneFactory()
    page = phone
    login_page(page, _operator("marc"), live_server.url)
    page.goto(path)
    who = page.locator("#signed-in")
    assert who.is_visible() and "marc" in who.inner_text()
    box = page.locator("#logout").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], "visible without scrolling"
    assert page.locator("#logout").evaluate("button => button.form.method") == "post"
    assert page.locator("#logout").evaluate("button => !!button.form.querySelector('[name=csrfmiddlewaretoken]')")


# --- A phone's width: codes on one line, tabs on one row, the whole placeholder -------------------------------------

_ONE_LINE = """(selector) => Array.from(document.querySelectorAll(selector)).filter(el => {
    const style = getComputedStyle(el);
    const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.4;
    const range = document.createRange();
    range.selectNodeContents(el);
    const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
    return tops.size > 1 || el.getBoundingClientRect().height > line * 1.6;
  }).map(el => el.textContent.trim())"""

# Rows of the top bar: the tabs and the language buttons, by their vertical middle (they differ in height).
_TABS_ROWS = """() => new Set(Array.from(document.querySelectorAll('.topbar .tabs a, .topbar .lang-btn'))
    .map(el => { const r = el.getBoundingClientRect(); return Math.round((r.top + r.bottom) / 8); })).size"""

_PLACEHOLDER_FITS = """() => {
    const input = document.querySelector('#scan');
    const style = getComputedStyle(input);
    const canvas = document.createElement('canvas').getContext('2d');
    canvas.font = style.fontWeight + ' ' + style.fontSize + ' ' + style.fontFamily;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return canvas.measureText(input.placeholder).width <= room;
  }"""


@pytest.mark.parametrize("language", ["fr", "en"])
def test_on_a_phone_codes_stay_on_one_line_the_tabs_on_one_row_and_the_placeholder_shows_whole(
    phone, phone_en, live_server, language
):
    sku, source, _target = _shelf()
    page = phone if language == "fr" else phone_en
    login_page(page, _operator(), live_server.url)
    page.goto("/ops/inventory/move/")
    screenshot(page, f"phone-move-{language}-1-start")
    assert page.evaluate(_TABS_ROWS) == 1, "the tab bar and the language buttons on one row"
    assert page.evaluate(_PLACEHOLDER_FITS), page.get_attribute("#scan", "placeholder")

    assert _scan(page, source.code) == "ok"
    assert page.evaluate(_PLACEHOLDER_FITS), page.get_attribute("#scan", "placeholder")
    assert _scan(page, "3770016000017") == "ok"
    assert page.evaluate(_PLACEHOLDER_FITS), page.get_attribute("#scan", "placeholder")
    screenshot(page, f"phone-move-{language}-2-item")
    broken = page.evaluate(_ONE_LINE, ".code")
    assert broken == [], f"codes broken across lines: {broken}"
    assert page.locator(".code", has_text=sku.code).count() >= 2  # the step and the table row
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.goto("/ops/inventory/count/")
    assert page.evaluate(_TABS_ROWS) == 1
    assert page.evaluate(_PLACEHOLDER_FITS), page.get_attribute("#scan", "placeholder")
    assert _scan_to_new_page(page, source.code) == "ok"
    assert _scan(page, "3770016000017") == "ok"
    screenshot(page, f"phone-count-{language}-scanning")
    assert page.evaluate(_ONE_LINE, ".code") == []
    assert page.evaluate(_PLACEHOLDER_FITS), page.get_attribute("#scan", "placeholder")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    for path in ("/ops/", "/ops/inbound/receiving/", "/ops/inbound/putaway/"):
        page.goto(path)
        assert page.evaluate(_TABS_ROWS) == 1, path
    screenshot(page, f"phone-putaway-{language}-tabs")


# --- Dates in ISO 8601 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["fr", "en"])
def test_dates_are_written_in_iso_8601_on_the_count_and_move_screens(phone, phone_en, live_server, language):
    merchant = MerchantFactory(code="lumen")
    zone = ZoneFactory()
    shelf = LocationFactory(zone=zone, code="C-01-01-01")
    cream = SkuFactory(merchant=merchant, code="CREAM-50", gtin="03770016000024", lot_tracked=True, expiry_tracked=True)
    services.stock_receive(sku=cream, location=shelf, quantity=4, lot="LOT42", expiry=date(2031, 12, 3), reason="test")
    task = services.count_task_create(location=shelf, blind=False)[0]
    page = phone if language == "fr" else phone_en
    login_page(page, _operator(), live_server.url)

    page.goto(f"/ops/inventory/count/{task.pk}/")
    screenshot(page, f"phone-count-{language}-dates")
    assert "2031-12-03" in page.inner_text("#count-lines")

    page.goto("/ops/inventory/move/")
    assert _scan(page, "C-01-01-01") == "ok"
    screenshot(page, f"phone-move-{language}-dates")
    assert "2031-12-03" in page.inner_text("#move-panel table")


# --- The back office on a desk screen ------------------------------------------------------------------------------


def test_the_stock_ledger_fits_a_desk_screen_and_writes_iso_dates(desk, live_server):
    sku, source, target = _shelf()
    supervisor = StaffUserFactory(username="marie-claire.dupont", is_superuser=True)
    services.stock_move(
        sku=sku, from_location=source, to_location=target, quantity=2, actor=supervisor, reason="move by scan"
    )
    page = desk
    login_page(page, supervisor, live_server.url)
    page.goto("/admin/inventory/stockmovement/")
    screenshot(page, "desk-admin-stock-ledger")
    assert page.locator("#result_list tbody tr").count() == 2
    width = page.evaluate("document.querySelector('#changelist .results').scrollWidth")
    room = page.evaluate("document.querySelector('#changelist .results').clientWidth")
    assert width <= room, f"the ledger is {width}px wide in a {room}px column: it scrolls sideways"
    text = page.inner_text("#result_list")
    assert "RESERVE-A-01-02-01" in text and sku.code in text
    import re

    assert re.search(r"\b20\d\d-\d\d-\d\d\s+\d\d:\d\d\b", text), text
