"""Parcels as shipping records them (its selectors, its real event payloads), found by tracking number, shown in
the order-360 panel and the tracking page; links in automatic answers built on QUAI_PUBLIC_URL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client, override_settings

from quai.core import clock
from quai.service import selectors, services, warehouse
from quai.service.models import Rma
from quai.service.services.wismo import tracking_path
from quai.shipping.carriers.base import TrackingEvent
from quai.shipping.models import Shipment
from quai.shipping.services import tracking_record
from quai.shipping.tests.factories import shipment_for
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def _in_transit(shipment: Shipment) -> None:
    Shipment.objects.filter(pk=shipment.pk).update(status="handed_over", shipped_at=clock.now())
    tracking_record(
        shipment=shipment,
        events=[
            TrackingEvent(
                occurred_at=clock.now() + timedelta(hours=3),
                carrier_code="PCHCOL",
                description="Colis pris en charge",
                status="in_transit",
                location="Lyon PFC",
                estimated_delivery=(clock.today() + timedelta(days=2)).isoformat(),
            )
        ],
    )


def test_the_parcels_come_from_shippings_records_with_their_tracking(merchant):
    shipment = shipment_for(merchant)
    _in_transit(shipment)
    scope = Scope.merchant(merchant)
    (parcel,) = warehouse.order_parcels(scope=scope, order_id=shipment.order_id)
    assert parcel.tracking_number == shipment.tracking_number and parcel.carrier
    assert parcel.status == "in_transit" and parcel.estimated_delivery == clock.today() + timedelta(days=2)
    assert [e["description"] for e in parcel.events] == ["Label created", "Colis pris en charge"]
    assert parcel.last_event_at == parcel.events[-1]["at"]
    panel = selectors.order_360(scope=scope, order_id=shipment.order_id)
    names = [e.name for e in panel.events]
    assert "shipment.tracking_event" in names  # the real payload's event, about the order


def test_a_tracking_number_finds_the_order_in_its_merchant_only(merchant, other_merchant):
    shipment = shipment_for(merchant)
    number = shipment.tracking_number
    assert warehouse.orders_by_tracking(scope=Scope.merchant(merchant), references=[number.lower()]) == [
        shipment.order_id
    ]
    assert warehouse.orders_by_tracking(scope=Scope.merchant(other_merchant), references=[number]) == []
    ticket = services.ticket_open(
        merchant_id=merchant.pk,
        channel="api",
        message=services.IncomingMessage(body=f"Où est mon colis {number} ?", email="someone@example.fr"),
        auto_answer=False,
    )
    assert list(ticket.orders.values_list("pk", flat=True)) == [shipment.order_id]
    rma = Rma.objects.create(merchant=merchant, order_id=shipment.order_id, reason="return")
    assert services.desk_rma_find(scope=Scope.merchant(merchant), code=number).pk == rma.pk


@override_settings(QUAI_PUBLIC_URL="https://suivi.example.com/")
def test_links_in_answers_are_absolute_on_the_public_url_and_the_page_shows_the_carrier(merchant):
    shipment = shipment_for(merchant)
    _in_transit(shipment)
    from quai.orders.models import Order

    order = Order.objects.get(pk=shipment.order_id)
    values = services.macro_values(ticket=None, order=order)
    assert values["tracking_page"] == "https://suivi.example.com" + tracking_path(order)
    page = Client().get(tracking_path(order)).content.decode()
    assert shipment.tracking_number in page and "Colis pris en charge" in page and "Lyon PFC" in page
