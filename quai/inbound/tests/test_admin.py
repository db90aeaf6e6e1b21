"""Back office: ASN import from CSV and cancellation go through the services."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from quai.inbound import services
from quai.inbound.models import Asn
from quai.inbound.services import AsnLineInput

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_en(staff_user):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_the_back_office_imports_asns_from_a_csv_file(admin_client_en, merchant, wh, shirt):
    upload = SimpleUploadedFile("asns.csv", b"reference,sku,quantity,site\nPO-77,SHIRT-M,12,lyon\n")
    response = admin_client_en.post("/admin/inbound/asn/import/", {"merchant": merchant.pk, "file": upload})
    assert response.status_code == 302
    assert Asn.objects.get(reference="PO-77").lines.get().expected_quantity == 12
    listing = admin_client_en.get("/admin/inbound/asn/")
    assert b"PO-77" in listing.content and b"Import ASNs from a CSV file" in listing.content


def test_a_bad_csv_in_the_back_office_lists_its_problems_and_imports_nothing(admin_client_en, merchant, wh, shirt):
    upload = SimpleUploadedFile("asns.csv", b"reference,sku,quantity\nPO-1,SHIRT-M,5\nPO-2,SHIRT-M,-1\n")
    response = admin_client_en.post("/admin/inbound/asn/import/", {"merchant": merchant.pk, "file": upload})
    assert response.status_code == 200
    assert b"<td>3</td>" in response.content and b"above zero" in response.content
    assert not Asn.objects.exists()


def test_the_back_office_cancels_announced_asns_only(admin_client_en, merchant, wh, shirt):
    first = services.asn_create(merchant=merchant, reference="A1", site=wh.site, lines=[AsnLineInput("SHIRT-M", 1)])
    second = services.asn_create(merchant=merchant, reference="A2", site=wh.site, lines=[AsnLineInput("SHIRT-M", 1)])
    services.receiving_start(code="A2")
    admin_client_en.post(
        "/admin/inbound/asn/", {"action": "cancel_selected", "_selected_action": [first.pk, second.pk]}, follow=True
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("cancelled", "receiving")
