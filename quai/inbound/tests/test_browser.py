"""Receiving and putaway in Chromium on a handheld-sized screen, every scan typed as keystrokes + Enter."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import Group

from conftest import login_page, screenshot
from quai.catalog.tests.factories import SkuFactory
from quai.inbound import services
from quai.inbound.models import Asn, AsnStatus, PutawayStatus, PutawayTask
from quai.inbound.services import AsnLineInput, HandlingUnitInput
from quai.inbound.tests.factories import location, sscc, warehouse_build
from quai.inbound.tests.factories import location as storage_location
from quai.inventory.models import StockQuantity, StockStatus
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory
from quai.warehouse.models import LocationStatus

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

SHIRT_GTIN = "3760000000017"
MUG_GTIN = "3760000000031"
GS1_CREAM = "0103760000000024" + "17311231" + "10LOT42"  # (01) GTIN (17) 2031-12-31 (10) LOT42


def scan(page: Any, code: str) -> None:
    """What a scanner does: type the code as keystrokes, then Enter; wait for the screen's answer."""
    before = page.evaluate("window.quaiSounds ? window.quaiSounds.length : 0")
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_function(f"window.quaiSounds && window.quaiSounds.length > {before}")


def last_sound(page: Any) -> str:
    return str(page.evaluate("window.quaiSounds[window.quaiSounds.length - 1]"))


def feedback(page: Any) -> tuple[str, str]:
    box = page.locator("#feedback")
    return str(box.get_attribute("data-result")), str(box.inner_text())


def _receiver() -> Any:
    user = StaffUserFactory(username="rita")
    user.groups.add(Group.objects.get_or_create(name="receiver")[0])
    return user


def _catalogue(merchant: Any) -> None:
    SkuFactory(merchant=merchant, code="SHIRT-M", name="T-shirt M", gtin="0" + SHIRT_GTIN)
    SkuFactory(
        merchant=merchant,
        code="CREAM-50",
        name="Crème 50 ml",
        gtin="03760000000024",
        lot_tracked=True,
        expiry_tracked=True,
    )
    SkuFactory(merchant=merchant, code="MUG", name="Mug", gtin="0" + MUG_GTIN)


def test_a_receiving_session_typed_on_a_handheld(browser_page, live_server):  # type: ignore[no-untyped-def]
    page = browser_page
    wh = warehouse_build()
    merchant = MerchantFactory(code="acme", name="Acme")
    _catalogue(merchant)
    carton = sscc(11)
    services.asn_create(
        merchant=merchant,
        reference="PO-4711",
        site=wh.site,
        supplier="Textiles du Nord",
        lines=[
            AsnLineInput(sku_code="SHIRT-M", quantity=10, sscc=carton),
            AsnLineInput(sku_code="CREAM-50", quantity=24, lot="LOT42"),
        ],
        handling_units=[HandlingUnitInput(sscc=carton)],
    )
    login_page(page, _receiver(), live_server.url)

    page.goto("/ops/inbound/receiving/")
    assert page.evaluate("document.activeElement.id") == "scan"
    screenshot(page, "inbound-receiving-1-start")
    page.keyboard.type("PO-4711")
    page.keyboard.press("Enter")
    page.wait_for_url("**/ops/inbound/receiving/*/")
    assert page.evaluate("document.activeElement.id") == "scan"

    scan(page, carton)
    assert feedback(page)[0] == "ok" and carton in feedback(page)[1]

    scan(page, SHIRT_GTIN)
    assert feedback(page) == ("ok", feedback(page)[1]) and "+1 SHIRT-M" in feedback(page)[1]
    assert last_sound(page) == "ok"
    assert page.locator("body.flash-ok").count() == 1

    # quantity field: Tab from the scan field, type 5, Enter goes back to the scan field
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "quantity"
    page.keyboard.press("Control+A")
    page.keyboard.type("5")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "scan"
    scan(page, SHIRT_GTIN)
    assert "+5 SHIRT-M" in feedback(page)[1]
    assert page.input_value("#quantity") == "1"

    scan(page, GS1_CREAM)
    result, text = feedback(page)
    assert result == "ok" and "CREAM-50" in text and "LOT42" in text and "2031-12-31" in text

    # a code nobody knows: red, error sound, nothing counted
    scan(page, "XYZ-404")
    assert feedback(page)[0] == "error" and "XYZ-404" in feedback(page)[1]
    assert last_sound(page) == "error"
    assert page.locator("body.flash-error").count() == 1
    screenshot(page, "inbound-receiving-2-wrong-code")

    # a SKU not on the ASN: refused, then received once the operator switches "Not on ASN"
    scan(page, MUG_GTIN)
    assert feedback(page)[0] == "error" and "Hors avis" in feedback(page)[1]
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "unexpected"
    page.keyboard.press("Space")
    assert page.is_checked("#unexpected")
    assert page.evaluate("document.activeElement.id") == "scan"
    scan(page, MUG_GTIN)
    assert feedback(page)[0] == "ok"
    assert not page.is_checked("#unexpected")

    # a damaged unit: toggle "Damaged", scan, it goes to quarantine (orange, its own sound)
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "damaged"
    page.keyboard.press("Space")
    scan(page, SHIRT_GTIN)
    result, text = feedback(page)
    assert result == "warn" and "ENDOMMAGÉ" in text
    assert last_sound(page) == "warn"
    row = page.locator("#lines tr[data-sku='SHIRT-M']")
    assert row.locator("[data-received]").inner_text() == "7"
    assert row.locator("[data-damaged]").inner_text() == "1"
    assert page.locator("#recent li").count() == 5
    screenshot(page, "inbound-receiving-3-damaged")

    # close: Tab to the close link, Enter; the scan field keeps the focus, closing takes a tap on the button
    for _ in range(4):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "close-link"
    page.keyboard.press("Enter")
    page.wait_for_url("**/close/")
    kinds = page.locator("#discrepancies tr[data-kind]")
    assert kinds.count() == 4
    screenshot(page, "inbound-receiving-4-close-preview")
    assert page.evaluate("document.activeElement.id") == "scan"
    page.click("#confirm-close")
    page.wait_for_url("**/report/")
    assert "clôturée" in page.locator("#closed").inner_text()
    found = sorted(
        (r.get_attribute("data-kind"), r.locator("td").nth(4).inner_text())
        for r in page.locator("#discrepancies tr[data-kind]").all()
    )
    assert found == [("damaged", "+1"), ("short", "-23"), ("short", "-3"), ("unexpected", "+1")]
    screenshot(page, "inbound-receiving-5-report")

    asn = Asn.objects.get(reference="PO-4711")
    assert asn.status == AsnStatus.CLOSED
    received = sum(line.received_quantity for line in asn.lines.all())
    assert received == sum(task.quantity for task in PutawayTask.objects.filter(asn=asn)) == 9


def test_putaway_by_scan_suggested_location_and_a_blocked_one_refused(browser_page, live_server):  # type: ignore[no-untyped-def]
    page = browser_page
    wh = warehouse_build()
    merchant = MerchantFactory(code="acme", name="Acme")
    _catalogue(merchant)
    location(wh.storage, "A-01-01", x="4")
    location(wh.storage, "B-02-01", x="2", status=LocationStatus.BLOCKED)
    location(wh.storage, "C-03-01", x="9")
    asn = services.asn_create(
        merchant=merchant, reference="PO-9", site=wh.site, lines=[AsnLineInput(sku_code="SHIRT-M", quantity=6)]
    )
    asn = services.receiving_start(code="PO-9").asn
    services.receiving_scan(asn=asn, code=SHIRT_GTIN, quantity=6)
    login_page(page, _receiver(), live_server.url)

    page.goto("/ops/inbound/putaway/")
    assert page.evaluate("document.activeElement.id") == "scan"
    scan(page, SHIRT_GTIN)
    assert feedback(page)[0] == "ok"
    assert page.locator("[data-suggested]").inner_text() == "A-01-01"
    assert page.get_attribute("#scan", "placeholder") == "Scannez l'emplacement"
    screenshot(page, "inbound-putaway-1-suggested")

    scan(page, "B-02-01")
    result, text = feedback(page)
    assert result == "error" and "B-02-01" in text and "bloqué" in text
    assert last_sound(page) == "error"
    task = PutawayTask.objects.get()
    assert task.status == PutawayStatus.OPEN
    assert not StockQuantity.objects.filter(location__code="B-02-01").exists()
    screenshot(page, "inbound-putaway-2-blocked")

    scan(page, "A-01-01")
    result, text = feedback(page)
    assert result == "ok" and "A-01-01" in text
    assert last_sound(page) == "ok"
    task.refresh_from_db()
    assert task.status == PutawayStatus.DONE and task.confirmed_location.code == "A-01-01"
    stored = StockQuantity.objects.get(location__code="A-01-01", status=StockStatus.SELLABLE)
    assert stored.on_hand == 6
    assert page.locator("[data-suggested]").count() == 0
    screenshot(page, "inbound-putaway-3-done")

    # the FR/EN switch: one keypress-able button, the screen answers in English
    page.click("button.lang-btn[value='en']")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Putaway"
    assert page.evaluate("document.activeElement.id") == "scan"
    screenshot(page, "inbound-putaway-4-english")


def test_putaway_to_another_location_that_fits_is_accepted(browser_page, live_server):  # type: ignore[no-untyped-def]
    page = browser_page
    wh = warehouse_build()
    merchant = MerchantFactory(code="acme", name="Acme")
    _catalogue(merchant)
    location(wh.storage, "A-01-01", x="4")
    location(wh.storage, "C-03-01", x="9")
    asn = services.asn_create(
        merchant=merchant, reference="PO-10", site=wh.site, lines=[AsnLineInput(sku_code="SHIRT-M", quantity=2)]
    )
    asn = services.receiving_start(code="PO-10").asn
    services.receiving_scan(asn=asn, code=SHIRT_GTIN, quantity=2)
    task = PutawayTask.objects.get()
    login_page(page, _receiver(), live_server.url)

    page.goto("/ops/inbound/putaway/")
    scan(page, task.code)
    assert page.locator("[data-suggested]").inner_text() == "A-01-01"
    scan(page, "c-03-01")
    result, text = feedback(page)
    assert result == "ok" and "C-03-01" in text and "Autre emplacement" in text
    task.refresh_from_db()
    assert task.confirmed_location.code == "C-03-01"


def test_scans_fired_faster_than_the_server_answers_are_all_counted(browser_page, live_server):  # type: ignore[no-untyped-def]
    page = browser_page
    wh = warehouse_build()
    merchant = MerchantFactory(code="acme", name="Acme")
    _catalogue(merchant)
    services.asn_create(
        merchant=merchant, reference="PO-11", site=wh.site, lines=[AsnLineInput(sku_code="SHIRT-M", quantity=3)]
    )
    asn = services.receiving_start(code="PO-11").asn
    login_page(page, _receiver(), live_server.url)
    page.goto(f"/ops/inbound/receiving/{asn.pk}/")
    for _ in range(3):
        page.keyboard.type(SHIRT_GTIN)
        page.keyboard.press("Enter")
    page.wait_for_function("window.quaiSounds && window.quaiSounds.length >= 3")
    assert page.evaluate("window.quaiSounds") == ["ok", "ok", "ok"]
    row = page.locator("#lines tr[data-sku='SHIRT-M']")
    assert row.locator("[data-received]").inner_text() == "3"
    assert asn.lines.get().received_quantity == 3


# --- What a new user hit, on a phone (412 × 915), every scan typed as keystrokes + Enter ------------------------
@pytest.fixture
def phone(chromium, live_server):  # type: ignore[no-untyped-def]
    context = chromium.new_context(
        viewport={"width": 412, "height": 915}, locale="fr-FR", base_url=live_server.url, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_on_a_phone_a_prefixed_sscc_opens_the_receipt_a_foreign_lot_is_amber_and_a_scan_never_closes(  # type: ignore[no-untyped-def]
    phone, live_server
):
    page = phone
    wh = warehouse_build()
    merchant = MerchantFactory(code="acme", name="Acme")
    _catalogue(merchant)
    carton, pallet = sscc(31), sscc(32)
    asn = services.asn_create(
        merchant=merchant,
        reference="PO-5150",
        site=wh.site,
        supplier="Cosmétiques du Sud",
        expected_at=date(2031, 12, 3),
        lines=[AsnLineInput(sku_code="CREAM-50", quantity=24, lot="LOT42", sscc=carton)],
        handling_units=[HandlingUnitInput(sscc=carton), HandlingUnitInput(sscc=pallet, kind="pallet")],
    )
    login_page(page, _receiver(), live_server.url)

    page.goto("/ops/inbound/receiving/")
    assert "2031-12-03" in page.locator(".list-buttons").inner_text()  # ISO 8601, whatever the language
    screenshot(page, "inbound-phone-1-home")
    # the pallet's label read with its GS1-128 symbology identifier opens the receipt
    page.keyboard.type(f"]C100{pallet}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ops/inbound/receiving/{asn.pk}/")
    assert pallet in page.locator("#hu").inner_text()

    # inside the receipt, a carton read from a GS1 DataMatrix (]d2) switches the carton being unpacked
    scan(page, f"]d200{carton}")
    result, text = feedback(page)
    assert result == "ok" and carton in text

    # the announced lot is LOT42: LOT99 is received (it is here) but the answer is amber and says so
    scan(page, "0103760000000024" + "17311231" + "10LOT99")
    result, text = feedback(page)
    assert result == "warn" and "LOT99" in text and "LOT42" in text
    assert last_sound(page) == "warn"
    screenshot(page, "inbound-phone-2-foreign-lot")

    # the confirmation page: a scan lands in the scan field and is refused in red; the ASN stays open
    page.goto(f"/ops/inbound/receiving/{asn.pk}/close/")
    assert page.evaluate("document.activeElement.id") == "scan"
    lots = sorted(row.get_attribute("data-lot") for row in page.locator("#discrepancies tr[data-kind='lot']").all())
    assert lots == ["LOT42", "LOT99"]
    scan(page, SHIRT_GTIN)
    result, text = feedback(page)
    assert result == "error" and last_sound(page) == "error"
    asn.refresh_from_db()
    assert asn.status == AsnStatus.RECEIVING
    screenshot(page, "inbound-phone-3-close-scan-refused")
    # even with the focus on the confirm button, Enter does not close: it takes a tap
    page.focus("#confirm-close")
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    asn.refresh_from_db()
    assert asn.status == AsnStatus.RECEIVING and page.url.endswith("/close/")
    page.tap("#confirm-close")
    page.wait_for_url("**/report/")
    asn.refresh_from_db()
    assert asn.status == AsnStatus.CLOSED
    rows = {
        (r.get_attribute("data-kind"), r.get_attribute("data-lot"), r.locator("td").nth(4).inner_text())
        for r in page.locator("#discrepancies tr[data-kind]").all()
    }
    assert ("lot", "LOT42", "-24") in rows and ("lot", "LOT99", "+1") in rows
    screenshot(page, "inbound-phone-4-report")


def test_on_a_phone_putaway_says_an_unknown_location_does_not_exist(phone, live_server):  # type: ignore[no-untyped-def]
    page = phone
    wh = warehouse_build()
    merchant = MerchantFactory(code="acme", name="Acme")
    _catalogue(merchant)
    storage_location(wh.storage, "A-01-01", x="4")
    services.asn_create(
        merchant=merchant, reference="PO-12", site=wh.site, lines=[AsnLineInput(sku_code="SHIRT-M", quantity=2)]
    )
    services.receiving_scan(asn=services.receiving_start(code="PO-12").asn, code=SHIRT_GTIN, quantity=2)
    login_page(page, _receiver(), live_server.url)

    page.goto("/ops/inbound/putaway/")
    scan(page, SHIRT_GTIN)
    assert feedback(page)[0] == "ok"
    scan(page, "Z-99-99-99")
    result, text = feedback(page)
    assert result == "error" and "Z-99-99-99" in text and "n'existe pas" in text and "Rien à ranger" not in text
    screenshot(page, "inbound-phone-5-putaway-unknown-location")
    assert PutawayTask.objects.get().status == PutawayStatus.OPEN
