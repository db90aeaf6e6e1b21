from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from quai.campaigns import services
from quai.campaigns.domain import CurvePoint
from quai.campaigns.services import RackPattern, SkuLine
from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.core.errors import Conflict, ValidationFailed
from quai.core.models import StateTransition
from quai.inventory.models import MoveTask
from quai.inventory.services import stock_receive
from quai.inventory.services.move_tasks import move_task_complete
from quai.labor import services as labor
from quai.labor.tests.factories import staff_member
from quai.warehouse.models import Zone, ZoneKind, ZoneStatus
from quai.warehouse.tests.factories import ZoneFactory

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")
TUESDAY = datetime(2030, 3, 5, tzinfo=PARIS)


def _campaign(merchant, site, orders_per_hour=600):
    sku = SkuFactory(merchant=merchant, code="SNEAKER-42")
    return services.campaign_create(
        merchant=merchant,
        site=site,
        code="Spring-Sale",
        name="Spring sale",
        starts_at=TUESDAY + timedelta(hours=8),
        ends_at=TUESDAY + timedelta(days=1),
        skus=[SkuLine(sku.code, 500)],
        order_curve=[CurvePoint(TUESDAY + timedelta(hours=h), orders_per_hour) for h in range(9, 12)],
        lines_per_order=1,
    )


def _roster(site, pickers, packers):
    for activity, rate in (("pick", "100"), ("pack", "100"), ("ship", "1000")):
        labor.standard_set(site=site, activity=activity, lines_per_hour=Decimal(rate))
    for n in range(pickers + packers):
        person = staff_member(f"op{n}", site)
        activity = "pick" if n < pickers else "pack"
        labor.skill_add(staff=person, activity=activity)
        labor.shift_create(
            staff=person,
            activity=activity,
            starts_at=TUESDAY + timedelta(hours=8),
            ends_at=TUESDAY + timedelta(hours=16),
        )


def test_planning_makes_the_zone_its_racks_the_staffing_plan_and_warns_of_the_peak(merchant, site):
    _roster(site, pickers=2, packers=2)  # 2 × 100 lines/h at the plan's utilisation of 1: 200 lines/h
    campaign = _campaign(merchant, site)
    with translation.override("en"):  # the warnings are written in the language of the request that planned
        planned = services.campaign_plan(
            campaign=campaign, zone_code="evt1", racks=RackPattern(aisles="E", bays=3, levels=2), utilisation=1.0
        )
    assert planned.status == "planned"
    zone = planned.zone
    assert zone.code == "EVT1" and zone.merchant_id == merchant.pk and zone.valid_until > campaign.ends_at
    assert zone.locations.count() == 6
    # 600 lines/h against 200: Colissimo (15:00) misses after 10:59, Chronopost 13h (17:30) after 11:49.
    by_service = {w["params"].get("service"): w for w in planned.warnings if w["code"] == "peak_ships_tomorrow"}
    assert by_service["colissimo_home"]["params"]["time"] == "10:59"
    assert "orders after 10:59 ship the next working day" in by_service["colissimo_home"]["message"]
    assert by_service["chronopost_13h"]["params"]["time"] == "11:49"
    assert any(w["code"] == "staffing_gaps" for w in planned.warnings)  # the plan asks for 6 pickers, 2 rostered
    # The plan follows the flow of the work: 600 lines an hour arrive from 09:00, are released after the buffer
    # and are due by their cut-off (at most 3 hours after release): the first hour is not staffed for all its
    # arrivals (6 pickers at 100 lines/h), the hours after it carry on, and the plan's pickers do the 1,800 lines.
    pickers = {c.hour: c.heads for c in planned.staffing_plan.cells.filter(activity="pick").order_by("hour")}
    assert 0 < pickers[TUESDAY + timedelta(hours=9)] < 6
    assert pickers[TUESDAY + timedelta(hours=12)] > 0
    assert sum(pickers.values()) * 100 >= 1800
    assert planned.staffing_plan.inputs["flow"]["max_wait_minutes"] == 180
    with pytest.raises(Conflict) as refused:
        services.campaign_open(campaign=planned)
    assert refused.value.code == "capacity_warnings_unacknowledged"
    opened = services.campaign_open(campaign=planned, acknowledge_warnings=True)
    assert opened.status == "open"
    steps = StateTransition.objects.filter(aggregate="campaign", aggregate_id=str(campaign.pk)).order_by("id")
    assert [(s.from_status, s.to_status) for s in steps] == [("draft", "planned"), ("planned", "open")]


def test_a_campaign_on_a_closed_zone_is_refused(merchant, site):
    closed = ZoneFactory(site=site, code="OLD", kind=ZoneKind.STORAGE, status=ZoneStatus.CLOSED)
    campaign = _campaign(merchant, site, orders_per_hour=0)
    for kwargs in ({"zone": closed}, {"zone_code": "old"}):
        with pytest.raises(Conflict) as caught:
            services.campaign_plan(campaign=campaign, **{"zone_code": "x", **kwargs})
        assert caught.value.code == "zone_closed"
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.zone_id is None


def test_a_zone_that_opens_after_the_campaign_starts_is_refused(merchant, site):
    # A campaign starting on Sunday was planned into a temporary zone opening on Monday: its stock would sell from
    # Monday only.
    campaign = _campaign(merchant, site, orders_per_hour=0)
    later = ZoneFactory(
        site=site,
        code="EVT-LATE",
        kind=ZoneKind.STORAGE,
        merchant=merchant,
        valid_from=campaign.starts_at + timedelta(hours=2),
        valid_until=campaign.ends_at + timedelta(days=7),
    )
    with translation.override("en"), pytest.raises(Conflict) as caught:
        services.campaign_plan(campaign=campaign, zone_code="", zone=later)
    assert caught.value.code == "zone_window_too_short" and "opens after" in caught.value.message
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.zone_id is None
    ready = ZoneFactory(
        site=site,
        code="EVT-READY",
        kind=ZoneKind.STORAGE,
        merchant=merchant,
        valid_from=campaign.starts_at - timedelta(days=1),
        valid_until=campaign.ends_at + timedelta(days=7),
    )
    assert services.campaign_plan(campaign=campaign, zone_code="", zone=ready).zone_id == ready.pk


def test_a_campaign_that_is_over_cannot_be_planned(merchant, site):
    # Planning a sale that ended last month answered invalid_validity_window ("the validity window ends before it
    # starts"): the new zone's window, which the planner never set.
    campaign = _campaign(merchant, site, orders_per_hour=0)
    clock.set_now(campaign.ends_at + timedelta(days=30))
    with translation.override("en"), pytest.raises(Conflict) as caught:
        services.campaign_plan(campaign=campaign, zone_code="evt-late")
    assert caught.value.code == "campaign_over"
    assert caught.value.message == "This campaign ended on 2030-03-06: there is nothing left to plan."
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not Zone.objects.filter(code="EVT-LATE").exists()


def test_bad_campaign_inputs_are_refused_before_anything_is_written(merchant, site):
    base = {"merchant": merchant, "site": site, "code": "x", "name": "x"}
    with pytest.raises(ValidationFailed) as window:
        services.campaign_create(**base, starts_at=TUESDAY, ends_at=TUESDAY)
    assert window.value.code == "invalid_window"
    with pytest.raises(ValidationFailed) as negative:
        services.campaign_create(
            **base,
            starts_at=TUESDAY,
            ends_at=TUESDAY + timedelta(days=1),
            order_curve=[CurvePoint(TUESDAY + timedelta(hours=9), -3)],
        )
    assert negative.value.code == "negative_volume"
    with pytest.raises(ValidationFailed) as unknown:
        services.campaign_create(
            **base, starts_at=TUESDAY, ends_at=TUESDAY + timedelta(days=1), skus=[SkuLine("NOPE", 3)]
        )
    assert unknown.value.code == "sku_not_found"
    assert not merchant.pk or not services.Campaign.objects.filter(merchant=merchant).exists()


def test_the_campaign_stock_is_announced_put_away_in_its_zone_then_evacuated_and_the_zone_dissolved(merchant, site):
    campaign = _campaign(merchant, site, orders_per_hour=0)
    link = services.campaign_asn_announce(campaign=campaign, reference="ASN-SPRING")
    assert [(line.sku.code, line.expected_quantity) for line in link.asn.lines.all()] == [("SNEAKER-42", 500)]
    campaign = services.campaign_plan(
        campaign=campaign, zone_code="EVT2", racks=RackPattern(aisles="F", bays=2, levels=1)
    )
    sku = campaign.skus.get().sku
    place = services.putaway_location(campaign=campaign, sku=sku)
    assert place.zone_id == campaign.zone_id
    stock_receive(sku=sku, location=place, quantity=40)
    assert services.putaway_location(campaign=campaign, sku=sku) == place  # same SKU, same place
    campaign = services.campaign_open(campaign=campaign, acknowledge_warnings=True)
    campaign = services.campaign_close_out(campaign=campaign)
    assert campaign.status == "closing"
    task = MoveTask.objects.get(from_location=place)
    assert task.quantity == 40 and task.to_location.zone.code == "STO"
    with translation.override("en"), pytest.raises(Conflict) as full:
        services.campaign_close(campaign=campaign)
    assert full.value.code == "zone_not_empty"
    # The close-out made the move tasks: the refusal says to complete them (it said to create them).
    assert "1 move task(s) open: complete them" in full.value.message and "create move tasks" not in full.value.message
    move_task_complete(task=task)
    closed = services.campaign_close(campaign=campaign)
    closed.zone.refresh_from_db()
    assert closed.status == "closed" and closed.zone.status == ZoneStatus.CLOSED
