"""Inventory's events speak the merchant's terms: beside the internal ids, the SKU's code, the locations' codes
and the document a reservation serves (docs/CONTRACTS.md, core: "Payloads merchants will read…")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.models import OutboxEvent
from quai.inventory import services
from quai.inventory.models import MovementKind
from quai.inventory.tests.factories import LocationFactory, SkuFactory, ZoneFactory, stocked_sku

pytestmark = pytest.mark.django_db

NOW = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen_clock():
    clock.set_now(NOW)


def _payloads(name: str) -> list[dict]:
    return [e.payload for e in OutboxEvent.objects.filter(name=name).order_by("pk")]


def test_stock_changed_names_the_sku_and_both_places_by_their_codes(merchant):
    sku = SkuFactory(merchant=merchant, code="MUG-RED")
    dock = LocationFactory(code="DOCK-1")
    shelf = LocationFactory(zone=dock.zone, code="A-01-02")
    services.stock_receive(sku=sku, location=dock, quantity=5)
    services.stock_move(sku=sku, from_location=dock, to_location=shelf, quantity=2, kind=MovementKind.PUTAWAY)
    services.stock_adjust(sku=sku, location=shelf, quantity_delta=-1, reason="broken")

    receipt, putaway, adjustment = _payloads("inventory.stock_changed")
    assert (receipt["sku_code"], receipt["from_location_code"], receipt["to_location_code"]) == (
        "MUG-RED",
        "",
        "DOCK-1",
    )
    assert (putaway["from_location_code"], putaway["to_location_code"]) == ("DOCK-1", "A-01-02")
    assert (adjustment["sku_code"], adjustment["from_location_code"]) == ("MUG-RED", "A-01-02")


def test_stock_changed_of_an_adjustment_on_a_blocked_location_still_names_it(merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=5, code="MUG-BLUE")
    location.status = "blocked"  # a count in progress: adjustments still land there
    location.save(update_fields=["status"])
    services.stock_adjust(sku=sku, location=location, quantity_delta=2, reason="found")
    assert _payloads("inventory.stock_changed")[-1]["to_location_code"] == location.code


def test_reservation_made_carries_the_sku_code_and_the_document(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=5, code="MUG-GREEN")
    services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_type="order", document_id="SO-1")
    services.reservation_create(merchant=merchant, sku=sku, quantity=1)  # no document: the other statement on PG
    with_document, without = _payloads("inventory.reservation_made")
    assert (with_document["sku_code"], with_document["document_type"], with_document["document_id"]) == (
        "MUG-GREEN",
        "order",
        "SO-1",
    )
    assert without["sku_code"] == "MUG-GREEN"


def test_the_postgresql_reservation_stays_one_statement_with_the_sku_code(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=5)
    with CaptureQueriesContext(connection) as queries:
        services.reservation_create(merchant=merchant, sku=sku, quantity=1)
    if connection.vendor == "postgresql":
        assert len(queries) == 1, [q["sql"] for q in queries]
    assert _payloads("inventory.reservation_made")[0]["sku_code"] == sku.code


def test_reservation_allocated_names_each_place_and_the_document(merchant):
    sku, here = stocked_sku(merchant=merchant, quantity=2, code="MUG-GOLD")
    there = LocationFactory(zone=here.zone)
    services.stock_receive(sku=sku, location=there, quantity=2)
    reservation = services.reservation_create(
        merchant=merchant, sku=sku, quantity=3, document_type="order", document_id="SO-2"
    )
    services.reservation_allocate(reservation=reservation)
    (payload,) = _payloads("inventory.reservation_allocated")
    assert (payload["sku_code"], payload["document_type"], payload["document_id"]) == ("MUG-GOLD", "order", "SO-2")
    codes = {entry["location_id"]: entry["location_code"] for entry in payload["allocations"]}
    assert codes == {here.pk: here.code, there.pk: there.code}


def test_reservation_consumed_and_its_pick_name_the_sku_the_document_and_the_place(merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=5, code="MUG-PINK")
    reservation = services.reservation_create(
        merchant=merchant, sku=sku, quantity=2, document_type="order", document_id="SO-3"
    )
    services.reservation_allocate(reservation=reservation)
    services.reservation_consume(reservation=reservation)
    (consumed,) = _payloads("inventory.reservation_consumed")
    assert (consumed["sku_code"], consumed["document_type"], consumed["document_id"]) == ("MUG-PINK", "order", "SO-3")
    pick = _payloads("inventory.stock_changed")[-1]
    assert (pick["kind"], pick["sku_code"], pick["from_location_code"], pick["to_location_code"]) == (
        "pick",
        "MUG-PINK",
        location.code,
        "",
    )


def test_reservation_released_carries_the_sku_code_and_the_document(merchant):
    sku, _location = stocked_sku(merchant=merchant, quantity=5, code="MUG-GREY")
    reservation = services.reservation_create(
        merchant=merchant, sku=sku, quantity=3, document_type="order", document_id="SO-4"
    )
    services.reservation_shrink(reservation=reservation, quantity=1)
    services.reservation_release(reservation=reservation)
    shrunk, released = _payloads("inventory.reservation_released")
    assert (shrunk["sku_code"], shrunk["document_type"], shrunk["document_id"]) == ("MUG-GREY", "order", "SO-4")
    assert (released["sku_code"], released["quantity"], released["remaining"]) == ("MUG-GREY", 2, 0)


def test_reservation_moved_names_the_sku_and_both_places(merchant):
    sku, here = stocked_sku(merchant=merchant, quantity=5, code="MUG-TEAL")
    there = LocationFactory(zone=here.zone)
    services.stock_receive(sku=sku, location=there, quantity=5)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=3)
    services.reservation_allocate(reservation=reservation)
    services.reservation_move(
        reservation=reservation, allocation=reservation.allocations.get(), to_location=there, quantity=2
    )
    (moved,) = _payloads("inventory.reservation_moved")
    assert (moved["sku_code"], moved["from_location_code"], moved["to_location_code"]) == (
        "MUG-TEAL",
        here.code,
        there.code,
    )


def test_stock_counting_changed_names_the_sku_and_the_place(merchant):
    zone = ZoneFactory(valid_from=NOW + timedelta(days=1), valid_until=NOW + timedelta(days=3))
    location = LocationFactory(zone=zone)
    stocked_sku(merchant=merchant, quantity=4, location=location, code="MUG-SALE")
    clock.set_now(NOW + timedelta(days=1))
    services.stock_counting_sync()
    clock.set_now(NOW + timedelta(days=3))
    services.stock_counting_sync()
    entered, left = _payloads("inventory.stock_counting_changed")
    assert (entered["counted"], entered["sku_code"], entered["location_code"]) == (True, "MUG-SALE", location.code)
    assert (left["counted"], left["sku_code"], left["location_code"]) == (False, "MUG-SALE", location.code)
