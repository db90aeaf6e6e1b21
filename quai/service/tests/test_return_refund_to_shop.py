"""Flow 6 end to end against a fake WooCommerce store on loopback: an order comes in from the shop, leaves the
warehouse, the shopper opens a return on the portal, the returns desk receives the unit and grades it A, and the
refund is recorded on the shop's order through the connector (the same code that talks to the real store)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quai.core import clock
from quai.integrations.models import CallStatus, ConnectorCall
from quai.integrations.tests.test_connections import location, post_hook, shop, shop_connection, stock  # noqa: F401
from quai.orders import services as orders_services
from quai.orders.models import Order
from quai.service import services
from quai.service.models import Refund, RefundState, RmaStatus
from quai.tenants.scope import Scope
from quai.warehouse.models import ZoneKind
from quai.warehouse.tests.factories import LocationFactory, ZoneFactory

pytestmark = pytest.mark.django_db


def test_a_return_graded_a_at_the_desk_refunds_the_shopper_on_the_shop(
    merchant,
    location,  # noqa: F811
    shop,  # noqa: F811
    shop_connection,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    stock(merchant, location, "MUG-1", 5)
    woo_order = shop.add_order([("MUG-1", 1)])
    with django_capture_on_commit_callbacks(execute=True):
        post_hook(shop_connection, *shop.delivery("order.created", woo_order))
    order = Order.objects.get()
    orders_services.order_release(order=order, now=clock.now() + clock.timedelta(hours=1))
    for status in ("picking", "packed", "shipped", "delivered"):
        orders_services.order_transition(order=Order.objects.get(pk=order.pk), to_status=status, actor="floor")
    order.refresh_from_db()
    line = order.lines.get()
    assert line.unit_price > 0

    rma = services.portal_return_open(
        order=order, lines=[{"line_id": line.pk, "quantity": 1}], reason="damaged", exchange=False
    )
    returns = ZoneFactory(site=location.site, code="RET", kind=ZoneKind.RETURNS)
    bench = LocationFactory(zone=returns, site=location.site, code="RET-01")
    scope = Scope.merchant(merchant)
    unit = services.return_unit_receive(scope=scope, rma_id=rma.pk, code="MUG-1", location=bench, actor="desk")
    with django_capture_on_commit_callbacks(execute=True):
        services.return_unit_grade(scope=scope, unit_id=unit.pk, grade="A", actor="desk")

    rma.refresh_from_db()
    refund = Refund.objects.get(rma=rma)
    assert rma.status == RmaStatus.CLOSED and refund.state == RefundState.PUSHED
    assert refund.amount == min(line.unit_price, order.total)
    call = ConnectorCall.objects.get(kind="refund")
    assert call.status == CallStatus.SUCCEEDED
    (on_shop,) = shop.refunds[woo_order["id"]]
    assert Decimal(str(on_shop["amount"])) == refund.amount
