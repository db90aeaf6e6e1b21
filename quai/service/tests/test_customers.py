"""Customers per merchant, de-duplicated by email and phone, linked to orders; GDPR export and erasure."""

from __future__ import annotations

import json

import pytest

from quai.core.models import OutboxEvent
from quai.core.outbox import outbox_relay
from quai.orders import services as orders_services
from quai.orders.models import Order
from quai.orders.tests.conftest import order_data
from quai.service import services
from quai.service.models import Customer, CustomerOrder, TicketMessage
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def _order(merchant, external_id, sku, **shopper):
    base = {"name": "Camille Martin", "email": "camille@example.fr", "phone": "06 12 34 56 78"}
    base.update(shopper)
    data = order_data(external_id, shopper=base, lines=[{"sku": sku.code, "quantity": 1, "unit_price": "19.90"}])
    order = orders_services.order_create(merchant=merchant, data=data).order
    outbox_relay()
    return order


def test_an_order_received_links_to_a_customer_found_by_normalised_email_or_phone(merchant, shirt):
    first = _order(merchant, "A1", shirt)
    second = _order(merchant, "A2", shirt, email=" Camille@Example.FR ", phone="")
    third = _order(merchant, "A3", shirt, email="", phone="+33 6 12 34 56 78")
    customers = Customer.objects.filter(merchant=merchant)
    assert customers.count() == 1
    customer = customers.get()
    assert (customer.email, customer.phone, customer.name) == ("camille@example.fr", "+33612345678", "Camille Martin")
    linked = set(CustomerOrder.objects.filter(customer=customer).values_list("order_id", flat=True))
    assert linked == {first.pk, second.pk, third.pk}


def test_customers_of_two_merchants_are_never_merged(merchant, other_merchant):
    ours = services.customer_match(merchant_id=merchant.pk, email="a@example.fr")
    theirs = services.customer_match(merchant_id=other_merchant.pk, email="a@example.fr")
    assert ours.pk != theirs.pk


def test_email_wins_over_a_phone_that_belongs_to_someone_else(merchant):
    alice = services.customer_match(merchant_id=merchant.pk, email="alice@example.fr", phone="0612345678")
    bob = services.customer_match(merchant_id=merchant.pk, email="bob@example.fr")
    again = services.customer_match(merchant_id=merchant.pk, email="bob@example.fr", phone="0612345678")
    assert again.pk == bob.pk
    bob.refresh_from_db()
    assert bob.phone == ""  # the phone stays with alice
    assert alice.phone == "+33612345678"


def test_no_email_and_no_valid_phone_is_no_customer(merchant):
    assert services.customer_match(merchant_id=merchant.pk, email="", phone="not a phone") is None


def test_the_handler_is_idempotent(merchant, shirt):
    order = _order(merchant, "B1", shirt)
    row = OutboxEvent.objects.get(name="order.received", aggregate_id=str(order.pk))
    from quai.core.events import Envelope, event_from_row

    services.on_order_received(event_from_row(row), Envelope.of(row))
    assert CustomerOrder.objects.filter(order_id=order.pk).count() == 1


def test_gdpr_export_holds_the_customer_orders_and_tickets_as_json(merchant, shirt):
    order = _order(merchant, "C1", shirt)
    services.ticket_open(
        merchant_id=merchant.pk,
        channel="api",
        message=services.IncomingMessage(body="Question about C1", email="camille@example.fr"),
        auto_answer=False,
    )
    customer = Customer.objects.get(merchant=merchant)
    export = services.customer_export(scope=Scope.merchant(merchant), customer_id=customer.pk)
    json.dumps(export)  # JSON-ready
    assert export["customer"]["email"] == "camille@example.fr"
    assert export["orders"][0]["external_id"] == "C1"
    assert export["orders"][0]["personal_data"]["address_line1"] == "12 rue de la Roquette"
    assert export["tickets"][0]["messages"][0]["text"] == "Question about C1"
    assert order.pk == export["orders"][0]["order_id"]


def test_gdpr_erase_blanks_personal_data_and_keeps_the_logistics_records(merchant, shirt):
    order = _order(merchant, "D1", shirt)
    ticket = services.ticket_open(
        merchant_id=merchant.pk,
        channel="api",
        message=services.IncomingMessage(body="Mon adresse est 12 rue de la Roquette", email="camille@example.fr"),
        auto_answer=False,
    )
    customer = Customer.objects.get(merchant=merchant)
    services.customer_erase(scope=Scope.merchant(merchant), customer_id=customer.pk, actor="dpo")
    order = Order.objects.get(pk=order.pk)
    assert (order.shopper_name, order.shopper_email, order.shopper_phone, order.address_line1) == ("—", "", "", "—")
    assert (order.postcode, order.city, order.country) == ("75", "Paris", "FR")
    assert order.lines.count() == 1 and order.status in ("allocated", "backordered")
    customer.refresh_from_db()
    assert (customer.email, customer.phone, customer.name) == ("", "", "")
    assert customer.erased_at is not None
    assert set(TicketMessage.objects.filter(ticket=ticket).values_list("body", flat=True)) == {"[erased]"}
    assert OutboxEvent.objects.filter(name="order.personal_data_erased", aggregate_id=str(order.pk)).count() == 1
    assert OutboxEvent.objects.filter(name="service.customer_erased").count() == 1
    # Erasing again is harmless: no second order event.
    services.customer_erase(scope=Scope.merchant(merchant), customer_id=customer.pk)
    assert OutboxEvent.objects.filter(name="order.personal_data_erased", aggregate_id=str(order.pk)).count() == 1


def test_another_merchants_customer_cannot_be_exported_or_erased(merchant, other_merchant):
    theirs = services.customer_match(merchant_id=other_merchant.pk, email="x@example.fr")
    from quai.core.errors import NotFound

    with pytest.raises(NotFound):
        services.customer_export(scope=Scope.merchant(merchant), customer_id=theirs.pk)
    with pytest.raises(NotFound):
        services.customer_erase(scope=Scope.merchant(merchant), customer_id=theirs.pk)
    theirs.refresh_from_db()
    assert theirs.email == "x@example.fr"
