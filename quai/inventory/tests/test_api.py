"""The stock API: a merchant sees and touches its own rows only; errors come in the common format."""

from __future__ import annotations

import pytest

from quai.inventory import services
from quai.inventory.models import StockLevel
from quai.inventory.tests.factories import LocationFactory, ZoneFactory, stocked_sku

pytestmark = pytest.mark.django_db


def test_a_merchant_reads_its_availability(api, merchant, other_merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=7)
    stocked_sku(merchant=other_merchant, quantity=3)
    body = api.get("inventory/availability").json()
    assert body["count"] == 1
    assert body["items"][0]["sku_id"] == sku.pk
    assert body["items"][0]["available"] == 7
    detail = api.get(f"inventory/availability/{sku.pk}").json()
    assert (detail["on_hand"], detail["reserved"], detail["available_to_sell"]) == (7, 0, 7)


def test_another_merchants_sku_answers_404(api, other_merchant):
    foreign, _location = stocked_sku(merchant=other_merchant, quantity=3)
    response = api.get(f"inventory/availability/{foreign.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "sku_not_found"


def test_a_reservation_is_created_read_consumed_through_the_api(api, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=5)
    response = api.post(
        "inventory/reservations", {"sku_id": sku.pk, "quantity": 2, "document_id": "SO-9", "allocate": True}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["quantity"], body["status"], body["allocations"][0]["location_id"]) == (2, "open", location.pk)
    reservation_id = body["id"]
    assert api.get(f"inventory/reservations/{reservation_id}").json()["document_id"] == "SO-9"
    assert api.get("inventory/reservations").json()["count"] == 1
    consumed = api.post(f"inventory/reservations/{reservation_id}/consume", {}).json()
    assert consumed["status"] == "consumed"
    movements = api.get("inventory/movements", kind="pick").json()
    assert movements["count"] == 1
    stock = api.get("inventory/stock", location_id=location.pk).json()
    assert stock["items"][0]["on_hand"] == 3
    zones = api.get("inventory/stock/zones").json()
    assert (zones["items"][0]["zone_id"], zones["items"][0]["on_hand"], zones["items"][0]["free"]) == (
        location.zone_id,
        3,
        3,
    )


def test_a_reservation_beyond_stock_answers_409_insufficient_stock(api, merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=1)
    response = api.post("inventory/reservations", {"sku_id": sku.pk, "quantity": 2})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_stock"
    assert StockLevel.objects.get(sku=sku).reserved == 0


def test_a_zero_quantity_is_refused_with_the_field_named(api, merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=1)
    response = api.post("inventory/reservations", {"sku_id": sku.pk, "quantity": 0})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["field"] == "quantity"


def test_a_merchant_cannot_release_another_merchants_reservation(api, other_merchant):
    sku, _location = stocked_sku(merchant=other_merchant, quantity=3)
    foreign = services.reservation_create(merchant=other_merchant, sku=sku, quantity=1)
    assert api.post(f"inventory/reservations/{foreign.pk}/release").status_code == 404
    assert api.post("inventory/reservations", {"sku_id": sku.pk, "quantity": 1}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == "open"


def test_staff_see_every_merchant_and_must_name_one_to_reserve(staff_api, merchant, other_merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=3)
    stocked_sku(merchant=other_merchant, quantity=3)
    assert staff_api.get("inventory/availability").json()["count"] == 2
    response = staff_api.post("inventory/reservations", {"sku_id": sku.pk, "quantity": 1})
    assert response.json()["error"]["code"] == "merchant_required"
    created = staff_api.post("inventory/reservations", {"sku_id": sku.pk, "quantity": 1, "merchant_id": merchant.pk})
    assert created.status_code == 201
    release = staff_api.post(f"inventory/reservations/{created.json()['id']}/release")
    assert release.json()["status"] == "released"
    assert LocationFactory()  # staff reads stock of any place
    assert staff_api.get("inventory/stock").json()["count"] == 2


def test_a_retried_reservation_answers_409_with_the_existing_reservations_id(api, merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=5)
    body = {"sku_id": sku.pk, "quantity": 2, "document_type": "order", "document_id": "SO-10", "allocate": True}
    first = api.post("inventory/reservations", body)
    assert first.status_code == 201, first.content
    retried = api.post("inventory/reservations", body)
    assert retried.status_code == 409, retried.content
    error = retried.json()["error"]
    assert (error["code"], error["details"]["reservation_id"]) == ("reservation_exists", first.json()["id"])
    assert StockLevel.objects.get(sku=sku).reserved == 2
    assert api.get("inventory/reservations").json()["count"] == 1


def test_a_reservation_asked_allocated_that_cannot_be_answers_409_and_holds_nothing(api, merchant):
    dock = LocationFactory(zone=ZoneFactory(kind="receiving"))  # available, but not at a pickable place yet
    sku, _location = stocked_sku(merchant=merchant, quantity=5, location=dock)
    body = {"sku_id": sku.pk, "quantity": 2, "document_id": "SO-11", "allocate": True}
    response = api.post("inventory/reservations", body)
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "insufficient_stock"
    assert StockLevel.objects.get(sku=sku).reserved == 0
    assert api.get("inventory/reservations").json()["count"] == 0
