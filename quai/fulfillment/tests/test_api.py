from __future__ import annotations

import re

import pytest

from quai.fulfillment.tests.factories import floor_for, released_order

pytestmark = pytest.mark.django_db


def test_a_supervisor_releases_a_wave_and_a_picker_picks_through_the_api(merchant, staff_api, api):
    floor = floor_for(merchant)
    order = released_order(floor, "A-1", [(0, 1), (2, 1)])
    answer = staff_api.post("/api/v1/fulfilment/waves", {"site_id": floor.site.pk, "capacity": 10, "totes": 2})
    assert answer.status_code == 201, answer.json()
    (batch_id,) = answer.json()["batch_ids"]
    assert api.post("/api/v1/fulfilment/waves", {"site_id": floor.site.pk}).status_code == 403
    svg = staff_api.get(f"/api/v1/fulfilment/batches/{batch_id}/route.svg")
    assert svg.status_code == 200 and 'class="route"' in svg.content.decode()
    batch = staff_api.post(f"/api/v1/fulfilment/batches/{batch_id}/start").json()
    while True:
        task = next((t for t in batch["tasks"] if t["status"] == "open"), None)
        if task is None:
            break
        sku = next(s for s in floor.skus if s.code == task["sku_code"])
        for code in (task["location_code"], sku.gtin, task["tote_code"]):
            answer = staff_api.post(f"/api/v1/fulfilment/batches/{batch_id}/scan", {"code": code})
            assert answer.status_code == 200, answer.json()
            batch = answer.json()
    assert batch["status"] == "done"
    refused = staff_api.post(f"/api/v1/fulfilment/batches/{batch_id}/scan", {"code": "X"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "pick_batch_not_picking"
    units = api.get(f"/api/v1/fulfilment/orders/{order.pk}/picked-units").json()
    assert sorted(u["sku_code"] for u in units) == ["FL-00", "FL-02"]
    tote = units[0]["tote_code"]
    contents = api.get(f"/api/v1/fulfilment/totes/contents?code={tote}").json()
    assert contents["order_ids"] == [order.pk] and contents["complete"]


def test_another_merchant_sees_nothing_of_a_tote_or_an_order(merchant, other_api, staff_api, staff_user):
    from quai.fulfillment import services

    floor = floor_for(merchant)
    order = released_order(floor, "I-1", [(0, 1)])
    batch_id = staff_api.post("/api/v1/fulfilment/waves", {"site_id": floor.site.pk}).json()["batch_ids"][0]
    services.batch_start(batch_id=batch_id, operator=staff_user)
    refused = other_api.get(f"/api/v1/fulfilment/orders/{order.pk}/picked-units")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "order_not_found"
    tote = staff_api.get(f"/api/v1/fulfilment/batches/{batch_id}").json()["tote_codes"][0]
    answer = other_api.get(f"/api/v1/fulfilment/totes/contents?code={tote}")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "tote_not_found"


def test_the_route_is_drawn_on_the_site_map_where_the_locations_are(merchant, staff_api):
    floor = floor_for(merchant)
    released_order(floor, "D-1", [(1, 1), (4, 1)])
    batch_id = staff_api.post("/api/v1/fulfilment/waves", {"site_id": floor.site.pk}).json()["batch_ids"][0]
    svg = staff_api.get(f"/api/v1/fulfilment/batches/{batch_id}/route.svg").content.decode()
    # Each numbered stop sits on the centre of its location's square on the map.
    stops = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)
    squares = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="#2ca02c"', svg)
    centres = {(round(float(x) + float(w) / 2, 1), round(float(y) + float(h) / 2, 1)) for x, y, w, h in squares}
    assert len(stops) == 2
    for cx, cy in stops:
        assert (round(float(cx), 1), round(float(cy), 1)) in centres
