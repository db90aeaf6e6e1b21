"""DESIGN.md's rule for service: "a hold placed by an agent stops the pack station". A packer opens a parcel,
scans every unit, boxes and weighs it on the pack station's screen; meanwhile an agent holds the order from a ticket
in the console; the station then refuses to label and close the parcel with a STOP the packer can act on."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from quai.orders.models import Order
from quai.packing.models import Parcel, ParcelStatus
from quai.packing.tests.factories import floor_build, released_order
from quai.service import services
from quai.service.models import AgentAction
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _staff(name: str, role: str) -> Client:
    user = StaffUserFactory(username=name)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


def test_a_hold_placed_from_the_console_stops_the_pack_station_before_the_label():
    floor = floor_build()
    order = released_order(floor.merchant, "SHOP-9", [{"sku": "SHIRT-M", "quantity": 2, "unit_price": "19.90"}])
    ticket = services.ticket_open(
        merchant_id=floor.merchant.pk,
        channel="api",
        message=services.IncomingMessage(
            body="Please stop order SHOP-9", email="camille@example.fr", order_ids=(order.pk,)
        ),
    )
    packer, agent = _staff("pierre", "packer"), _staff("agathe", "agent")

    def station(code: str) -> str:
        parcel = Parcel.objects.filter(order_id=order.pk).first()
        data = {"code": code, **({"parcel_id": parcel.pk} if parcel else {})}
        return packer.post("/ops/packing/scan/", data, **HX).content.decode()

    station("SHOP-9")
    station("3760000000017")
    station("3760000000017")
    parcel = Parcel.objects.get(order_id=order.pk)
    assert all(item.done for item in parcel.items.all())
    station("M")
    station(str(Parcel.objects.get(pk=parcel.pk).expected_weight_g))
    assert Parcel.objects.get(pk=parcel.pk).weight_ok  # the next scan would print the label and close

    held = agent.post(
        f"/ops/service/tickets/{ticket.pk}/actions/hold/", {"order_id": order.pk, "note": "shopper asked"}, **HX
    ).content.decode()
    assert 'data-result="ok"' in held
    order.refresh_from_db()
    assert (order.status, order.hold_reason) == ("on_hold", "customer_service")

    refused = station("")
    assert "STOP" in refused and "SHOP-9" in refused
    assert Parcel.objects.get(pk=parcel.pk).status != ParcelStatus.CLOSED
    assert Order.objects.get(pk=order.pk).status == "on_hold"
    assert AgentAction.objects.get(order=order).outcome == "done"
