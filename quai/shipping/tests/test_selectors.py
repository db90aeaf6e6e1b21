"""Shipping's reads for other apps: always inside the asking merchant's scope."""

from __future__ import annotations

from quai.shipping import selectors
from quai.shipping.models import Shipment, ShipmentStatus
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


def test_a_parcels_shipment_is_found_within_the_merchant_only(merchant, other_merchant):
    shipment = shipment_for(merchant)

    found = selectors.shipment_of_parcel(scope=Scope.merchant(merchant), parcel_id=shipment.parcel_id)
    elsewhere = selectors.shipment_of_parcel(scope=Scope.merchant(other_merchant), parcel_id=shipment.parcel_id)

    assert found is not None and found.pk == shipment.pk and found.carrier.code == "sandbox"
    assert elsewhere is None
    assert selectors.shipment_of_parcel(scope=Scope.merchant(merchant), parcel_id=-1) is None


def test_the_parcels_waiting_for_each_carriers_truck_are_counted_per_scope(merchant, other_merchant):
    waiting = shipment_for(merchant)
    shipment_for(merchant)
    shipment_for(other_merchant)
    handed_over = shipment_for(merchant)
    Shipment.objects.filter(pk=handed_over.pk).update(status=ShipmentStatus.HANDED_OVER)

    mine = selectors.carrier_waiting_counts(scope=Scope.merchant(merchant))
    theirs = selectors.carrier_waiting_counts(scope=Scope.merchant(other_merchant))

    assert mine == {waiting.carrier_id: 2}
    assert theirs == {waiting.carrier_id: 1}
