from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import translation

from conftest import ApiClient
from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.events import event_from_payload
from quai.core.outbox import event_record, outbox_relay
from quai.labor import domain, selectors, services
from quai.labor.models import ProductivityEntry, StaffingPlanCell
from quai.labor.tests.factories import plan_for, staff_member
from quai.orders.tests.factories import order_for
from quai.tenants.scope import Scope
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db
# The scan events are registered by their apps' modules, which labour never imports (they stand above it); the test
# loads them by name, as the running project does when those apps record events.
for _module in ("quai.fulfillment.events", "quai.packing.events"):
    importlib.import_module(_module)
NINE = datetime(2030, 1, 7, 9, tzinfo=UTC)


def _pick_event(operator_id, location_code, task_id):
    return event_from_payload(
        "fulfilment.pick_confirmed",
        {
            "order_id": 1,
            "batch_id": 1,
            "task_id": task_id,
            "sku_id": 1,
            "sku_code": "SKU",
            "quantity": 1,
            "lot": "",
            "from_location_code": location_code,
            "tote_code": "T1",
            "operator_id": operator_id,
        },
    )


def test_a_shift_needs_the_skill_and_a_free_person():
    site = SiteFactory()
    zone = ZoneFactory(site=site)
    ana = staff_member("ana", site)
    with pytest.raises(ValidationFailed) as caught:
        services.shift_create(staff=ana, activity="pick", starts_at=NINE, ends_at=NINE + timedelta(hours=8))
    assert caught.value.code == "skill_missing"
    services.skill_add(staff=ana, activity="pick", zone=zone)
    services.shift_create(staff=ana, activity="pick", zone=zone, starts_at=NINE, ends_at=NINE + timedelta(hours=8))
    services.skill_add(staff=ana, activity="pack")
    with pytest.raises(Conflict) as overlap:
        services.shift_create(
            staff=ana, activity="pack", starts_at=NINE + timedelta(hours=7), ends_at=NINE + timedelta(hours=9)
        )
    assert overlap.value.code == "shift_overlap"
    with pytest.raises(ValidationFailed) as empty:
        services.shift_create(staff=ana, activity="pack", starts_at=NINE, ends_at=NINE)
    assert empty.value.code == "invalid_shift_window"


def test_a_standard_is_set_once_per_activity_and_zone_and_must_be_positive():
    site = SiteFactory()
    first = services.standard_set(site=site, activity="pick", lines_per_hour=Decimal("90"))
    again = services.standard_set(site=site, activity="pick", lines_per_hour=Decimal("110"))
    assert first.pk == again.pk and again.lines_per_hour == Decimal("110") and again.version == 2
    with pytest.raises(ValidationFailed) as caught:
        services.standard_set(site=site, activity="pick", lines_per_hour=Decimal("0"))
    assert caught.value.code == "invalid_standard"
    with pytest.raises(ValidationFailed) as unknown:
        services.standard_set(site=site, activity="dance", lines_per_hour=Decimal("1"))
    assert unknown.value.code == "unknown_activity" and "dance" in unknown.value.message


def test_a_plan_is_computed_from_the_forecast_and_stored_with_its_inputs():
    plan = plan_for(orders=170)
    cells = {c.activity: c for c in StaffingPlanCell.objects.filter(plan=plan)}
    # 170 × 2 = 340 lines; pick 100/h × 0.85 = 85 → 4 heads; pack 120 × 0.85 = 102 → 3.33 → 4; ship 170 / 255 → 1.
    assert (cells["pick"].heads, cells["pack"].heads, cells["ship"].heads) == (4, 4, 1)
    assert plan.inputs["forecast"] == [{"hour": NINE.isoformat(), "orders": 170.0}]


def test_bad_forecasts_are_refused_before_anything_is_written():
    site = SiteFactory()
    services.standard_set(site=site, activity="pick", lines_per_hour=Decimal("100"))
    for orders, code in [(-5, "negative_volume"), (10**9, "absurd_volume")]:
        with pytest.raises(ValidationFailed) as caught:
            services.staffing_plan_create(site=site, forecast=[services.ForecastHour(NINE, orders)], lines_per_order=2)
        assert caught.value.code == code
    with pytest.raises(ValidationFailed) as missing:
        services.staffing_plan_create(site=site, forecast=[services.ForecastHour(NINE, 5)], lines_per_order=2)
    assert missing.value.code == "standard_missing"  # pack and ship have work and no standard
    assert not selectors.plan_list(site_id=site.pk).exists()


def test_a_plan_with_work_and_nobody_rostered_is_refused_when_cover_is_required():
    site = SiteFactory()
    services.standard_set(site=site, activity="pick", lines_per_hour=Decimal("100"))
    forecast = [services.ForecastHour(NINE, 50), services.ForecastHour(NINE + timedelta(hours=1), 50)]
    ana = staff_member("ana", site)
    services.skill_add(staff=ana, activity="pick")
    services.shift_create(staff=ana, activity="pick", starts_at=NINE, ends_at=NINE + timedelta(hours=1))
    with pytest.raises(ValidationFailed) as caught:
        services.staffing_plan_create(
            site=site, forecast=forecast, lines_per_order=1, work_per_line={"pick": 1}, require_cover=True
        )
    assert caught.value.code == "shift_unstaffed"
    assert [g["hour"] for g in caught.value.details["gaps"]] == [(NINE + timedelta(hours=1)).isoformat()]
    plan = services.staffing_plan_create(site=site, forecast=forecast, lines_per_order=1, work_per_line={"pick": 1})
    gaps = selectors.staffing_gaps(plan=plan)
    assert [(g.hour, g.planned, g.rostered) for g in gaps] == [(NINE + timedelta(hours=1), 1, 0)]


def test_pick_and_pack_events_become_productivity_and_a_measured_rate(merchant):
    site = SiteFactory()
    zone = ZoneFactory(site=site)
    location = LocationFactory(zone=zone, site=site, code="A-01-01")
    ana = staff_member("ana", site)
    for minute in range(0, 240, 1):  # one pick a minute for four hours: 60 lines/h
        with clock.frozen(NINE + timedelta(minutes=minute)):
            event_record(_pick_event(ana.user.pk, "a-01-01", minute), merchant_id=merchant.pk)
    with clock.frozen(NINE):
        event_record(
            event_from_payload(
                "packing.scan_recorded",
                {
                    "parcel_id": 1,
                    "order_id": 1,
                    "code": "x",
                    "sku_code": "SKU",
                    "result": "refused",
                    "reason": "not_in_order",
                    "operator": "ana",
                    "scanned_at": NINE.isoformat(),
                },
            ),
            merchant_id=merchant.pk,
        )
    while outbox_relay(batch=500):
        pass
    picks = ProductivityEntry.objects.filter(activity="pick")
    assert picks.count() == 240 and picks.filter(zone=zone, site=site, operator=ana.user).count() == 240
    assert not ProductivityEntry.objects.filter(activity="pack").exists()  # a refused scan is no work
    rate = selectors.measured_rate(site=site, activity="pick", zone=zone, since=NINE, until=NINE + timedelta(hours=5))
    assert rate.lines_per_hour == pytest.approx(60)
    assert location.code == "A-01-01"


def test_the_same_event_delivered_twice_counts_once(merchant):
    site = SiteFactory()
    LocationFactory(site=site, zone=ZoneFactory(site=site), code="B-1")
    row = event_record(_pick_event(None, "B-1", 1), merchant_id=merchant.pk)
    outbox_relay()
    from quai.core.events import Envelope, event_from_row

    services.on_pick_confirmed(event_from_row(row), Envelope.of(row))
    assert ProductivityEntry.objects.count() == 1


def test_capacity_reads_the_roster_else_the_plan_else_nothing():
    site = SiteFactory()
    assert selectors.capacity_lines_per_hour(site=site, stage="pick", at=NINE) is None
    plan = plan_for(site, orders=170)  # 4 pickers planned at 9:00, 100 lines/h, 85 %
    assert selectors.capacity_lines_per_hour(site=site, stage="pick", at=NINE + timedelta(minutes=20)) == (
        pytest.approx(4 * 100 * 0.85)
    )
    ana, bob = staff_member("ana", site), staff_member("bob", site)
    for person in (ana, bob):
        services.skill_add(staff=person, activity="pick")
        services.shift_create(staff=person, activity="pick", starts_at=NINE, ends_at=NINE + timedelta(hours=4))
    # The roster wins over the plan: two people rostered, not four planned.
    assert selectors.capacity_lines_per_hour(site=site, stage="pick", at=NINE + timedelta(minutes=20)) == (
        pytest.approx(2 * 100 * 0.85)
    )
    assert plan.site_id == site.pk


def test_replanning_adds_the_live_backlog_to_the_hours_left(merchant):
    site = SiteFactory()
    plan = plan_for(site, orders=0)
    for n in range(3):
        order_for(merchant, external_id=f"R-{n}")  # backordered: not work for the floor yet
    assert selectors.backlog_lines_now(scope=Scope.system("test"), merchant_ids=None) == {
        "pick": 0,
        "pack": 0,
        "ship": 0,
    }
    with clock.frozen(NINE + timedelta(minutes=10)):
        new = services.staffing_plan_replan(plan=plan)
    assert new.replaces_id == plan.pk and new.source == "backlog"
    with clock.frozen(NINE + timedelta(hours=2)), pytest.raises(ValidationFailed) as over:
        services.staffing_plan_replan(plan=plan)
    assert over.value.code == "plan_over"


def test_the_contact_centre_plan_uses_erlang_c_with_shrinkage():
    site = SiteFactory()
    plan = services.contact_centre_plan_create(
        site=site,
        forecast=[services.TicketHour(NINE, 200), services.TicketHour(NINE + timedelta(hours=1), 0)],
        aht_seconds=180,
        max_occupancy=1.0,
        shrinkage=0.3,
    )
    heads = [c.heads for c in selectors.plan_cells(plan=plan)]
    assert heads == [20, 0]  # 14 agents answering at once, 20 rostered
    with pytest.raises(ValidationFailed) as caught:
        services.contact_centre_plan_create(site=site, forecast=[services.TicketHour(NINE, -1)], aht_seconds=180)
    assert caught.value.code == "negative_volume"


def test_a_plan_from_the_flow_keeps_its_flow_and_re_planning_reuses_it():
    site = SiteFactory()
    for activity, rate in (("pick", "100"), ("pack", "120"), ("ship", "300")):
        services.standard_set(site=site, activity=activity, lines_per_hour=Decimal(rate))
    flow = domain.Flow(
        release_delay=timedelta(minutes=15), handoff=timedelta(minutes=10), cutoffs=(NINE + timedelta(hours=5),)
    )
    forecast = [services.ForecastHour(hour=NINE + timedelta(hours=n), orders=100 if n == 0 else 5) for n in range(3)]
    plan = services.staffing_plan_create(site=site, forecast=forecast, lines_per_order=2, flow=flow)
    assert plan.inputs["flow"] == {
        "release_delay_minutes": 15.0,
        "handoff_minutes": 10.0,
        "max_wait_minutes": 120.0,
        "cutoffs": [(NINE + timedelta(hours=5)).isoformat()],
    }
    # The spike's work is released after 09:15 and due within two hours: the plan runs past the forecast's 3 hours.
    hours = sorted({cell.hour for cell in selectors.plan_cells(plan=plan)})
    assert plan.ends_at == hours[-1] + timedelta(hours=1) and hours[-1] >= NINE + timedelta(hours=3)
    with clock.frozen(NINE + timedelta(hours=1, minutes=10)):
        new = services.staffing_plan_replan(plan=plan)
    assert new.inputs["flow"] == plan.inputs["flow"] and new.replaces_id == plan.pk
    # Without a flow, the arrival-hour plan as before: no flow kept.
    assert plan_for(SiteFactory()).inputs["flow"] is None


def test_a_staffing_plan_not_found_is_said_in_the_readers_language(staff_api):
    # The plan's and the staff member's 404 were written in English whatever the request's language.
    french = ApiClient(staff_api.client, {"Accept-Language": "fr"})
    missing = french.get("labor/plans/999999")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "staffing_plan_not_found" and error["message"] == "Plan de charge introuvable."
    with translation.override("fr"), pytest.raises(NotFound) as caught:
        selectors.staff_get(staff_id=999999)
    assert caught.value.message == "Membre du personnel introuvable."
