"""The returns desk (flow 6): parcel found by RMA / order / tracking number, units scanned into the returns zone
through the ledger, graded, restocked or quarantined, the refund or the exchange released by the RMA; and the
shopper's returns portal (window, quantities left, reasons)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.models import OutboxEvent
from quai.inventory.models import StockMovement, StockQuantity
from quai.orders.models import Order
from quai.service import services
from quai.service.models import Refund, ReturnUnit, Rma, RmaStatus
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def _rma(merchant, place, number="R-1", quantity=2, kind="return"):  # type: ignore[no-untyped-def]
    order = place(number, to_status="delivered")
    line = order.lines.get()
    rma = services.rma_open(
        scope=Scope.merchant(merchant),
        order_id=order.pk,
        actor="agent",
        lines=[{"line_id": line.pk, "quantity": quantity}],
        reason="return",
        kind=kind,
    )
    return order, rma


def _on_hand(sku, location, status):  # type: ignore[no-untyped-def]
    return sum(
        StockQuantity.objects.filter(sku=sku, location=location, status=status).values_list("on_hand", flat=True)
    )


def test_the_parcel_is_found_by_rma_order_or_tracking_number_and_only_while_open(merchant, other_merchant, place):
    order, rma = _rma(merchant, place)
    scope = Scope.merchant(merchant)
    assert services.desk_rma_find(scope=scope, code=f" rma{rma.pk} ").pk == rma.pk
    assert services.desk_rma_find(scope=scope, code=order.external_id).pk == rma.pk
    for code in ("RMA999999", "nothing", ""):
        with pytest.raises(NotFound) as missing:
            services.desk_rma_find(scope=scope, code=code)
        assert missing.value.code == "rma_not_found"
    with pytest.raises(NotFound):
        services.desk_rma_find(scope=Scope.merchant(other_merchant), code=rma.reference)


def test_a_return_graded_a_and_b_goes_through_the_ledger_and_refunds_what_came_back(merchant, place, shirt, desk):
    order, rma = _rma(merchant, place)
    scope = Scope.merchant(merchant)
    first = services.return_unit_receive(
        scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["returns"], actor="desk"
    )
    second = services.return_unit_receive(
        scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["returns"], actor="desk"
    )
    assert _on_hand(shirt, desk["returns"], "quarantine") == 2  # ungraded units are never sellable
    with pytest.raises(ValidationFailed) as third:
        services.return_unit_receive(scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["returns"], actor="x")
    assert third.value.code == "return_unit_not_expected" and "SHIRT-M" in third.value.message
    with pytest.raises(Conflict) as early:
        services.return_complete(scope=scope, rma_id=rma.pk, actor="desk")
    assert early.value.code == "return_units_ungraded"

    graded = services.return_unit_grade(scope=scope, unit_id=first.pk, grade="a", actor="desk", note="as new")
    assert graded.state == "to_restock" and graded.restock_to == desk["shelf"]
    sellable_before = _on_hand(shirt, desk["shelf"], "sellable")
    services.return_unit_grade(
        scope=scope, unit_id=second.pk, grade="B", actor="desk", photo=b"\xff\xd8jpeg", photo_type="image/jpeg"
    )
    assert _on_hand(shirt, desk["quarantine"], "quarantine") == 1
    # The last unit graded completes the return: received, refunded at the line's price, closed.
    rma.refresh_from_db()
    assert rma.status == RmaStatus.CLOSED
    refund = Refund.objects.get(rma=rma)
    assert refund.amount == Decimal("39.80") and refund.order_id == order.pk

    services.return_unit_restock(scope=scope, unit_id=first.pk, location_code="a-01-01", actor="desk")
    assert _on_hand(shirt, desk["shelf"], "sellable") == sellable_before + 1
    assert _on_hand(shirt, desk["returns"], "quarantine") == 0
    kinds = list(
        StockMovement.objects.filter(document_type="rma", document_id=str(rma.pk))
        .order_by("id")
        .values_list("kind", "to_status")
    )
    assert kinds == [
        ("return", "quarantine"),
        ("return", "quarantine"),
        ("move", "quarantine"),
        ("putaway", "sellable"),
    ]
    names = list(OutboxEvent.objects.filter(aggregate="rma", aggregate_id=str(rma.pk)).values_list("name", flat=True))
    for name in (
        "service.return_unit_received",
        "service.return_unit_graded",
        "service.return_unit_restocked",
        "service.rma_status_changed",
    ):
        assert name in names
    with pytest.raises(Conflict):
        services.return_unit_restock(scope=scope, unit_id=first.pk, location_code="A-01-01", actor="desk")


def test_wrong_scans_and_places_are_refused_with_nothing_written(merchant, place, shirt, mug, desk):
    _order, rma = _rma(merchant, place, quantity=1)
    scope = Scope.merchant(merchant)
    with pytest.raises(ValidationFailed) as wrong:
        services.return_unit_receive(scope=scope, rma_id=rma.pk, code=mug.code, location=desk["returns"], actor="x")
    assert wrong.value.code == "return_unit_not_expected"
    with pytest.raises(ValidationFailed) as bench:
        services.return_unit_receive(scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["shelf"], actor="x")
    assert bench.value.code == "returns_zone_required"
    assert not ReturnUnit.objects.exists() and not StockMovement.objects.filter(document_type="rma").exists()
    unit = services.return_unit_receive(
        scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["returns"], actor="x"
    )
    with pytest.raises(ValidationFailed) as grade:
        services.return_unit_grade(scope=scope, unit_id=unit.pk, grade="D", actor="x")
    assert grade.value.code == "invalid_grade"
    with pytest.raises(ValidationFailed) as photo:
        services.return_unit_grade(
            scope=scope, unit_id=unit.pk, grade="A", actor="x", photo=b"x", photo_type="text/html"
        )
    assert photo.value.code == "photo_invalid"
    services.return_unit_grade(scope=scope, unit_id=unit.pk, grade="A", actor="x")
    with pytest.raises(ValidationFailed) as quarantine:
        services.return_unit_restock(scope=scope, unit_id=unit.pk, location_code="QUA-01", actor="x")
    assert quarantine.value.code == "restock_location_invalid"
    with pytest.raises(Conflict) as closed:
        services.return_unit_receive(scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["returns"], actor="x")
    assert closed.value.code == "rma_not_open"


def test_a_short_parcel_is_finished_by_hand_and_refunds_only_what_came(merchant, place, shirt, desk):
    _order, rma = _rma(merchant, place, quantity=2)
    scope = Scope.merchant(merchant)
    with pytest.raises(Conflict) as empty:
        services.return_complete(scope=scope, rma_id=rma.pk, actor="desk")
    assert empty.value.code == "return_nothing_received"
    unit = services.return_unit_receive(
        scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["returns"], actor="x"
    )
    services.return_unit_grade(scope=scope, unit_id=unit.pk, grade="C", actor="x")
    assert _on_hand(shirt, desk["quarantine"], "damaged") == 1
    rma.refresh_from_db()
    assert rma.status == RmaStatus.LABEL_REQUESTED  # one of two announced: the desk decides when the parcel is done
    services.return_complete(scope=scope, rma_id=rma.pk, actor="desk")
    rma.refresh_from_db()
    assert rma.status == RmaStatus.CLOSED and Refund.objects.get(rma=rma).amount == Decimal("19.90")


def test_an_exchange_received_releases_its_replacement_and_refunds_nothing(merchant, place, shirt, desk):
    _order, rma = _rma(merchant, place, quantity=1, kind="exchange")
    replacement = Order.objects.get(pk=rma.replacement_order_id)
    assert replacement.status == "on_hold"
    scope = Scope.merchant(merchant)
    unit = services.return_unit_receive(
        scope=scope, rma_id=rma.pk, code=shirt.code, location=desk["returns"], actor="x"
    )
    services.return_unit_grade(scope=scope, unit_id=unit.pk, grade="A", actor="x")
    replacement.refresh_from_db()
    assert replacement.status != "on_hold"
    assert not Refund.objects.filter(rma=rma).exists()
    assert Rma.objects.get(pk=rma.pk).status == RmaStatus.CLOSED


def test_the_portal_keeps_to_the_window_and_the_quantities_left(merchant, place):
    order = place("P-1", to_status="delivered")
    line = order.lines.get()
    state = services.portal_state(order=order)
    assert state.window_open and state.lines[0].quantity == 2
    rma = services.portal_return_open(
        order=order, lines=[{"line_id": line.pk, "quantity": 1}], reason="damaged", exchange=False
    )
    assert rma.status == RmaStatus.LABEL_REQUESTED and rma.reason == "damaged"
    assert services.portal_state(order=order).lines[0].quantity == 1
    with pytest.raises(ValidationFailed) as too_many:
        services.portal_return_open(
            order=order, lines=[{"line_id": line.pk, "quantity": 2}], reason="x", exchange=False
        )
    assert too_many.value.code in ("return_exceeds_quantity", "invalid_input")
    clock.advance(timedelta(days=31))
    try:
        assert not services.portal_state(order=order).window_open
        with pytest.raises(Conflict) as late:
            services.portal_return_open(
                order=order, lines=[{"line_id": line.pk, "quantity": 1}], reason="return", exchange=False
            )
        assert late.value.code == "return_window_closed"
    finally:
        clock.advance(-timedelta(days=31))
    assert Rma.objects.filter(order=order).count() == 1
