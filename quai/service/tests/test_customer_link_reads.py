"""The customer link's batch reads, written once (``_orders_to_link``, ``_customers_named``), against the ORM's
queries they replace (same rows, same values, same order), and the batch's new customers, every column, against
what the per-event handler's ``Customer.objects.create`` writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Q

from quai.core import clock
from quai.service import services
from quai.service.models import Customer, CustomerOrder
from quai.service.services.customers import _customers_named, _orders_to_link, on_orders_received
from quai.service.tests.test_customer_link_batch import Undo, scenario  # noqa: F401  (shared fixture)
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db

_ORDER_COLUMNS = ("pk", "merchant_id", "shopper_email", "shopper_phone", "country", "shopper_name")


def test_the_orders_read_is_the_orm_s_read_of_the_orders_and_their_links(scenario):  # noqa: F811
    from quai.orders import selectors as orders_selectors

    ids = [event.order_id for event, _envelope in scenario["items"]]  # a repeated id and a missing one among them
    assert len(set(ids)) < len(ids)
    orm = {
        row[0]: row[1:]
        for row in orders_selectors.order_list(scope=Scope.system("test"))
        .filter(pk__in=ids)
        .order_by()
        .values_list(*_ORDER_COLUMNS)
    }
    linked = set(CustomerOrder.objects.filter(order_id__in=list(orm)).values_list("order_id", flat=True))
    assert linked  # one order of the scenario is linked before the batch
    read = _orders_to_link(ids)
    assert read == {order_id: (*values, order_id in linked) for order_id, values in orm.items()}
    for values in read.values():
        assert [type(value) for value in values] == [int, str, str, str, str, bool]
    assert _orders_to_link([]) == {}


def test_the_customers_read_is_the_orm_s_query_of_each_merchant_s_emails_and_phones(merchant, other_merchant):
    make = Customer.objects.create
    rows = [
        make(merchant=merchant, email="ann@example.fr", phone="", name="Ann"),
        make(merchant=merchant, email="", phone="+33611111111", name=""),
        make(merchant=merchant, email="bea@example.fr", phone="+33622222222", name="Bea"),
        make(merchant=other_merchant, email="ann@example.fr", phone="+33633333333", name="Ann elsewhere"),
        make(merchant=other_merchant, email="", phone="+33611111111", name="a phone of the other merchant"),
        make(merchant=other_merchant, email="cy@example.fr", phone="", name="Cy"),
        make(merchant=merchant, email="", phone="", name="nobody to find"),
    ]
    assert len(rows) == 7
    cases = [
        # (order, merchant, email, phone, name): the batch's shoppers
        [(1, merchant.pk, "ann@example.fr", "", "")],
        [(1, merchant.pk, "", "+33611111111", "")],
        [(1, merchant.pk, "ann@example.fr", "+33633333333", ""), (2, other_merchant.pk, "", "+33611111111", "")],
        [(1, merchant.pk, "cy@example.fr", "+33622222222", ""), (2, other_merchant.pk, "bea@example.fr", "", "")],
        [(1, merchant.pk, "zed@example.fr", "+33699999999", "")],
        [(1, other_merchant.pk, "ann@example.fr", "", ""), (2, merchant.pk, "bea@example.fr", "+33611111111", "")],
    ]
    for shoppers in cases:
        # The query the batch form made with the ORM.
        wanted = Q(pk__in=[])
        for merchant_id in {merchant_id for _o, merchant_id, *_rest in shoppers}:
            emails = {email for _o, m, email, _p, _n in shoppers if m == merchant_id and email}
            numbers = {phone for _o, m, _e, phone, _n in shoppers if m == merchant_id and phone}
            wanted |= Q(merchant_id=merchant_id) & (Q(email__in=emails) | Q(phone__in=numbers))
        orm = [[c.pk, c.merchant_id, c.email, c.phone, c.name] for c in Customer.objects.filter(wanted).order_by("pk")]
        assert _customers_named(shoppers) == orm, shoppers
    assert _customers_named([(1, merchant.pk, "ann@example.fr", "", "")]) == [
        [rows[0].pk, merchant.pk, "ann@example.fr", "", "Ann"]
    ]


def _columns() -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """Every column of every customer but the id, in creation order, and the links (order, customer's position)."""
    customers = list(Customer.objects.order_by("pk").values())
    position = {row["id"]: n for n, row in enumerate(customers)}
    links = sorted((link.order_id, position[link.customer_id]) for link in CustomerOrder.objects.all())
    return [{k: v for k, v in row.items() if k != "id"} for row in customers], links


def test_the_batch_s_new_customers_have_every_column_the_per_event_handler_writes(scenario):  # noqa: F811
    moment = datetime(2027, 3, 16, 9, 30, tzinfo=UTC)
    before = {row["email"]: row["updated_at"] for row in _columns()[0]}
    with clock.frozen(moment):
        with pytest.raises(Undo), transaction.atomic():
            for event, envelope in scenario["items"]:
                services.on_order_received(event, envelope)
            one_by_one = _columns()
            raise Undo
        on_orders_received(scenario["items"])
    together = _columns()
    # A customer known before and filled in by the batch: its ``updated_at`` moves to the clock's instant in both
    # forms (the per-event handler's ``save(update_fields=…)``, the batch's guarded update); one not filled keeps it.
    assert together == one_by_one
    known = {row["email"]: row["updated_at"] for row in together[0] if row["created_at"] != moment}
    assert known["alice@example.fr"] == moment != before["alice@example.fr"]  # her phone and name filled
    assert known["bob@example.fr"] == before["bob@example.fr"]  # nothing of his filled (the phone is alice's)
    made = [row for row in together[0] if row["created_at"] == moment]
    assert len(made) == 3  # dave, eve and the other merchant's alice: created at the clock's instant
    assert all(row["updated_at"] == moment and row["language"] == "" and not row["trusted"] for row in made)
