"""Waves take first the orders whose promised ship date comes first (issue 14, item 7): the cut-off of the promise
recorded on the order (quai.promise) outranks the order's age and the service's daily cut-off."""

from __future__ import annotations

from datetime import datetime

import pytest

from quai.fulfillment.models import PickTask
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.promise.models import PromiseRecord, PromiseSource

pytestmark = pytest.mark.django_db


def _promise(order, ship_by: str) -> None:  # type: ignore[no-untyped-def]
    at = datetime.fromisoformat(ship_by)
    PromiseRecord.objects.create(
        order_id=order.pk, merchant_id=order.merchant_id, source=PromiseSource.INTAKE, ship_by=at, ship_date=at.date()
    )


def _waved(wave):  # type: ignore[no-untyped-def]
    return set(PickTask.objects.filter(batch__wave=wave).values_list("order_id", flat=True))


def test_a_wave_takes_the_earliest_promised_ship_date_first_then_promised_orders_before_the_others(merchant):
    floor = floor_for(merchant)
    oldest = released_order(floor, "P-OLD", [(0, 1)])
    promised_later = released_order(floor, "P-LATER", [(1, 1)])
    promised_first = released_order(floor, "P-FIRST", [(2, 1)])
    _promise(promised_later, "2025-03-12T15:00:00+01:00")
    _promise(promised_first, "2025-03-11T15:00:00+01:00")
    assert _waved(wave_for(floor, capacity=1)) == {promised_first.pk}
    assert _waved(wave_for(floor, capacity=1)) == {promised_later.pk}
    assert _waved(wave_for(floor, capacity=1)) == {oldest.pk}


def test_without_promises_the_oldest_order_goes_first(merchant):
    floor = floor_for(merchant)
    oldest = released_order(floor, "N-OLD", [(0, 1)])
    released_order(floor, "N-NEW", [(1, 1)])
    assert _waved(wave_for(floor, capacity=1)) == {oldest.pk}
