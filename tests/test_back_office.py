"""The back office as a supervisor reads it: names instead of ids, words instead of codes, ISO dates."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from quai.core.models import OutboxEvent
from quai.inventory.models import CountTask, CountTaskStatus
from quai.inventory.tests.factories import LocationFactory
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk() -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(StaffUserFactory(username="desk", is_superuser=True))
    return client


def _events(merchants: list[int], count: int) -> None:
    OutboxEvent.objects.bulk_create(
        OutboxEvent(name="inventory.stock_changed", merchant_id=merchants[i % len(merchants)], aggregate="sku")
        for i in range(count)
    )


def test_the_outbox_list_names_each_merchant_in_one_query_for_the_whole_page(desk):
    lumen = MerchantFactory(code="lumen", name="Lumen Paris")
    rival = MerchantFactory(code="rival", name="Rival & Co")
    _events([lumen.pk, rival.pk], 2)
    OutboxEvent.objects.create(name="core.tick")  # an event of no merchant

    with CaptureQueriesContext(connection) as few:
        page = desk.get("/admin/core/outboxevent/")
    html = page.content.decode()
    assert page.status_code == 200
    merchants = re.findall(r'<td class="field-merchant_column">([^<]*)</td>', html)
    assert sorted(merchants) == ["Lumen Paris", "Rival &amp; Co", "—"], "each merchant's name, not its id"

    _events([lumen.pk, rival.pk, MerchantFactory(code="third").pk], 30)
    with CaptureQueriesContext(connection) as many:
        desk.get("/admin/core/outboxevent/")
    assert len(many) == len(few), "the names cost the same number of queries for 3 rows as for 33"


def test_the_count_task_list_and_page_show_why_a_count_waits_in_words(desk):
    shelf = LocationFactory(code="C-01-01-01")
    task = CountTask.objects.create(
        site=shelf.site,
        location=shelf,
        status=CountTaskStatus.SUBMITTED,
        review_reasons="variance_above_threshold,below_reserved,apply_refused:count_stale",
    )
    listing = desk.get("/admin/inventory/counttask/").content.decode()
    for html in (listing, desk.get(f"/admin/inventory/counttask/{task.pk}/change/").content.decode()):
        assert "difference above the tolerance" in html
        assert "fewer units counted than are reserved" in html
        assert "could not be applied (count_stale)" in html
        assert "variance_above_threshold" not in html and "below_reserved" not in html

    french = Client(HTTP_ACCEPT_LANGUAGE="fr")
    french.force_login(StaffUserFactory(username="bureau", is_superuser=True))
    assert "écart au-delà de la tolérance" in french.get("/admin/inventory/counttask/").content.decode()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_back_office_writes_dates_in_iso_8601_in_every_language(language):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(StaffUserFactory(username=f"desk-{language}", is_superuser=True))
    OutboxEvent.objects.create(name="core.tick")
    html = client.get("/admin/core/outboxevent/").content.decode()
    assert re.search(r"\b20\d\d-\d\d-\d\d \d\d:\d\d\b", html), "2026-12-03 14:05"
    assert not re.search(r"\b\d{1,2}/\d{1,2}/20\d\d\b", html), "no 12/03/2026 nor 03/12/2026"
