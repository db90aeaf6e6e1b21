"""Shipping's reads for other apps: always inside the asking merchant's scope."""

from __future__ import annotations

from quai.shipping import selectors
from quai.shipping.tests.factories import shipment_for
from quai.tenants.scope import Scope


def test_a_tracking_number_in_any_case_finds_its_order_within_the_merchant_only(merchant, other_merchant):
    shipment = shipment_for(merchant)
    shipment_for(merchant)  # another parcel of another order: not asked for
    number = shipment.tracking_number

    found = selectors.shipment_order_ids_by_tracking(scope=Scope.merchant(merchant), tracking_numbers=[number.lower()])
    elsewhere = selectors.shipment_order_ids_by_tracking(
        scope=Scope.merchant(other_merchant), tracking_numbers=[number]
    )

    assert found == [shipment.order_id]
    assert elsewhere == []
    assert selectors.shipment_order_ids_by_tracking(scope=Scope.merchant(merchant), tracking_numbers=[]) == []
