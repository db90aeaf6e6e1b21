"""The packing API: an order's parcels and a parcel's photo, scoped to the merchant."""

from __future__ import annotations

import pytest

from quai.packing.models import Parcel
from quai.packing.tests.factories import parcel_for

pytestmark = pytest.mark.django_db


def test_a_merchant_reads_its_parcels_and_their_photo_and_never_another_merchants(api, merchant, other_merchant):  # type: ignore[no-untyped-def]
    mine = Parcel.objects.get(pk=parcel_for(merchant))
    theirs = Parcel.objects.get(pk=parcel_for(other_merchant))
    listed = api.get(f"packing/orders/{mine.order_id}/parcels").json()
    assert [(p["id"], p["has_photo"], len(p["items"])) for p in listed] == [(mine.pk, True, 1)]
    assert api.get(f"packing/parcels/{mine.pk}").json()["order_reference"] == mine.order_reference
    photo = api.get(f"packing/parcels/{mine.pk}/photo")
    assert photo["Content-Type"] == "image/jpeg" and photo.content.startswith(b"\xff\xd8")
    assert api.get(f"packing/orders/{theirs.order_id}/parcels").json()["error"]["code"] == "order_not_found"
    for path in (f"parcels/{theirs.pk}", f"parcels/{theirs.pk}/photo"):
        refused = api.get(f"packing/{path}")
        assert (refused.status_code, refused.json()["error"]["code"]) == (404, "parcel_not_found")
    Parcel.objects.filter(pk=mine.pk).update(photo=None)
    assert api.get(f"packing/parcels/{mine.pk}/photo").json()["error"]["code"] == "parcel_photo_not_found"
