"""Cycle counts (inventaire tournant): the pure rules, the services on the database, and a property test.

Every refusal is checked with the ledger unchanged: the same movements, quantities, counters and outbox.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import Group
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quai.catalog.models import Barcode
from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent
from quai.core.selectors import state_history
from quai.inventory import domain, selectors, services
from quai.inventory.models import (
    CountLine,
    CountTask,
    CountTaskStatus,
    MovementKind,
    StockLevel,
    StockMovement,
    StockPolicy,
    StockQuantity,
)
from quai.inventory.services.counts import COUNT_TASK_MACHINE
from quai.inventory.tests.factories import LocationFactory, SkuFactory, stocked_sku
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

NOW = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
TOLERANCE = domain.CountTolerance(units=2, percent=5)


# --- Pure rules (no database) -----------------------------------------------------------------------------------


def test_the_variance_is_what_was_counted_minus_what_the_books_say():
    assert domain.count_variance(expected=10, counted=7) == -3
    assert domain.count_variance(expected=0, counted=4) == 4
    assert domain.count_variance(expected=5, counted=5) == 0


def test_a_negative_quantity_has_no_variance():
    with pytest.raises(QuaiError) as excinfo:
        domain.count_variance(expected=-1, counted=3)
    assert excinfo.value.code == "invalid_quantity"


@pytest.mark.parametrize(
    ("expected", "counted", "needs"),
    [
        (10, 10, False),  # exact
        (10, 8, False),  # 2 units: within the unit tolerance
        (10, 7, True),  # 3 units and 30 %: beyond both
        (100, 95, False),  # 5 units but 5 %: within the percentage
        (100, 94, True),  # 6 units and 6 %
        (0, 2, False),  # found 2 where none was booked: within the units
        (0, 3, True),  # no percentage of zero: 3 units is beyond
        (3, 0, True),  # all of it missing
    ],
)
def test_approval_is_needed_only_beyond_both_the_unit_and_the_percentage_tolerance(expected, counted, needs):
    assert domain.count_needs_approval(expected=expected, counted=counted, tolerance=TOLERANCE) is needs


def test_a_zero_tolerance_sends_every_difference_to_a_supervisor():
    strict = domain.CountTolerance(units=0, percent=0)
    assert domain.count_needs_approval(expected=100, counted=99, tolerance=strict)
    assert not domain.count_needs_approval(expected=100, counted=100, tolerance=strict)


def test_a_count_below_what_is_reserved_waits_for_a_supervisor_even_within_tolerance():
    lines = [domain.CountedLine(expected=10, counted=9, reserved=10, tolerance=TOLERANCE)]
    assert domain.count_review(lines) == ["below_reserved"]
    assert domain.count_review([domain.CountedLine(expected=10, counted=9, reserved=9)]) == []
    assert domain.count_review([domain.CountedLine(expected=10, counted=1, reserved=2)]) == [
        "variance_above_threshold",
        "below_reserved",
    ]


def test_the_transition_table_allows_the_count_life_cycle_and_nothing_else():
    allowed = COUNT_TASK_MACHINE.can
    assert allowed("open", "counting") and allowed("counting", "submitted") and allowed("submitted", "applied")
    assert allowed("submitted", "approved") and allowed("approved", "applied")
    assert allowed("submitted", "rejected") and allowed("rejected", "counting")
    assert allowed("open", "cancelled")
    assert not allowed("applied", "counting")
    assert not allowed("open", "applied")
    assert not allowed("cancelled", "open")
    assert not allowed("submitted", "cancelled")
    assert not allowed("nonsense", "open")


# --- Services on the database -----------------------------------------------------------------------------------


@pytest.fixture
def frozen(db):
    clock.set_now(NOW)


def _snapshot():
    return (
        list(StockMovement.objects.order_by("pk").values_list("pk", flat=True)),
        list(StockQuantity.objects.order_by("pk").values_list("pk", "on_hand", "reserved", "counted")),
        list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "reserved")),
        list(CountTask.objects.order_by("pk").values_list("pk", "status", "review_reasons")),
        list(CountLine.objects.order_by("pk").values_list("pk", "counted_quantity", "expected_quantity")),
        OutboxEvent.objects.count(),
    )


def _refused(expected_code: str, call, **kwargs) -> QuaiError:
    before = _snapshot()
    with pytest.raises(QuaiError) as excinfo:
        call(**kwargs)
    assert excinfo.value.code == expected_code, excinfo.value
    assert _snapshot() == before, "a refused call changed something"
    assert selectors.stock_drift() == []
    return excinfo.value


def _on_hand(sku, location) -> int:
    return sum(StockQuantity.objects.filter(sku=sku, location=location).values_list("on_hand", flat=True))


def _supervisor():
    user = StaffUserFactory()
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


def _item(merchant, gtin: str, **fields):
    sku = SkuFactory(merchant=merchant, **fields)
    Barcode.objects.get_or_create(merchant=merchant, code=gtin, defaults={"sku": sku})
    return sku


def test_a_count_within_tolerance_is_applied_at_once_through_stock_count(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    counter = StaffUserFactory()
    task = services.count_task_create(location=location, actor=counter)[0]
    assert (task.status, task.blind, task.sku_id) == (CountTaskStatus.OPEN, True, None)
    services.count_line_set(task=task, sku=sku, counted_quantity=9, actor=counter)

    task = services.count_submit(task=task, actor=counter)

    assert task.status == CountTaskStatus.APPLIED
    assert _on_hand(sku, location) == 9
    movement = StockMovement.objects.get(kind=MovementKind.COUNT)
    assert (movement.reason, movement.document_type, movement.document_id, movement.actor) == (
        "cycle count",
        "count_task",
        str(task.pk),
        counter,
    )
    line = task.lines.get()
    assert (line.expected_quantity, line.counted_quantity, line.variance, line.needs_approval) == (10, 9, -1, False)
    assert list(
        state_history(aggregate="count_task", aggregate_id=task.pk).values_list("from_status", "to_status")
    ) == [
        ("open", "counting"),
        ("counting", "submitted"),
        ("submitted", "applied"),
    ]
    assert task.counted_by == counter and task.applied_at == NOW
    assert OutboxEvent.objects.filter(name="inventory.count_task_changed").count() == 3
    assert selectors.stock_drift() == []


def test_a_count_beyond_tolerance_waits_for_a_supervisor_who_applies_it(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=4)

    task = services.count_submit(task=task)
    assert task.status == CountTaskStatus.SUBMITTED
    assert task.review_reasons == "variance_above_threshold"
    assert _on_hand(sku, location) == 10, "nothing applied before approval"

    boss = _supervisor()
    task = services.count_approve(task=task, actor=boss)
    assert task.status == CountTaskStatus.APPLIED and task.decided_by == boss
    assert _on_hand(sku, location) == 4
    assert selectors.stock_drift() == []


def test_only_a_supervisor_may_approve_or_reject(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=1)
    services.count_submit(task=task)
    operator = StaffUserFactory()
    operator.groups.add(Group.objects.get_or_create(name="picker")[0])
    _refused("supervisor_only", services.count_approve, task=task, actor=operator)
    _refused("supervisor_only", services.count_reject, task=task, actor=None)


def test_a_rejected_count_is_counted_again_from_zero_and_keeps_the_first_count_in_its_audit(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=1)
    services.count_submit(task=task)

    task = services.count_reject(task=task, actor=_supervisor(), reason="count again")
    assert task.status == CountTaskStatus.REJECTED and task.lines.count() == 0
    audit = state_history(aggregate="count_task", aggregate_id=task.pk).get(to_status="rejected")
    assert audit.reason == "count again" and audit.details["lines"][0]["counted"] == 1

    services.count_line_set(task=task, sku=sku, counted_quantity=10)
    task = services.count_submit(task=task)
    assert task.status == CountTaskStatus.APPLIED
    assert _on_hand(sku, location) == 10
    assert not StockMovement.objects.filter(kind=MovementKind.COUNT).exists(), "it matched: no movement"


def test_items_on_the_books_but_not_found_are_counted_zero(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=2)
    other = SkuFactory(merchant=merchant)
    services.stock_receive(sku=other, location=location, quantity=1, reason="test")
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=2)

    task = services.count_submit(task=task)

    assert task.status == CountTaskStatus.APPLIED  # one unit missing: within the 2-unit tolerance
    assert _on_hand(other, location) == 0
    assert task.lines.get(sku=other).variance == -1


def test_scans_add_one_each_or_the_quantity_typed_and_resolve_the_lot_held_there(frozen, merchant):
    sku = _item(merchant, "03770016000017", lot_tracked=True)
    location = LocationFactory()
    services.stock_receive(sku=sku, location=location, quantity=6, lot="L1", reason="test")
    task = services.count_task_create(location=location)[0]

    services.count_scan(task=task, code="03770016000017")
    line = services.count_scan(task=task, code="03770016000017", quantity=4)

    assert (line.lot, line.counted_quantity) == ("L1", 5)
    assert CountTask.objects.get(pk=task.pk).status == CountTaskStatus.COUNTING


def test_a_lot_tracked_item_held_in_two_lots_needs_the_label_with_the_lot(frozen, merchant):
    sku = _item(merchant, "03770016000024", lot_tracked=True)
    location = LocationFactory()
    services.stock_receive(sku=sku, location=location, quantity=3, lot="A", reason="test")
    services.stock_receive(sku=sku, location=location, quantity=3, lot="B", reason="test")
    task = services.count_task_create(location=location)[0]
    _refused("lot_required", services.count_scan, task=task, code="03770016000024")
    line = services.count_scan(task=task, code="(01)03770016000024(10)B")
    assert (line.lot, line.counted_quantity) == ("B", 1)


def test_bad_scans_and_quantities_are_refused_and_change_nothing(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=3)
    _item(merchant, "03770016000031")
    task = services.count_task_create(location=location, sku=sku)[0]
    _refused("unknown_code", services.count_scan, task=task, code="NOT-A-CODE")
    _refused("not_in_count", services.count_scan, task=task, code="03770016000031")
    _refused("invalid_quantity", services.count_scan, task=task, code=sku.code, quantity=0)
    _refused("code_required", services.count_scan, task=task, code="  ")
    _refused("invalid_quantity", services.count_line_set, task=task, sku=sku, counted_quantity=-1)
    _refused("invalid_quantity", services.count_line_set, task=task, sku=sku, counted_quantity=True)
    _refused("count_line_not_found", services.count_line_set, task=task, line_id=999999, counted_quantity=1)


def test_a_count_scope_is_required_and_a_location_is_counted_once_at_a_time(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=3)
    _refused("count_scope_required", services.count_task_create)
    services.count_task_create(location=location)
    _refused("count_already_open", services.count_task_create, location=location)
    _refused("count_already_open", services.count_task_create, sku=sku)
    _refused("nothing_to_count", services.count_task_create, sku=SkuFactory(merchant=merchant))


def test_a_count_by_sku_opens_one_task_per_location_holding_it(frozen, merchant):
    sku, first = stocked_sku(merchant=merchant, quantity=3)
    second = LocationFactory(zone=first.zone, site=first.site)
    services.stock_receive(sku=sku, location=second, quantity=2, reason="test")
    stocked_sku(merchant=MerchantFactory(), quantity=4, location=first)

    tasks = services.count_task_create(sku=sku, blind=False)

    assert sorted(t.location_id for t in tasks) == sorted([first.pk, second.pk])
    assert all(t.sku_id == sku.pk and t.merchant_id == merchant.pk and not t.blind for t in tasks)


def test_a_closed_count_cannot_be_counted_submitted_or_approved_again(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=3)
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=3)
    services.count_submit(task=task)
    _refused("count_closed", services.count_scan, task=task, code=sku.code)
    _refused("count_closed", services.count_submit, task=task)
    _refused("invalid_transition", services.count_approve, task=task, actor=_supervisor())
    _refused("invalid_transition", services.count_task_cancel, task=task)
    _refused("count_task_not_found", services.count_submit, task=999999)


def test_a_count_below_what_is_reserved_there_is_refused_until_the_reservations_are_sorted(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=8, document_id="o-1")
    services.reservation_allocate(reservation=reservation)
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=5)

    task = services.count_submit(task=task)
    assert task.status == CountTaskStatus.SUBMITTED
    assert "below_reserved" in task.review_reasons
    boss = _supervisor()
    error = _refused("count_below_reserved", services.count_approve, task=task, actor=boss)
    assert error.details["count_task_id"] == task.pk

    services.reservation_shrink(reservation=reservation, quantity=3)  # 5 still reserved: the count of 5 fits
    task = services.count_approve(task=task, actor=boss)
    assert task.status == CountTaskStatus.APPLIED
    assert _on_hand(sku, location) == 5
    assert selectors.stock_drift() == []


def test_a_count_is_not_applied_over_stock_that_moved_since_it_was_counted(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=3)
    services.count_submit(task=task)
    services.stock_receive(sku=sku, location=location, quantity=5, reason="late putaway")
    _refused("count_stale", services.count_approve, task=task, actor=_supervisor())


def test_a_merchants_stock_policy_sets_its_count_tolerance(frozen, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    services.stock_policy_set(merchant=merchant, count_tolerance_units=0, count_tolerance_percent=0)
    assert selectors.count_tolerance(merchant_id=merchant.pk, sku_id=sku.pk) == domain.CountTolerance(0, 0)
    services.stock_policy_set(merchant=merchant, sku=sku, count_tolerance_units=50)
    assert selectors.count_tolerance(merchant_id=merchant.pk, sku_id=sku.pk) == domain.CountTolerance(50, 0)
    other = SkuFactory(merchant=merchant)
    services.stock_receive(sku=other, location=location, quantity=10, reason="test")
    task = services.count_task_create(location=location, sku=other)[0]
    services.count_line_set(task=task, sku=other, counted_quantity=9)
    assert services.count_submit(task=task).status == CountTaskStatus.SUBMITTED  # strict merchant default


def test_a_negative_count_tolerance_is_refused(frozen, merchant):
    with pytest.raises(QuaiError) as excinfo:
        services.stock_policy_set(merchant=merchant, count_tolerance_percent=-1)
    assert excinfo.value.code == "invalid_policy"
    assert not StockPolicy.objects.exists()


def test_a_count_that_cannot_be_applied_at_once_stays_submitted_with_the_reason(frozen, merchant):
    sku = _item(merchant, "03770016000055", expiry_tracked=True)
    location = LocationFactory()
    services.stock_receive(sku=sku, location=location, quantity=3, expiry=date(2030, 6, 10), reason="test")
    clock.set_now(datetime(2030, 7, 1, 10, 0, tzinfo=UTC))  # the lot is now past its date
    task = services.count_task_create(location=location)[0]
    services.count_scan(task=task, code="03770016000055", quantity=4)  # one more than the books: within tolerance

    task = services.count_submit(task=task)

    assert task.status == CountTaskStatus.SUBMITTED
    assert task.review_reasons == "apply_refused:expiry_in_past"
    assert _on_hand(sku, location) == 3
    assert selectors.stock_drift() == []


def test_an_unknown_transition_is_refused_with_the_allowed_ones(frozen, merchant):
    _sku, location = stocked_sku(merchant=merchant, quantity=1)
    task = services.count_task_create(location=location)[0]
    error = _refused("invalid_transition", services.count_task_transition, task=task, to_status="applied")
    assert sorted(error.details["allowed"]) == ["cancelled", "counting", "submitted"]
    services.count_task_cancel(task=task, reason="not today")
    assert state_history(aggregate="count_task", aggregate_id=task.pk).get().reason == "not today"


def test_an_expiry_tracked_count_keeps_each_date_apart(frozen, merchant):
    sku = _item(merchant, "03770016000048", expiry_tracked=True)
    location = LocationFactory()
    services.stock_receive(sku=sku, location=location, quantity=2, expiry=date(2031, 1, 1), reason="test")
    services.stock_receive(sku=sku, location=location, quantity=2, expiry=date(2031, 6, 1), reason="test")
    task = services.count_task_create(location=location)[0]
    _refused("expiry_required", services.count_scan, task=task, code="03770016000048")
    services.count_scan(task=task, code="(01)03770016000048(17)310601", quantity=2)
    services.count_scan(task=task, code="(01)03770016000048(17)310101", quantity=1)
    task = services.count_submit(task=task)
    assert task.status == CountTaskStatus.APPLIED
    assert dict(StockQuantity.objects.filter(sku=sku).values_list("expiry", "on_hand")) == {
        date(2031, 1, 1): 1,
        date(2031, 6, 1): 2,
    }
    assert selectors.stock_drift() == []


# --- Property: any sequence of applied counts keeps the books exact ----------------------------------------------


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.integers(min_value=0, max_value=6)),
        min_size=1,
        max_size=6,
    )
)
def test_any_sequence_of_applied_counts_leaves_on_hand_equal_to_the_last_count_and_no_drift(counts):
    clock.set_now(NOW)
    merchant = MerchantFactory()
    sku, location = stocked_sku(merchant=merchant, quantity=10)
    reservation = services.reservation_create(merchant=merchant, sku=sku, quantity=2, document_id="p")
    services.reservation_allocate(reservation=reservation)
    boss = _supervisor()
    last_applied = 10
    for counted, _noise in counts:
        task = services.count_task_create(location=location, sku=sku)[0]
        services.count_line_set(task=task, sku=sku, counted_quantity=counted)
        task = services.count_submit(task=task)
        if task.status == CountTaskStatus.SUBMITTED:
            try:
                task = services.count_approve(task=task, actor=boss)
            except QuaiError as exc:
                assert exc.code == "count_below_reserved" and counted < 2
                task = services.count_reject(task=task, actor=boss)
                services.count_task_cancel(task=task)
        if task.status == CountTaskStatus.APPLIED:
            last_applied = counted
        assert _on_hand(sku, location) == last_applied
        assert selectors.stock_drift() == []
    level = StockLevel.objects.get(sku=sku)
    assert (level.on_hand, level.reserved) == (last_applied, 2)
