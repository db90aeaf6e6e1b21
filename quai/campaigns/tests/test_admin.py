"""The back office shows a campaign, its capacity check in words and in the reader's language, and writes nothing:
a campaign moves through its services."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import translation

from quai.campaigns import services
from quai.campaigns.models import Campaign
from quai.campaigns.tests.test_services import _campaign
from quai.labor import services as labor
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


def test_the_back_office_reads_a_campaign_and_its_capacity_check_and_edits_nothing(merchant, site):
    for activity, rate in (("pick", "100"), ("pack", "100"), ("ship", "1000")):
        labor.standard_set(site=site, activity=activity, lines_per_hour=Decimal(rate))
    campaign = _campaign(merchant, site)
    with translation.override("fr"):  # checked by a French planner
        services.campaign_plan(campaign=campaign, zone_code="evt7", utilisation=0.85)
    campaign.refresh_from_db()
    assert campaign.warnings
    desk = Client(HTTP_ACCEPT_LANGUAGE="en")
    desk.force_login(StaffUserFactory(username="desk", is_superuser=True))
    url = f"/admin/campaigns/campaign/{campaign.pk}/change/"

    page = desk.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "At the forecast peak" in html and "Au pic" not in html  # the reader's language
    assert "&quot;code&quot;" not in html and "&#x27;code&#x27;" not in html  # words, not the stored JSON
    assert 'name="starts_at_0"' not in html and 'name="order_curve"' not in html  # nothing to edit

    ends = campaign.ends_at
    refused = desk.post(url, {"name": "x", "ends_at_0": "2031-01-01", "ends_at_1": "00:00:00"})
    assert refused.status_code == 403
    assert desk.get("/admin/campaigns/campaign/add/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.ends_at == ends and campaign.name != "x"
    assert Campaign.objects.count() == 1
