"""What the warehouse knows of an order, read for the agent and the shopper: its status history, every event
about it (picks, totes, parcels, tracking) with time and operator, and its parcels.

Read from core's records, never from another app's tables: ``core.StateTransition`` (the order's steps, who made
them) and the outbox (``core.OutboxEvent``: every event written with the change it reports). An event is about an
order when its aggregate is that order or its payload names it (``order_id``): pick-pack-ship's events
(``fulfilment.pick_confirmed``, ``fulfilment.tote_completed``, ``shipment.shipped``, ``shipment.delivered``,
``shipment.tracking_event``) carry it. Parcels are folded from the ``shipment.*`` events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
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
    status: str = "shipped"
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    last_event_at: datetime | None = None
    events: list[dict[str, Any]] = field(default_factory=list)


def order_parcels(*, scope: Scope, order_id: int) -> list[Parcel]:
    """The order's parcels as shipping's events told them: shipped, tracking news, delivered."""
    parcels: dict[str, Parcel] = {}
    rows = _events_of(scope=scope, order_id=order_id).filter(name__startswith="shipment.")
    for row in rows:
        payload = row.payload or {}
        number = str(payload.get("tracking_number") or payload.get("parcel_id") or row.aggregate_id)
        parcel = parcels.setdefault(number, Parcel(tracking_number=number))
        parcel.carrier = str(payload.get("carrier") or parcel.carrier)
        parcel.tracking_url = str(payload.get("tracking_url") or parcel.tracking_url)
        parcel.last_event_at = row.occurred_at
        if row.name == "shipment.shipped":
            parcel.shipped_at = row.occurred_at
        elif row.name == "shipment.delivered":
            parcel.status = "delivered"
            parcel.delivered_at = row.occurred_at
        parcel.events.append(
            {
                "at": row.occurred_at,
                "name": row.name,
                "description": str(payload.get("description") or payload.get("status") or ""),
                "location": str(payload.get("location") or ""),
            }
        )
    return list(parcels.values())


def orders_by_tracking(*, scope: Scope, references: Sequence[str]) -> list[int]:
    """Orders of ``scope`` whose parcel carries one of ``references`` as its tracking number."""
    if not references:
        return []
    rows = (
        OutboxEvent.objects.filter(scope.q())
        .filter(name__startswith="shipment.", payload__tracking_number__in=list(references))
        .values_list("payload__order_id", flat=True)[:20]
    )
    return sorted({int(value) for value in rows if value is not None})
