"""Emptying a zone before it closes: the close check registered with the warehouse, move tasks and their doing.

A reserved unit in a closing zone is moved with its reservation: ``move_task_complete`` unpins the allocations,
moves the stock through ``stock_move`` and pins them again at the destination, in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, ValidationFailed
from quai.inventory.models import MoveTask, MoveTaskStatus, ReservationAllocation, StockQuantity
from quai.inventory.services._common import _lock_rows
from quai.inventory.services.movements import stock_move

# --- Zone closing (foundation hook) -----------------------------------------------------------------------------


def zone_close_check(zone: Any) -> list[Any]:
    """Registered with the warehouse: a zone holding stock or allocated reservations must not close."""
    from quai.warehouse.domain import ZoneCloseBlocker

    rows = StockQuantity.objects.filter(location__zone_id=zone.pk, on_hand__gt=0)
    units = int(rows.aggregate(units=Sum("on_hand"))["units"] or 0)
    reserved = int(
        ReservationAllocation.objects.filter(stock__location__zone_id=zone.pk, quantity__gt=0).aggregate(
            total=Sum("quantity")
        )["total"]
        or 0
    )
    blockers = []
    if units:
        places = rows.values("location_id").distinct().count()
        # After a close-out the move tasks exist: asking for them again had people create a second set.
        tasks = MoveTask.objects.filter(from_location__zone_id=zone.pk, status=MoveTaskStatus.OPEN).count()
        message = (
            _("%(units)d unit(s) of stock in %(places)d place(s); %(tasks)d move task(s) open: complete them")
            % {"units": units, "places": places, "tasks": tasks}
            if tasks
            else _("%(units)d unit(s) of stock in %(places)d place(s); create move tasks to empty the zone")
            % {"units": units, "places": places}
        )
        blockers.append(ZoneCloseBlocker(kind="stock", message=message, count=units))
    if reserved:
        blockers.append(
            ZoneCloseBlocker(
                kind="reservations",
                message=_("%(units)d reserved unit(s) allocated here") % {"units": reserved},
                count=reserved,
            )
        )
    return blockers


def _destination_for(*, site_id: int, exclude_zone_id: int, sku: Any, now: datetime) -> Any:
    """A place for stock leaving a closing zone: where the SKU already is, else the first storage location."""
    from quai.warehouse.models import Location
    from quai.warehouse.selectors import zone_active_q

    usable = (
        Location.objects.filter(site_id=site_id, status="active")
        .exclude(zone_id=exclude_zone_id)
        .filter(zone_active_q(now, prefix="zone__"))
        .filter(Q(zone__merchant=None) | Q(zone__merchant_id=sku.merchant_id))
    )
    same_sku = usable.filter(
        pk__in=StockQuantity.objects.filter(sku_id=sku.pk, on_hand__gt=0).values("location_id")
    ).order_by("pick_sequence", "pk")
    return same_sku.first() or usable.filter(zone__kind="storage").order_by("pick_sequence", "pk").first()


@transaction.atomic
def zone_empty_tasks(*, zone: Any, actor: Any = None) -> list[MoveTask]:
    """Create one move task per stock row left in ``zone`` (reserved units included: the reservation follows the
    stock when the task is done). Rows that already have an open task are skipped, so calling it twice is safe."""
    now = clock.now()
    rows = list(
        StockQuantity.objects.filter(location__zone_id=zone.pk, on_hand__gt=0)
        .select_related("sku", "location")
        .order_by("pk")
    )
    open_for = set(
        MoveTask.objects.filter(stock__in=rows, status=MoveTaskStatus.OPEN).values_list("stock_id", flat=True)
    )
    tasks = []
    for row in rows:
        if row.pk in open_for:
            continue
        destination = _destination_for(site_id=row.location.site_id, exclude_zone_id=zone.pk, sku=row.sku, now=now)
        tasks.append(
            MoveTask(
                merchant_id=row.merchant_id,
                sku=row.sku,
                stock=row,
                from_location=row.location,
                to_location=destination,
                quantity=row.on_hand,
                reason=_("Empty zone %(code)s before closing it.") % {"code": zone.code},
                created_at=now,
            )
        )
    return MoveTask.objects.bulk_create(tasks)


@transaction.atomic
def move_task_complete(*, task: MoveTask | int, to_location: Any = None, actor: Any = None) -> MoveTask:
    """Do a move task: the stock moves and the reservations allocated to it follow to the new place."""
    pk = task if isinstance(task, int) else task.pk
    current = MoveTask.objects.select_for_update().select_related("sku").get(pk=pk)
    if current.status != MoveTaskStatus.OPEN:
        raise Conflict(_("This move task is already %(status)s.") % {"status": current.status}, code="task_closed")
    destination = to_location or current.to_location
    if destination is None:
        raise ValidationFailed(_("Say where the stock goes."), code="destination_required")
    row = StockQuantity.objects.get(pk=current.stock_id)
    quantity = min(current.quantity, row.on_hand)
    carried = list(ReservationAllocation.objects.filter(stock_id=row.pk, quantity__gt=0).order_by("pk"))
    reserved_here = sum(a.quantity for a in carried)
    # Free the allocations, move everything, pin them again at the destination (all in this transaction).
    _lock_rows([row.pk])
    if reserved_here:
        StockQuantity.objects.filter(pk=row.pk).update(reserved=F("reserved") - reserved_here)
    movement = stock_move(
        sku=current.sku,
        from_location=current.from_location,
        to_location=destination,
        quantity=max(quantity, reserved_here),
        lot=row.lot,
        expiry=row.expiry,
        status=row.status,
        actor=actor,
        reason=current.reason,
        document_type="move_task",
        document_id=str(current.pk),
    )
    if reserved_here:
        target = StockQuantity.objects.get(
            sku_id=row.sku_id, location_id=destination.pk, lot=row.lot, expiry=row.expiry, status=row.status
        )
        StockQuantity.objects.filter(pk=target.pk, on_hand__gte=F("reserved") + reserved_here).update(
            reserved=F("reserved") + reserved_here
        )
        ReservationAllocation.objects.filter(pk__in=[a.pk for a in carried]).update(
            stock_id=target.pk, location_id=destination.pk
        )
    current.status = MoveTaskStatus.DONE
    current.to_location = destination
    current.done_at = movement.occurred_at
    current.save(update_fields=["status", "to_location", "done_at"])
    return current
