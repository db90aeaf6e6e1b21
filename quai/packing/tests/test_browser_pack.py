"""The pack station and the truck in Chromium: a batch picked on the floor is packed with typed scans (keystrokes +
Enter) — a tote scanned, a wrong item refused, a weight mismatch blocked, a held order stopped — on a desk screen
and on a phone; then the parcels are scanned onto the truck, one missing, and the manifest closed. Screenshots are
saved under var/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from conftest import login_page, screenshot
from quai.catalog.tests.factories import PackagingTypeFactory
from quai.fulfillment import services as fulfillment
from quai.fulfillment.models import PickTask
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.orders import services as orders
from quai.orders.models import Order
from quai.packing.models import Parcel, ParcelStatus
from quai.shipping.models import Manifest, Shipment
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESK = {"width": 1366, "height": 768}
PHONE = {"width": 412, "height": 915}


def _page(chromium: Any, live_server: Any, viewport: dict[str, int], locale: str = "fr-FR") -> Any:
    context = chromium.new_context(
        viewport=viewport,
        locale=locale,
        base_url=live_server.url,
        is_mobile=viewport is PHONE,
        has_touch=viewport is PHONE,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def _scan(page: Any, code: str) -> str:
    """Type a scan and Enter, wait for the screen's sound: "ok", "warn" or "error"."""
    heard = page.evaluate("window.quaiSounds.length")
    page.locator("#scan").focus()
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.quaiSounds.length > {heard}", timeout=5_000)
    return str(page.evaluate("window.quaiSounds[window.quaiSounds.length - 1]"))


def _click(page: Any, selector: str) -> str:
    heard = page.evaluate("window.quaiSounds.length")
    page.click(selector)
    page.wait_for_function(f"() => window.quaiSounds.length > {heard}", timeout=10_000)
    return str(page.evaluate("window.quaiSounds[window.quaiSounds.length - 1]"))


def _picked_floor() -> tuple[Any, dict[str, str]]:
    """Three orders released, waved, and their batch picked tote by tote through the fulfilment services."""
    merchant = MerchantFactory(code="lumen", name="Lumen")
    floor = floor_for(merchant)
    PackagingTypeFactory(
        code="S", inner_length_mm=150, inner_width_mm=120, inner_height_mm=110, max_weight_g=2000, tare_weight_g=80
    )
    PackagingTypeFactory(
        code="M", inner_length_mm=320, inner_width_mm=220, inner_height_mm=120, max_weight_g=5000, tare_weight_g=150
    )
    released_order(floor, "WEB-1", [(0, 2), (3, 1)])
    released_order(floor, "WEB-2", [(1, 1), (2, 1)])
    released_order(floor, "WEB-3", [(4, 1), (5, 1)])
    batch = wave_for(floor).batches.get()
    picker = StaffUserFactory(username="paul", is_superuser=False)
    fulfillment.batch_start(batch_id=batch.pk, operator=picker)
    gtin = {sku.code: sku.gtin for sku in floor.skus}
    while (task := fulfillment.current_task(batch)) is not None:
        fulfillment.pick_scan(batch_id=batch.pk, operator=picker, code=task.location.code)
        fulfillment.pick_scan(batch_id=batch.pk, operator=picker, code=gtin[task.sku.code])
        fulfillment.pick_scan(batch_id=batch.pk, operator=picker, code=task.tote.code, quantity=task.quantity)
        batch.refresh_from_db()
    # Customer service holds WEB-3 after it was picked: the pack station must stop it.
    orders.order_hold(order=Order.objects.get(external_id="WEB-3").pk, reason="customer_service")
    return floor, gtin


def _packer() -> Any:
    user = StaffUserFactory(username="lea", is_superuser=False)
    user.groups.add(Group.objects.get_or_create(name="packer")[0])
    return user


def _tote_of(ref: str) -> str:
    task = PickTask.objects.filter(order_id=Order.objects.get(external_id=ref).pk).select_related("tote").first()
    assert task is not None
    return str(task.tote.code)


def _pack(page: Any, ref: str, gtin: dict[str, str], *, prefix: str, wrong: str | None = None) -> Parcel:
    """Scan the order's tote (choosing the order when the tote holds several), every unit, take the suggested box,
    weigh (a wrong weight first when ``wrong``... see the caller), print the label."""
    heard = _scan(page, _tote_of(ref))
    if heard == "warn":  # a tote of several orders: the screen lists them, the order's reference opens it
        screenshot(page, f"{prefix}-tote-of-several-orders")
        heard = _scan(page, ref)
    assert heard == "ok", page.inner_text("#pack-panel")
    assert page.locator("[data-order-ref]").inner_text().strip() == ref
    screenshot(page, f"{prefix}-1-order-items")
    parcel = Parcel.objects.get(order_reference=ref, status=ParcelStatus.OPEN)
    if wrong is not None:
        assert _scan(page, wrong) == "error"
        assert page.get_attribute("#feedback", "data-result") == "error"
        assert page.locator("body.flash-error").count() == 1
        screenshot(page, f"{prefix}-2-wrong-item-refused")
    for item in parcel.items.order_by("pk"):
        for _n in range(item.expected):
            assert _scan(page, gtin[item.sku_code]) == "ok", page.inner_text("#feedback")
    page.wait_for_selector("[data-box]")
    screenshot(page, f"{prefix}-3-suggested-box")
    assert _click(page, "[data-box]") == "ok"
    page.wait_for_selector("[data-expected-weight]")
    parcel.refresh_from_db()
    assert parcel.expected_weight_g
    if wrong is not None:
        assert _scan(page, str(parcel.expected_weight_g + 500)) == "error"
        assert page.locator("[data-blocked]").count() == 1
        assert "POIDS" in page.inner_text("#feedback").upper()
        screenshot(page, f"{prefix}-4-weight-mismatch-blocked")
        parcel.refresh_from_db()
        assert not parcel.weight_ok and parcel.status == ParcelStatus.OPEN
    assert _scan(page, str(parcel.expected_weight_g + 10)) == "ok"
    page.wait_for_selector("[data-close]")
    screenshot(page, f"{prefix}-5-ready-to-label")
    assert _click(page, "[data-close]") == "ok", page.inner_text("#pack-panel")
    page.wait_for_selector("[data-closed]")
    screenshot(page, f"{prefix}-6-parcel-closed")
    parcel.refresh_from_db()
    assert parcel.status == ParcelStatus.CLOSED
    return parcel


def test_a_picked_batch_is_packed_with_typed_scans_and_loaded_onto_the_truck(chromium, live_server):  # type: ignore[no-untyped-def]
    floor, gtin = _picked_floor()
    packer = _packer()
    desk = _page(chromium, live_server, DESK)
    login_page(desk, packer, live_server.url)
    desk.goto("/ops/packing/")
    screenshot(desk, "pack-desk-0-station")

    # WEB-1 at the desk: a tote scanned, WEB-2's item refused, a weight mismatch blocked, then closed.
    first = _pack(desk, "WEB-1", gtin, prefix="pack-desk", wrong=gtin[floor.skus[1].code])
    label = desk.request.get(f"/ops/packing/parcel/{first.pk}/label/")
    assert label.ok and label.body().startswith(b"%PDF")
    assert Order.objects.get(external_id="WEB-1").status == "packed"

    # WEB-3 was held after picking: stopped with a clear message, whichever way it is scanned.
    assert _scan(desk, "WEB-3") == "error"
    desk.wait_for_selector("[data-stop]")
    assert "attente" in desk.inner_text("[data-stop]")  # "… est en attente …": the French message
    screenshot(desk, "pack-desk-7-held-order-stopped")
    assert not Parcel.objects.filter(order_reference="WEB-3").exists()

    # WEB-2 on a phone-sized screen (a tablet or phone at a small table), in English.
    phone = _page(chromium, live_server, PHONE, locale="en-GB")
    login_page(phone, packer, live_server.url)
    phone.goto("/ops/packing/")
    phone.click("button[name=language][value=en]")
    _pack(phone, "WEB-2", gtin, prefix="pack-phone")

    # The truck: WEB-1's parcel scanned by its SSCC (as GS1-128 data), WEB-2's forgotten: flagged missing.
    shipment = Shipment.objects.get(parcel_id=first.pk)
    desk.goto("/ops/packing/truck/")
    screenshot(desk, "truck-desk-1-carriers")
    desk.click(f"[data-carrier={shipment.carrier.code}]")
    desk.wait_for_selector("[data-loaded-count]")
    assert _scan(desk, "00" + shipment.sscc) == "ok"
    assert _scan(desk, "NOT-A-PARCEL") == "error"
    screenshot(desk, "truck-desk-2-one-loaded-one-missing")
    assert desk.locator("tr.missing").count() == 1
    assert _click(desk, "[data-close-manifest]") == "warn"
    desk.wait_for_selector("[data-manifest-pdf]")
    screenshot(desk, "truck-desk-3-closed-with-missing")
    manifest = Manifest.objects.get()
    assert [m["order"] for m in manifest.missing] == ["WEB-2"]
    pdf = desk.request.get(f"/ops/packing/truck/{manifest.pk}/manifest.pdf")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    assert Order.objects.get(external_id="WEB-1").status == "shipped"
    assert Order.objects.get(external_id="WEB-2").status == "packed"
    phone.goto("/ops/packing/truck/")
    screenshot(phone, "truck-phone-1-carriers")
    desk.context.close()
    phone.context.close()


@pytest.fixture
def chromium_with_camera(chromium):  # type: ignore[no-untyped-def]
    """Chromium with a fake camera (a test pattern) and camera access granted without a prompt: a second browser
    from the session's Playwright (one Playwright per process: a second one would meet the first one's loop)."""
    from conftest import CHROMIUM

    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-background-networking",
            "--disable-gpu",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
        ],
    )
    yield browser
    browser.close()


def test_the_station_camera_photo_is_kept_with_the_parcel(chromium_with_camera, live_server):  # type: ignore[no-untyped-def]
    _picked_floor()
    desk = _page(chromium_with_camera, live_server, DESK)
    desk.set_default_timeout(30_000)
    desk.context.grant_permissions(["camera"], origin=live_server.url)
    login_page(desk, _packer(), live_server.url)
    desk.goto("/ops/packing/")
    assert _scan(desk, "WEB-1") == "ok"
    desk.click("[data-photo-start]")
    desk.wait_for_function("() => (document.querySelector('[data-camera-video]') || {}).videoWidth > 0")
    screenshot(desk, "pack-desk-8-camera")
    heard = desk.evaluate("window.quaiSounds.length")
    desk.click("[data-photo-take]")
    desk.wait_for_function(f"() => window.quaiSounds.length > {heard}")
    assert desk.evaluate("window.quaiSounds[window.quaiSounds.length - 1]") == "ok"
    parcel = Parcel.objects.get(order_reference="WEB-1")
    assert bytes(parcel.photo).startswith(b"\xff\xd8") and parcel.photo_type == "image/jpeg"
    assert desk.locator("[data-photo-kept]").count() == 1
    desk.context.close()


def test_the_pack_station_on_a_360_px_handheld_in_french_stays_within_the_screen(chromium, live_server):  # type: ignore[no-untyped-def]
    # Found in QA: in French the labels' choice ("Étiquettes" beside "PDF (A6, imprimante de bureau)") ran 10 px
    # past a 360 px screen, so the whole station scrolled sideways.
    _floor, gtin = _picked_floor()
    handheld = {"width": 360, "height": 740}
    page = _page(chromium, live_server, handheld)
    login_page(page, _packer(), live_server.url)
    page.goto("/ops/packing/")
    assert page.evaluate("document.documentElement.lang") == "fr"
    assert page.evaluate("document.documentElement.scrollWidth") <= handheld["width"]
    assert _scan(page, "WEB-1") == "ok"
    assert _scan(page, gtin[_floor.skus[0].code]) == "ok"
    assert page.evaluate("document.documentElement.scrollWidth") <= handheld["width"]
    screenshot(page, "pack-handheld-360-fr")
    page.context.close()
