"""The pick screen over HTTP: what a typed quantity does at the tote, and what the screen says after a stop."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from quai.fulfillment import services
from quai.fulfillment.models import PickTask
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


def _post(client: Client, batch_id: int, **data: Any) -> str:
    response = client.post(f"/ops/fulfilment/batch/{batch_id}/action/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    return response.content.decode()


def test_a_stop_half_put_in_its_tote_says_what_is_left_and_a_negative_quantity_is_refused():
    # Found in QA: 1 of 2 units put in the tote answered "In the tote. Next stop." while the same stop still asked
    # for the other unit; a quantity typed as -3 was read as none, so the whole stop was put in the tote.
    floor = floor_for(MerchantFactory(code="lumen"))
    released_order(floor, "WEB-1", [(0, 2)])
    batch = wave_for(floor).batches.get()
    picker = StaffUserFactory(username="paul", is_superuser=False)
    picker.groups.add(Group.objects.get_or_create(name="picker")[0])
    services.batch_start(batch_id=batch.pk, operator=picker)
    task = PickTask.objects.get(batch=batch)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(picker)
    _post(client, batch.pk, code=task.location.code)
    _post(client, batch.pk, code=floor.skus[0].gtin)

    for typed in ("-3", "abc"):
        page = _post(client, batch.pk, code=task.tote.code, quantity=typed)
        assert 'data-result="error"' in page, typed
        task.refresh_from_db()
        assert task.picked_quantity == 0 and task.status == "open", typed

    page = _post(client, batch.pk, code=task.tote.code, quantity="1")
    assert 'data-result="ok"' in page and "Next stop" not in page
    assert "1 more" in page, page
    task.refresh_from_db()
    assert task.picked_quantity == 1 and task.status == "open"

    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr"
    page = _post(client, batch.pk, code=task.tote.code, quantity="1")
    assert 'data-result="ok"' in page and "Dans le bac. Lot préparé" in page, page
