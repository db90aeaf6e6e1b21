"""Shifts in the back office go through ``shift_create``: the skill and one shift at a time hold there too."""

from __future__ import annotations

import pytest
from django.test import Client

from quai.labor import services
from quai.labor.models import Shift, StaffingPlan
from quai.labor.tests.factories import plan_for, staff_member
from quai.tenants.tests.factories import StaffUserFactory
from quai.warehouse.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


def _shift(person, activity, day, start, end):  # type: ignore[no-untyped-def]
    return {
        "staff": person.pk,
        "site": person.site_id,  # the old form's field; the service takes the person's site
        "activity": activity,
        "zone": "",
        "starts_at_0": day,
        "starts_at_1": start,
        "ends_at_0": day,
        "ends_at_1": end,
    }


def test_the_back_office_adds_a_shift_only_as_the_service_allows():
    # The admin wrote any shift: overlapping another of the same person, for a skill they lack, in another site.
    site = SiteFactory(code="LYS1")
    person = staff_member("ines", site)
    services.skill_add(staff=person, activity="pick")
    desk = Client(HTTP_ACCEPT_LANGUAGE="en")
    desk.force_login(StaffUserFactory(username="desk", is_superuser=True))

    added = desk.post("/admin/labor/shift/add/", _shift(person, "pick", "2030-03-05", "08:00:00", "16:00:00"))
    assert added.status_code == 302
    shift = Shift.objects.get()
    assert shift.site_id == site.pk and shift.staff_id == person.pk

    for activity, start, end in (("pick", "10:00:00", "12:00:00"), ("pack", "17:00:00", "20:00:00")):
        refused = desk.post("/admin/labor/shift/add/", _shift(person, activity, "2030-03-05", start, end), follow=True)
        html = refused.content.decode()
        assert "already works from" in html or "has no Packing skill" in html, activity
    assert Shift.objects.count() == 1
    assert desk.post(f"/admin/labor/shift/{shift.pk}/change/", {}).status_code == 403  # no edit around the checks


def test_a_staffing_plan_is_read_in_the_back_office_never_typed():
    # "Add staffing plan" answered 500 (a plan with no site nor hours reached the database); a cell's label gave its
    # hour in UTC above the same hour in local time.
    plan = plan_for(SiteFactory(code="LYS1"))  # 2030-01-07 09:00 UTC, 10:00 in Paris
    desk = Client(HTTP_ACCEPT_LANGUAGE="en")
    desk.force_login(StaffUserFactory(username="desk", is_superuser=True))
    assert desk.get("/admin/labor/staffingplan/add/").status_code == 403
    assert desk.post("/admin/labor/staffingplan/add/", {"name": "typed"}).status_code == 403
    assert StaffingPlan.objects.count() == 1
    page = desk.get(f"/admin/labor/staffingplan/{plan.pk}/change/").content.decode()
    assert "2030-01-07 10:00 pick" in page and "2030-01-07 09:00 pick" not in page
