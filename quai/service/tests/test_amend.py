"""Agent actions "add an item" and "change the carrier service" through orders' amend services: reserved at once
through the inventory (never oversold), refused once the order is on the floor or labelled, with their events."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from quai.core.errors import Conflict, ValidationFailed
from quai.core.models import OutboxEvent
from quai.inventory.selectors import availability_get
from quai.orders import domain as orders_domain
from quai.orders.services.amend import AMENDABLE, item_add_allowed
from quai.service import services
from quai.service.models import AgentAction
from quai.service.tests.factories import ticket_for
from quai.tenants.scope import Scope
from quai.tenants.tests.factories import StaffUserFactory

STATUSES = sorted(orders_domain.ORDER_TRANSITIONS)
HX = {"HTTP_HX_REQUEST": "true"}


@given(st.sampled_from(STATUSES), st.sampled_from([*STATUSES, ""]))
def test_an_item_is_added_only_while_nothing_is_on_the_floor(status, held_from):  # type: ignore[no-untyped-def]
    allowed = item_add_allowed(status, held_from)
    assert allowed == (status in AMENDABLE or (status == "on_hold" and held_from in AMENDABLE))
    assert not (allowed and status in ("released", "picking", *orders_domain.LABELLED))


@pytest.mark.django_db
def test_an_added_item_is_reserved_and_priced_with_its_event(merchant, place, mug, stock):
    stock(mug, 3)
    order = place("A-1")
    scope = Scope.merchant(merchant)
    before = order.total
    line = services.action_item_add(
        scope=scope, order_id=order.pk, actor="agent", sku_code="mug", quantity=2, unit_price="5.50"
    )
    assert (line.position, line.quantity, line.reserved_quantity, line.backordered_quantity) == (2, 2, 2, 0)
    order.refresh_from_db()
    assert order.total == before + Decimal("11.00") and order.status == "allocated"
    assert availability_get(scope=scope, sku_id=mug.pk).available == 1
    event = OutboxEvent.objects.get(name="order.line_added")
    assert event.payload["sku_code"] == "MUG" and event.payload["reserved"] == 2
    # More than the stock: the order waits for it (backordered), nothing oversold.
    services.action_item_add(scope=scope, order_id=order.pk, actor="agent", sku_code="MUG", quantity=4)
    order.refresh_from_db()
    assert order.status == "backordered" and availability_get(scope=scope, sku_id=mug.pk).available == 0


@pytest.mark.django_db
def test_adding_is_refused_once_released_and_bad_input_changes_nothing(merchant, place, mug, stock):
    stock(mug, 5)
    scope = Scope.merchant(merchant)
    released = place("A-2", to_status="released")
    with pytest.raises(Conflict) as floor:
        services.action_item_add(scope=scope, order_id=released.pk, actor="agent", sku_code="MUG", quantity=1)
    assert floor.value.code == "order_picking_started"
    order = place("A-3")
    for quantity, code in ((0, "invalid_quantity"), (True, "invalid_quantity")):
        with pytest.raises(ValidationFailed) as bad:
            services.action_item_add(scope=scope, order_id=order.pk, actor="agent", sku_code="MUG", quantity=quantity)
        assert bad.value.code == code
    with pytest.raises(Exception) as unknown:
        services.action_item_add(scope=scope, order_id=order.pk, actor="agent", sku_code="NOPE", quantity=1)
    assert getattr(unknown.value, "code", "") == "unknown_code"
    assert order.lines.count() == 1 and released.lines.count() == 1
    assert AgentAction.objects.filter(kind="item_add", outcome="refused").count() == 4


@pytest.mark.django_db
def test_the_carrier_service_changes_until_the_label_exists(merchant, place):
    scope = Scope.merchant(merchant)
    order = place("C-1", to_status="picking")
    changed = services.action_carrier_change(
        scope=scope, order_id=order.pk, actor="agent", carrier_service="colissimo_express"
    )
    assert changed.carrier_service == "colissimo_express"
    event = OutboxEvent.objects.get(name="order.carrier_service_changed")
    assert (event.payload["from_service"], event.payload["to_service"]) == ("colissimo_home", "colissimo_express")
    packed = place("C-2", to_status="packed")
    with pytest.raises(Conflict) as labelled:
        services.action_carrier_change(scope=scope, order_id=packed.pk, actor="agent", carrier_service="x")
    assert labelled.value.code == "order_labelled"
    with pytest.raises(ValidationFailed):
        services.action_carrier_change(scope=scope, order_id=order.pk, actor="agent", carrier_service=" ")


@pytest.mark.django_db
def test_the_console_adds_an_item_and_changes_the_carrier(merchant, place, mug, stock):
    stock(mug, 2)
    order = place("K-1")
    ticket = ticket_for(merchant)
    ticket.orders.add(order)
    user = StaffUserFactory(username="agathe")
    user.groups.add(Group.objects.get_or_create(name="agent")[0])
    client = Client()
    client.force_login(user)
    url = f"/ops/service/tickets/{ticket.pk}/actions/"
    added = client.post(
        url + "add_item/", {"order_id": order.pk, "sku": "MUG", "quantity": "1"}, HTTP_HX_REQUEST="true"
    )
    assert 'data-result="ok"' in added.content.decode() and order.lines.count() == 2
    moved = client.post(
        url + "carrier/", {"order_id": order.pk, "carrier_service": "chrono_13"}, HTTP_HX_REQUEST="true"
    )
    assert 'data-result="ok"' in moved.content.decode()
    order.refresh_from_db()
    assert order.carrier_service == "chrono_13"
