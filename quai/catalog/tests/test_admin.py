from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from quai.catalog.models import Barcode, PackagingType, Sku
from quai.catalog.tests.factories import BarcodeFactory, PackagingTypeFactory, SkuFactory

pytestmark = pytest.mark.django_db


# URLs are reversed under the English language the tests run in (conftest), so the back office answers in
# English whether or not the admin sits under language-prefixed URLs.
@pytest.fixture
def admin_client(staff_user):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff_user)
    return client


def _sku_form(merchant, **overrides):  # type: ignore[no-untyped-def]
    data = {
        "merchant": merchant.pk,
        "code": "ADMIN-1",
        "name": "Made in the admin",
        "description": "",
        "status": "active",
        "gtin": "",
        "hs_code": "",
        "country_of_origin": "",
        "length_mm": "",
        "width_mm": "",
        "height_mm": "",
        "weight_g": "",
        "barcodes-TOTAL_FORMS": "0",
        "barcodes-INITIAL_FORMS": "0",
        "barcodes-MIN_NUM_FORMS": "0",
        "barcodes-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_the_admin_creates_a_sku_through_the_service_with_its_primary_barcode(admin_client, merchant):
    response = admin_client.post(reverse("admin:catalog_sku_add"), _sku_form(merchant, gtin="9521234543213"))
    assert response.status_code == 302, response.content.decode()[:2000]
    sku = Sku.objects.get(code="ADMIN-1")
    assert sku.gtin == "09521234543213"
    assert Barcode.objects.get(sku=sku).is_primary


def test_the_admin_shows_an_invalid_gtin_as_a_form_error_and_writes_nothing(admin_client, merchant):
    response = admin_client.post(reverse("admin:catalog_sku_add"), _sku_form(merchant, gtin="9521234543214"))
    assert response.status_code == 200
    assert "check digit" in response.content.decode()
    assert not Sku.objects.exists()


def test_the_admin_refuses_a_barcode_of_another_sku(admin_client, merchant):
    owner = BarcodeFactory(sku=SkuFactory(merchant=merchant), code="TAKEN-1")
    sku = SkuFactory(merchant=merchant, gtin="")
    data = _sku_form(merchant, code=sku.code, name=sku.name, version="1", length_mm="200", width_mm="150")
    data.update(
        {
            "height_mm": "50",
            "weight_g": "350",
            "barcodes-TOTAL_FORMS": "1",
            "barcodes-0-code": "TAKEN-1",
            "barcodes-0-kind": "internal",
            "barcodes-0-sku": str(sku.pk),
        }
    )
    response = admin_client.post(reverse("admin:catalog_sku_change", args=[sku.pk]), data)
    assert response.status_code == 200
    assert f"already belongs to SKU &#x27;{owner.sku.code}&#x27;" in response.content.decode()
    assert Barcode.objects.get(code="TAKEN-1").pk == owner.pk


def test_the_admin_search_finds_a_sku_by_an_extra_barcode(admin_client, merchant):
    sku = SkuFactory(merchant=merchant, code="LAMP-1")
    BarcodeFactory(sku=sku, code="SUPPLIER-555")
    SkuFactory(merchant=merchant, code="OTHER")
    response = admin_client.get(reverse("admin:catalog_sku_changelist"), {"q": "SUPPLIER-555"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "LAMP-1" in page
    assert "OTHER" not in page


def test_the_admin_refuses_a_packaging_tare_above_its_max_weight(admin_client):
    PackagingTypeFactory(code="EXISTING")
    response = admin_client.post(
        reverse("admin:catalog_packagingtype_add"),
        {
            "code": "ENV-1",
            "name": "Envelope",
            "kind": "envelope",
            "inner_length_mm": "300",
            "inner_width_mm": "200",
            "inner_height_mm": "5",
            "max_weight_g": "100",
            "tare_weight_g": "150",
            "cost": "0.10",
            "currency": "EUR",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "must be less than the maximum weight" in response.content.decode()
    assert PackagingType.objects.count() == 1


def test_the_admin_adds_an_extra_barcode_through_the_service(admin_client, merchant):
    sku = SkuFactory(merchant=merchant, gtin="")
    data = _sku_form(merchant, code=sku.code, name=sku.name, version="1", length_mm="200", width_mm="150")
    data.update(
        {
            "height_mm": "50",
            "weight_g": "350",
            "barcodes-TOTAL_FORMS": "1",
            "barcodes-0-code": "96385074",
            "barcodes-0-kind": "gtin",
            "barcodes-0-sku": str(sku.pk),
        }
    )
    response = admin_client.post(reverse("admin:catalog_sku_change", args=[sku.pk]), data)
    assert response.status_code == 302, [
        f.errors for f in response.context["inline_admin_formsets"][0].formset.forms
    ] + [response.context["adminform"].form.errors]
    barcode = Barcode.objects.get(sku=sku)
    assert (barcode.code, barcode.kind, barcode.is_primary) == ("00000096385074", "gtin", False)


def test_the_admin_refuses_an_edit_made_on_a_stale_copy(admin_client, merchant):
    sku = SkuFactory(merchant=merchant, gtin="", name="Before")
    data = _sku_form(merchant, code=sku.code, name="Late edit", version="1", length_mm="200", width_mm="150")
    data.update({"height_mm": "50", "weight_g": "350"})
    Sku.objects.filter(pk=sku.pk).update(version=2)  # someone saved in between
    response = admin_client.post(reverse("admin:catalog_sku_change", args=[sku.pk]), data)
    assert response.status_code == 200
    assert "changed by someone else" in response.content.decode()
    assert Sku.objects.get(pk=sku.pk).name == "Before"


def test_the_admin_refuses_a_barcode_equal_to_another_skus_code(admin_client, merchant):
    holder = SkuFactory(merchant=merchant, code="MUG-RED")
    sku = SkuFactory(merchant=merchant, gtin="")
    data = _sku_form(merchant, code=sku.code, name=sku.name, version="1", length_mm="200", width_mm="150")
    data.update(
        {
            "height_mm": "50",
            "weight_g": "350",
            "barcodes-TOTAL_FORMS": "1",
            "barcodes-0-code": "mug-red",
            "barcodes-0-kind": "internal",
            "barcodes-0-sku": str(sku.pk),
        }
    )
    response = admin_client.post(reverse("admin:catalog_sku_change", args=[sku.pk]), data)
    assert response.status_code == 200
    assert f"already belongs to SKU &#x27;{holder.code}&#x27;" in response.content.decode()
    assert not Barcode.objects.filter(sku=sku).exists()


def test_the_admin_refuses_a_sku_code_equal_to_another_skus_barcode(admin_client, merchant):
    holder = BarcodeFactory(sku=SkuFactory(merchant=merchant), code="SUP-9").sku
    response = admin_client.post(reverse("admin:catalog_sku_add"), _sku_form(merchant, code="sup-9"))
    assert response.status_code == 200
    assert f"already a barcode of SKU &#x27;{holder.code}&#x27;" in response.content.decode()
    assert not Sku.objects.filter(code="sup-9").exists()
