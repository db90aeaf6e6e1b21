"""The count screen's views without a browser: what a not-blind count shows, the list of counts, finishing by scan."""

from __future__ import annotations

import pytest
from django.test import Client

from quai.inventory import services
from quai.inventory.models import CountTask, CountTaskStatus
from quai.inventory.tests.factories import stocked_sku
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(StaffUserFactory(is_superuser=True))
    return client


def test_a_count_that_is_not_blind_shows_the_books_and_a_blind_one_does_not(operator, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=17)
    open_task = services.count_task_create(location=location, sku=sku, blind=False)[0]
    page = operator.get(f"/ops/inventory/count/{open_task.pk}/").content.decode()
    assert "Expected" in page and ">17<" in page
    services.count_task_cancel(task=open_task)

    blind = services.count_task_create(location=location)[0]
    page = operator.get(f"/ops/inventory/count/{blind.pk}/").content.decode()
    assert "Expected" not in page and ">17<" not in page


def test_the_count_home_lists_the_counts_to_do_and_a_scanned_location_resumes_its_count(operator, merchant):
    _sku, location = stocked_sku(merchant=merchant, quantity=3)
    task = services.count_task_create(location=location)[0]
    home = operator.get("/ops/inventory/count/").content.decode()
    assert f"/ops/inventory/count/{task.pk}/" in home and location.code in home
    response = operator.post("/ops/inventory/count/start/", {"code": location.code})
    assert response.status_code == 302 and response["Location"].startswith(f"/ops/inventory/count/{task.pk}/")
    assert CountTask.objects.count() == 1


def test_scanning_the_location_again_finishes_the_count(operator, merchant):
    sku, location = stocked_sku(merchant=merchant, quantity=3)
    task = services.count_task_create(location=location)[0]
    services.count_line_set(task=task, sku=sku, counted_quantity=3)
    response = operator.post(f"/ops/inventory/count/{task.pk}/scan/", {"code": location.code}, HTTP_HX_REQUEST="true")
    assert response["HX-Redirect"] == f"/ops/inventory/count/{task.pk}/result/"
    assert CountTask.objects.get(pk=task.pk).status == CountTaskStatus.APPLIED
    result = operator.get(response["HX-Redirect"]).content.decode()
    assert 'data-result="ok"' in result and "The stock matched the count." in result


def test_the_count_screen_is_for_operators_only(merchant):
    client = Client()
    client.force_login(StaffUserFactory())
    assert client.get("/ops/inventory/count/").status_code == 403
