"""A shopper's right to erasure (GDPR art. 17), for the personal fields an order holds.

What goes: the shopper's name, email and phone, the street lines and company of the address, the gift message and
the notes (free text a shopper or a shop may have filled with anything personal). What stays, because the
warehouse keeps logistics and accounting records: the order's lines, totals, statuses and their history, the
country and city, and the postcode cut to its first two characters (the area a parcel went to, for transit-time and
carrier figures, without the street). The order's status machine is untouched: erasure is no status step.

The event names the order only (no values): receivers that copied personal data (webhook subscribers) are told
to erase theirs.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from quai.core import clock
from quai.core.outbox import event_record
from quai.core.states import actor_of
from quai.orders.events import OrderPersonalDataErased
from quai.orders.models import Order

ERASED_NAME = "—"


def personal_data_of(order: Order) -> dict[str, Any]:
    """The personal fields of an order as they are now (what a GDPR export shows of it)."""
    return {
        "shopper_name": order.shopper_name,
        "shopper_email": order.shopper_email,
        "shopper_phone": order.shopper_phone,
        "ship_company": order.ship_company,
        "address_line1": order.address_line1,
        "address_line2": order.address_line2,
        "postcode": order.postcode,
        "city": order.city,
        "region": order.region,
        "country": order.country,
        "gift_message": order.gift_message,
        "notes": order.notes,
    }


@transaction.atomic
def order_personal_data_erase(*, order: Order | int, actor: Any = None) -> Order:
    """Blank the personal fields of one order (see the module docstring); erasing twice changes nothing more.

    Locks the order row first, like every orders service, so a concurrent address change cannot write the street
    back after it was erased.
    """
    pk = order if isinstance(order, int) else order.pk
    current = Order.objects.select_for_update().get(pk=pk)
    values = {
        "shopper_name": ERASED_NAME,
        "shopper_email": "",
        "shopper_phone": "",
        "ship_company": "",
        "address_line1": ERASED_NAME,
        "address_line2": "",
        "postcode": current.postcode[:2],
        "gift_message": "",
        "notes": "",
    }
    if all(getattr(current, name) == value for name, value in values.items()):
        return current
    Order.objects.filter(pk=pk).update(**values, version=F("version") + 1, updated_at=clock.now())
    current.refresh_from_db()
    event_record(
        OrderPersonalDataErased(
            order_id=current.pk,
            channel=current.channel,
            external_id=current.external_id,
            by=actor_of(actor).label,
        ),
        merchant_id=current.merchant_id,
    )
    return current
