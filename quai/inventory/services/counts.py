"""Cycle counts (inventaire tournant): open a count task, scan or type what is there, submit, approve or reject.

A count changes stock only through ``stock_count`` (reason "cycle count"); its status changes only through
``count_task_transition`` (transition table ``quai.inventory.domain.COUNT_TASK_TRANSITIONS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, Forbidden, InsufficientStock, NotFound, ValidationFailed
from quai.core.states import StateMachine, transition
from quai.inventory import domain, selectors
from quai.inventory.events import CountTaskChanged
from quai.inventory.models import (
    CountLine,
    CountTask,
    CountTaskStatus,
    StockQuantity,
    StockStatus,
)
from quai.inventory.services._common import _actor, _status_check, _tracking
from quai.inventory.services.movements import stock_count

# --- Cycle counts (inventaire tournant) -------------------------------------------------------------------------
#
# A count task covers one location (every SKU there, or one SKU). The counter scans what is there (blind by
# default: the expected quantities are not shown); submitting snapshots the books, computes each line's variance
# and, when every line is within its tolerance (``domain.count_review``), applies the count at once through
# ``stock_count``; otherwise it waits for a supervisor, who approves (applied through ``stock_count``) or rejects
# (the location is counted again). The status changes only through ``count_task_transition``.

COUNT_REASON = "cycle count"


def _supervisor_check(actor: Any) -> None:
    if not selectors.is_supervisor(actor):
        raise Forbidden(_("Only a supervisor can approve or reject a count."), code="supervisor_only")


def _count_task_locked(task: CountTask | int) -> CountTask:
    pk = task if isinstance(task, int) else task.pk
    current = CountTask.objects.select_for_update().filter(pk=pk).first()
    if current is None:
        raise NotFound(_("Count not found."), code="count_task_not_found", details={"count_task_id": pk})
    return current


#: The count task's one state machine (table: ``domain.COUNT_TASK_TRANSITIONS``); ``count_task_transition`` is its
#: only writer.
COUNT_TASK_MACHINE = StateMachine.from_table("count_task", domain.COUNT_TASK_TRANSITIONS)


@transaction.atomic
def count_task_transition(
    *, task: CountTask | int, to_status: str, actor: Any = None, note: str = "", details: dict[str, Any] | None = None
) -> CountTask:
    """The one writer of a count task's status: checks the transition table, stamps who and when, audits, tells.

    The step goes through ``quai.core.states.transition``: refused with ``invalid_transition`` (details: from, to,
    allowed) when ``COUNT_TASK_MACHINE`` forbids it; otherwise the status and who/when columns are written with a
    ``core.StateTransition`` row (``note`` is its reason, ``details`` its details) and an
    ``inventory.count_task_changed`` event naming the location and SKU by their codes.
    """
    current = _count_task_locked(task)
    now = clock.now()
    who = _actor(actor)
    values: dict[str, Any] = {}
    if to_status == CountTaskStatus.COUNTING:
        values["counted_by"] = who
    elif to_status == CountTaskStatus.SUBMITTED:
        values["submitted_at"] = now
        if current.counted_by_id is None:
            values["counted_by"] = who
    elif to_status in (CountTaskStatus.APPROVED, CountTaskStatus.REJECTED):
        values["decided_by"] = who
        values["decided_at"] = now
    elif to_status == CountTaskStatus.APPLIED:
        values["applied_at"] = now
    from quai.catalog.models import Sku
    from quai.warehouse.models import Location

    location_code = Location.objects.filter(pk=current.location_id).values_list("code", flat=True).first() or ""
    sku_code = ""
    if current.sku_id is not None:
        sku_code = Sku.objects.filter(pk=current.sku_id).values_list("code", flat=True).first() or ""
    transition(
        current,
        machine=COUNT_TASK_MACHINE,
        to_status=to_status,
        event=lambda step: CountTaskChanged(
            count_task_id=current.pk,
            location_id=current.location_id,
            sku_id=current.sku_id,
            from_status=step.from_status,
            to_status=step.to_status,
            location_code=location_code,
            sku_code=sku_code,
        ),
        actor=actor,
        reason=note,
        details=details,
        values=values,
    )
    return current


@transaction.atomic
def count_task_create(
    *, location: Any = None, sku: Any = None, site: Any = None, blind: bool = True, actor: Any = None
) -> list[CountTask]:
    """Open count tasks: of one location (every SKU, or only ``sku``), or of ``sku`` in every location holding it
    (within ``site`` when given). All or nothing: a location already under an open count refuses the lot."""
    from quai.warehouse.models import Location

    if location is None and sku is None:
        raise ValidationFailed(_("Say which location or which SKU to count."), code="count_scope_required")
    if location is not None:
        wanted = [location.pk]
    else:
        held = StockQuantity.objects.filter(sku_id=sku.pk, on_hand__gt=0)
        if site is not None:
            held = held.filter(location__site_id=site.pk)
        wanted = sorted(set(held.values_list("location_id", flat=True)))
        if not wanted:
            raise ValidationFailed(
                _("SKU %(sku)s is in no location: there is nothing to count.") % {"sku": sku.code},
                code="nothing_to_count",
                details={"sku_id": sku.pk},
            )
    # Locked in id order: two people starting a count of the same place get one task, not two.
    places = list(Location.objects.select_for_update().filter(pk__in=wanted).order_by("pk"))
    if len(places) != len(wanted):
        raise NotFound(_("Location not found."), code="location_not_found", details={"location_ids": wanted})
    if site is not None and any(place.site_id != site.pk for place in places):
        raise ValidationFailed(_("That location is in another site."), code="location_site_mismatch")
    busy = CountTask.objects.filter(location_id__in=wanted, status__in=domain.COUNT_TASK_ACTIVE)
    if sku is not None:
        busy = busy.filter(Q(sku=None) | Q(sku_id=sku.pk))
    clash = busy.order_by("pk").values("pk", "location_id").first()
    if clash is not None:
        raise Conflict(
            _("This location already has a count in progress (#%(task)d).") % {"task": clash["pk"]},
            code="count_already_open",
            details={"count_task_id": clash["pk"], "location_id": clash["location_id"]},
        )
    now = clock.now()
    return [
        CountTask.objects.create(
            site_id=place.site_id,
            location=place,
            sku=sku,
            merchant_id=sku.merchant_id if sku is not None else None,
            blind=bool(blind),
            created_by=_actor(actor),
            created_at=now,
        )
        for place in places
    ]


@dataclass(frozen=True)
class CountedItem:
    """What a scan designates in a count: the SKU, its lot and expiry, the stock status and how many units."""

    sku: Any
    lot: str
    expiry: date | None
    status: str
    quantity: int


def _count_item(task: CountTask, code: str, quantity: int) -> CountedItem:
    """Resolve a scanned code to what is counted; lot and expiry come from the label or from what the place holds.

    A location may hold several merchants' stock and two merchants may share a barcode: the scan is resolved for
    every candidate merchant in one query and the first in order of preference wins (see
    ``selectors.count_scan_merchant_ids``)."""
    from quai.catalog.selectors import scan_resolve_among

    scanned = scan_resolve_among(merchant_ids=selectors.count_scan_merchant_ids(task=task), code=code)[0]
    if scanned.sku is None:
        raise ValidationFailed(_("That is a pallet or parcel label: scan the items themselves."), code="not_an_item")
    sku = scanned.sku
    if task.sku_id is not None and sku.pk != task.sku_id:
        raise ValidationFailed(
            _("This count is for one SKU only; %(sku)s is not it.") % {"sku": sku.code},
            code="not_in_count",
            details={"sku_id": sku.pk, "count_sku_id": task.sku_id},
        )
    tracking = _tracking(sku)
    held = StockQuantity.objects.filter(location_id=task.location_id, sku_id=sku.pk)
    counted = task.lines.filter(sku_id=sku.pk)
    lot = scanned.lot or "" if tracking.lot else ""
    if tracking.lot and not lot:
        lots = set(held.filter(on_hand__gt=0).values_list("lot", flat=True))
        lots |= set(counted.values_list("lot", flat=True))
        if len(lots) != 1:
            raise ValidationFailed(
                _("Several lots (or none known) of %(sku)s here: scan the label that carries the lot.")
                % {"sku": sku.code},
                code="lot_required",
                details={"sku_id": sku.pk},
            )
        lot = lots.pop()
    expiry = scanned.expiry if tracking.expiry else None
    if tracking.expiry and expiry is None:
        expiries = set(held.filter(lot=lot, on_hand__gt=0).values_list("expiry", flat=True)) | set(
            counted.filter(lot=lot).values_list("expiry", flat=True)
        )
        if len(expiries) != 1:
            raise ValidationFailed(
                _("Several expiry dates (or none known) of %(sku)s here: scan the label that carries the date.")
                % {"sku": sku.code},
                code="expiry_required",
                details={"sku_id": sku.pk},
            )
        expiry = expiries.pop()
    statuses = set(held.filter(lot=lot, expiry=expiry).values_list("status", flat=True))
    status = statuses.pop() if len(statuses) == 1 else StockStatus.SELLABLE
    units = quantity * max(1, scanned.quantity or 1)
    return CountedItem(sku=sku, lot=lot, expiry=expiry, status=status, quantity=units)


def _countable(task: CountTask | int, actor: Any) -> CountTask:
    current = _count_task_locked(task)
    if current.status not in domain.COUNT_TASK_COUNTABLE:
        raise Conflict(
            _("This count is %(status)s: it can no longer be counted.")
            % {"status": CountTaskStatus(current.status).label},
            code="count_closed",
            details={"count_task_id": current.pk, "status": current.status},
        )
    if current.status != CountTaskStatus.COUNTING:
        current = count_task_transition(task=current, to_status=CountTaskStatus.COUNTING, actor=actor)
    return current


def _line_for(task: CountTask, *, sku: Any, lot: str, expiry: date | None, status: str) -> CountLine:
    line = task.lines.filter(sku_id=sku.pk, lot=lot, expiry=expiry, status=status).first()
    if line is None:
        line = CountLine.objects.create(
            task=task, merchant_id=sku.merchant_id, sku=sku, lot=lot, expiry=expiry, status=status
        )
    return line


@transaction.atomic
def count_scan(*, task: CountTask | int, code: str, quantity: int = 1, actor: Any = None) -> CountLine:
    """One scan of a count: ``quantity`` units (1, or the case size typed) of the scanned item are added."""
    domain.quantity_check(quantity)
    code = (code or "").strip()
    if not code:
        raise ValidationFailed(_("Scan a code."), code="code_required")
    current = _countable(task, actor)
    item = _count_item(current, code, quantity)
    line = _line_for(current, sku=item.sku, lot=item.lot, expiry=item.expiry, status=item.status)
    CountLine.objects.filter(pk=line.pk).update(
        counted_quantity=F("counted_quantity") + item.quantity, updated_at=clock.now()
    )
    line.refresh_from_db()
    return line


@transaction.atomic
def count_line_set(
    *,
    task: CountTask | int,
    counted_quantity: int,
    line_id: int | None = None,
    sku: Any = None,
    lot: str = "",
    expiry: date | None = None,
    status: str = StockStatus.SELLABLE,
    actor: Any = None,
) -> CountLine:
    """Say how many units of one item were counted (a correction of the scans, or a count typed in)."""
    if isinstance(counted_quantity, bool) or not isinstance(counted_quantity, int) or counted_quantity < 0:
        raise ValidationFailed(
            _("A count is a whole number of units, zero or more."),
            code="invalid_quantity",
            details={"field": "counted_quantity", "value": counted_quantity},
        )
    current = _countable(task, actor)
    if line_id is not None:
        line = current.lines.filter(pk=line_id).first()
        if line is None:
            raise NotFound(_("Count line not found."), code="count_line_not_found", details={"line_id": line_id})
    else:
        if sku is None:
            raise ValidationFailed(_("Say which SKU was counted."), code="sku_required")
        if current.sku_id is not None and sku.pk != current.sku_id:
            raise ValidationFailed(
                _("This count is for one SKU only; %(sku)s is not it.") % {"sku": sku.code},
                code="not_in_count",
                details={"sku_id": sku.pk, "count_sku_id": current.sku_id},
            )
        _status_check(status)
        tracking = _tracking(sku)
        domain.tracking_check(
            tracking, lot=lot, expiry=expiry, serial="", quantity=1, today=clock.today(), incoming=False
        )
        if tracking.lot and not lot:
            raise ValidationFailed(_("This SKU is tracked by lot: say which lot."), code="lot_required")
        if tracking.expiry and expiry is None:
            raise ValidationFailed(_("This SKU is tracked by expiry date: give the expiry."), code="expiry_required")
        line = _line_for(current, sku=sku, lot=lot, expiry=expiry, status=status)
    CountLine.objects.filter(pk=line.pk).update(counted_quantity=counted_quantity, updated_at=clock.now())
    line.refresh_from_db()
    return line


@transaction.atomic
def count_submit(*, task: CountTask | int, actor: Any = None) -> CountTask:
    """Finish counting: snapshot the books, compute the variances; within tolerance the count is applied at once,
    beyond it (or below what is reserved there) it waits for a supervisor."""
    from quai.catalog.models import Sku

    current = _count_task_locked(task)
    if current.status not in domain.COUNT_TASK_COUNTABLE:
        raise Conflict(
            _("This count is %(status)s: it can no longer be submitted.")
            % {"status": CountTaskStatus(current.status).label},
            code="count_closed",
            details={"count_task_id": current.pk, "status": current.status},
        )
    books = selectors.count_books(task=current)
    lines = {(x.sku_id, x.lot, x.expiry, x.status): x for x in current.lines.all()}
    missing = [key for key, (_m, on_hand, _r) in books.items() if on_hand > 0 and key not in lines]
    skus = {sku.pk: sku for sku in Sku.objects.filter(pk__in={key[0] for key in missing})}
    for key in missing:  # on the books but not found: counted zero
        lines[key] = _line_for(current, sku=skus[key[0]], lot=key[1], expiry=key[2], status=key[3])
    now = clock.now()
    reviewed: list[domain.CountedLine] = []
    for key, line in lines.items():
        _merchant, expected, reserved = books.get(key, (line.merchant_id, 0, 0))
        tolerance = selectors.count_tolerance(merchant_id=line.merchant_id, sku_id=line.sku_id)
        line.expected_quantity = expected
        line.reserved_quantity = reserved
        line.variance = domain.count_variance(expected=expected, counted=line.counted_quantity)
        line.needs_approval = domain.count_needs_approval(
            expected=expected, counted=line.counted_quantity, tolerance=tolerance
        ) or (line.counted_quantity < reserved)
        line.updated_at = now
        reviewed.append(
            domain.CountedLine(expected=expected, counted=line.counted_quantity, reserved=reserved, tolerance=tolerance)
        )
    CountLine.objects.bulk_update(
        list(lines.values()),
        ["expected_quantity", "reserved_quantity", "variance", "needs_approval", "updated_at"],
    )
    reasons = domain.count_review(reviewed)
    current.review_reasons = ",".join(reasons)
    current.save(update_fields=["review_reasons"])
    current = count_task_transition(
        task=current,
        to_status=CountTaskStatus.SUBMITTED,
        actor=actor,
        details={"lines": len(lines), "review": reasons},
    )
    if reasons:
        return current
    try:
        with transaction.atomic():
            return _count_apply(current, actor=actor)
    except (ValidationFailed, Conflict) as exc:  # the books moved meanwhile, or the stock cannot take it
        current.review_reasons = ",".join([*reasons, f"apply_refused:{exc.code}"])[:200]
        current.save(update_fields=["review_reasons"])
        return current


def _count_apply(current: CountTask, *, actor: Any) -> CountTask:
    """Apply a submitted (or approved) count line by line through ``stock_count``; refused if the books moved."""
    from quai.catalog.models import Sku
    from quai.warehouse.models import Location

    location = Location.objects.get(pk=current.location_id)
    books = selectors.count_books(task=current)
    lines = list(current.lines.order_by("pk"))
    skus = {sku.pk: sku for sku in Sku.objects.filter(pk__in={line.sku_id for line in lines})}
    stale = [
        line.pk
        for line in lines
        if books.get((line.sku_id, line.lot, line.expiry, line.status), (0, 0, 0))[1] != line.expected_quantity
    ]
    if stale:
        raise Conflict(
            _("The stock in this location changed since it was counted: count it again."),
            code="count_stale",
            details={"count_task_id": current.pk, "line_ids": stale},
        )
    for line in lines:
        try:
            stock_count(
                sku=skus[line.sku_id],
                location=location,
                counted_quantity=line.counted_quantity,
                lot=line.lot,
                expiry=line.expiry,
                status=line.status,
                actor=actor,
                reason=COUNT_REASON,
                document_type="count_task",
                document_id=str(current.pk),
            )
        except InsufficientStock as exc:
            raise Conflict(
                _(
                    "%(sku)s: %(counted)d unit(s) counted but more are promised to reservations here; move or "
                    "release those reservations first."
                )
                % {"sku": skus[line.sku_id].code, "counted": line.counted_quantity},
                code="count_below_reserved",
                details={"count_task_id": current.pk, "line_id": line.pk, **exc.details},
            ) from exc
    return count_task_transition(task=current, to_status=CountTaskStatus.APPLIED, actor=actor)


@transaction.atomic
def count_approve(*, task: CountTask | int, actor: Any, note: str = "") -> CountTask:
    """A supervisor accepts a count that waits for approval: it is applied through ``stock_count`` at once.

    Refused (nothing written) when the location's stock moved since the count (``count_stale``) or when fewer
    units were counted than are reserved there (``count_below_reserved``)."""
    _supervisor_check(actor)
    current = count_task_transition(task=task, to_status=CountTaskStatus.APPROVED, actor=actor, note=note)
    return _count_apply(current, actor=actor)


@transaction.atomic
def count_reject(*, task: CountTask | int, actor: Any, reason: str = "") -> CountTask:
    """A supervisor refuses a count: it goes back to be counted again from zero (what was counted is kept in the
    audit row)."""
    _supervisor_check(actor)
    current = _count_task_locked(task)
    counted = [
        {
            "sku_id": line.sku_id,
            "lot": line.lot,
            "expiry": line.expiry.isoformat() if line.expiry else None,
            "status": line.status,
            "counted": line.counted_quantity,
            "expected": line.expected_quantity,
        }
        for line in current.lines.order_by("pk")
    ]
    current = count_task_transition(
        task=current, to_status=CountTaskStatus.REJECTED, actor=actor, note=reason, details={"lines": counted}
    )
    current.lines.all().delete()
    current.review_reasons = ""
    current.save(update_fields=["review_reasons"])
    return current


@transaction.atomic
def count_task_cancel(*, task: CountTask | int, actor: Any = None, reason: str = "") -> CountTask:
    """Drop a count that has not been submitted (or was rejected); nothing is applied."""
    return count_task_transition(task=task, to_status=CountTaskStatus.CANCELLED, actor=actor, note=reason)
