"""The back office shows orders read-only, filtered, with their lines and status history, in French too."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import translation

from quai.orders import services
from quai.orders.tests.conftest import order_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk(staff_user):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff_user)
    return client


def test_the_order_list_filters_by_status_priority_and_carrier_service(desk, merchant, shirt, stock):
    stock(shirt, 5)
    services.order_create(merchant=merchant, data=order_data("EXP-1", priority="express"))
    response = desk.get("/admin/orders/order/", {"status__exact": "allocated", "priority__exact": "express"})
    assert response.status_code == 200
    assert "EXP-1" in response.content.decode()
    assert desk.get("/admin/orders/order/", {"carrier_service": "colissimo_home"}).status_code == 200


def test_an_order_page_shows_its_lines_and_status_history_in_french(desk, merchant, shirt, stock):
    stock(shirt, 5)
    order = services.order_create(merchant=merchant, data=order_data()).order
    services.order_hold(order=order, reason="fraud", note="adresse douteuse")
    with translation.override("fr"):
        page = desk.get(f"/admin/orders/order/{order.pk}/change/", headers={"accept-language": "fr"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "SHIRT-M" in html
    assert "adresse douteuse" in html
    assert "En attente" in html  # on hold, in French
    assert "Historique des statuts" in html or "historique des statuts" in html
