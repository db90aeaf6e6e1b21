"""The carriers of a batch close read once (``_carriers_read``) choose as ``_carrier_for`` reading them one by one."""

from __future__ import annotations

import pytest

from quai.orders.models import Order
from quai.packing import services
from quai.shipping.models import CarrierAccount
from quai.shipping.services import sandbox_carrier_ensure

SERVICES = [
    "colissimo_dom",  # its carrier by the service's first word
    "chronopost",  # the account's own code
    "mondial-relay_home",  # no "mondial-relay": "mondial_relay" by its dashes, then by the fallback
    "dpd_predict",  # an inactive account: the sandbox
    "ups_express",  # no account: the sandbox
    "",
    "colissimo_dom",
]


@pytest.mark.django_db
def test_a_batch_chooses_each_orders_carrier_as_one_by_one_in_one_read(django_assert_num_queries):  # type: ignore[no-untyped-def]
    for code in ("colissimo", "chronopost", "mondial_relay", "dpd"):
        sandbox_carrier_ensure(code=code, name=code.title())
    CarrierAccount.objects.filter(code="dpd").update(active=False)
    sandbox_carrier_ensure()
    orders = [Order(carrier_service=service) for service in SERVICES]
    alone = [services._carrier_for(order).code for order in orders]
    with django_assert_num_queries(1):
        accounts = services._carriers_read(orders)
    together = [services._carrier_for(order, accounts=accounts).code for order in orders]
    assert together == alone
    assert alone == ["colissimo", "chronopost", "mondial_relay", "sandbox", "sandbox", "sandbox", "colissimo"]
