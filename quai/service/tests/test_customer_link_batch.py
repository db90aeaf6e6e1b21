"""The customer link's batch form (``on_orders_received``): the same customers and links as ``on_order_received``
run on each event in turn, in a handful of queries per relay batch, and a batch that fails falls back per event."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.core.events import Envelope, event_from_row
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import outbox_relay
from quai.core.tests.sql_faults import fails_once
from quai.orders import services as orders_services
from quai.orders.tests.conftest import order_data
from quai.service import services
from quai.service.models import Customer, CustomerOrder
from quai.service.services.customers import on_orders_received

pytestmark = pytest.mark.django_db


def _order(merchant: Any, external_id: str, sku: Any, **shopper: str) -> Any:
    data = order_data(external_id, shopper=shopper, lines=[{"sku": sku.code, "quantity": 1, "unit_price": "19.90"}])
    return orders_services.order_create(merchant=merchant, data=data).order


@pytest.fixture
def scenario(merchant, other_merchant, shirt) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Orders whose shoppers meet each rule of the match, some only through a customer an earlier order of the same
    batch made or filled in; two customers known before; one order already linked."""
    alice = services.customer_match(merchant_id=merchant.pk, email="alice@example.fr")  # no phone, no name
    bob = services.customer_match(merchant_id=merchant.pk, email="bob@example.fr", name="Bob")
    linked = _order(merchant, "S0", shirt, name="Zoé", email="zoe@example.fr")
    CustomerOrder.objects.create(order_id=linked.pk, customer=bob)  # linked before: stays as it is
    OutboxEvent.objects.all().delete()  # only the batch's events below
    mug = SkuFactory(merchant=other_merchant, code="MUG", name="Mug")
    shoppers = [
        (merchant, shirt, {"name": "Alice A", "email": " Alice@Example.fr ", "phone": "06 11 11 11 11"}),  # fills
        (merchant, shirt, {"name": "Someone", "email": "", "phone": "+33 6 11 11 11 11"}),  # alice, by that phone
        (merchant, shirt, {"name": "Dave", "email": "dave@example.fr", "phone": "06 22 22 22 22"}),  # new
        (merchant, shirt, {"name": "D.", "email": "dave@example.fr", "phone": ""}),  # dave, made just above
        (merchant, shirt, {"name": "Bob B", "email": "bob@example.fr", "phone": "06 11 11 11 11"}),  # email wins
        (merchant, shirt, {"name": "Eve", "email": "", "phone": "06 33 33 33 33"}),  # new, phone only
        (merchant, shirt, {"name": "Eve", "email": "eve@example.fr", "phone": "06 33 33 33 33"}),  # fills her email
        (other_merchant, mug, {"name": "Alice", "email": "alice@example.fr", "phone": "06 11 11 11 11"}),  # theirs
    ]
    orders = [_order(owner, f"S{n + 1}", sku, **shopper) for n, (owner, sku, shopper) in enumerate(shoppers)]
    rows = list(OutboxEvent.objects.filter(name="order.received").order_by("id"))
    items = [(event_from_row(row), Envelope.of(row)) for row in rows]
    linked_row = rows[0]
    items.append((event_from_row(linked_row), Envelope.of(linked_row)))  # the same order twice in one batch
    gone = dataclasses.replace(items[0][0], order_id=orders[-1].pk + 1000)  # an order that no longer exists
    items.append((gone, items[0][1]))
    items.append(_linked_event(linked))
    return {"alice": alice, "bob": bob, "orders": orders, "items": items}


def _linked_event(order: Any) -> tuple[Any, Envelope]:
    from quai.core.outbox import event_record
    from quai.orders.events import OrderReceived

    with transaction.atomic():
        row = event_record(
            OrderReceived(
                order_id=order.pk,
                channel="shopify",
                external_id=order.external_id,
                priority="standard",
                currency="EUR",
                total="19.90",
            ),
            merchant_id=order.merchant_id,
        )
    return event_from_row(row), Envelope.of(row)


def _state() -> tuple[list[tuple[int, str, str, str]], list[tuple[int, int]]]:
    """Customers in creation order (merchant, email, phone, name) and links (order, that customer's position)."""
    customers = list(Customer.objects.order_by("pk"))
    position = {customer.pk: n for n, customer in enumerate(customers)}
    return (
        [(c.merchant_id, c.email, c.phone, c.name) for c in customers],
        sorted((link.order_id, position[link.customer_id]) for link in CustomerOrder.objects.all()),
    )


class Undo(Exception):
    pass


def test_the_batch_form_writes_exactly_what_the_per_event_handler_writes(scenario):
    with pytest.raises(Undo), transaction.atomic():
        for event, envelope in scenario["items"]:
            services.on_order_received(event, envelope)
        one_by_one = _state()
        raise Undo
    before = _state()
    assert len(before[0]) == 2 and len(before[1]) == 1  # the per-event run was undone
    with CaptureQueriesContext(connection) as context:
        on_orders_received(scenario["items"])
    together = _state()
    assert together == one_by_one
    customers, links = together
    assert len(links) == 9 and len(customers) == 5
    alice = next(c for c in customers if c[1] == "alice@example.fr" and c[0] == scenario["alice"].merchant_id)
    assert alice[2:] == ("+33611111111", "Alice A")  # phone and name filled by the batch's first order
    assert next(c for c in customers if c[1] == "bob@example.fr")[2] == ""  # the phone stays with alice
    # The orders, their links, the customers, one insert of the new ones, the fills, one insert of the links.
    assert len(context.captured_queries) <= 10


def test_a_repeat_shopper_s_orders_cost_three_queries_per_batch_and_lock_no_customer(merchant, shirt):
    services.customer_match(merchant_id=merchant.pk, email="camille@example.fr", phone="0612345678", name="Camille")
    OutboxEvent.objects.all().delete()
    for n in range(30):
        _order(merchant, f"R{n}", shirt, name="Camille Martin", email="camille@example.fr", phone="06 12 34 56 78")
    items = [(event_from_row(row), Envelope.of(row)) for row in OutboxEvent.objects.filter(name="order.received")]
    with CaptureQueriesContext(connection) as context:
        on_orders_received(items)
    statements = [query["sql"] for query in context.captured_queries]
    assert len(statements) == 3, statements  # the orders with their links, the customers, one insert of the links
    assert not any("FOR UPDATE" in sql for sql in statements)
    assert CustomerOrder.objects.filter(customer__email="camille@example.fr").count() == 30


def test_a_batch_that_fails_is_undone_and_the_relay_links_each_order_alone(scenario, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    # The batch creates its new customers, then the links; the links' insert fails: the customers it made must go.
    with fails_once(
        'INTO "service_customerorder"', "duplicate key value violates unique constraint (injected)"
    ) as failed:
        while outbox_relay(batch=100):
            pass
    assert failed
    customers, links = _state()
    assert len(customers) == 5 and len(links) == 9  # as above: nothing made twice, every order linked
    assert (
        HandledEvent.objects.filter(handler="service.customer_link").count()
        == OutboxEvent.objects.filter(name="order.received").count()
    )
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
