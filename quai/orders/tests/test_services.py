"""Order services on the database: intake, idempotency, allocation, backorders, cancel, hold, address, release."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_relay
from quai.core.selectors import state_history
from quai.inventory.models import Reservation, ReservationStatus
from quai.inventory.selectors import availability_get
from quai.orders import services
from quai.orders.models import Order, OrderStatus
from quai.orders.tests.conftest import order_data
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def available(sku) -> int:
    return availability_get(scope=Scope.merchant(sku.merchant_id), sku_id=sku.pk).available


def test_an_order_with_stock_for_every_line_is_received_and_allocated(merchant, shirt, stock):
    stock(shirt, 5)
    result = services.order_create(merchant=merchant, data=order_data(), actor="test")
    order = result.order
    assert result.created
    assert order.status == OrderStatus.ALLOCATED
    assert order.shopper_phone == "+33612345678"
    assert str(order.total) == "44.70"
    (line,) = order.lines.all()
    assert (line.reserved_quantity, line.backordered_quantity) == (2, 0)
    reservation = Reservation.objects.get(pk=line.reservation_id)
    assert (reservation.document_type, reservation.document_id) == ("order", f"{order.pk}/1")
    assert available(shirt) == 3
    names = list(OutboxEvent.objects.filter(aggregate="order").order_by("id").values_list("name", flat=True))
    assert names == ["order.received", "order.status_changed", "order.allocated"]
    assert [(s.from_status, s.to_status) for s in state_history(aggregate="order", aggregate_id=order.pk)] == [
        ("received", "allocated")
    ]


def test_the_same_order_sent_again_is_the_same_order_and_holds_nothing_more(merchant, shirt, stock):
    stock(shirt, 5)
    first = services.order_create(merchant=merchant, data=order_data())
    # The same order, written differently: phone spacing, country case, SKU code case.
    again = order_data(
        shopper={"name": "Camille Martin", "email": "CAMILLE@example.fr", "phone": "+33612345678"},
        shipping_address={"line1": "12 rue de la Roquette", "postcode": "75011", "city": "Paris", "country": "fr"},
        lines=[{"sku": "shirt-m", "quantity": 2, "unit_price": "19.9"}],
    )
    second = services.order_create(merchant=merchant, data=again)
    assert not second.created
    assert second.order.pk == first.order.pk
    assert Order.objects.count() == 1
    assert available(shirt) == 3


def test_another_order_reusing_an_external_id_is_refused_naming_the_first(merchant, shirt, stock):
    stock(shirt, 5)
    first = services.order_create(merchant=merchant, data=order_data())
    with pytest.raises(Conflict) as refused:
        services.order_create(merchant=merchant, data=order_data(lines=[{"sku": "SHIRT-M", "quantity": 3}]))
    assert refused.value.code == "order_external_id_reused"
    assert refused.value.details["order_id"] == first.order.pk
    assert available(shirt) == 3


def test_the_same_external_id_on_another_channel_is_another_order(merchant, shirt, stock):
    stock(shirt, 5)
    services.order_create(merchant=merchant, data=order_data())
    other = services.order_create(merchant=merchant, data=order_data(channel="woocommerce"))
    assert other.created
    assert Order.objects.count() == 2


def test_an_unknown_sku_is_refused_naming_its_line_and_nothing_is_written(merchant, shirt):
    data = order_data(lines=[{"sku": "SHIRT-M", "quantity": 1}, {"sku": "NOPE", "quantity": 1}])
    with pytest.raises(NotFound) as refused:
        services.order_create(merchant=merchant, data=data)
    assert refused.value.code == "sku_not_found"
    assert refused.value.details["line"] == 1
    assert refused.value.details["sku"] == "NOPE"
    assert not Order.objects.exists()
    assert not OutboxEvent.objects.filter(aggregate="order").exists()


def test_another_merchants_sku_is_not_found_like_a_missing_one(merchant, other_merchant, shirt):
    SkuFactory(merchant=other_merchant, code="RIVAL-1")
    with pytest.raises(NotFound) as refused:
        services.order_create(merchant=merchant, data=order_data(lines=[{"sku": "RIVAL-1", "quantity": 1}]))
    assert refused.value.code == "sku_not_found"


@pytest.mark.parametrize("quantity", [0, -1, "2", 1.5, True])
def test_a_quantity_that_is_not_whole_units_above_zero_is_refused(merchant, shirt, quantity):
    with pytest.raises(ValidationFailed) as refused:
        services.order_create(merchant=merchant, data=order_data(lines=[{"sku": "SHIRT-M", "quantity": quantity}]))
    assert refused.value.code == "invalid_quantity"
    assert refused.value.details["fields"][0]["field"] == "lines.0.quantity"


def test_an_address_that_cannot_be_shipped_and_a_bad_phone_are_all_reported(merchant, shirt):
    data = order_data(
        shopper={"name": "Camille", "phone": "12"},
        shipping_address={"line1": "1 rue X", "postcode": "9999", "city": "Paris", "country": "FR"},
    )
    with pytest.raises(ValidationFailed) as refused:
        services.order_create(merchant=merchant, data=data)
    fields = {f["field"] for f in refused.value.details["fields"]}
    assert fields == {"shipping_address.postcode", "shopper.phone"}
    assert refused.value.code == "invalid_input"


def test_a_bad_postcode_alone_keeps_its_own_code(merchant, shirt):
    data = order_data(shipping_address={"line1": "1 rue X", "postcode": "2C100", "city": "Ajaccio", "country": "FR"})
    with pytest.raises(ValidationFailed) as refused:
        services.order_create(merchant=merchant, data=data)
    assert refused.value.code == "postcode_invalid"


def test_a_corsican_postcode_typed_with_its_department_is_stored_as_written_on_mail(merchant, shirt, stock):
    stock(shirt, 2)
    data = order_data(
        shipping_address={"line1": "1 cours Napoléon", "postcode": "2A004", "city": "Ajaccio", "country": "FR"}
    )
    assert services.order_create(merchant=merchant, data=data).order.postcode == "20004"


def test_a_short_line_keeps_what_it_got_and_the_order_is_backordered(merchant, shirt, mug, stock):
    stock(shirt, 1)
    data = order_data(lines=[{"sku": "SHIRT-M", "quantity": 3}, {"sku": "MUG", "quantity": 1}])
    order = services.order_create(merchant=merchant, data=data).order
    assert order.status == OrderStatus.BACKORDERED
    lines = {line.sku_code: line for line in order.lines.all()}
    assert (lines["SHIRT-M"].reserved_quantity, lines["SHIRT-M"].backordered_quantity) == (1, 2)
    assert (lines["MUG"].reserved_quantity, lines["MUG"].backordered_quantity) == (0, 1)
    assert available(shirt) == 0
    assert OutboxEvent.objects.filter(name="order.backordered").count() == 1


def test_stock_arriving_allocates_the_backorder_through_the_stock_event(merchant, shirt, stock):
    stock(shirt, 1)
    order = services.order_create(merchant=merchant, data=order_data(lines=[{"sku": "SHIRT-M", "quantity": 3}])).order
    outbox_relay()
    stock(shirt, 5)
    outbox_relay()
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED
    (line,) = order.lines.all()
    assert (line.reserved_quantity, line.backordered_quantity) == (3, 0)
    # One open reservation per line, of the whole quantity; the first one was given back when it grew.
    assert Reservation.objects.get(pk=line.reservation_id).quantity == 3
    assert Reservation.objects.filter(status=ReservationStatus.OPEN).count() == 1
    assert available(shirt) == 3
    assert OutboxEvent.objects.filter(name="order.allocated").count() == 1


def test_short_stock_goes_to_express_first_then_the_oldest(merchant, shirt, stock):
    stock(shirt, 0 + 1)
    services.order_create(merchant=merchant, data=order_data("BLOCKER", lines=[{"sku": "SHIRT-M", "quantity": 1}]))
    old = services.order_create(merchant=merchant, data=order_data("OLD")).order
    clock_later = clock.now() + timedelta(minutes=5)
    with clock.frozen(clock_later):
        express = services.order_create(merchant=merchant, data=order_data("EXPRESS", priority="express")).order
        newer = services.order_create(merchant=merchant, data=order_data("NEWER")).order
    stock(shirt, 4)
    services.backorders_allocate(sku_id=shirt.pk)
    for order in (old, express, newer):
        order.refresh_from_db()
    assert express.status == OrderStatus.ALLOCATED
    assert old.status == OrderStatus.ALLOCATED
    assert newer.status == OrderStatus.BACKORDERED
    assert available(shirt) == 0


def test_allocating_backorders_twice_changes_nothing_and_never_oversells(merchant, shirt, stock):
    stock(shirt, 1)
    order = services.order_create(merchant=merchant, data=order_data(lines=[{"sku": "SHIRT-M", "quantity": 3}])).order
    stock(shirt, 1)
    assert services.backorders_allocate(sku_id=shirt.pk) == 1
    assert services.backorders_allocate(sku_id=shirt.pk) == 0
    (line,) = order.lines.all()
    assert (line.reserved_quantity, line.backordered_quantity) == (2, 1)
    assert available(shirt) == 0


def test_cancelling_an_order_gives_its_stock_back(merchant, shirt, stock):
    stock(shirt, 5)
    order = services.order_create(merchant=merchant, data=order_data()).order
    services.order_cancel(order=order, actor="agent", reason="shopper asked")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert available(shirt) == 5
    (line,) = order.lines.all()
    assert (line.reserved_quantity, line.backordered_quantity) == (0, 0)
    payload = OutboxEvent.objects.get(name="order.cancelled").payload
    assert payload["released_lines"] == [{"sku_code": "SHIRT-M", "quantity": 2}]
    assert payload["external_id"] == "SHOP-1001"


def test_a_cancelled_order_cannot_be_cancelled_again_and_nothing_moves(merchant, shirt, stock):
    stock(shirt, 5)
    order = services.order_create(merchant=merchant, data=order_data()).order
    services.order_cancel(order=order)
    with pytest.raises(Conflict) as refused:
        services.order_cancel(order=order)
    assert refused.value.code == "invalid_transition"
    assert available(shirt) == 5


def _to_packed(order):
    services.order_transition(order=order, to_status="released")
    services.order_transition(order=order, to_status="picking")
    services.order_transition(order=order, to_status="packed")


def test_hold_cancel_and_address_change_are_refused_once_packed(merchant, shirt, stock):
    stock(shirt, 5)
    order = services.order_create(merchant=merchant, data=order_data()).order
    _to_packed(order)
    for attempt in (
        lambda: services.order_hold(order=order, reason="fraud"),
        lambda: services.order_cancel(order=order),
        lambda: services.order_address_change(
            order=order, address={"line1": "1 rue Y", "postcode": "69002", "city": "Lyon", "country": "FR"}
        ),
    ):
        with pytest.raises(Conflict) as refused:
            attempt()
        assert refused.value.code == "order_labelled"
    order.refresh_from_db()
    assert order.status == OrderStatus.PACKED
    assert available(shirt) == 3


def test_a_hold_remembers_where_the_order_was_and_goes_back_there(merchant, shirt, stock):
    stock(shirt, 5)
    order = services.order_create(merchant=merchant, data=order_data()).order
    services.order_hold(order=order, reason="payment", note="card declined")
    order.refresh_from_db()
    assert (order.status, order.held_from, order.hold_reason) == ("on_hold", "allocated", "payment")
    services.order_release_hold(order=order)
    order.refresh_from_db()
    assert (order.status, order.held_from, order.hold_reason) == ("allocated", "", "")


def test_a_backorder_covered_while_on_hold_comes_back_allocated(merchant, shirt, stock):
    order = services.order_create(merchant=merchant, data=order_data()).order
    services.order_hold(order=order, reason="customer_service")
    stock(shirt, 2)
    services.backorders_allocate(sku_id=shirt.pk)
    services.order_release_hold(order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.ALLOCATED


def test_a_hold_needs_a_known_reason(merchant, shirt, stock):
    order = services.order_create(merchant=merchant, data=order_data()).order
    with pytest.raises(ValidationFailed) as refused:
        services.order_hold(order=order, reason="bored")
    assert refused.value.code == "invalid_hold_reason"


def test_releasing_a_hold_that_is_not_there_is_refused(merchant, shirt, stock):
    order = services.order_create(merchant=merchant, data=order_data()).order
    with pytest.raises(Conflict) as refused:
        services.order_release_hold(order=order)
    assert refused.value.code == "order_not_on_hold"


def test_an_address_change_is_checked_and_bumps_the_version(merchant, shirt, stock):
    stock(shirt, 5)
    order = services.order_create(merchant=merchant, data=order_data()).order
    with pytest.raises(ValidationFailed):
        services.order_address_change(
            order=order, address={"line1": "1 rue Y", "postcode": "123", "city": "Lyon", "country": "FR"}
        )
    changed = services.order_address_change(
        order=order,
        address={"line1": "1 rue Y", "postcode": "69002", "city": "Lyon", "country": "FR"},
        version=order.version,
    )
    assert (changed.postcode, changed.version) == ("69002", order.version + 1)
    payload = OutboxEvent.objects.get(name="order.address_changed").payload
    assert set(payload["fields"]) == {"address_line1", "postcode", "city"}
    with pytest.raises(Conflict) as stale:
        services.order_address_change(
            order=order, address={"line1": "2 rue Y", "postcode": "69002", "city": "Lyon", "country": "FR"}, version=1
        )
    assert stale.value.code == "stale_version"


def test_an_order_is_released_only_after_its_buffer(merchant, shirt, stock):
    stock(shirt, 5)
    services.order_policy_set(merchant=merchant, release_buffer_minutes=15)
    order = services.order_create(merchant=merchant, data=order_data()).order
    with pytest.raises(Conflict) as early:
        services.order_release(order=order)
    assert early.value.code == "order_in_release_buffer"
    assert services.orders_release_due(now=clock.now() + timedelta(minutes=16)) == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.RELEASED


def test_a_backorder_is_released_in_parts_only_when_the_merchant_splits_shipments(merchant, shirt, stock):
    stock(shirt, 1)
    services.order_policy_set(merchant=merchant, release_buffer_minutes=0)
    order = services.order_create(merchant=merchant, data=order_data()).order
    with pytest.raises(Conflict) as waits:
        services.order_release(order=order)
    assert waits.value.code == "order_backordered"
    services.order_policy_set(merchant=merchant, split_shipments=True)
    services.order_release(order=order)
    order.refresh_from_db()
    assert order.status == OrderStatus.RELEASED
    assert OutboxEvent.objects.get(name="order.released").payload["split"] is True


def test_beat_releases_allocated_orders_whose_buffer_is_over(merchant, shirt, stock):
    from quai.celery import app
    from quai.orders.tasks import orders_release_sweep

    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "quai.orders.tasks.orders_release_sweep" in schedule
    stock(shirt, 5)
    services.order_policy_set(merchant=merchant, release_buffer_minutes=10)
    order = services.order_create(merchant=merchant, data=order_data()).order
    assert orders_release_sweep() == 0
    with clock.frozen(clock.now() + timedelta(minutes=11)):
        assert orders_release_sweep() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.RELEASED


def test_the_release_sweep_sends_the_covered_part_of_a_backorder_only_for_merchants_who_split(merchant, shirt, stock):
    stock(shirt, 1)
    services.order_policy_set(merchant=merchant, release_buffer_minutes=0, split_shipments=True)
    order = services.order_create(merchant=merchant, data=order_data()).order
    waiting = services.order_create(merchant=merchant, data=order_data("NOTHING-YET")).order
    assert (order.status, waiting.status) == ("backordered", "backordered")
    assert services.orders_release_due(now=clock.now() + timedelta(seconds=1)) == 1
    order.refresh_from_db()
    waiting.refresh_from_db()
    assert (order.status, waiting.status) == ("released", "backordered")


def test_an_order_put_on_hold_is_not_released_to_the_warehouse(merchant, shirt, stock):
    # The release sweep reads the due orders, then locks each one: an order held in between must stay held (the
    # table allows on_hold → released, but only for a released hold going back where it was).
    stock(shirt, 5)
    services.order_policy_set(merchant=merchant, release_buffer_minutes=0)
    order = services.order_create(merchant=merchant, data=order_data()).order
    services.order_hold(order=order, reason="fraud")
    with pytest.raises(Conflict) as refused:
        services.order_release(order=order, now=clock.now() + timedelta(seconds=1))
    assert refused.value.code == "invalid_transition"
    order.refresh_from_db()
    assert (order.status, order.held_from, order.hold_reason) == ("on_hold", "allocated", "fraud")
    assert not OutboxEvent.objects.filter(name="order.released").exists()
