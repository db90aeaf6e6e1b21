"""The back office of packing: parcels read-only, with their items and the photo of the open parcel."""

from __future__ import annotations

import pytest
from django.test import Client

from quai.packing.models import Parcel
from quai.packing.tests.factories import parcel_for
from quai.tenants.tests.factories import MerchantFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


def test_the_parcels_page_shows_items_and_the_photo():
    parcel = Parcel.objects.get(pk=parcel_for(MerchantFactory(code="acme")))
    client = Client(HTTP_ACCEPT_LANGUAGE="fr")
    client.force_login(StaffUserFactory(username="boss", is_superuser=True))
    assert parcel.order_reference in client.get("/admin/packing/parcel/").content.decode()
    page = client.get(f"/admin/packing/parcel/{parcel.pk}/change/").content.decode()
    assert f"/ops/packing/parcel/{parcel.pk}/photo.jpg" in page and "Articles du colis" in page
