"""An event sale's release throttle is pushed down to fulfilment when it opens and lifted when it closes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quai.campaigns import services
from quai.campaigns.services import RackPattern
from quai.campaigns.tests.test_services import TUESDAY
from quai.core import clock
from quai.core.errors import ValidationFailed
from quai.fulfillment.selectors import release_limits_in_force
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def _sale(merchant, site, release_per_hour):  # type: ignore[no-untyped-def]
    campaign = services.campaign_create(
        merchant=merchant,
        site=site,
        code="flash",
        name="Flash sale",
        starts_at=TUESDAY + timedelta(hours=8),
        ends_at=TUESDAY + timedelta(days=1),
        release_per_hour=release_per_hour,
    )
    return services.campaign_plan(campaign=campaign, zone_code="EVT9", racks=RackPattern(aisles="G", bays=1, levels=1))


def _limits(merchant, site, at):  # type: ignore[no-untyped-def]
    return list(release_limits_in_force(scope=Scope.merchant(merchant), site_id=site.pk, at=at))


def test_opening_sets_the_limit_for_the_sale_and_closing_out_lifts_it(merchant, site):
    clock.set_now(TUESDAY)
    campaign = services.campaign_open(campaign=_sale(merchant, site, 120), acknowledge_warnings=True)
    during = TUESDAY + timedelta(hours=9)
    assert _limits(merchant, site, TUESDAY) == []  # before the sale starts
    (limit,) = _limits(merchant, site, during)
    assert (limit.source, limit.orders_per_hour, limit.lines_per_hour) == (f"campaign:{campaign.pk}", 120, None)
    assert limit.valid_from == campaign.starts_at
    assert limit.valid_until == campaign.ends_at + timedelta(days=services.CLOSE_OUT_DAYS)
    services.campaign_close_out(campaign=campaign)
    assert _limits(merchant, site, during) == []


def test_a_sale_without_a_throttle_sets_no_limit(merchant, site):
    clock.set_now(TUESDAY)
    services.campaign_open(campaign=_sale(merchant, site, None), acknowledge_warnings=True)
    assert _limits(merchant, site, TUESDAY + timedelta(hours=9)) == []


def test_the_waves_of_the_sales_site_hold_the_merchants_orders_beyond_the_throttle(merchant):
    clock.set_now(TUESDAY + timedelta(hours=7))
    floor = floor_for(merchant)
    campaign = services.campaign_open(campaign=_sale(merchant, floor.site, 2), acknowledge_warnings=True)
    clock.set_now(TUESDAY + timedelta(hours=9))
    for n in range(5):
        released_order(floor, f"FS-{n}", [(n, 1)])
    wave = wave_for(floor)
    assert wave.order_count == 2
    assert wave.held[0]["orders"] == 3 and wave.held[0]["sources"] == [f"campaign:{campaign.pk}"]
    services.campaign_close_out(campaign=campaign)
    assert wave_for(floor).order_count == 3  # the sale is over: the rest goes at once


def test_a_bad_throttle_is_refused_before_the_campaign_exists(merchant, site):
    for bad in (0, -5):
        with pytest.raises(ValidationFailed) as refused:
            _sale(merchant, site, bad)
        assert refused.value.code == "invalid_release_throttle"
    assert not services.Campaign.objects.filter(merchant=merchant).exists()
