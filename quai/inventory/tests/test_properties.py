"""Random sequences of receipts, moves, reservations, allocations, picks, counts and releases keep every invariant.

After every step: per SKU, 0 <= reserved <= sellable on-hand and the counter equals the sum of its counted rows;
per place, 0 <= reserved <= on-hand; physical stock is conserved (what came in minus what left). A refused step
must be a business refusal (never a crash) and change nothing. At the end of each run the drift check, which
recomputes everything from the ledger, finds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from quai.core import clock
from quai.core.errors import QuaiError
from quai.inventory import selectors, services
from quai.inventory.models import (
    Reservation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockQuantity,
    StockStatus,
)
from quai.inventory.tests.factories import LocationFactory, SkuFactory, ZoneFactory
from quai.tenants.tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db

START = datetime(2030, 3, 1, 8, 0, tzinfo=UTC)
REFUSALS = {"insufficient_stock", "reservation_not_allocated", "reservation_closed", "shrink_too_large"}
STATUSES = [StockStatus.SELLABLE, StockStatus.SELLABLE, StockStatus.QUARANTINE, StockStatus.DAMAGED]


def _state(sku_ids: list[int]) -> tuple[object, ...]:
    return (
        StockMovement.objects.filter(sku_id__in=sku_ids).count(),
        list(StockQuantity.objects.filter(sku_id__in=sku_ids).order_by("pk").values_list("on_hand", "reserved")),
        list(StockLevel.objects.filter(sku_id__in=sku_ids).order_by("pk").values_list("on_hand", "reserved")),
        list(Reservation.objects.filter(sku_id__in=sku_ids).order_by("pk").values_list("quantity", "status")),
    )


class StockMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        clock.set_now(START)
        self.merchant = MerchantFactory()
        self.skus = [SkuFactory(merchant=self.merchant) for _ in range(2)]
        zone = ZoneFactory()
        temporary = ZoneFactory(site=zone.site, valid_until=START + timedelta(hours=2))
        self.locations = [LocationFactory(zone=zone) for _ in range(3)] + [LocationFactory(zone=temporary)]
        self.reservations: list[Reservation] = []
        self.physical = {sku.pk: 0 for sku in self.skus}  # came in minus went out, every status

    def _attempt(self, call, **kwargs) -> bool:  # type: ignore[no-untyped-def]
        before = _state([s.pk for s in self.skus])
        try:
            call(**kwargs)
        except QuaiError as exc:
            assert exc.code in REFUSALS, f"unexpected refusal {exc}"
            assert _state([s.pk for s in self.skus]) == before, f"refused {call.__name__} changed something"
            return False
        return True

    @rule(sku=st.integers(0, 1), place=st.integers(0, 3), quantity=st.integers(1, 20), status=st.sampled_from(STATUSES))
    def receive(self, sku: int, place: int, quantity: int, status: str) -> None:
        services.stock_receive(
            sku=self.skus[sku], location=self.locations[place], quantity=quantity, status=status, reason="prop"
        )
        self.physical[self.skus[sku].pk] += quantity

    @rule(
        sku=st.integers(0, 1),
        source=st.integers(0, 3),
        dest=st.integers(0, 3),
        quantity=st.integers(1, 25),
        status=st.sampled_from(STATUSES),
        to_status=st.sampled_from(STATUSES),
    )
    def move(self, sku: int, source: int, dest: int, quantity: int, status: str, to_status: str) -> None:
        if source == dest and status == to_status:
            return
        self._attempt(
            services.stock_move,
            sku=self.skus[sku],
            from_location=self.locations[source],
            to_location=self.locations[dest],
            quantity=quantity,
            status=status,
            to_status=to_status,
        )

    @rule(sku=st.integers(0, 1), quantity=st.integers(1, 15))
    def reserve(self, sku: int, quantity: int) -> None:
        level = StockLevel.objects.filter(sku=self.skus[sku]).first()
        available = level.on_hand - level.reserved if level else 0
        done = self._attempt(services.reservation_create, merchant=self.merchant, sku=self.skus[sku], quantity=quantity)
        assert done == (quantity <= available), "a reservation was refused with stock available, or granted without"
        if done:
            self.reservations.append(Reservation.objects.filter(sku=self.skus[sku]).order_by("-pk").first())

    def _open(self, index: int) -> Reservation | None:
        open_ones = [r for r in self.reservations if Reservation.objects.get(pk=r.pk).status == ReservationStatus.OPEN]
        return open_ones[index % len(open_ones)] if open_ones else None

    @precondition(lambda self: self.reservations)
    @rule(index=st.integers(0, 50))
    def allocate(self, index: int) -> None:
        if (reservation := self._open(index)) is not None:
            self._attempt(services.reservation_allocate, reservation=reservation)

    @precondition(lambda self: self.reservations)
    @rule(index=st.integers(0, 50), quantity=st.one_of(st.none(), st.integers(1, 10)))
    def pick(self, index: int, quantity: int | None) -> None:
        if (reservation := self._open(index)) is None:
            return
        before = Reservation.objects.get(pk=reservation.pk).consumed_quantity
        if self._attempt(services.reservation_consume, reservation=reservation, quantity=quantity):
            self.physical[reservation.sku_id] -= Reservation.objects.get(pk=reservation.pk).consumed_quantity - before

    @precondition(lambda self: self.reservations)
    @rule(index=st.integers(0, 50), quantity=st.integers(1, 10))
    def shrink(self, index: int, quantity: int) -> None:
        if (reservation := self._open(index)) is not None:
            self._attempt(services.reservation_shrink, reservation=reservation, quantity=quantity)

    @precondition(lambda self: self.reservations)
    @rule(index=st.integers(0, 50))
    def release(self, index: int) -> None:
        if (reservation := self._open(index)) is not None:
            self._attempt(services.reservation_release, reservation=reservation)

    @rule(sku=st.integers(0, 1), place=st.integers(0, 3), counted=st.integers(0, 30))
    def count(self, sku: int, place: int, counted: int) -> None:
        target = self.skus[sku]
        row_total = (
            StockQuantity.objects.filter(
                sku=target, location=self.locations[place], status=StockStatus.SELLABLE
            ).aggregate(total=Sum("on_hand"))["total"]
            or 0
        )
        if self._attempt(
            services.stock_count, sku=target, location=self.locations[place], counted_quantity=counted, reason="count"
        ):
            self.physical[target.pk] += counted - row_total

    @rule(hours=st.integers(1, 3))
    def time_passes(self, hours: int) -> None:
        clock.advance(timedelta(hours=hours))  # the temporary zone's window ends at START + 2 h
        services.stock_counting_sync()

    @invariant()
    def never_oversold_and_counters_agree(self) -> None:
        for sku in self.skus:
            rows = list(StockQuantity.objects.filter(sku=sku))
            for row in rows:
                assert 0 <= row.reserved <= row.on_hand
            level = StockLevel.objects.filter(sku=sku).first()
            if level is None:
                assert not rows
                continue
            assert 0 <= level.reserved <= level.on_hand
            assert level.on_hand == sum(r.on_hand for r in rows if r.status == StockStatus.SELLABLE and r.counted)
            open_total = (
                Reservation.objects.filter(sku=sku, status=ReservationStatus.OPEN).aggregate(t=Sum("quantity"))["t"]
                or 0
            )
            assert level.reserved == open_total
            assert sum(r.on_hand for r in rows) == self.physical[sku.pk]

    def teardown(self) -> None:
        assert selectors.stock_drift() == []
        clock.reset()


def test_random_stock_histories_keep_every_invariant_and_leave_no_drift():
    run_state_machine_as_test(
        StockMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            database=None,
        ),
    )
