"""A wave reads only the waiting orders its site can take: those of merchants with units on hand at its pickable
places (orders carry no site). Another site's merchant is neither tried nor listed as skipped; a merchant stocked
at both sites is still read at both, and its order goes where its units are."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.fulfillment import domain, services
from quai.fulfillment.models import PickTask
from quai.fulfillment.tests.factories import floor_for, released_order

pytestmark = pytest.mark.django_db


def test_a_wave_leaves_another_site_s_merchants_alone(merchant, other_merchant):
    here = floor_for(merchant, skus=2)
    there = floor_for(other_merchant, skus=2, site_code="there", prefix="TH")
    mine = released_order(here, "MINE", [(0, 1)])
    theirs = released_order(there, "THEIRS", [(1, 2)])

    assert [o.pk for o in services._waiting_orders(site=here.site)] == [mine.pk]
    assert {o.pk for o in services._waiting_orders()} == {mine.pk, theirs.pk}  # unscoped: the schedule's look
    wave = services.wave_release(site=here.site, criteria=domain.WaveCriteria(capacity=10))
    assert wave.order_count == 1 and wave.skipped == []  # THEIRS was listed as skipped here before
    assert set(PickTask.objects.filter(batch__wave=wave).values_list("order_id", flat=True)) == {mine.pk}

    wave = services.wave_release(site=there.site, criteria=domain.WaveCriteria(capacity=10))
    assert wave.order_count == 1 and wave.skipped == []
    assert set(PickTask.objects.filter(batch__wave=wave).values_list("order_id", flat=True)) == {theirs.pk}


def test_a_merchant_stocked_at_both_sites_is_read_at_both(merchant):
    here = floor_for(merchant, skus=2)
    there = floor_for(merchant, skus=2, site_code="there", prefix="TH")
    order = released_order(there, "THERE", [(0, 1)])

    assert [o.pk for o in services._waiting_orders(site=here.site)] == [order.pk]
    wave = services.wave_release(site=here.site, criteria=domain.WaveCriteria(capacity=10))
    assert wave.order_count == 0 and [entry["order_id"] for entry in wave.skipped] == [order.pk]
    wave = services.wave_release(site=there.site, criteria=domain.WaveCriteria(capacity=10))
    assert wave.order_count == 1


def test_a_site_with_nothing_on_its_shelves_reads_no_order(merchant):
    here = floor_for(merchant, skus=2)
    empty = floor_for(merchant, skus=0, site_code="empty", prefix="EM")
    released_order(here, "MINE", [(0, 1)])
    assert services._waiting_orders(site=empty.site) == []
    assert services.wave_release(site=empty.site, criteria=domain.WaveCriteria(capacity=10)).order_count == 0


def test_the_site_s_merchants_are_read_one_row_each(merchant, other_merchant):
    here = floor_for(merchant, skus=3)
    floor_for(other_merchant, skus=2, site_code="there", prefix="TH")

    with CaptureQueriesContext(connection) as read:
        merchants = services._site_merchants(here.site)

    assert merchants == [merchant.pk]
    [statement] = [q["sql"] for q in read.captured_queries]
    # DISTINCT over the merchant alone: the model's ordering (place, SKU, lot) made it one row per stock row
    assert "ORDER BY" not in statement and '"lot"' not in statement.split("FROM")[0]
