"""The inbound API: merchants see their own ASNs only, staff see all."""

from __future__ import annotations

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.inbound import services
from quai.inbound.models import Asn, PutawayTask
from quai.inbound.services import AsnLineInput
from quai.inbound.tests.factories import location, sscc

pytestmark = pytest.mark.django_db


def _payload(**overrides):  # type: ignore[no-untyped-def]
    body = {
        "reference": "PO-2031-001",
        "supplier": "Textiles du Nord",
        "expected_at": "2031-03-12",
        "site": "lyon",
        "lines": [{"sku": "SHIRT-M", "quantity": 10, "sscc": sscc(1)}, {"sku": "CREAM-50", "quantity": 6, "lot": "L9"}],
        "handling_units": [{"sscc": sscc(1), "kind": "pallet"}],
    }
    body.update(overrides)
    return body


def test_a_merchant_announces_an_asn_and_reads_it_back(api, wh, shirt, cream):
    response = api.post("inbound/asns", _payload())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "announced" and body["site"] == "lyon"
    assert [(li["sku"], li["expected_quantity"], li["sscc"]) for li in body["lines"]] == [
        ("SHIRT-M", 10, sscc(1)),
        ("CREAM-50", 6, None),
    ]
    assert body["handling_units"][0]["kind"] == "pallet"
    detail = api.get(f"inbound/asns/{body['id']}")
    assert detail.status_code == 200 and detail.json()["reference"] == "PO-2031-001"
    listed = api.get("inbound/asns")
    assert listed.json()["count"] == 1


def test_a_bad_line_answers_422_with_every_problem(api, wh, shirt):
    response = api.post(
        "inbound/asns",
        _payload(
            lines=[{"sku": "SHIRT-M", "quantity": 0}, {"sku": "SHIRT-M", "quantity": 2, "lot": "X"}], handling_units=[]
        ),
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_quantity"
    assert [e["code"] for e in error["details"]["errors"]] == ["invalid_quantity", "lot_not_tracked"]
    assert not Asn.objects.exists()


def test_a_merchant_cannot_see_or_cancel_another_merchants_asn(api, other_api, wh, shirt, cream):
    created = api.post("inbound/asns", _payload()).json()
    assert other_api.get(f"inbound/asns/{created['id']}").status_code == 404
    assert other_api.post(f"inbound/asns/{created['id']}/cancel", {}).status_code == 404
    assert other_api.get(f"inbound/asns/{created['id']}/discrepancy-report").status_code == 404
    assert other_api.get("inbound/asns").json()["count"] == 0
    assert Asn.objects.get().status == "announced"


def test_staff_see_every_merchant_and_must_say_which_one_they_create_for(
    staff_api, merchant, other_merchant, wh, shirt, cream
):
    SkuFactory(merchant=other_merchant, code="SHIRT-M")
    assert staff_api.post("inbound/asns", _payload()).json()["error"]["code"] == "merchant_required"
    assert staff_api.post("inbound/asns", _payload(merchant_id=merchant.pk)).status_code == 201
    response = staff_api.post(
        "inbound/asns",
        _payload(merchant_id=other_merchant.pk, lines=[{"sku": "SHIRT-M", "quantity": 1}], handling_units=[]),
    )
    assert response.status_code == 201
    assert staff_api.get("inbound/asns").json()["count"] == 2
    assert staff_api.get("inbound/asns", merchant_id=other_merchant.pk).json()["count"] == 1


def test_cancel_and_the_state_machine_through_the_api(api, wh, shirt, cream):
    created = api.post("inbound/asns", _payload()).json()
    response = api.post(f"inbound/asns/{created['id']}/cancel", {"reason": "order cancelled"})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = api.post(f"inbound/asns/{created['id']}/cancel", {})
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"


def test_the_discrepancy_report_and_putaway_tasks_are_readable_by_the_merchant(api, merchant, wh, shirt, cream):
    created = api.post("inbound/asns", _payload()).json()
    assert api.get(f"inbound/asns/{created['id']}/discrepancy-report").status_code == 404
    asn = services.receiving_start(code="PO-2031-001").asn
    services.receiving_scan(asn=asn, code="3760000000017", quantity=12)
    services.receiving_close(asn=asn)
    report = api.get(f"inbound/asns/{created['id']}/discrepancy-report").json()
    assert sorted((line["sku"], line["kind"], line["difference"]) for line in report["lines"]) == [
        ("CREAM-50", "short", -6),
        ("SHIRT-M", "over", 2),
    ]
    tasks = api.get("inbound/putaway-tasks").json()
    assert (
        tasks["count"] == 1 and tasks["items"][0]["quantity"] == 12 and tasks["items"][0]["from_location"] == "DOCK-1"
    )
    task_id = PutawayTask.objects.get().pk
    assert api.get(f"inbound/putaway-tasks/{task_id}").json()["status"] == "open"


def test_only_staff_set_pick_faces_and_merchants_read_theirs(api, staff_api, merchant, wh, shirt):
    location(wh.picking, "P-01")
    body = {
        "merchant_id": merchant.pk,
        "site": "lyon",
        "location": "p-01",
        "sku": "SHIRT-M",
        "min_quantity": 2,
        "max_quantity": 8,
    }
    assert api.post("inbound/pick-faces", body).status_code == 403
    response = staff_api.post("inbound/pick-faces", body)
    assert response.status_code == 201, response.content
    face = response.json()
    assert (face["location"], face["sku"], face["max_quantity"]) == ("P-01", "SHIRT-M", 8)
    assert api.get("inbound/pick-faces").json()["count"] == 1
    assert api.get(f"inbound/pick-faces/{face['id']}").status_code == 200
    # the empty pick face is below its min straight away: a replenishment task asks for 8
    tasks = api.get("inbound/replenishment-tasks").json()
    assert [(t["sku"], t["quantity"]) for t in tasks["items"]] == [("SHIRT-M", 8)]


def test_asn_create_refuses_an_unknown_site(api, wh, shirt, cream):
    response = api.post("inbound/asns", _payload(site="paris"))
    assert response.status_code == 404 and response.json()["error"]["code"] == "site_not_found"


def test_another_merchant_sees_none_of_the_tasks(api, other_api, merchant, wh, shirt):
    services.asn_create(
        merchant=merchant, reference="A1", site=wh.site, lines=[AsnLineInput(sku_code="SHIRT-M", quantity=2)]
    )
    asn = services.receiving_start(code="A1").asn
    services.receiving_scan(asn=asn, code="3760000000017")
    task_id = PutawayTask.objects.get().pk
    assert other_api.get("inbound/putaway-tasks").json()["count"] == 0
    assert other_api.get(f"inbound/putaway-tasks/{task_id}").status_code == 404
