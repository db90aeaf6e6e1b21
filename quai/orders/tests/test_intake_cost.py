"""What one order costs the database at intake: a query budget, and each cut that holds it (docs/INTAKE.md).

Budgets count queries, never time: they fail when someone adds a round trip to the hottest route of a flash sale.
The request runs the committer's unit inline here (the test's transaction), in a savepoint like a shared batch.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.orders.models import Order, OrderLine
from quai.orders.services import order_policy_set, order_validate
from quai.orders.services.intake import skus_known_for
from quai.orders.services.intake_batched import order_intake_many
from quai.orders.tests.conftest import order_data

pytestmark = pytest.mark.django_db

# One order of two lines through POST /api/v1/orders, the API key already known to the process: the SKU read (1),
# the release buffer (1), then the batch's writes (orders_write_many, here a batch of one): the savepoint (2), the
# SKU rows locked and read (1), the order (1), order.received (1), the counters (1), the reservations (1) and their
# events (1), the lines (1), the step (update, event, audit: 3), order.allocated (1). Before the cuts of
# docs/INTAKE.md: 29 on PostgreSQL, then 20 (one order at a time: 18 round trips in the unit).
ORDER_OF_TWO_LINES_BUDGET = {"postgresql": 15, "sqlite": 15}


@pytest.fixture
def two_skus(merchant: Any, stock: Any) -> tuple[Any, Any]:
    hot, other = SkuFactory(merchant=merchant, code="HOT-1"), SkuFactory(merchant=merchant, code="MUG-2")
    stock(hot, 50)
    stock(other, 50)
    return hot, other


def _two_lines(external_id: str) -> dict[str, Any]:
    return order_data(
        external_id,
        lines=[
            {"sku": "HOT-1", "quantity": 1, "unit_price": "19.90"},
            {"sku": "MUG-2", "quantity": 2, "unit_price": "9.90"},
        ],
    )


def _statements(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries]


def test_one_order_of_two_lines_is_accepted_within_its_query_budget(api, two_skus, django_assert_max_num_queries):
    assert api.post("orders", _two_lines("WARM-1")).status_code == 201  # the process now knows the key
    with django_assert_max_num_queries(ORDER_OF_TWO_LINES_BUDGET[connection.vendor]):
        response = api.post("orders", _two_lines("SHOP-2"))
    assert response.status_code == 201, response.content


def test_the_answer_to_an_order_is_built_from_what_was_written_not_read_again(api, two_skus):
    api.post("orders", _two_lines("WARM-1"))
    with CaptureQueriesContext(connection) as context:
        response = api.post("orders", _two_lines("SHOP-2"))
    reads_after_the_write = [
        sql
        for sql in _statements(context)
        if sql.startswith("SELECT") and ('FROM "orders_orderline"' in sql or 'FROM "core_statetransition"' in sql)
    ]
    assert reads_after_the_write == []
    answered = response.json()
    assert answered == api.get(f"orders/{answered['id']}").json()  # the same detail a read gives, to the field
    assert [(line["sku"], line["reserved_quantity"]) for line in answered["lines"]] == [("HOT-1", 1), ("MUG-2", 2)]
    assert [step["to_status"] for step in answered["timeline"]] == ["allocated"]


def test_an_order_s_lines_are_inserted_with_their_reservations_never_updated_after(api, two_skus):
    with CaptureQueriesContext(connection) as context:
        order_id = api.post("orders", _two_lines("SHOP-3")).json()["id"]
    assert [sql for sql in _statements(context) if sql.startswith('UPDATE "orders_orderline"')] == []
    lines = OrderLine.objects.filter(order_id=order_id).order_by("position")
    assert [(line.reserved_quantity, line.backordered_quantity) for line in lines] == [(1, 0), (2, 0)]
    assert all(line.reservation_id is not None for line in lines)


def test_a_line_short_of_stock_is_inserted_backordered_with_what_it_got(api, merchant, stock):
    scarce = SkuFactory(merchant=merchant, code="SCARCE")
    stock(scarce, 1)
    body = api.post("orders", order_data("SHOP-4", lines=[{"sku": "SCARCE", "quantity": 3}])).json()
    assert body["status"] == "backordered"
    assert [(line["reserved_quantity"], line["backordered_quantity"]) for line in body["lines"]] == [(1, 2)]
    assert body == api.get(f"orders/{body['id']}").json()


def test_a_new_order_costs_no_look_up_of_its_external_id_before_its_insert(api, two_skus):
    with CaptureQueriesContext(connection) as context:
        api.post("orders", _two_lines("SHOP-5"))
    on_orders = [sql.split(" ", 1)[0] for sql in _statements(context) if '"orders_order"' in sql.split("WHERE")[0]]
    assert on_orders[0] == "INSERT"


def test_an_order_sent_again_still_answers_the_order_already_there_and_writes_nothing(api, two_skus):
    first = api.post("orders", _two_lines("SHOP-6"))
    again = api.post("orders", _two_lines("SHOP-6"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() | {"timeline": again.json()["timeline"]}
    assert again.json()["timeline"] == first.json()["timeline"]
    assert Order.objects.count() == 1
    assert OrderLine.objects.count() == 2


def test_validation_reads_every_sku_of_an_order_in_one_query_without_their_barcodes(merchant, two_skus):
    with CaptureQueriesContext(connection) as context:
        draft = order_validate(merchant=merchant, data=_two_lines("SHOP-7"))
    assert [line.sku.code for line in draft.lines] == ["HOT-1", "MUG-2"]
    # The merchant's SKU stamp first (the per-process cache's, read once per QUAI_INTAKE_CACHE_SECONDS), then the SKUs.
    stamp, skus = _statements(context)
    assert "COUNT(" in stamp and 'FROM "catalog_sku"' in skus and "COUNT(" not in skus


def test_a_sku_created_a_moment_ago_is_found_by_the_next_order(api, merchant, stock):
    fresh = SkuFactory(merchant=merchant, code="NEW-SKU")
    stock(fresh, 2)
    response = api.post("orders", order_data("SHOP-8", lines=[{"sku": "new-sku", "quantity": 1}]))
    assert response.status_code == 201, response.content


def test_a_batch_request_reads_the_merchant_s_release_buffer_once_for_all_its_orders(merchant, two_skus):
    order_policy_set(merchant=merchant, release_buffer_minutes=30)
    orders = [_two_lines(f"BATCH-{index}") for index in range(5)]
    with CaptureQueriesContext(connection) as context:
        outcomes = order_intake_many(merchant=merchant, orders=orders)
    policy_reads = [sql for sql in _statements(context) if 'FROM "orders_orderpolicy"' in sql]
    assert len(policy_reads) == 1
    for outcome in outcomes:
        assert not isinstance(outcome, Exception)
        assert (outcome.order.release_after - outcome.order.created_at).total_seconds() == 30 * 60


def test_the_same_order_twice_in_one_batch_request_is_one_order_answered_twice(merchant, two_skus):
    outcomes = order_intake_many(merchant=merchant, orders=[_two_lines("TWICE-1"), _two_lines("TWICE-1")])
    assert [outcome.created for outcome in outcomes] == [True, False]  # type: ignore[union-attr]
    assert outcomes[0].order.pk == outcomes[1].order.pk  # type: ignore[union-attr]
    assert Order.objects.filter(external_id="TWICE-1").count() == 1


def test_another_order_under_a_taken_external_id_in_a_batch_request_is_refused_alone(merchant, two_skus):
    other = order_data("TWICE-2", lines=[{"sku": "MUG-2", "quantity": 5}])
    outcomes = order_intake_many(merchant=merchant, orders=[_two_lines("TWICE-2"), other, _two_lines("TWICE-3")])
    assert getattr(outcomes[1], "code", None) == "order_external_id_reused"
    assert [getattr(outcomes[i], "created", None) for i in (0, 2)] == [True, True]


def test_a_batch_request_reads_the_skus_of_all_its_orders_in_one_query(merchant, two_skus, other_merchant):
    SkuFactory(merchant=other_merchant, code="THEIRS")
    orders = [_two_lines(f"SKUS-{index}") for index in range(6)]
    orders[2] = order_data("SKUS-2", lines=[{"sku": "NOPE", "quantity": 1}, {"sku": "hot-1", "quantity": 1}])
    orders[4] = order_data("SKUS-4", lines=[{"sku": "THEIRS", "quantity": 1}])  # another merchant's: not found
    orders[5] = order_data("SKUS-5", lines=[{"sku": " mug-2 ", "quantity": 1}])  # case and spaces as one alone
    with CaptureQueriesContext(connection) as context:
        outcomes = order_intake_many(merchant=merchant, orders=orders)
    sku_reads = [sql for sql in _statements(context) if sql.startswith("SELECT") and 'FROM "catalog_sku"' in sql]
    assert len(sku_reads) == 2 and "COUNT(" in sku_reads[0]  # the cache's stamp, then every order's SKUs at once
    assert [getattr(outcome, "code", None) for outcome in outcomes] == [
        None,
        None,
        "sku_not_found",
        None,
        "sku_not_found",
        None,
    ]
    assert outcomes[2].details["skus"] == ["NOPE"]  # type: ignore[union-attr]
    assert [line.sku.code for line in outcomes[5].lines] == ["MUG-2"]  # type: ignore[union-attr]
    # Each order gets what it gets when validated alone.
    for data, outcome in zip(orders, outcomes, strict=True):
        if isinstance(outcome, Exception):
            with pytest.raises(type(outcome)) as alone:
                order_validate(merchant=merchant, data=data)
            assert alone.value.details == outcome.details  # type: ignore[attr-defined]


def test_an_order_whose_codes_the_batch_read_does_not_cover_reads_its_own(
    merchant, two_skus, django_assert_num_queries
):
    known = skus_known_for(merchant.pk, [_two_lines("A")])
    with django_assert_num_queries(0):
        assert order_validate(merchant=merchant, data=_two_lines("B"), known_skus=known).lines[0].sku.code == "HOT-1"
    SkuFactory(merchant=merchant, code="LATER")
    with django_assert_num_queries(1):
        draft = order_validate(
            merchant=merchant, data=order_data("C", lines=[{"sku": "later", "quantity": 1}]), known_skus=known
        )
    assert [line.sku_code for line in draft.lines] == ["LATER"]
