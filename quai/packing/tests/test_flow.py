"""The pack station's services end to end: scan, box, weigh, label, close; then the truck and the tracking."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent
from quai.inventory.models import MovementKind, StockMovement, StockQuantity
from quai.inventory.selectors import stock_drift
from quai.orders import services as orders
from quai.orders.models import Order
from quai.packing import services
from quai.packing.models import ParcelStatus
from quai.packing.tests.factories import floor_build, released_order
from quai.shipping import services as shipping
from quai.shipping.models import ManifestStatus, Shipment
from quai.shipping.tests.test_carriers import server  # noqa: F401  (the local carrier server)

pytestmark = pytest.mark.django_db


def _order(floor, ref="SHOP-1", shirts=2, mugs=1):  # type: ignore[no-untyped-def]
    lines = [
        {"sku": "SHIRT-M", "quantity": shirts, "unit_price": "19.90"},
        {"sku": "MUG", "quantity": mugs, "unit_price": "9.90"},
    ]
    return released_order(floor.merchant, ref, lines)


def _packed(floor, ref="SHOP-1"):  # type: ignore[no-untyped-def]
    order = _order(floor, ref)
    parcel = services.parcel_open(code=ref, station=floor.station, actor="packer")
    for code in ("3760000000017", "3760000000017", "03760000000031"):
        services.parcel_scan(parcel=parcel, code=code, actor="packer")
    box = services.parcel_box_suggest(parcel=parcel).box
    parcel = services.parcel_box_set(parcel=parcel, packaging_code=box.code)
    services.parcel_weigh(parcel=parcel, weight_g=parcel.expected_weight_g)
    return order, services.parcel_close(parcel=parcel, actor="packer")


def test_a_wrong_item_and_an_extra_unit_are_refused_and_recorded(db):  # type: ignore[no-untyped-def]
    floor = floor_build()
    _order(floor, shirts=1, mugs=1)
    from quai.catalog.tests.factories import SkuFactory

    SkuFactory(merchant=floor.merchant, code="CAP", gtin="03760000000055")
    parcel = services.parcel_open(code="SHOP-1", station=floor.station, actor="packer")
    with pytest.raises(QuaiError) as wrong:
        services.parcel_scan(parcel=parcel, code="3760000000055", actor="packer")
    assert wrong.value.code == "item_not_in_order"
    services.parcel_scan(parcel=parcel, code="3760000000017", actor="packer")
    with pytest.raises(QuaiError) as extra:
        services.parcel_scan(parcel=parcel, code="3760000000017", actor="packer")
    assert extra.value.code == "item_extra"
    with pytest.raises(QuaiError) as unknown:
        services.parcel_scan(parcel=parcel, code="NOPE-42", actor="packer")
    assert unknown.value.code == "unknown_code"
    scans = OutboxEvent.objects.filter(name="packing.scan_recorded").order_by("id")
    assert [(e.payload["result"], e.payload["reason"]) for e in scans] == [
        ("ok", "parcel_opened"),
        ("refused", "item_not_in_order"),
        ("ok", ""),
        ("refused", "item_extra"),
        ("refused", "unknown_code"),
    ]
    assert all(e.payload["operator"] == "packer" for e in scans)


def test_a_held_order_is_stopped_at_the_pack_station_even_after_scanning(db):  # type: ignore[no-untyped-def]
    floor = floor_build()
    order = _order(floor, shirts=1, mugs=1)
    parcel = services.parcel_open(code="SHOP-1", station=floor.station)
    services.parcel_scan(parcel=parcel, code="3760000000017")
    orders.order_hold(order=order.pk, reason="customer_service")
    with pytest.raises(QuaiError) as stopped:
        services.parcel_scan(parcel=parcel, code="03760000000031")
    assert stopped.value.code == "order_on_hold"
    with pytest.raises(QuaiError) as again:
        services.parcel_open(code="SHOP-1", station=floor.station)
    assert again.value.code == "order_on_hold"


def test_a_weight_mismatch_blocks_the_parcel(db):  # type: ignore[no-untyped-def]
    floor = floor_build()
    _order(floor, shirts=1, mugs=1)
    parcel = services.parcel_open(code="SHOP-1", station=floor.station)
    services.parcel_scan(parcel=parcel, code="3760000000017")
    services.parcel_scan(parcel=parcel, code="3760000000031")
    parcel = services.parcel_box_set(parcel=parcel, packaging_code=services.parcel_box_suggest(parcel=parcel).box.code)
    with pytest.raises(QuaiError) as zero:
        services.parcel_weigh(parcel=parcel, weight_g=0)
    assert zero.value.code == "weight_invalid"
    with pytest.raises(QuaiError) as heavy:
        services.parcel_weigh(parcel=parcel, weight_g=parcel.expected_weight_g + 400)
    assert heavy.value.code == "weight_mismatch"
    with pytest.raises(QuaiError) as blocked:
        services.parcel_close(parcel=parcel)
    assert blocked.value.code == "parcel_weight_unchecked"


def test_a_packed_parcel_keeps_its_units_in_the_ledger_until_the_truck_leaves(db):  # type: ignore[no-untyped-def]
    floor = floor_build()
    order, parcel = _packed(floor)
    assert parcel.status == ParcelStatus.CLOSED
    assert Order.objects.get(pk=order.pk).status == "packed"
    at_station = {(q.sku_id, q.on_hand, q.reserved) for q in StockQuantity.objects.filter(location=floor.station)}
    assert at_station == {(floor.shirt.pk, 2, 2), (floor.mug.pk, 1, 1)}
    assert stock_drift() == []
    shipment = Shipment.objects.get(parcel_id=parcel.pk)
    assert shipment.sscc.startswith("0") and len(shipment.sscc) == 18
    # The truck: one other parcel labelled but not loaded is flagged missing and stays in the ledger.
    _other_order, other = _packed(floor, "SHOP-2")
    manifest = shipping.manifest_open(carrier=shipment.carrier)
    shipping.manifest_scan(manifest=manifest, code="00" + shipment.sscc, actor="driver")
    closed = shipping.manifest_close(manifest=manifest, actor="supervisor")
    assert closed.status == ManifestStatus.CLOSED
    assert [m["sscc"] for m in closed.missing] == [Shipment.objects.get(parcel_id=other.pk).sscc]
    assert bytes(closed.document).startswith(b"%PDF")
    assert Order.objects.get(pk=order.pk).status == "shipped"
    shipped = OutboxEvent.objects.get(name="shipment.shipped")
    assert shipped.payload["order_id"] == order.pk
    assert shipped.payload["tracking_numbers"] == [shipment.tracking_number]
    assert shipped.payload["parcel_ids"] == [parcel.pk]
    assert StockMovement.objects.filter(kind=MovementKind.SHIP, document_id__startswith=f"{order.pk}/").count() == 2
    left = {(q.sku_id, q.on_hand) for q in StockQuantity.objects.filter(location=floor.station, on_hand__gt=0)}
    assert left == {(floor.shirt.pk, 2), (floor.mug.pk, 1)}  # SHOP-2's units, still at the station
    assert stock_drift() == []
    # Tracking (the sandbox carrier moves with the clock): delivered closes the order.
    clock.set_now(clock.now() + timedelta(hours=30))
    assert shipping.tracking_poll() == 4
    assert Order.objects.get(pk=order.pk).status == "delivered"
    statuses = [e.payload["status"] for e in OutboxEvent.objects.filter(name="shipment.tracking_event").order_by("id")]
    assert statuses == ["label_created", "in_transit", "out_for_delivery", "delivered"]
    assert OutboxEvent.objects.filter(name="shipment.delivered").count() == 1
    assert shipping.tracking_poll() == 0


def test_a_carrier_error_at_label_time_leaves_the_parcel_waiting_and_nothing_half_closed(db, server):  # type: ignore[no-untyped-def]  # noqa: F811
    from quai.shipping.models import CarrierAccount

    floor = floor_build()
    CarrierAccount.objects.create(
        code="colissimo",
        name="Colissimo",
        kind="colissimo",
        settings={"sls_url": server.url, "timeout": 2},
        sender_name="Quai",
        sender_line1="1 quai",
        sender_postcode="69002",
        sender_city="Lyon",
    )
    server.answer = (500, {}, b"Internal Server Error")
    order = _order(floor, shirts=1, mugs=1)
    parcel = services.parcel_open(code="SHOP-1", station=floor.station)
    services.parcel_scan(parcel=parcel, code="3760000000017")
    services.parcel_scan(parcel=parcel, code="3760000000031")
    parcel = services.parcel_box_set(parcel=parcel, packaging_code=services.parcel_box_suggest(parcel=parcel).box.code)
    services.parcel_weigh(parcel=parcel, weight_g=parcel.expected_weight_g)
    movements_before = StockMovement.objects.count()
    with pytest.raises(QuaiError) as failed:
        services.parcel_close(parcel=parcel)
    assert failed.value.code == "carrier_unavailable"
    parcel.refresh_from_db()
    assert (parcel.status, parcel.last_error) == (ParcelStatus.AWAITING_LABEL, "carrier_unavailable")
    assert Order.objects.get(pk=order.pk).status == "released"
    assert not Shipment.objects.exists()
    assert StockMovement.objects.count() == movements_before
    assert stock_drift() == []
    # The carrier is back: the same parcel closes.
    from quai.shipping.tests.test_carriers import _mtom

    server.answer = _mtom({"messages": [], "labelV2Response": {"parcelNumber": "6A999"}}, b"%PDF label")
    closed = services.parcel_close(parcel=parcel)
    assert closed.status == ParcelStatus.CLOSED
    assert Shipment.objects.get(parcel_id=parcel.pk).tracking_number == "6A999"


def test_a_parcel_scanned_twice_onto_the_truck_is_said_to_be_loaded_already(db):  # type: ignore[no-untyped-def]
    # Found in QA: the second scan of a parcel already on the truck answered green "Loaded: …" as if it were new,
    # so a loader who scanned one parcel twice and forgot another could not tell from the screen.
    from django.contrib.auth.models import Group
    from django.test import Client

    from quai.tenants.tests.factories import StaffUserFactory

    floor = floor_build()
    _, parcel = _packed(floor)
    shipment = Shipment.objects.get(parcel_id=parcel.pk)
    manifest = shipping.manifest_open(carrier=shipment.carrier)
    loader = StaffUserFactory(username="loader", is_superuser=False)
    loader.groups.add(Group.objects.get_or_create(name="packer")[0])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(loader)
    url = f"/ops/packing/truck/{manifest.pk}/action/"
    first = client.post(url, {"code": "00" + shipment.sscc}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-result="ok"' in first and "Loaded: SHOP-1" in first
    again = client.post(url, {"code": shipment.sscc}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-result="warn"' in again and "already on this truck" in again, again
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr"
    again = client.post(url, {"code": shipment.tracking_number}, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-result="warn"' in again and "déjà dans ce camion" in again, again
    shipment.refresh_from_db()
    assert shipment.manifest_id == manifest.pk and shipment.loaded_at is not None
