"""The supervisor's board in Chromium at a desk (1280×800), on a tablet (820×1180, upright) and on a handheld
(360×740): it renders, the menu's "s" key opens it, and its panel refreshes itself with new figures. Screenshots
under var/screenshots/."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import login_page, screenshot
from quai.analytics.tests.conftest import NOW, _order
from quai.core import clock

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESK = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}
HANDHELD = {"width": 360, "height": 740}


def _received(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.locator("[data-stage=received] .count").inner_text()).strip()


def test_the_board_at_a_desk_refreshes_itself(chromium, live_server, scenario, supervisor):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport=DESK, locale="fr-FR", base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    login_page(page, supervisor, live_server.url)
    page.goto("/ops/")
    page.keyboard.press("s")
    page.wait_for_url("**/ops/supervisor/")
    assert page.locator("#cutoffs tbody tr").count() == 3
    assert page.locator("#curve svg polygon").count() == 4
    assert page.locator("#at-risk tbody tr").count() == 1
    assert _received(page) == "5"
    # The stage tiles sit side by side at a desk.
    boxes = [page.locator(f"[data-stage={s}]").bounding_box() for s in ("received", "packed")]
    assert boxes[0]["y"] == boxes[1]["y"]
    screenshot(page, "supervisor-board-desk-fr")
    before = page.locator("#board").get_attribute("data-at")
    clock.set_now(NOW + timedelta(minutes=1))
    _order(scenario.floor, scenario.floor.merchant, "LATE-1")
    page.wait_for_function(
        "(before) => document.querySelector('#board').dataset.at !== before", arg=before, timeout=15_000
    )
    assert _received(page) == "6"
    context.close()


def test_the_board_on_a_tablet(chromium, live_server, scenario, supervisor):  # type: ignore[no-untyped-def]
    context = chromium.new_context(
        viewport=TABLET, locale="en-GB", base_url=live_server.url, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    login_page(page, supervisor, live_server.url)
    page.goto("/ops/supervisor/?site=LYS1")
    page.wait_for_selector("#staffing tbody tr")
    # One column: the curve comes under the cut-offs, and nothing runs past the screen's edge.
    cutoffs, curve = page.locator("#cutoffs").bounding_box(), page.locator("#curve").bounding_box()
    assert curve["y"] > cutoffs["y"] + cutoffs["height"] - 1
    assert page.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]
    screenshot(page, "supervisor-board-tablet-en")
    context.close()


def test_the_board_on_a_handheld_stays_within_the_screen(chromium, live_server, scenario, supervisor):  # type: ignore[no-untyped-def]
    # At 360 px the cut-offs' and the staff's tables ran 250 px past the screen's edge (their headers never wrapped).
    context = chromium.new_context(viewport=HANDHELD, locale="fr-FR", base_url=live_server.url, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    login_page(page, supervisor, live_server.url)
    page.goto("/ops/supervisor/?site=LYS1")
    page.wait_for_selector("#staffing tbody tr")
    assert page.evaluate("document.documentElement.scrollWidth") <= HANDHELD["width"]
    for card in ("#cutoffs", "#staffing", "#curve"):
        box = page.locator(card).bounding_box()
        assert box["x"] + box["width"] <= HANDHELD["width"], card
    for table in ("#cutoffs table", "#staffing table"):
        box = page.locator(table).bounding_box()
        assert box["x"] + box["width"] <= HANDHELD["width"], table
    assert page.locator("#cutoffs .verdict").first.is_visible()  # the outlook stays in sight
    screenshot(page, "supervisor-board-handheld-fr")
    context.close()
