"""Inbound routes fed quantities beyond the database's integers: 422 in the error format, nothing written."""

from __future__ import annotations

import pytest

from quai.inbound.models import Asn, PickFace
from quai.inbound.tests.factories import location

pytestmark = pytest.mark.django_db


def _asn(quantity: int) -> dict:  # type: ignore[type-arg]
    return {"reference": "PO-1", "site": "lyon", "lines": [{"sku": "SHIRT-M", "quantity": quantity}]}


@pytest.mark.parametrize("quantity", [10**20, 3_000_000_000])
def test_an_asn_line_quantity_beyond_the_database_integer_is_refused_and_nothing_is_written(api, wh, shirt, quantity):
    # 10**20 was a 500 (OverflowError on SQLite); 3e9 was stored on SQLite and a 500 on PostgreSQL.
    response = api.post("inbound/asns", _asn(quantity))
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"]["fields"][0]["field"] == "lines.0.quantity"
    assert not Asn.objects.exists()


def test_an_asn_line_of_zero_units_keeps_its_own_code(api, wh, shirt):
    response = api.post("inbound/asns", _asn(0))
    assert response.status_code == 422
    assert response.json()["error"]["code"] != "invalid_input"


def test_a_pick_face_maximum_beyond_the_database_integer_is_refused(staff_api, merchant, wh, shirt):
    location(wh.picking, "P-01")
    body = {
        "merchant_id": merchant.pk,
        "site": "lyon",
        "location": "P-01",
        "sku": "SHIRT-M",
        "min_quantity": 1,
        "max_quantity": 99_999_999_999,
    }
    response = staff_api.post("inbound/pick-faces", body)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["details"]["fields"][0]["field"] == "max_quantity"
    assert not PickFace.objects.exists()
