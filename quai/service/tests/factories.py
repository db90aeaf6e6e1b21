from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quai.orders.tests.factories import order_for
from quai.service import services
from quai.service.models import Customer


def customer_for(merchant: Any, email: str = "") -> Customer:
    customer = services.customer_match(merchant_id=merchant.pk, email=email or f"shopper@{merchant.code}.example")
    assert customer is not None
    return customer


def ticket_for(merchant: Any, body: str = "Avez-vous des chaussettes rouges ?") -> Any:
    return services.ticket_open(
        merchant_id=merchant.pk,
        channel="api",
        message=services.IncomingMessage(body=body, email=f"shopper@{merchant.code}.example", name="Shopper"),
    )


def _order_id(merchant: Any) -> int:
    return int(order_for(merchant, external_id=f"SVC-{merchant.code}").pk)


# Every path parameter of the service routes → a row of ``merchant``, for the project-wide isolation walk.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "customer_id": lambda merchant: customer_for(merchant).pk,
    "ticket_id": lambda merchant: ticket_for(merchant).pk,
    "rma_id": lambda merchant: _rma_for(merchant),
}


def _rma_for(merchant: Any) -> int:
    from quai.service.models import Rma

    order = order_for(merchant, external_id=f"RMA-{merchant.code}")
    return int(Rma.objects.create(merchant=merchant, order=order, reason="return").pk)
