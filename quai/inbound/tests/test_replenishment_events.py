"""The replenishment event speaks the merchant's terms: the SKU's code and the pick face's location code."""

from __future__ import annotations

import pytest

from quai.core.models import OutboxEvent
from quai.inbound import services
from quai.inbound.tests.factories import location
from quai.inventory.services import stock_receive

pytestmark = pytest.mark.django_db


def test_replenishment_requested_names_the_sku_and_the_pick_face_by_their_codes(merchant, wh, shirt):
    face_location = location(wh.picking, "P-07")
    face = services.pick_face_set(merchant=merchant, location=face_location, sku=shirt, min_quantity=5, max_quantity=9)
    stock_receive(sku=shirt, location=face_location, quantity=2)
    (task,) = services.replenishment_check(location_ids=[face_location.pk])
    payload = OutboxEvent.objects.get(name="inbound.replenishment_requested").payload
    assert payload == {
        "task_id": task.pk,
        "pick_face_id": face.pk,
        "sku_id": shirt.pk,
        "location_id": face_location.pk,
        "quantity": 7,
        "sku_code": "SHIRT-M",
        "location_code": "P-07",
    }
