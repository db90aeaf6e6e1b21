"""Reservations for a whole batch at once (``reservations_create_many``): exact under the lock, never oversold,
each row what ``reservation_create`` writes, counters consistent with the rows, the ledger untouched."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.models import Sum

from quai.core.errors import InsufficientStock, NotFound
from quai.core.models import OutboxEvent
from quai.inventory import selectors, services
from quai.inventory.models import Reservation, StockLevel
from quai.inventory.services import ReservationRequest
from quai.inventory.tests.factories import SkuFactory, stocked_sku
from quai.tenants.tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db


def _open_total(sku: object) -> int:
    return Reservation.objects.filter(sku=sku, status="open").aggregate(total=Sum("quantity"))["total"] or 0


def test_requests_are_served_in_order_until_the_stock_runs_out_partial_or_nothing_as_asked():
    merchant = MerchantFactory()
    hot, _location = stocked_sku(merchant=merchant, quantity=5)
    cold, _other = stocked_sku(merchant=merchant, quantity=100)
    requests = [
        ReservationRequest(merchant_id=merchant.pk, sku=hot, quantity=2, document_type="order", document_id="1/1"),
        ReservationRequest(merchant_id=merchant.pk, sku=cold, quantity=7, document_type="order", document_id="1/2"),
        ReservationRequest(merchant_id=merchant.pk, sku=hot, quantity=2, document_type="order", document_id="2/1"),
        # 1 left: an all-or-nothing request gets nothing, the partial one after it takes the last unit.
        ReservationRequest(merchant_id=merchant.pk, sku=hot, quantity=2, document_id="3/1", partial=False),
        ReservationRequest(merchant_id=merchant.pk, sku=hot, quantity=3, document_id="4/1"),
        ReservationRequest(merchant_id=merchant.pk, sku=hot, quantity=1, document_id="5/1"),
    ]
    with transaction.atomic():
        levels = services.stock_levels_lock([cold.pk, hot.pk])
        assert levels == {hot.pk: 5, cold.pk: 100}
        made = services.reservations_create_many(requests=requests, levels=levels)
        assert levels == {hot.pk: 0, cold.pk: 93}  # kept current for a later call in the same transaction
    assert [None if row is None else row.quantity for row in made] == [2, 7, 2, None, 1, None]
    level = StockLevel.objects.get(sku=hot)
    assert (level.on_hand, level.reserved) == (5, 5)
    assert _open_total(hot) == 5 and _open_total(cold) == 7 == StockLevel.objects.get(sku=cold).reserved
    stored = Reservation.objects.get(pk=made[0].pk)
    assert (stored.quantity, stored.requested_quantity, stored.document_type, stored.document_id) == (
        2,
        2,
        "order",
        "1/1",
    )
    assert selectors.stock_drift() == []


def test_each_row_and_event_is_what_reservation_create_writes():
    merchant = MerchantFactory()
    sku, _location = stocked_sku(merchant=merchant, quantity=10)
    one = services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_type="order", document_id="a")
    with transaction.atomic():
        (many,) = services.reservations_create_many(
            requests=[
                ReservationRequest(merchant_id=merchant.pk, sku=sku, quantity=2, document_type="order", document_id="b")
            ],
            levels=services.stock_levels_lock([sku.pk]),
        )
    assert many is not None
    fields = ["merchant_id", "sku_id", "quantity", "requested_quantity", "consumed_quantity", "released_quantity"]
    first, second = (Reservation.objects.filter(pk=pk).values(*fields, "status").get() for pk in (one.pk, many.pk))
    assert first == second
    events = {
        event.aggregate_id: event
        for event in OutboxEvent.objects.filter(name="inventory.reservation_made").order_by("id")
    }
    by_one, by_many = events[str(one.pk)], events[str(many.pk)]
    assert (by_one.schema_version, by_one.merchant_id, by_one.aggregate) == (
        by_many.schema_version,
        by_many.merchant_id,
        by_many.aggregate,
    )
    assert by_many.payload == by_one.payload | {"reservation_id": many.pk, "document_id": "b"}


def test_the_guard_still_refuses_when_the_levels_handed_in_are_not_what_is_stored():
    merchant = MerchantFactory()
    sku, _location = stocked_sku(merchant=merchant, quantity=3)
    levels = services.LockedLevels({sku.pk: 10})  # a lie: only 3 are free
    request = ReservationRequest(merchant_id=merchant.pk, sku=sku, quantity=5)
    with pytest.raises(InsufficientStock), transaction.atomic():
        services.reservations_create_many(requests=[request], levels=levels)
    assert StockLevel.objects.get(sku=sku).reserved == 0
    assert not Reservation.objects.exists()


def test_bad_requests_raise_before_any_write():
    merchant, other = MerchantFactory(), MerchantFactory()
    sku, _location = stocked_sku(merchant=merchant, quantity=3)
    theirs = SkuFactory(merchant=other)
    with transaction.atomic():
        levels = services.stock_levels_lock([sku.pk, theirs.pk])
        with pytest.raises(NotFound):
            services.reservations_create_many(
                requests=[
                    ReservationRequest(merchant_id=merchant.pk, sku=sku, quantity=1),
                    ReservationRequest(merchant_id=merchant.pk, sku=theirs, quantity=1),
                ],
                levels=levels,
            )
        with pytest.raises(ValueError):  # a SKU not locked in this transaction
            services.reservations_create_many(
                requests=[ReservationRequest(merchant_id=merchant.pk, sku=sku, quantity=1)],
                levels=services.LockedLevels(),
            )
    assert not Reservation.objects.exists()
    assert StockLevel.objects.get(sku=sku).reserved == 0


def test_a_sku_without_a_level_row_has_nothing_free_and_a_batch_costs_a_handful_of_statements(
    django_assert_num_queries,
):
    merchant = MerchantFactory()
    never_stocked = SkuFactory(merchant=merchant)
    skus = [stocked_sku(merchant=merchant, quantity=50)[0] for _ in range(3)]
    requests = [
        ReservationRequest(merchant_id=merchant.pk, sku=skus[index % 3], quantity=1, document_id=f"{index}/1")
        for index in range(30)
    ]
    requests.append(ReservationRequest(merchant_id=merchant.pk, sku=never_stocked, quantity=1))
    # The lock and read (1), the counters (1), the rows (1), their events (1): whatever the number of lines.
    with transaction.atomic(), django_assert_num_queries(4):
        levels = services.stock_levels_lock([sku.pk for sku in skus] + [never_stocked.pk])
        made = services.reservations_create_many(requests=requests, levels=levels)
    assert made[-1] is None and all(row is not None for row in made[:-1])
    assert [StockLevel.objects.get(sku=sku).reserved for sku in skus] == [10, 10, 10]
    assert all(_open_total(sku) == 10 for sku in skus)
    assert selectors.stock_drift() == []


def test_the_levels_lock_reads_what_the_orm_s_locking_query_reads():
    """Equivalence: ``stock_levels_lock``'s one written statement takes the rows the ORM's form took (the same
    filter, order and lock) and reads the same free units: unsorted and repeated ids, a SKU never stocked, one with
    units reserved, another merchant's, none at all."""
    from django.db import connection
    from django.db.models import F
    from django.test.utils import CaptureQueriesContext

    merchant, other = MerchantFactory(), MerchantFactory()
    hot, _location = stocked_sku(merchant=merchant, quantity=5)
    cold, _other = stocked_sku(merchant=merchant, quantity=100)
    theirs, _theirs = stocked_sku(merchant=other, quantity=3)
    never_stocked = SkuFactory(merchant=merchant)
    services.reservation_create(merchant=merchant, sku=hot, quantity=2, document_type="order", document_id="x")

    def orm_form(ids: list[int]) -> dict[int, int]:
        rows = StockLevel.objects.filter(sku_id__in=sorted(set(ids))).order_by("sku_id")
        if connection.vendor == "postgresql":
            rows = rows.select_for_update()
        levels = dict.fromkeys(sorted(set(ids)), 0)
        levels.update(rows.annotate(free=F("on_hand") - F("reserved")).values_list("sku_id", "free"))
        return levels

    for ids in ([cold.pk, hot.pk, cold.pk], [never_stocked.pk, theirs.pk, hot.pk], [hot.pk], []):
        with transaction.atomic(), CaptureQueriesContext(connection) as context:
            levels = services.stock_levels_lock(ids)
        assert isinstance(levels, services.LockedLevels)
        assert dict(levels) == orm_form(ids) and list(levels) == sorted(set(ids))
        assert len(context.captured_queries) == (1 if ids else 0)
        if ids and connection.vendor == "postgresql":
            assert context.captured_queries[0]["sql"].endswith("FOR UPDATE")
    assert services.stock_levels_lock([hot.pk]) == {hot.pk: 3}
