"""Reads of the picking floor. Those about merchants' orders take a required ``scope``.

The contract with packing: ``tote_contents`` (what a tote holds, by order) and ``order_picked_units`` (what of an
order was picked, wherever its totes are). Both read the pick tasks, the floor's record of which units went from
which place into which tote; the units themselves are in the tote's location in the ledger until packed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.core.rows import Among
from quai.fulfillment import domain, statements
from quai.fulfillment.models import (
    BatchStatus,
    PickBatch,
    PickScan,
    PickShortage,
    PickTask,
    ReleaseLimit,
    TaskStatus,
    Tote,
    Wave,
)
from quai.orders.selectors import order_get
from quai.tenants.scope import Scope


@dataclass(frozen=True)
class PickedUnits:
    """Units of one order line picked from one place (and lot) into one tote."""

    order_id: int
    line_id: int
    sku_id: int
    sku_code: str
    quantity: int
    lot: str
    from_location_code: str
    tote_code: str
    reservation_id: int


@dataclass(frozen=True)
class ToteContents:
    tote_code: str
    batch_id: int | None
    order_ids: list[int]
    complete: bool  # every pick bound for this tote is done (picked, short or cancelled)
    units: list[PickedUnits]


def _picked(tasks: QuerySet[PickTask]) -> list[PickedUnits]:
    rows = (
        tasks.filter(picked_quantity__gt=0)
        .values("order_id", "line_id", "sku_id", "sku__code", "lot", "location__code", "tote__code", "reservation_id")
        .annotate(total=Sum("picked_quantity"))
        .order_by("order_id", "line_id", "location__code", "lot", "tote__code")
    )
    return [
        PickedUnits(
            order_id=row["order_id"],
            line_id=row["line_id"],
            sku_id=row["sku_id"],
            sku_code=row["sku__code"],
            quantity=row["total"],
            lot=row["lot"],
            from_location_code=row["location__code"],
            tote_code=row["tote__code"],
            reservation_id=row["reservation_id"],
        )
        for row in rows
    ]


def tote_contents(*, scope: Scope, tote_code: str, site_id: int | None = None) -> ToteContents:
    """The orders (inside ``scope``) picked into the tote in its current batch, and their units: SKU, quantity, lot
    and the place each came from. Another merchant's orders in a shared tote are left out; a tote unknown, or
    holding nothing of ``scope``'s orders, is ``tote_not_found``."""
    totes = Tote.objects.filter(code=tote_code.strip().upper())
    if site_id is not None:
        totes = totes.filter(site_id=site_id)
    tote = totes.order_by("pk").first()
    if tote is None or tote.batch_id is None:
        raise NotFound(_("Tote not found."), code="tote_not_found", details={"tote_code": tote_code})
    tasks = PickTask.objects.filter(tote=tote, batch_id=tote.batch_id).filter(scope.q())
    order_ids = sorted(set(tasks.values_list("order_id", flat=True)))
    if not order_ids:
        raise NotFound(_("Tote not found."), code="tote_not_found", details={"tote_code": tote_code})
    complete = not PickTask.objects.filter(tote=tote, batch_id=tote.batch_id, status="open").exists()
    return ToteContents(
        tote_code=tote.code, batch_id=tote.batch_id, order_ids=order_ids, complete=complete, units=_picked(tasks)
    )


def order_picked_units(*, scope: Scope, order_id: int) -> list[PickedUnits]:
    """Every unit of the order picked so far, per line, place, lot and tote (several totes when the order was split
    by zone or volume). An order outside ``scope`` is ``order_not_found``, like a missing one."""
    order_get(scope=scope, order_id=order_id)
    return _picked(PickTask.objects.filter(order_id=order_id).filter(scope.q()))


def orders_picked_units(*, scope: Scope, order_ids: Sequence[int]) -> dict[int, list[PickedUnits]]:
    """``order_picked_units`` for many orders (inside ``scope``) in one read: each order's units as it gives them;
    an order with nothing picked is absent."""
    found: dict[int, list[PickedUnits]] = {}
    for unit in _picked(PickTask.objects.filter(Among(F("order_id"), order_ids)).filter(scope.q())):
        found.setdefault(unit.order_id, []).append(unit)
    return found


def orders_tote_codes(*, scope: Scope, order_ids: Sequence[int]) -> dict[int, set[str]]:
    """Per order of ``order_ids`` (inside ``scope``), the codes of the totes its picked units went into: the tote
    codes of ``order_picked_units``, for many orders in one read (a batch of parcels closed). An order with nothing
    picked is absent."""
    found: dict[int, set[str]] = {}
    rows = (
        PickTask.objects.filter(order_id__in=list(order_ids), picked_quantity__gt=0, tote__isnull=False)
        .filter(scope.q())
        .values_list("order_id", "tote__code")
        .distinct()
    )
    for order_id, code in rows:
        found.setdefault(int(order_id), set()).add(code)
    return found


def order_picking_unfinished(*, scope: Scope, order_id: int) -> bool:
    """Whether a pick of the order is still open (another tote on its way): one read, where ``order_picking_done``
    takes two to also tell an order never waved."""
    return PickTask.objects.filter(order_id=order_id, status="open").filter(scope.q()).exists()


def orders_picking_unfinished(*, scope: Scope, order_ids: Sequence[int]) -> set[int]:
    """Those of ``order_ids`` with a pick still open (``order_picking_unfinished`` for many orders, in one read)."""
    rows = PickTask.objects.filter(Among(F("order_id"), order_ids), status="open").filter(scope.q())
    return {int(order_id) for order_id in rows.order_by().values_list("order_id", flat=True).distinct()}


def order_picking_done(*, scope: Scope, order_id: int) -> bool:
    """Whether nothing of the order is left to pick (its tasks all picked, short or cancelled)."""
    tasks = PickTask.objects.filter(order_id=order_id).filter(scope.q())
    return tasks.exists() and not tasks.filter(status="open").exists()


def orders_picking_done(*, scope: Scope, order_ids: Sequence[int]) -> set[int]:
    """Those of ``order_ids`` with nothing left to pick (``order_picking_done`` for many orders, in one read)."""
    # Written once (``statements``): the ORM's compilation of this grouped read cost more than the read.
    rows = statements.orders_still_open(order_ids, scope.merchant_id)
    return {order_id for order_id, still_open in rows if not still_open}


def orders_picked(*, scope: Scope, order_ids: Sequence[int]) -> set[int]:
    """Those of ``order_ids`` with something picked and nothing left open to pick, in one read (stricter than
    ``orders_picking_done``: an order whose tasks all came up short has picked nothing)."""
    rows = (
        PickTask.objects.filter(order_id__in=list(order_ids))
        .filter(scope.q())
        .values("order_id")
        .annotate(
            still_open=Count("pk", filter=Q(status=TaskStatus.OPEN)),
            picked=Count("pk", filter=Q(status=TaskStatus.PICKED)),
        )
        .values_list("order_id", "still_open", "picked")
        .order_by()
    )
    return {int(order_id) for order_id, still_open, picked in rows if picked and not still_open}


def site_open_pick_lines(*, scope: Scope, site_id: int) -> int:
    """Pick lines still to do in the site's open batches: the work the pickers have in hand."""
    return statements.open_pick_lines(site_id, scope.merchant_id)  # read every tick: written once


def site_open_batch_order_ids(*, scope: Scope, site_id: int) -> list[int]:
    """The orders with a task in one of the site's open batches, each once, in id order."""
    rows = (
        PickTask.objects.filter(batch__site_id=site_id, batch__status=BatchStatus.OPEN)
        .filter(scope.q())
        .values_list("order_id", flat=True)
        .distinct()
        .order_by("order_id")
    )
    return [int(order_id) for order_id in rows]


def wave_order_ids(*, scope: Scope, wave_id: int) -> list[int]:
    """The orders with a task in one of the wave's batches, each once, in id order: what a release sent to the floor
    (``site_open_batch_order_ids`` reads every open batch of the site, the earlier waves' too)."""
    return statements.wave_order_ids(wave_id, scope.merchant_id)  # read at every wave: written once


def batch_open_task_order_ids(*, scope: Scope, batch_id: int) -> list[int]:
    """The order of each task of the batch still to pick (an order once per open task), in task order."""
    return [
        int(order_id)
        for order_id in PickTask.objects.filter(batch_id=batch_id, status=TaskStatus.OPEN)
        .filter(scope.q())
        .order_by("pk")
        .values_list("order_id", flat=True)
    ]


def batches_tasks_to_pick(*, scope: Scope, batch_ids: Sequence[int]) -> dict[int, list[int]]:
    """For each of these open batches, ``batch_open_task_order_ids`` as it will read once the batch has started:
    the open tasks whose order can still be picked (released or picking; a start drops the others), in one read."""
    found: dict[int, list[int]] = {int(pk): [] for pk in batch_ids}
    # One statement written once (``statements``), the order's state a correlated test: read at every tick.
    for batch_id, order_id, going in statements.tasks_to_pick(found, scope.merchant_id):
        if going:
            found[batch_id].append(order_id)
    return found


def in_a_batch() -> Exists:
    """Condition on an order query: the order has a pick task that is not cancelled. A correlated EXISTS (an index
    probe per released order) rather than ``pk IN (every task's order)``, which read the whole task table at
    each wave — a table that grows all day."""
    return Exists(PickTask.objects.filter(order_id=OuterRef("pk")).exclude(status=TaskStatus.CANCELLED))


def orders_awaiting_wave_exist(*, scope: Scope) -> bool:
    """Whether a released order of ``scope`` waits for a wave (no pick task but cancelled ones)."""
    return statements.awaiting_wave_exist(scope.merchant_id)  # ``in_a_batch``'s test, written once


def wave_get(*, wave_id: int) -> Wave:
    wave = Wave.objects.filter(pk=wave_id).first()
    if wave is None:
        raise NotFound(_("Wave not found."), code="wave_not_found", details={"wave_id": wave_id})
    return wave


def batch_list(*, site_id: int | None = None, status: str | None = None) -> QuerySet[PickBatch]:
    qs = PickBatch.objects.select_related("zone", "operator")
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("pk")


def batch_get(*, batch_id: int) -> PickBatch:
    batch = PickBatch.objects.select_related("zone", "site", "operator").filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(_("Pick batch not found."), code="pick_batch_not_found", details={"batch_id": batch_id})
    return batch


def batch_tasks(*, batch: PickBatch) -> QuerySet[PickTask]:
    return batch.tasks.select_related("location", "sku", "tote").order_by("sequence", "pk")


def batch_scans(*, batch: PickBatch) -> QuerySet[PickScan]:
    return batch.scans.select_related("operator").order_by("pk")


def shortage_list(*, scope: Scope, status: str | None = None) -> QuerySet[PickShortage]:
    qs = PickShortage.objects.filter(scope.q()).select_related("location", "task__sku")
    return qs.filter(status=status) if status else qs


# --- Release limits -----------------------------------------------------------------------------------------------


def release_limits_in_force(*, scope: Scope, site_id: int, at: datetime) -> QuerySet[ReleaseLimit]:
    """The release limits of ``site_id`` in force at ``at`` (inside ``scope``)."""
    return (
        ReleaseLimit.objects.within(scope)
        .filter(site_id=site_id, valid_from__lte=at)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .select_related("merchant")
        .order_by("merchant_id", "id")
    )


def release_rooms(*, scope: Scope, site_id: int, at: datetime) -> dict[int, domain.ReleaseRoom]:
    """Per merchant with a limit in force at ``site_id``: what its orders may still send to the floor now. Two
    queries whatever the number of orders: the limits, and what the last hour's waves released per merchant."""
    limits: dict[int, list[domain.LimitFigures]] = {}
    for limit in release_limits_in_force(scope=scope, site_id=site_id, at=at):
        limits.setdefault(limit.merchant_id, []).append(
            domain.LimitFigures(
                orders_per_hour=limit.orders_per_hour,
                lines_per_hour=limit.lines_per_hour,
                valid_from=limit.valid_from,
                source=limit.source,
            )
        )
    if not limits:
        return {}
    releases: dict[int, list[domain.Release]] = {}
    # The tasks are reached from the window's waves (site and time: an index range) through their batches, and the
    # merchants without a limit left out here: filtered on its merchants, SQLite walked every task those merchants
    # ever had (their index, the only equality it saw) for the last hour's few.
    waves = Wave.objects.filter(site_id=site_id, created_at__gte=at - domain.RELEASE_WINDOW, created_at__lte=at).values(
        "pk"
    )
    rows = (
        PickTask.objects.filter(batch_id__in=PickBatch.objects.filter(wave_id__in=waves).values("pk"))
        .exclude(status=TaskStatus.CANCELLED)  # a cancelled pick's order waits again: counted when re-released
        .values("merchant_id", "batch__wave_id", "batch__wave__created_at")
        .annotate(orders=Count("order_id", distinct=True), lines=Count("line_id", distinct=True))
        .order_by()
    )
    for row in rows:
        if row["merchant_id"] not in limits:
            continue
        releases.setdefault(row["merchant_id"], []).append(
            domain.Release(at=row["batch__wave__created_at"], orders=row["orders"], lines=row["lines"])
        )
    return {
        merchant_id: domain.release_room(merchant_id, figures, releases.get(merchant_id, []), now=at)
        for merchant_id, figures in limits.items()
    }
