"""The back office of shipping renders in French: carriers configured; shipments, manifests and tracking events
read-only (no add, no delete)."""

from __future__ import annotations

import pytest
from django.test import Client

from quai.shipping.models import CarrierAccount, Manifest, Shipment, TrackingEventRecord
from quai.shipping.tests.factories import manifest_for, shipment_for
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


def test_the_back_office_pages_render_and_the_logs_are_read_only():
    merchant = MerchantFactory(code="acme")
    shipment = shipment_for(merchant)
    manifest = Manifest.objects.get(pk=manifest_for(merchant))
    event = TrackingEventRecord.objects.filter(shipment=shipment).first()
    admin = StaffUserFactory(username="boss", is_superuser=True)
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    client.force_login(admin)
    carrier = CarrierAccount.objects.get(code="sandbox")
    pages = {
        "/admin/shipping/carrieraccount/": "Comptes transporteurs",
        f"/admin/shipping/carrieraccount/{carrier.pk}/change/": "Expéditeur",
        "/admin/shipping/shipment/": shipment.tracking_number,
        f"/admin/shipping/shipment/{shipment.pk}/change/": "événement",
        "/admin/shipping/manifest/": manifest.number,
        f"/admin/shipping/manifest/{manifest.pk}/change/": manifest.number,
        "/admin/shipping/trackingeventrecord/": "Étiquette créée" if event and event.status else "",
        "/admin/shipping/ssccsequence/": "SSCC",
    }
    for url, text in pages.items():
        page = client.get(url)
        assert page.status_code == 200, url
        assert text.lower() in page.content.decode().lower(), (url, text)
    assert client.get("/admin/shipping/shipment/add/").status_code == 403
    assert client.post(f"/admin/shipping/shipment/{shipment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Shipment.objects.filter(pk=shipment.pk).exists()
