"""The back office's orders, seen in Chromium at a desk's width: the list and an order's page with its lines and
its status history, in French; screenshots are saved for a person to look at."""

from __future__ import annotations

import pytest

from conftest import login_page, screenshot
from quai.orders import services
from quai.orders.tests.conftest import order_data


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_order_list_and_an_order_page_read_well_at_a_desk(
    browser_page, live_server, staff_user, merchant, shirt, mug, stock
):  # type: ignore[no-untyped-def]
    stock(shirt, 3)
    allocated = services.order_create(merchant=merchant, data=order_data("SHOP-1001", priority="express")).order
    lines = [
        {"sku": "SHIRT-M", "quantity": 2, "unit_price": "19.90"},
        {"sku": "MUG", "quantity": 1, "unit_price": "9.50"},
    ]
    backordered = services.order_create(merchant=merchant, data=order_data("SHOP-1002", lines=lines)).order
    services.order_hold(order=allocated, reason="address", note="Adresse à vérifier")
    page = browser_page
    page.set_viewport_size({"width": 1366, "height": 768})
    login_page(page, staff_user, live_server.url)

    page.goto("/admin/orders/order/")
    listed = page.inner_text("#result_list")
    assert "SHOP-1001" in listed and "SHOP-1002" in listed
    # The results fit their column beside the navigation and the filters: no sideways scrolling at a desk.
    fits = "(() => { const r = document.querySelector('.results'); return r.scrollWidth <= r.clientWidth })()"
    assert page.evaluate(fits)
    screenshot(page, "orders-admin-list")

    page.goto(f"/admin/orders/order/{backordered.pk}/change/")
    content = page.content()
    assert "MUG" in content and "SHIRT-M" in content
    screenshot(page, "orders-admin-order")

    page.goto(f"/admin/orders/order/{allocated.pk}/change/")
    assert "Adresse à vérifier" in page.content()
    screenshot(page, "orders-admin-order-held")


@pytest.mark.django_db
def test_the_order_list_writes_the_promised_date_under_the_carrier_service_in_french(
    staff_user, merchant, shirt, stock
):  # type: ignore[no-untyped-def]
    from django.test import Client

    stock(shirt, 1)
    order = services.order_create(
        merchant=merchant, data=order_data("SHOP-7", promise={"delivery_by": "2026-12-08"})
    ).order
    client = Client()
    client.force_login(staff_user)

    listed = client.get("/admin/orders/order/", headers={"accept-language": "fr"}).content.decode()

    assert order.promised_to is not None
    assert "promise au plus tard le 2026-12-08" in listed
