"""The shipping API: a merchant reads its own shipments, labels and tracking; pickup points come from the carrier's
own search (Mondial Relay over a local server speaking its SOAP); manifests are staff only."""

from __future__ import annotations

import pytest

from quai.shipping.models import CarrierAccount, Manifest
from quai.shipping.tests.factories import shipment_for
from quai.shipping.tests.test_carriers import _soap, server  # noqa: F401  (the local carrier server)

pytestmark = pytest.mark.django_db


def test_a_merchant_reads_its_shipments_label_and_tracking_and_never_another_merchants(
    api, other_api, merchant, other_merchant
):  # type: ignore[no-untyped-def]
    mine = shipment_for(merchant)
    theirs = shipment_for(other_merchant)
    listed = api.get(f"shipping/orders/{mine.order_id}/shipments")
    assert listed.status_code == 200
    assert [(s["id"], s["carrier"], s["sscc"]) for s in listed.json()] == [(mine.pk, "sandbox", mine.sscc)]
    assert api.get(f"shipping/orders/{theirs.order_id}/shipments").json()["error"]["code"] == "order_not_found"
    label = api.get(f"shipping/shipments/{mine.pk}/label")
    assert label["Content-Type"] == "application/pdf" and label.content.startswith(b"%PDF")
    events = api.get(f"shipping/shipments/{mine.pk}/tracking-events").json()
    assert [e["status"] for e in events] == ["label_created"]
    for path in (f"shipments/{theirs.pk}", f"shipments/{theirs.pk}/label", f"shipments/{theirs.pk}/tracking-events"):
        refused = api.get(f"shipping/{path}")
        assert (refused.status_code, refused.json()["error"]["code"]) == (404, "shipment_not_found")
    assert other_api.get(f"shipping/shipments/{theirs.pk}").status_code == 200


def test_pickup_points_come_from_the_carriers_search(api, server):  # type: ignore[no-untyped-def]  # noqa: F811
    CarrierAccount.objects.create(
        code="mondial_relay",
        name="Mondial Relay",
        kind="mondial_relay",
        settings={"wsi_url": server.url, "site_url": server.url, "timeout": 2},
        sender_name="Quai",
        sender_line1="1 quai",
        sender_postcode="69002",
        sender_city="Lyon",
    )
    server.answer = _soap(
        "WSI4_PointRelais_Recherche",
        "<STAT>0</STAT><PointsRelais><PointRelais_Details><STAT>0</STAT><Num>062049</Num>"
        "<LgAdr1>L UNIVERS DU MOBILE</LgAdr1><LgAdr3>1 RUE DES PROUVAIRES</LgAdr3><CP>75001</CP>"
        "<Ville>PARIS</Ville><Pays>FR</Pays><Distance>350</Distance></PointRelais_Details>"
        "</PointsRelais>",
    )
    found = api.get("shipping/pickup-points", carrier="mondial_relay", country="FR", postcode="75001")
    assert found.status_code == 200
    assert [(p["id"], p["city"], p["distance_m"]) for p in found.json()] == [("062049", "PARIS", 350)]
    assert b"75001" in server.requests[-1][3]
    server.answer = (503, {}, b"")
    down = api.get("shipping/pickup-points", carrier="mondial_relay", postcode="75001")
    assert (down.status_code, down.json()["error"]["code"]) == (424, "carrier_unavailable")
    unknown = api.get("shipping/pickup-points", carrier="nope", postcode="75001")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "carrier_not_found")
    bad = api.get("shipping/pickup-points", carrier="mondial_relay", country="F1", postcode="75001")
    assert bad.status_code == 422


def test_manifests_are_staff_only_and_close_with_the_missing_flagged(api, staff_api, merchant):  # type: ignore[no-untyped-def]
    assert api.get("shipping/manifests").json()["error"]["code"] == "staff_only"
    assert api.post("shipping/manifests", {"carrier": "sandbox"}).status_code == 403
    shipment_for(merchant)
    opened = staff_api.post("shipping/manifests", {"carrier": "sandbox"})
    assert opened.status_code == 201
    manifest = opened.json()
    assert len(manifest["shipment_ids"]) == 1 and manifest["status"] == "open"
    not_yet = staff_api.get(f"shipping/manifests/{manifest['id']}/document")
    assert (not_yet.status_code, not_yet.json()["error"]["code"]) == (404, "manifest_document_not_found")
    wrong = staff_api.post(f"shipping/manifests/{manifest['id']}/scan", {"code": "NOPE"})
    assert wrong.json()["error"]["code"] == "shipment_not_found"
    assert staff_api.get("shipping/manifests/999999").json()["error"]["code"] == "manifest_not_found"
    assert Manifest.objects.get().status == "open"
