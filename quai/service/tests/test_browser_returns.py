"""The returns portal on a phone and the returns desk on a handheld, in Chromium: the shopper returns one item
(FR then EN), the desk scans the parcel and the unit with typed scans, grades it A with the big button, scans the
storage place; a wrong item is refused in red. Screenshots under var/screenshots/."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from conftest import login_page, screenshot
from quai.service.models import Refund, ReturnUnit, Rma, RmaStatus, ServiceSettings
from quai.service.services.wismo import tracking_path
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
HANDHELD = {"width": 360, "height": 740}


def _scan(page, code: str) -> None:  # type: ignore[no-untyped-def]
    heard = page.evaluate("(window.quaiSounds || []).length")
    page.locator("#scan").focus()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => (window.quaiSounds || []).length > {heard}", timeout=8_000)


def test_a_shopper_returns_an_item_on_a_phone_and_the_desk_grades_it_a(
    chromium, live_server, merchant, place, shirt, desk
):
    ServiceSettings.objects.create(merchant=merchant, brand_name="Acme Shop", brand_colour="#8a2be2")
    order = place("WEB-7", to_status="delivered")
    phone = chromium.new_context(
        viewport=PHONE, locale="fr-FR", base_url=live_server.url, is_mobile=True, has_touch=True
    )
    page = phone.new_page()
    page.set_default_timeout(10_000)
    page.goto(tracking_path(order))
    page.wait_for_selector("#returns")
    screenshot(page, "returns-portal-phone")
    line = order.lines.get()
    page.select_option(f"#qty_{line.pk}", "1")
    page.select_option("#reason", "damaged")
    page.click("#return-submit")
    page.wait_for_selector("#returns .rma.ok")
    rma = Rma.objects.get(order=order)
    assert rma.status == RmaStatus.LABEL_REQUESTED and rma.reference in page.inner_text("#returns")
    screenshot(page, "returns-portal-opened-phone")
    page.click("header .lang button[value=en]")
    page.wait_for_selector("text=Return or exchange")
    screenshot(page, "returns-portal-opened-phone-en")
    phone.close()

    receiver = StaffUserFactory(username="rene")
    receiver.groups.add(Group.objects.get_or_create(name="receiver")[0])
    handheld = chromium.new_context(
        viewport=HANDHELD, locale="fr-FR", base_url=live_server.url, is_mobile=True, has_touch=True
    )
    page = handheld.new_page()
    page.set_default_timeout(10_000)
    login_page(page, receiver, live_server.url)
    page.goto("/ops/service/returns/")
    _scan(page, rma.reference)
    page.wait_for_selector("#parcel")
    _scan(page, "NOT-A-SKU")
    assert page.get_attribute("#feedback", "data-result") == "error"
    screenshot(page, "returns-desk-refused-handheld")
    _scan(page, shirt.code)
    page.wait_for_selector("#grade")
    screenshot(page, "returns-desk-grade-handheld")
    page.fill("#note", "Comme neuf")
    page.click('button[data-grade="A"]')
    page.wait_for_selector("#restock")
    assert Rma.objects.get(pk=rma.pk).status == RmaStatus.CLOSED and Refund.objects.filter(rma=rma).exists()
    screenshot(page, "returns-desk-restock-handheld")
    unit = ReturnUnit.objects.get()
    page.fill(f"#restock-{unit.pk}", "A-01-01")
    page.press(f"#restock-{unit.pk}", "Enter")
    page.wait_for_function("() => !document.querySelector('#restock')")
    assert ReturnUnit.objects.get().state == "restocked"
    screenshot(page, "returns-desk-done-handheld")
    handheld.close()
