"""What the warehouse knows of an order, read for the agent and the shopper: its status history, every event
about it (picks, totes, parcels, tracking) with time and operator, and its parcels.

The story is read from core's records: ``core.StateTransition`` (the order's steps, who made them) and the
outbox (``core.OutboxEvent``: every event written with the change it reports). An event is about an order when its
aggregate is that order or its payload names it (``order_id``): pick-pack-ship's events
(``fulfilment.pick_confirmed``, ``fulfilment.tote_completed``, ``shipment.shipped``, ``shipment.delivered``,
``shipment.tracking_event``) carry it. Parcels are read from shipping (its shipments and tracking records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import Q

from quai.core.models import OutboxEvent, StateTransition
from quai.tenants.scope import Scope

#: Payload keys that name who did a step on the floor, in the order they are looked for.
_OPERATOR_KEYS = ("operator", "picked_by", "packed_by", "shipped_by", "by", "actor", "user")
#: Payload keys worth showing beside an event (box, weight, tote, location…), when present.
_DETAIL_KEYS = (
    "sku_code",
    "quantity",
    "location",
    "tote",
    "box",
    "carton",
    "weight_grams",
    "measured_weight_grams",
    "weight",
    "carrier",
    "service",
    "tracking_number",
    "tracking_numbers",
    "estimated_delivery",
    "sscc",
    "status",
    "description",
    "hold_reason",
    "reason",
    "to_status",
)


@dataclass(frozen=True)
class WarehouseEvent:
    at: datetime
    name: str
    operator: str
    details: dict[str, Any] = field(default_factory=dict)


def _events_of(*, scope: Scope, order_id: int) -> Any:
    return (
        OutboxEvent.objects.filter(scope.q())
        .filter(Q(aggregate="order", aggregate_id=str(order_id)) | Q(payload__order_id=order_id))
        .order_by("occurred_at", "id")
    )


def order_warehouse_events(*, scope: Scope, order_id: int, limit: int = 500) -> list[WarehouseEvent]:
    """Every event about the order, oldest first, with the operator who made it (from the step's audit row when
    it is a status change, else from the payload)."""
    steps = {
        str(step.event_id): step
        for step in StateTransition.objects.filter(aggregate="order", aggregate_id=str(order_id))
        if step.event_id
    }
    found = []
    for row in _events_of(scope=scope, order_id=order_id)[:limit]:
        payload = row.payload or {}
        step = steps.get(str(row.event_id))
        operator = step.actor_label if step else next((str(payload[k]) for k in _OPERATOR_KEYS if payload.get(k)), "")
        details = {key: payload[key] for key in _DETAIL_KEYS if payload.get(key) not in (None, "", [])}
        found.append(WarehouseEvent(at=row.occurred_at, name=row.name, operator=operator, details=details))
    return found


@dataclass
class Parcel:
    tracking_number: str
    carrier: str = ""
    tracking_url: str = ""
    status: str = ""
    status_label: str = ""
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    estimated_delivery: date | None = None
    last_event_at: datetime | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


def order_parcels(*, scope: Scope, order_id: int) -> list[Parcel]:
    """The order's parcels as shipping records them (``shipments_of_order``): carrier, tracking number and link,
    status, handover and delivery times, the carrier's estimate, and every tracking event the carrier sent."""
    from quai.shipping.selectors import shipments_of_order

    parcels = []
    for shipment in shipments_of_order(scope=scope, order_id=order_id).prefetch_related("events"):
        events = sorted(shipment.events.all(), key=lambda e: (e.occurred_at, e.pk))
        parcels.append(
            Parcel(
                tracking_number=shipment.tracking_number,
                carrier=shipment.carrier.name or shipment.carrier.code,
                tracking_url=shipment.tracking_url,
                status=shipment.status,
                status_label=str(shipment.get_status_display()),
                shipped_at=shipment.shipped_at,
                delivered_at=shipment.delivered_at,
                estimated_delivery=shipment.estimated_delivery,
                last_event_at=events[-1].occurred_at if events else shipment.shipped_at,
                events=[
                    {"at": e.occurred_at, "name": e.status, "description": e.description, "location": e.location}
                    for e in events
                ],
            )
        )
    return parcels


def orders_by_tracking(*, scope: Scope, references: Sequence[str]) -> list[int]:
    """Orders of ``scope`` with a parcel whose tracking number (any case) is one of ``references`` (the first 50
    given; blanks ignored), read through shipping's selector."""
    from quai.shipping.selectors import shipment_order_ids_by_tracking

    wanted = [ref.strip() for ref in references if ref.strip()][:50]
    return shipment_order_ids_by_tracking(scope=scope, tracking_numbers=wanted)
