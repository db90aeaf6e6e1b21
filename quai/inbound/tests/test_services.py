"""Inbound services on the database: ASNs, receiving, discrepancies, putaway, replenishment."""

from __future__ import annotations

from datetime import date

import pytest
from django.db.models import Sum
from django.utils import translation

from quai.catalog.tests.factories import SkuFactory
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_sweep
from quai.core.selectors import state_history
from quai.inbound import selectors, services
from quai.inbound.models import (
    Asn,
    AsnLine,
    AsnStatus,
    HandlingUnit,
    PutawayStatus,
    PutawayTask,
    Receipt,
    ReplenishmentTask,
)
from quai.inbound.services import AsnLineInput, HandlingUnitInput
from quai.inbound.tests.conftest import ledger
from quai.inbound.tests.factories import location, sscc
from quai.inventory.models import StockQuantity, StockStatus
from quai.inventory.services import incoming_sources, stock_move, stock_receive
from quai.tenants.scope import Scope
from quai.warehouse.models import LocationStatus

pytestmark = pytest.mark.django_db

FLOOR = Scope.system("the putaway screen's reads, as the warehouse floor makes them")

GS1_CREAM = "0103760000000024" + "17311231" + "10LOT42"  # (01) GTIN (17) 2031-12-31 (10) LOT42


def _asn(merchant, wh, *lines, units=(), reference="ASN-1"):  # type: ignore[no-untyped-def]
    return services.asn_create(
        merchant=merchant,
        reference=reference,
        site=wh.site,
        supplier="Textiles du Nord",
        expected_at=date(2031, 3, 12),
        lines=list(lines),
        handling_units=list(units),
    )


def _receiving(merchant, wh, *lines, units=()):  # type: ignore[no-untyped-def]
    asn = _asn(merchant, wh, *lines, units=units)
    return services.receiving_start(code=asn.reference).asn


def _on_hand(sku, loc, status=StockStatus.SELLABLE) -> int:  # type: ignore[no-untyped-def]
    total = StockQuantity.objects.filter(sku=sku, location=loc, status=status).aggregate(n=Sum("on_hand"))["n"]
    return int(total or 0)


# --- ASN --------------------------------------------------------------------------------------------------------
def test_an_asn_is_announced_with_its_lines_and_cartons_and_tells_the_merchant(
    merchant, wh, shirt, cream, frozen_clock
):
    carton = sscc(1)
    asn = _asn(
        merchant,
        wh,
        AsnLineInput(sku_code="SHIRT-M", quantity=10, sscc=carton),
        AsnLineInput(sku_code="CREAM-50", quantity=24, lot="LOT42", expiry=date(2031, 12, 31)),
        units=[HandlingUnitInput(sscc=carton, kind="pallet")],
    )
    assert asn.status == AsnStatus.ANNOUNCED
    lines = list(asn.lines.order_by("id"))
    assert [(li.sku_id, li.expected_quantity, li.lot) for li in lines] == [(shirt.pk, 10, ""), (cream.pk, 24, "LOT42")]
    assert lines[0].handling_unit is not None and lines[0].handling_unit.sscc == carton
    event = OutboxEvent.objects.get(name="inbound.asn_announced")
    assert event.merchant_id == merchant.pk and event.payload["expected_units"] == 34


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (AsnLineInput(sku_code="SHIRT-M", quantity=0), "invalid_quantity"),
        (AsnLineInput(sku_code="SHIRT-M", quantity=-3), "invalid_quantity"),
        (AsnLineInput(sku_code="SHIRT-M", quantity=1, lot="L1"), "lot_not_tracked"),
        (AsnLineInput(sku_code="CREAM-50", quantity=1, lot="L1", expiry=date(2031, 3, 9)), "expiry_in_past"),
        (AsnLineInput(sku_code="NOPE", quantity=1), "sku_not_found"),
        (AsnLineInput(sku_code="SHIRT-M", quantity=1, sscc="123"), "unknown_sscc"),
    ],
)
def test_a_bad_asn_line_is_refused_and_nothing_is_written(merchant, wh, shirt, cream, frozen_clock, line, code):
    with pytest.raises(ValidationFailed) as caught:
        _asn(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5), line)
    assert caught.value.code == code
    assert caught.value.details["errors"][0]["line"] == 1
    assert not Asn.objects.exists() and not AsnLine.objects.exists()
    assert not OutboxEvent.objects.filter(name__startswith="inbound.").exists()


def test_another_merchants_sku_is_unknown_to_an_asn(merchant, other_merchant, wh, frozen_clock):
    SkuFactory(merchant=other_merchant, code="RIVAL-1")
    with pytest.raises(ValidationFailed) as caught:
        _asn(merchant, wh, AsnLineInput(sku_code="RIVAL-1", quantity=5))
    assert caught.value.code == "sku_not_found"


def test_every_problem_of_an_asn_is_reported_at_once(merchant, wh, shirt, frozen_clock):
    with pytest.raises(ValidationFailed) as caught:
        _asn(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=0), AsnLineInput(sku_code="X", quantity=1))
    assert [(e["line"], e["code"]) for e in caught.value.details["errors"]] == [
        (0, "invalid_quantity"),
        (1, "sku_not_found"),
    ]


def test_an_asn_reference_is_unique_per_merchant_only(merchant, other_merchant, wh, shirt, frozen_clock):
    _asn(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5))
    with pytest.raises(Conflict) as caught:
        _asn(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5))
    assert caught.value.code == "duplicate_asn_reference"
    SkuFactory(merchant=other_merchant, code="SHIRT-M")
    assert _asn(other_merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5)).reference == "ASN-1"


def test_an_invalid_sscc_is_refused(merchant, wh, shirt, frozen_clock):
    with pytest.raises(ValidationFailed) as caught:
        _asn(
            merchant,
            wh,
            AsnLineInput(sku_code="SHIRT-M", quantity=5),
            units=[HandlingUnitInput(sscc="376123450000000013")],
        )
    assert caught.value.code == "invalid_sscc"


def test_an_announced_asn_can_be_cancelled_with_an_audit_row_but_not_once_receiving(merchant, wh, shirt, staff_user):
    asn = _asn(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5))
    services.asn_cancel(asn=asn, actor=staff_user, reason="supplier gave up")
    asn.refresh_from_db()
    assert asn.status == AsnStatus.CANCELLED
    change = state_history(aggregate="asn", aggregate_id=asn.pk).get()
    assert (change.from_status, change.to_status, change.transition) == ("announced", "cancelled", "cancel")
    assert (change.actor_id, change.actor_label, change.reason) == (
        staff_user.pk,
        staff_user.username,
        "supplier gave up",
    )
    assert change.merchant_id == merchant.pk
    changed = OutboxEvent.objects.get(name="inbound.asn_status_changed")
    assert changed.payload["reference"] == "ASN-1" and changed.event_id == change.event_id
    assert OutboxEvent.objects.filter(name="inbound.asn_cancelled").count() == 1
    other = _asn(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5), reference="ASN-2")
    services.receiving_start(code="ASN-2")
    with pytest.raises(Conflict) as caught:
        services.asn_cancel(asn=other)
    assert caught.value.code == "invalid_transition"


# --- Receiving --------------------------------------------------------------------------------------------------
def test_receiving_starts_from_the_asn_reference_or_one_of_its_sscc(merchant, wh, shirt):
    carton = sscc(7)
    asn = _asn(
        merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5, sscc=carton), units=[HandlingUnitInput(sscc=carton)]
    )
    started = services.receiving_start(code=f"(00){carton}")
    assert started.asn.pk == asn.pk and started.handling_unit is not None
    assert started.asn.status == AsnStatus.RECEIVING
    assert started.asn.receiving_location == wh.dock
    assert HandlingUnit.objects.get(sscc=carton).received_at is not None
    again = services.receiving_start(code="ASN-1")
    assert again.asn.pk == asn.pk and again.handling_unit is None


def test_an_unknown_asn_code_is_refused(wh):
    with pytest.raises(NotFound) as caught:
        services.receiving_start(code="ASN-404")
    assert caught.value.code == "asn_not_found"


def test_a_scanned_gtin_is_received_into_the_receiving_location(merchant, wh, shirt, staff_user):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    outcome = services.receiving_scan(asn=asn, code="3760000000017", quantity=4, actor=staff_user)
    assert outcome.receipt is not None and outcome.receipt.quantity == 4
    assert outcome.receipt.received_by == staff_user and outcome.receipt.location == wh.dock
    assert _on_hand(shirt, wh.dock) == 4
    line = asn.lines.get()
    assert line.received_quantity == 4
    task = PutawayTask.objects.get()
    assert (task.quantity, task.from_location, task.status) == (4, wh.dock, PutawayStatus.OPEN)


def test_a_gs1_128_label_gives_lot_and_expiry(merchant, wh, cream, frozen_clock):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="CREAM-50", quantity=24, lot="LOT42"))
    services.receiving_scan(asn=asn, code=GS1_CREAM, quantity=2)
    receipt = Receipt.objects.get()
    assert (receipt.lot, receipt.expiry) == ("LOT42", date(2031, 12, 31))
    row = StockQuantity.objects.get(sku=cream)
    assert (row.lot, row.expiry, row.on_hand) == ("LOT42", date(2031, 12, 31), 2)


def test_a_sku_not_on_the_asn_is_refused_unless_the_operator_says_unexpected(merchant, wh, shirt, mug):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    before = ledger(merchant)
    with pytest.raises(Conflict) as caught:
        services.receiving_scan(asn=asn, code="3760000000031")
    assert caught.value.code == "sku_not_on_asn"
    assert ledger(merchant) == before
    assert not Receipt.objects.exists()
    services.receiving_scan(asn=asn, code="3760000000031", unexpected=True)
    line = asn.lines.get(sku=mug)
    assert (line.unexpected, line.expected_quantity, line.received_quantity) == (True, 0, 1)


@pytest.mark.parametrize("quantity", [0, -2])
def test_a_zero_or_negative_quantity_is_refused_and_the_ledger_unchanged(merchant, wh, shirt, quantity):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    before = ledger(merchant)
    with pytest.raises(ValidationFailed) as caught:
        services.receiving_scan(asn=asn, code="3760000000017", quantity=quantity)
    assert caught.value.code == "invalid_quantity"
    assert ledger(merchant) == before


def test_a_lot_on_a_sku_without_lots_is_refused_at_receiving(merchant, wh, shirt):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    before = ledger(merchant)
    with pytest.raises(ValidationFailed) as caught:
        services.receiving_scan(asn=asn, code="0103760000000017" + "10LOT1")
    assert caught.value.code == "lot_not_tracked"
    assert ledger(merchant) == before


def test_an_expiry_date_in_the_past_is_refused_at_receiving(merchant, wh, cream):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="CREAM-50", quantity=10, lot="OLD"))
    before = ledger(merchant)
    with pytest.raises(ValidationFailed) as caught:
        services.receiving_scan(asn=asn, code="0103760000000024" + "17200101" + "10OLD")
    assert caught.value.code == "expiry_in_past"
    assert ledger(merchant) == before


def test_an_unknown_code_is_refused(merchant, wh, shirt):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    with pytest.raises(NotFound) as caught:
        services.receiving_scan(asn=asn, code="NOT-A-PRODUCT")
    assert caught.value.code == "unknown_code"


def test_a_closed_asn_takes_no_more_scans(merchant, wh, shirt):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    services.receiving_close(asn=asn)
    before = ledger(merchant)
    with pytest.raises(Conflict) as caught:
        services.receiving_scan(asn=asn, code="3760000000017")
    assert caught.value.code == "asn_not_receiving"
    assert ledger(merchant) == before


def test_damaged_units_are_received_as_damaged_and_put_away_to_quarantine(merchant, wh, shirt):
    quarantine = location(wh.quarantine, "Q-01", x="5")
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=2, damaged=True)
    assert _on_hand(shirt, wh.dock, StockStatus.DAMAGED) == 2
    assert _on_hand(shirt, wh.dock) == 0
    line = asn.lines.get()
    assert (line.received_quantity, line.damaged_quantity) == (2, 2)
    task = PutawayTask.objects.get()
    assert task.stock_status == StockStatus.DAMAGED
    assert services.putaway_suggest(task=task) == quarantine
    services.putaway_confirm(task=task, location_code="Q-01")
    assert _on_hand(shirt, quarantine, StockStatus.DAMAGED) == 2


def test_an_sscc_scan_switches_the_carton_being_unpacked(merchant, wh, shirt):
    carton = sscc(3)
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5), units=[HandlingUnitInput(sscc=carton)])
    outcome = services.receiving_scan(asn=asn, code=carton)
    assert outcome.kind == "handling_unit" and outcome.handling_unit is not None
    receipt = services.receiving_scan(asn=asn, code="3760000000017", handling_unit=outcome.handling_unit).receipt
    assert receipt is not None and receipt.handling_unit == outcome.handling_unit
    with pytest.raises(NotFound):
        services.receiving_scan(asn=asn, code=sscc(4))


def test_closing_writes_the_discrepancy_report_and_sends_both_events(merchant, wh, shirt, cream, mug, frozen_clock):
    asn = _receiving(
        merchant,
        wh,
        AsnLineInput(sku_code="SHIRT-M", quantity=10),
        AsnLineInput(sku_code="CREAM-50", quantity=24, lot="LOT42"),
    )
    services.receiving_scan(asn=asn, code="3760000000017", quantity=12)
    services.receiving_scan(asn=asn, code="3760000000017", quantity=1, damaged=True)
    services.receiving_scan(asn=asn, code=GS1_CREAM, quantity=20)
    services.receiving_scan(asn=asn, code="3760000000031", quantity=2, unexpected=True)
    report = services.receiving_close(asn=asn)
    asn.refresh_from_db()
    assert asn.status == AsnStatus.CLOSED and asn.closed_at is not None
    kinds = sorted((line.sku.code, line.kind, line.difference) for line in report.lines.all())
    assert kinds == [
        ("CREAM-50", "short", -4),
        ("MUG", "unexpected", 2),
        ("SHIRT-M", "damaged", 1),
        ("SHIRT-M", "over", 3),
    ]
    assert (report.expected_total, report.received_total, report.damaged_total) == (34, 35, 1)
    received = OutboxEvent.objects.get(name="inbound.asn_received")
    assert received.payload["received_units"] == 35 and received.merchant_id == merchant.pk
    reported = OutboxEvent.objects.get(name="inbound.asn_discrepancy_reported")
    assert {d["kind"] for d in reported.payload["discrepancies"]} == {"over", "short", "unexpected", "damaged"}


def test_a_receipt_that_matches_the_asn_sends_no_discrepancy_event(merchant, wh, shirt):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=3))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=3)
    report = services.receiving_close(asn=asn)
    assert not report.lines.exists()
    assert OutboxEvent.objects.filter(name="inbound.asn_received").count() == 1
    assert not OutboxEvent.objects.filter(name="inbound.asn_discrepancy_reported").exists()


# --- Putaway ----------------------------------------------------------------------------------------------------
def test_what_is_received_equals_what_is_put_away(merchant, wh, shirt, cream, frozen_clock):
    location(wh.storage, "A-01", x="5")
    location(wh.storage, "A-02", x="6")
    asn = _receiving(
        merchant,
        wh,
        AsnLineInput(sku_code="SHIRT-M", quantity=10),
        AsnLineInput(sku_code="CREAM-50", quantity=5, lot="LOT42"),
    )
    for code, quantity in [("3760000000017", 3), ("3760000000017", 4), (GS1_CREAM, 5)]:
        services.receiving_scan(asn=asn, code=code, quantity=quantity)
    received = Receipt.objects.filter(asn=asn).aggregate(n=Sum("quantity"))["n"]
    assert PutawayTask.objects.filter(asn=asn).aggregate(n=Sum("quantity"))["n"] == received == 12
    for task in PutawayTask.objects.filter(asn=asn):
        target = services.putaway_suggest(task=task)
        assert target is not None
        services.putaway_confirm(task=task, location_code=target.code)
    assert not StockQuantity.objects.filter(location=wh.dock, on_hand__gt=0).exists()
    stored = StockQuantity.objects.filter(location__zone=wh.storage).aggregate(n=Sum("on_hand"))["n"]
    assert stored == received


def test_putaway_suggests_the_pick_face_then_the_nearest_storage_that_fits(merchant, wh, shirt):
    face_location = location(wh.picking, "P-01", x="30")
    location(wh.storage, "A-01", x="10")
    location(wh.storage, "A-02", x="3", max_volume_cm3=1000)  # 1 L: too small for 1.5 L shirts
    services.pick_face_set(merchant=merchant, location=face_location, sku=shirt, min_quantity=2, max_quantity=6)
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=5)
    task = PutawayTask.objects.get()
    assert services.putaway_suggest(task=task) == face_location
    services.receiving_scan(asn=asn, code="3760000000017", quantity=5)
    task.refresh_from_db()
    assert task.quantity == 10
    target = services.putaway_suggest(task=task)
    assert target is not None and target.code == "A-01"


def test_a_fast_mover_overflow_goes_near_the_packing_zone(merchant, wh, shirt):
    face_location = location(wh.picking, "P-01", x="45")
    location(wh.storage, "A-01", x="2")
    location(wh.storage, "Z-99", x="48")
    services.pick_face_set(merchant=merchant, location=face_location, sku=shirt, min_quantity=1, max_quantity=2)
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=10)
    task = PutawayTask.objects.get()
    target = services.putaway_suggest(task=task)
    assert target is not None and target.code == "Z-99"
    task.refresh_from_db()
    assert task.suggestion_reason == "storage_near_packing"


def test_a_different_location_is_accepted_when_it_fits(merchant, wh, shirt, staff_user):
    location(wh.storage, "A-01", x="1")
    other = location(wh.storage, "B-07", x="20")
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=4))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    task = PutawayTask.objects.get()
    services.putaway_suggest(task=task)
    done = services.putaway_confirm(task=task, location_code="b-07", actor=staff_user)
    assert (done.status, done.confirmed_location, done.suggested_location.code) == ("done", other, "A-01")
    assert done.confirmed_by == staff_user
    assert _on_hand(shirt, other) == 4


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"status": LocationStatus.BLOCKED}, "location_blocked"),
        ({"max_volume_cm3": 2000}, "location_full"),  # 4 shirts are 6 L
        ({"max_weight_g": 1000}, "location_full"),  # 4 shirts are 1.4 kg
    ],
)
def test_putaway_to_a_blocked_or_full_location_is_refused_and_the_ledger_unchanged(merchant, wh, shirt, setup, code):
    location(wh.storage, "BAD-1", x="1", **setup)
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=4))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    task = PutawayTask.objects.get()
    before = ledger(merchant)
    with pytest.raises(Conflict) as caught:
        services.putaway_confirm(task=task, location_code="BAD-1")
    assert caught.value.code == code
    assert "BAD-1" in caught.value.message
    assert ledger(merchant) == before
    task.refresh_from_db()
    assert task.status == PutawayStatus.OPEN


def test_putaway_to_a_packing_table_or_an_unknown_location_is_refused(merchant, wh, shirt):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=4))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    task = PutawayTask.objects.get()
    with pytest.raises(ValidationFailed) as caught:
        services.putaway_confirm(task=task, location_code="PACK-1")
    assert caught.value.code == "location_wrong_zone"
    with pytest.raises(NotFound) as missing:
        services.putaway_confirm(task=task, location_code="NOWHERE")
    assert missing.value.code == "location_not_found"


def test_a_done_putaway_cannot_be_confirmed_twice(merchant, wh, shirt):
    location(wh.storage, "A-01")
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=4))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    task = PutawayTask.objects.get()
    services.putaway_confirm(task=task, location_code="A-01")
    with pytest.raises(Conflict) as caught:
        services.putaway_confirm(task=task, location_code="A-01")
    assert caught.value.code == "putaway_done"


def test_a_pick_face_cannot_go_above_its_max(merchant, wh, shirt):
    face_location = location(wh.picking, "P-01")
    services.pick_face_set(merchant=merchant, location=face_location, sku=shirt, min_quantity=1, max_quantity=3)
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=4))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    with pytest.raises(Conflict) as caught:
        services.putaway_confirm(task=PutawayTask.objects.get(), location_code="P-01")
    assert caught.value.code == "location_full"


# --- Pick faces and replenishment -------------------------------------------------------------------------------
def test_a_pick_face_needs_a_sane_min_max_and_a_picking_location(merchant, wh, shirt):
    with pytest.raises(ValidationFailed) as caught:
        services.pick_face_set(
            merchant=merchant, location=location(wh.picking, "P-01"), sku=shirt, min_quantity=5, max_quantity=2
        )
    assert caught.value.code == "invalid_min_max"
    with pytest.raises(ValidationFailed) as wrong_zone:
        services.pick_face_set(
            merchant=merchant, location=location(wh.storage, "A-01"), sku=shirt, min_quantity=1, max_quantity=2
        )
    assert wrong_zone.value.code == "location_wrong_zone"


def test_a_pick_face_below_its_min_gets_one_replenishment_task_up_to_its_max(merchant, wh, shirt):
    face_location = location(wh.picking, "P-01")
    face = services.pick_face_set(merchant=merchant, location=face_location, sku=shirt, min_quantity=5, max_quantity=20)
    stock_receive(sku=shirt, location=face_location, quantity=3)
    created = services.replenishment_check(location_ids=[face_location.pk])
    assert [(t.pick_face, t.quantity, t.on_hand_at_creation) for t in created] == [(face, 17, 3)]
    assert services.replenishment_check(location_ids=[face_location.pk]) == []
    assert OutboxEvent.objects.filter(name="inbound.replenishment_requested").count() == 1


def test_a_pick_face_at_or_above_min_needs_nothing(merchant, wh, shirt):
    face_location = location(wh.picking, "P-01")
    services.pick_face_set(merchant=merchant, location=face_location, sku=shirt, min_quantity=5, max_quantity=20)
    stock_receive(sku=shirt, location=face_location, quantity=5)
    assert services.replenishment_check() == []


def test_stock_leaving_a_pick_face_triggers_replenishment_through_the_outbox(merchant, wh, shirt):
    face_location = location(wh.picking, "P-01")
    reserve = location(wh.storage, "A-01")
    services.pick_face_set(merchant=merchant, location=face_location, sku=shirt, min_quantity=5, max_quantity=10)
    stock_receive(sku=shirt, location=face_location, quantity=8)
    outbox_sweep()
    assert not ReplenishmentTask.objects.exists()
    stock_move(sku=shirt, from_location=face_location, to_location=reserve, quantity=4)
    outbox_sweep()
    task = ReplenishmentTask.objects.get()
    assert (task.quantity, task.to_location, task.from_location) == (6, face_location, reserve)


def test_open_asn_lines_are_inventorys_incoming_stock(merchant, wh, shirt, cream, frozen_clock):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=10))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    _asn(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=5), reference="ASN-2")
    assert selectors.incoming_stock in incoming_sources()
    incoming = selectors.incoming_stock(merchant.pk, [shirt.pk, cream.pk])
    assert incoming == {shirt.pk: [(date(2031, 3, 12), 11)]}


def test_replenishment_takes_from_the_reserve_with_the_earliest_expiry(merchant, wh, cream, frozen_clock):
    face_location = location(wh.picking, "P-01")
    later = location(wh.storage, "A-01", x="1")
    sooner = location(wh.storage, "A-09", x="30")
    stock_receive(sku=cream, location=later, quantity=10, lot="L2", expiry=date(2032, 6, 1))
    stock_receive(sku=cream, location=sooner, quantity=10, lot="L1", expiry=date(2031, 9, 1))
    services.pick_face_set(merchant=merchant, location=face_location, sku=cream, min_quantity=2, max_quantity=12)
    (task,) = services.replenishment_check(location_ids=[face_location.pk])
    assert (task.quantity, task.from_location) == (12, sooner)


# --- What a new user hit --------------------------------------------------------------------------------------------
GS1_CREAM_LOT99 = "0103760000000024" + "17311231" + "10LOT99"  # the same cream, another lot than announced


def test_a_lot_other_than_the_announced_one_is_received_on_its_own_line_and_reported(merchant, wh, cream, frozen_clock):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="CREAM-50", quantity=24, lot="LOT42"))
    outcome = services.receiving_scan(asn=asn, code=GS1_CREAM_LOT99, quantity=24)
    assert outcome.lot_mismatch and outcome.announced_lots == ("LOT42",)
    assert outcome.line is not None and (outcome.line.lot, outcome.line.expected_quantity) == ("LOT99", 0)
    assert outcome.line.unexpected  # this SKU and lot was not on the ASN
    assert sorted(asn.lines.values_list("lot", "expected_quantity", "received_quantity")) == [
        ("LOT42", 24, 0),
        ("LOT99", 0, 24),
    ]
    assert not services.receiving_scan(asn=asn, code=GS1_CREAM, quantity=1).lot_mismatch

    report = services.receiving_close(asn=asn)
    lots = sorted((line.kind, line.lot, line.expected_quantity, line.received_quantity) for line in report.lines.all())
    assert lots == [("lot", "LOT42", 24, 1), ("lot", "LOT99", 0, 24), ("over", "", 24, 25)]
    reported = OutboxEvent.objects.get(name="inbound.asn_discrepancy_reported")
    assert {
        (d["kind"], d["lot"], d["expected"], d["received"], d["sku"]) for d in reported.payload["discrepancies"]
    } == {("lot", "LOT42", 24, 1, "CREAM-50"), ("lot", "LOT99", 0, 24, "CREAM-50"), ("over", "", 24, 25, "CREAM-50")}
    assert sum(task.quantity for task in PutawayTask.objects.filter(asn=asn)) == 25


def test_an_sscc_with_its_symbology_prefix_opens_its_receipt_and_switches_the_carton(merchant, wh, shirt):
    carton, pallet = sscc(21), sscc(22)
    asn = _asn(
        merchant,
        wh,
        AsnLineInput(sku_code="SHIRT-M", quantity=5, sscc=carton),
        units=[HandlingUnitInput(sscc=carton), HandlingUnitInput(sscc=pallet, kind="pallet")],
    )
    started = services.receiving_start(code=f"]C100{carton}")
    assert started.asn.pk == asn.pk and started.handling_unit is not None and started.handling_unit.sscc == carton
    outcome = services.receiving_scan(asn=started.asn, code=f"]d200{pallet}")
    assert outcome.kind == "handling_unit" and outcome.handling_unit is not None
    assert outcome.handling_unit.sscc == pallet


def test_a_putaway_scan_of_an_unknown_location_says_the_location_does_not_exist(merchant, wh, shirt):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=4))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    shelf = location(wh.storage, "A-01")
    task = PutawayTask.objects.select_related("from_location").get()
    with pytest.raises(NotFound) as caught, translation.override("en"):
        selectors.putaway_scan_target(scope=FLOOR, code="Z-99-99-99", task=task)
    assert caught.value.code == "location_not_found" and "Z-99-99-99" in caught.value.message
    assert selectors.putaway_scan_target(scope=FLOOR, code="a-01", task=task).location == shelf


def test_with_no_task_chosen_an_empty_location_has_nothing_to_put_away_and_a_stranger_code_is_unknown(
    merchant, wh, shirt
):
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=4))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    location(wh.storage, "A-01")
    with pytest.raises(NotFound) as empty:
        selectors.putaway_task_for_scan(scope=FLOOR, code="A-01")
    assert empty.value.code == "no_putaway_task"
    with pytest.raises(NotFound) as unknown, translation.override("en"):
        selectors.putaway_task_for_scan(scope=FLOOR, code="Z-99-99-99")
    assert unknown.value.code == "unknown_code" and "nor a location" in unknown.value.message
    assert selectors.putaway_task_for_scan(scope=FLOOR, code="3760000000017") == PutawayTask.objects.get()


def test_the_putaway_task_of_a_scan_is_found_in_one_query_whatever_the_number_of_merchants(
    merchant, other_merchant, wh, shirt, django_assert_max_num_queries
):
    from quai.catalog.tests.factories import SkuFactory

    for owner, reference in ((merchant, "ASN-1"), (other_merchant, "ASN-2")):
        SkuFactory(merchant=owner, code=f"OTHER-{reference}")
    asn = _receiving(merchant, wh, AsnLineInput(sku_code="SHIRT-M", quantity=4))
    services.receiving_scan(asn=asn, code="3760000000017", quantity=4)
    # the distinct merchants, the scan among them, the matching task
    with django_assert_max_num_queries(3):
        assert selectors.putaway_task_for_scan(scope=FLOOR, code="3760000000017").sku_id == shirt.pk
