"""The pack station's writes: open a parcel for an order (or a tote), scan each unit, choose the box, check the
weight, get the label and close the parcel.

"Flashage": a parcel closes only when every unit was scanned and matched the order, the box was chosen, the
measured weight matched the expected one, and the carrier gave a label. The order is re-read at every step, so a
hold or a cancellation placed by customer service stops the parcel even after picking. Every scan, accepted or
refused, is an event with its operator and time (``packing.scan_recorded``).

The close runs in two parts: the carrier is asked for the label outside any transaction (a 500 or a timeout leaves
the parcel ``awaiting_label`` with the error shown, nothing else changed); then one transaction moves the units to
the pack station in the ledger, records the shipment, steps the order to ``packed`` and closes the parcel. If that
transaction is refused (the order was held meanwhile), the label is voided at the carrier.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from django.db import connection, transaction
from django.db.models import prefetch_related_objects
from django.db.models.functions import Upper
from django.utils.translation import gettext as _

from quai.catalog.models import PackagingType
from quai.catalog.selectors import ScanResult, scan_resolve, scans_resolve
from quai.core import clock
from quai.core.errors import Conflict, NotFound, QuaiError, ValidationFailed
from quai.core.outbox import event_record, events_record_many
from quai.core.rows import ids_in, ids_param, model_rows_insert, rows_update, texts_in, texts_param
from quai.core.states import actor_of
from quai.fulfillment.selectors import (
    PickedUnits,
    ToteContents,
    order_picking_unfinished,
    orders_picked_units,
    orders_picking_unfinished,
    orders_tote_codes,
)
from quai.orders.models import Order, OrderStatus
from quai.packing import cartonization, reads
from quai.packing.events import PackScanRecorded, ParcelClosed
from quai.packing.models import Parcel, ParcelItem, ParcelStatus
from quai.packing.sources import tote_orders, units_to_pack
from quai.tenants.scope import Scope

if TYPE_CHECKING:
    from quai.shipping.services import ShipmentRecord

FLOOR = Scope.system("pack station")
PACKABLE = (OrderStatus.RELEASED, OrderStatus.PICKING)


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "pk", None) is not None and hasattr(actor, "get_username") else None


def order_packable_check(order: Order) -> None:
    """Refuse an order that must not be packed, with the reason an operator acts on."""
    if order.status == OrderStatus.ON_HOLD:
        raise Conflict(
            _("STOP: order %(ref)s is on hold (%(reason)s). Put the goods aside for the supervisor.")
            % {"ref": order.external_id, "reason": order.get_hold_reason_display() or "-"},
            code="order_on_hold",
            details={"order_id": order.pk, "hold_reason": order.hold_reason},
        )
    if order.status == OrderStatus.CANCELLED:
        raise Conflict(
            _("STOP: order %(ref)s was cancelled. Put the goods aside for the supervisor.")
            % {"ref": order.external_id},
            code="order_cancelled",
            details={"order_id": order.pk},
        )
    if order.status not in PACKABLE:
        raise Conflict(
            _("Order %(ref)s cannot be packed now (it is %(status)s).")
            % {"ref": order.external_id, "status": order.get_status_display()},
            code="order_not_packable",
            details={"order_id": order.pk, "status": order.status},
        )


def _order_for_code(code: str) -> Order:
    text = code.strip()
    orders = list(Order.objects.within(FLOOR).filter(external_id__iexact=text).order_by("-id")[:2])
    if not orders and text.isdecimal():
        orders = list(Order.objects.within(FLOOR).filter(pk=int(text))[:1])
    if not orders:
        raise NotFound(
            _("No order or tote has the code %(code)s.") % {"code": text},
            code="order_not_found",
            details={"code": text},
        )
    if len(orders) > 1:
        raise Conflict(
            _("Several merchants have an order %(code)s: scan its pick label instead.") % {"code": text},
            code="order_ambiguous",
            details={"code": text},
        )
    return orders[0]


def _scan_event(parcel: Parcel, *, code: str, sku_code: str, result: str, reason: str, actor: Any) -> None:
    event_record(
        PackScanRecorded(
            parcel_id=parcel.pk,
            order_id=parcel.order_id,
            code=code[:100],
            sku_code=sku_code,
            result=result,
            reason=reason,
            operator=actor_of(actor).label,
            scanned_at=clock.now(),
        ),
        merchant_id=parcel.merchant_id,
    )


def station_lookup(code: str) -> Order | ToteContents:
    """What a code scanned at the pack station designates: an order (its reference or number), else a tote."""
    try:
        return _order_for_code(code)
    except NotFound:
        try:
            return tote_orders(scope=FLOOR, tote_code=code)
        except NotFound:
            raise NotFound(
                _("No order or tote has the code %(code)s.") % {"code": code.strip()},
                code="order_not_found",
                details={"code": code.strip()},
            ) from None


def _picking_check(order: Order, *, unfinished: bool | None = None) -> None:
    """An order still being picked (another tote on its way) is not packed from half its units. ``unfinished``:
    what ``order_picking_unfinished`` says of it, when the caller read it for many orders at once."""
    if unfinished is None:
        unfinished = order_picking_unfinished(scope=FLOOR, order_id=order.pk)
    if unfinished:
        raise Conflict(
            _("Order %(ref)s is still being picked: wait for its other totes.") % {"ref": order.external_id},
            code="order_picking_unfinished",
            details={"order_id": order.pk},
        )


@transaction.atomic
def parcel_open(*, code: str, station: Any, actor: Any = None, tote_code: str = "") -> Parcel:
    """Open (or resume) the parcel of the order scanned (its reference) at ``station``; ``tote_code`` is the tote
    it came in, when the packer scanned one (emptied, it goes back to the pool once the parcel closes)."""
    order = _order_for_code(code)
    order = Order.objects.select_for_update().get(pk=order.pk)
    order_packable_check(order)
    existing = Parcel.objects.filter(order_id=order.pk, status__in=[ParcelStatus.OPEN, ParcelStatus.AWAITING_LABEL])
    found = existing.first()
    if found is not None:
        return found
    _picking_check(order)
    units = units_to_pack(scope=FLOOR, order=order)
    if not units:
        raise Conflict(
            _("Order %(ref)s holds no stock to pack.") % {"ref": order.external_id},
            code="order_nothing_to_pack",
            details={"order_id": order.pk},
        )
    from quai.catalog.models import Sku

    names = dict(Sku.objects.filter(pk__in=[u.sku_id for u in units]).values_list("pk", "name"))
    parcel = Parcel.objects.create(
        merchant_id=order.merchant_id,
        order_id=order.pk,
        order_reference=order.external_id,
        station_id=station.pk,
        tote_code=(tote_code or next((u.tote_code for u in units if u.tote_code), ""))[:40],
        opened_by=_user(actor),
    )
    ParcelItem.objects.bulk_create(_parcel_items(parcel, units, names))
    _scan_event(parcel, code=code, sku_code="", result="ok", reason="parcel_opened", actor=actor)
    return parcel


def _parcel_items(parcel: Parcel, units: Sequence[Any], names: dict[int, str]) -> list[ParcelItem]:
    """The parcel's lines: one per unit to pack (SKU, lot and reservation), named as the catalogue names the SKU."""
    return [
        ParcelItem(
            parcel=parcel,
            sku_id=u.sku_id,
            sku_code=u.sku_code,
            name=names.get(u.sku_id, u.sku_code),
            lot=u.lot,
            expected=u.quantity,
            reservation_id=u.reservation_id,
        )
        for u in units
    ]


@dataclass(frozen=True)
class ParcelOpen:
    """One parcel of ``parcels_open_many``: the order's code scanned, at which station, by whom (and the tote)."""

    code: str
    station: Any
    actor: Any = None
    tote_code: str = ""


@dataclass(frozen=True)
class OpenOutcome:
    """One open of a batch: the parcel opened (or resumed), or the refusal ``parcel_open`` would have raised."""

    code: str
    parcel: Parcel | None = None
    error: QuaiError | None = None


def _orders_for_codes(codes: Sequence[str], *, lock: bool = False) -> dict[str, Order | QuaiError]:
    """``_order_for_code`` for many codes: their orders by reference in one read (a code neither finds, or finds
    twice, is looked up as ``_order_for_code`` does, with its refusals). ``lock``: the orders the references find
    are locked by that read, in id order (``_orders_locked_for_codes``)."""
    texts = {code: code.strip() for code in codes}
    by_reference: dict[str, list[Order]] = {}
    references = sorted({t.upper() for t in texts.values()})
    if lock and not references:
        rows: Any = []
    elif lock:
        # The locking read of a pack line's round: the statement the queryset below writes (FLOOR is every
        # merchant's), written once (``reads``), the rows made as it makes them; the references ONE parameter, so
        # its text is the same for any round's size (an ``IN`` list of a placeholder each was planned every call).
        quote = connection.ops.quote_name
        upper = f"UPPER({quote(Order._meta.db_table)}.{quote('external_id')})"
        rows = reads.instances_read(
            Order,
            f"{upper} {texts_in(connection.vendor)}",
            [texts_param(references)],
            lock=True,
            annotations=[("reference", upper)],
        )
    else:
        rows = (
            Order.objects.within(FLOOR).annotate(reference=Upper("external_id")).filter(reference__in=references)
        ).order_by("-id")
    for order in reversed(rows) if lock else rows:
        by_reference.setdefault(order.external_id.upper(), []).append(order)
    found: dict[str, Order | QuaiError] = {}
    for code, text in texts.items():
        orders = by_reference.get(text.upper(), [])
        if len(orders) == 1:
            found[code] = orders[0]
            continue
        try:
            found[code] = _order_for_code(code)
        except QuaiError as exc:
            found[code] = exc
    return found


_Planned = tuple[int, ParcelOpen, Order, list[Any]]


def _orders_locked_for_codes(codes: Sequence[str]) -> tuple[dict[str, Order | QuaiError], dict[int, Order]]:
    """The orders of the codes (``_orders_for_codes``) and the same orders locked, by id: the references' read takes
    the locks (id order), so one statement serves both; an order found otherwise (its number) is locked after."""
    resolved = _orders_for_codes(codes, lock=True)
    locked = {o.pk: o for o in resolved.values() if isinstance(o, Order)}
    rest = sorted(pk for pk, order in locked.items() if getattr(order, "reference", None) is None)
    if rest:
        locked.update({o.pk: o for o in Order.objects.select_for_update().filter(pk__in=rest).order_by("pk")})
    return resolved, locked


def _opens_decide(
    opens: Sequence[ParcelOpen],
    resolved: dict[str, Order | QuaiError],
    locked: dict[int, Order],
    existing: dict[int, Parcel],
) -> tuple[list[OpenOutcome | None], list[_Planned], dict[int, list[PickedUnits]]]:
    """What each open of a batch does, in order, as ``parcel_open`` one by one: its refusal, the parcel it resumes
    (an outcome), or a parcel to open (None, and the plan: its index, open, order and units); a second open of an
    order this batch opens is None too. ``locked``: the orders found, locked; ``existing``: their parcels being
    packed. What fulfilment says of their picking is read here once for the batch (nothing here writes it), and
    returned: each order's units picked (``orders_picked_units``)."""
    ids = sorted(locked)
    unfinished = orders_picking_unfinished(scope=FLOOR, order_ids=ids)
    picked = orders_picked_units(scope=FLOOR, order_ids=ids)
    planned: list[_Planned] = []
    outcomes: list[OpenOutcome | None] = []
    opened: set[int] = set()  # the orders this batch opens a parcel for
    for index, wanted in enumerate(opens):
        found = resolved[wanted.code]
        try:
            if isinstance(found, QuaiError):
                raise found
            order = locked[found.pk]
            order_packable_check(order)
            if order.pk in existing:
                outcomes.append(OpenOutcome(code=wanted.code, parcel=existing[order.pk]))
                continue
            if order.pk in opened:
                outcomes.append(None)  # the parcel this batch opens for it a moment before
                continue
            _picking_check(order, unfinished=order.pk in unfinished)
            units = units_to_pack(scope=FLOOR, order=order, picked=picked.get(order.pk, []))
            if not units:
                raise Conflict(
                    _("Order %(ref)s holds no stock to pack.") % {"ref": order.external_id},
                    code="order_nothing_to_pack",
                    details={"order_id": order.pk},
                )
        except QuaiError as exc:
            outcomes.append(OpenOutcome(code=wanted.code, error=exc))
            continue
        opened.add(order.pk)
        planned.append((index, wanted, order, units))
        outcomes.append(None)
    return outcomes, planned, picked


def parcels_open_many(*, opens: Sequence[ParcelOpen]) -> list[OpenOutcome]:
    """``parcel_open`` for many orders (the packers' opens of a pack line's round), each ending exactly as the
    parcels opened one by one in the order given: the same refusals (order unknown, held, cancelled, not
    packable, still being picked, nothing to pack), the same parcels resumed, the same parcels, lines and
    ``packing.scan_recorded`` rows, in the same order. In ONE transaction: the orders found and locked in id order,
    their open parcels, what fulfilment says of their picking and their SKU names read once, the parcels, lines and
    events each written in one insert (an order nothing was picked of is packed from its lines, read for it alone).
    A refused order is skipped, the others opened. Returns one outcome per open, in order."""
    from quai.catalog.models import Sku

    if not opens:
        return []
    with transaction.atomic():
        resolved, locked = _orders_locked_for_codes([o.code for o in opens])
        ids = sorted(locked)
        existing: dict[int, Parcel] = {}
        for parcel in Parcel.objects.filter(
            order_id__in=ids, status__in=[ParcelStatus.OPEN, ParcelStatus.AWAITING_LABEL]
        ).order_by("pk"):
            existing.setdefault(parcel.order_id, parcel)
        outcomes, planned, _picked = _opens_decide(opens, resolved, locked, existing)
        names = dict(
            Sku.objects.filter(pk__in=sorted({u.sku_id for _i, _w, _o, units in planned for u in units})).values_list(
                "pk", "name"
            )
        )
        parcels = [
            Parcel(
                merchant_id=order.merchant_id,
                order_id=order.pk,
                order_reference=order.external_id,
                station_id=wanted.station.pk,
                tote_code=(wanted.tote_code or next((u.tote_code for u in units if u.tote_code), ""))[:40],
                opened_by=_user(wanted.actor),
            )
            for _index, wanted, order, units in planned
        ]
        Parcel.objects.bulk_create(parcels)
        ParcelItem.objects.bulk_create(
            [
                item
                for parcel, (_index, _wanted, _order, units) in zip(parcels, planned, strict=True)
                for item in _parcel_items(parcel, units, names)
            ]
        )
        now = clock.now()
        events_record_many(
            [
                (
                    PackScanRecorded(
                        parcel_id=parcel.pk,
                        order_id=parcel.order_id,
                        code=wanted.code[:100],
                        sku_code="",
                        result="ok",
                        reason="parcel_opened",
                        operator=actor_of(wanted.actor).label,
                        scanned_at=now,
                    ),
                    parcel.merchant_id,
                )
                for parcel, (_index, wanted, _order, _units) in zip(parcels, planned, strict=True)
            ]
        )
    made = {order.pk: parcel for parcel, (_index, _wanted, order, _units) in zip(parcels, planned, strict=True)}
    return [
        outcome
        if outcome is not None
        else OpenOutcome(code=wanted.code, parcel=made[cast(Order, resolved[wanted.code]).pk])
        for outcome, wanted in zip(outcomes, opens, strict=True)
    ]


def _locked(parcel: Parcel | int) -> Parcel:
    pk = parcel if isinstance(parcel, int) else parcel.pk
    found = Parcel.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(_("Parcel not found."), code="parcel_not_found", details={"parcel_id": pk})
    return found


def _order_still_packable(parcel: Parcel) -> Order:
    order = Order.objects.get(pk=parcel.order_id)
    order_packable_check(order)
    return order


def _refuse(parcel: Parcel, exc: QuaiError, *, code: str, sku_code: str = "", actor: Any) -> QuaiError:
    """Record a refused scan in its own transaction (the refusal itself must leave a trace), then return it."""
    with transaction.atomic():
        _scan_event(parcel, code=code, sku_code=sku_code, result="refused", reason=exc.code, actor=actor)
    return exc


def _line_for_scan(parcel: Parcel, lines: Sequence[ParcelItem], result: ScanResult, *, code: str) -> ParcelItem:
    """The parcel line a resolved scan counts on, or the refusal (wrong item, wrong lot, one too many); shared by
    the single scan and the burst so both refuse alike. ``lines`` holds at least the parcel's lines of the SKU."""
    if result.sku is None:
        raise ValidationFailed(_("%(code)s is a carton label, not an item.") % {"code": code}, code="item_not_in_order")
    sku_id = result.sku.pk
    # Several lines of one SKU (lots, reservations): the one the scanned lot designates, else the first still short
    # of units.
    same = [i for i in lines if i.sku_id == sku_id]
    open_lines = [i for i in same if not i.done] or same
    item = next((i for i in open_lines if result.lot and i.lot == result.lot), None) or next(iter(open_lines), None)
    if item is None:
        raise ValidationFailed(
            _("WRONG ITEM: %(sku)s is not in order %(ref)s. Take it out.")
            % {"sku": result.sku.code, "ref": parcel.order_reference},
            code="item_not_in_order",
            details={"sku": result.sku.code},
        )
    if item.lot and result.lot and result.lot != item.lot:
        raise ValidationFailed(
            _("WRONG LOT: %(sku)s lot %(lot)s was picked for this order, not %(scanned)s.")
            % {"sku": item.sku_code, "lot": item.lot, "scanned": result.lot},
            code="item_wrong_lot",
        )
    if item.scanned + result.quantity > item.expected:
        raise ValidationFailed(
            _("ONE TOO MANY: order %(ref)s takes %(expected)d × %(sku)s, all already scanned. Take it out.")
            % {"ref": parcel.order_reference, "expected": item.expected, "sku": item.sku_code},
            code="item_extra",
            details={"sku": item.sku_code, "expected": item.expected},
        )
    return item


def parcel_scan(*, parcel: Parcel | int, code: str, actor: Any = None) -> ParcelItem:
    """One unit scanned (GTIN, GS1 or SKU code): counted on its line, or refused loudly — unknown code, an item of
    another order, one too many, or the order stopped (held / cancelled)."""
    pk = parcel if isinstance(parcel, int) else parcel.pk
    current = Parcel.objects.filter(pk=pk).first()
    if current is None:
        raise NotFound(_("Parcel not found."), code="parcel_not_found", details={"parcel_id": pk})
    try:
        with transaction.atomic():
            current = _locked(pk)
            if current.status != ParcelStatus.OPEN:
                raise Conflict(_("This parcel is no longer being packed."), code="parcel_not_open")
            _order_still_packable(current)
            result = scan_resolve(merchant=current.merchant_id, code=code)
            lines = (
                list(current.items.select_for_update().filter(sku_id=result.sku.pk).order_by("pk"))
                if result.sku is not None
                else []
            )
            item = _line_for_scan(current, lines, result, code=code)
            item.scanned += result.quantity
            item.save(update_fields=["scanned"])
            # A box or weight chosen for fewer items no longer holds.
            Parcel.objects.filter(pk=current.pk).update(weight_ok=False, last_error="")
            _scan_event(current, code=code, sku_code=item.sku_code, result="ok", reason="", actor=actor)
            return item
    except QuaiError as exc:
        sku_code = str(exc.details.get("sku", "")) if exc.details else ""
        raise _refuse(current, exc, code=code, sku_code=sku_code, actor=actor) from None


@dataclass(frozen=True)
class ScanOutcome:
    """One code of a scan burst: counted (``error`` None, ``sku_code`` the line it counted on) or refused."""

    code: str
    error: QuaiError | None = None
    sku_code: str = ""

    @property
    def accepted(self) -> bool:
        return self.error is None


def _scan_payload(parcel: Parcel, outcome: ScanOutcome, *, operator: str, at: datetime) -> PackScanRecorded:
    return PackScanRecorded(
        parcel_id=parcel.pk,
        order_id=parcel.order_id,
        code=outcome.code[:100],
        sku_code=outcome.sku_code,
        result="ok" if outcome.error is None else "refused",
        reason="" if outcome.error is None else outcome.error.code,
        operator=operator,
        scanned_at=at,
    )


def _refused(code: str, exc: QuaiError) -> ScanOutcome:
    return ScanOutcome(code=code, error=exc, sku_code=str(exc.details.get("sku", "")) if exc.details else "")


def parcel_scans_record(*, parcel: Parcel | int, codes: Sequence[str], actor: Any = None) -> list[ScanOutcome]:
    """A scan burst: the codes a batch-mode scanner buffered, applied in order exactly as ``parcel_scan`` applies
    each one (same lines counted, same refusals, same ``packing.scan_recorded`` rows), in ONE transaction.

    Every unit is still scanned — this only saves the round trips: the parcel, its order and its lines are read and
    locked once, the codes resolved together (``scans_resolve``), the counted lines and the scan events are written
    in bulk, so the queries do not grow with the number of units. A refused code is recorded and skipped, the
    others kept, as one by one. A parcel no longer open or an order held / cancelled refuses every code of the
    burst (each recorded, as one by one would) and then raises that refusal. Returns one outcome per code, in order."""
    pk = parcel if isinstance(parcel, int) else parcel.pk
    if Parcel.objects.filter(pk=pk).first() is None:
        raise NotFound(_("Parcel not found."), code="parcel_not_found", details={"parcel_id": pk})
    if not codes:
        return []
    stopped: QuaiError | None = None
    with transaction.atomic():
        current = _locked(pk)
        try:
            if current.status != ParcelStatus.OPEN:
                raise Conflict(_("This parcel is no longer being packed."), code="parcel_not_open")
            _order_still_packable(current)
        except QuaiError as exc:
            stopped = exc
        counted: list[ParcelItem] = []
        if stopped is not None:
            outcomes = [_refused(code, stopped) for code in codes]
        else:
            lines = list(current.items.select_for_update().order_by("pk"))
            scanned_before = {item.pk: item.scanned for item in lines}
            outcomes = _codes_apply(current, codes, scans_resolve(merchant=current.merchant_id, codes=codes), lines)
            counted = [item for item in lines if item.scanned != scanned_before[item.pk]]
        if any(outcome.accepted for outcome in outcomes if stopped is None):
            if counted:
                rows_update(counted, ["scanned"])
            # A box or weight chosen for fewer items no longer holds.
            Parcel.objects.filter(pk=current.pk).update(weight_ok=False, last_error="")
        operator, at = actor_of(actor).label, clock.now()
        events_record_many(
            [(_scan_payload(current, outcome, operator=operator, at=at), current.merchant_id) for outcome in outcomes]
        )
    if stopped is not None:
        raise stopped
    return outcomes


@dataclass(frozen=True)
class ScanBurst:
    """One parcel's scan burst in ``parcels_scans_record_many``: its codes, in order, and who scanned them."""

    parcel: Parcel | int
    codes: Sequence[str]
    actor: Any = None


@dataclass(frozen=True)
class BurstOutcome:
    """One burst of a batch: each code's outcome, and the refusal ``parcel_scans_record`` would have raised for the
    whole burst (the parcel unknown or no longer open, its order held or cancelled), if any."""

    parcel_id: int
    outcomes: list[ScanOutcome]
    error: QuaiError | None = None


def parcels_scans_record_many(*, bursts: Sequence[ScanBurst]) -> list[BurstOutcome]:
    """The scan bursts of many parcels (a pack line's stations uploading their scanners together), each applied
    exactly as ``parcel_scans_record`` applies it, in the order given: the same lines counted, the same refusals,
    the same ``packing.scan_recorded`` rows in the same order. In ONE transaction: the parcels locked (id order),
    their orders and lines read once, each merchant's codes resolved together (``scans_resolve``), the
    lines, the parcels and the events each written in one statement. A burst ``parcel_scans_record`` would refuse
    whole is recorded as it would be (each code refused) and its refusal returned, the others kept. Returns one
    outcome per burst, in order."""
    ids = sorted({b.parcel if isinstance(b.parcel, int) else b.parcel.pk for b in bursts})
    answers: list[BurstOutcome] = []
    with transaction.atomic():
        locked, orders = _locked_many(ids)
        lines: dict[int, list[ParcelItem]] = {pk: [] for pk in locked}
        for item in ParcelItem.objects.select_for_update().filter(parcel_id__in=list(locked)).order_by("pk"):
            lines[item.parcel_id].append(item)
        # Every code of every merchant resolved at once (``scans_resolve``: two reads, not one per distinct code).
        codes: dict[int, dict[str, None]] = {}
        for burst in bursts:
            found_parcel = locked.get(burst.parcel if isinstance(burst.parcel, int) else burst.parcel.pk)
            if found_parcel is not None:
                codes.setdefault(found_parcel.merchant_id, {}).update(dict.fromkeys(burst.codes))
        resolved = {
            merchant_id: scans_resolve(merchant=merchant_id, codes=wanted) for merchant_id, wanted in codes.items()
        }
        scanned_before = {item.pk: item.scanned for found in lines.values() for item in found}
        touched: set[int] = set()
        events: list[tuple[PackScanRecorded, int | None]] = []
        at = clock.now()
        for burst in bursts:
            pk = burst.parcel if isinstance(burst.parcel, int) else burst.parcel.pk
            current = locked.get(pk)
            if current is None:
                error = NotFound(_("Parcel not found."), code="parcel_not_found", details={"parcel_id": pk})
                answers.append(BurstOutcome(parcel_id=pk, outcomes=[], error=error))
                continue
            if not burst.codes:
                answers.append(BurstOutcome(parcel_id=pk, outcomes=[]))
                continue
            outcomes, stopped = _burst_apply(current, orders[current.order_id], burst.codes, resolved, lines[pk])
            for outcome in outcomes if stopped is None else ():
                if outcome.accepted:
                    touched.add(pk)
            operator = actor_of(burst.actor).label
            events.extend(
                (_scan_payload(current, outcome, operator=operator, at=at), current.merchant_id) for outcome in outcomes
            )
            answers.append(BurstOutcome(parcel_id=pk, outcomes=outcomes, error=stopped))
        counted = [item for pk in sorted(touched) for item in lines[pk] if item.scanned != scanned_before[item.pk]]
        if counted:
            rows_update(counted, ["scanned"])
            # A box or weight chosen for fewer items no longer holds.
            Parcel.objects.filter(pk__in=sorted(touched)).update(weight_ok=False, last_error="")
        events_record_many(events)
    return answers


def _burst_apply(
    current: Parcel,
    order: Order,
    codes: Sequence[str],
    resolved: Mapping[int, Mapping[str, ScanResult | QuaiError]],
    lines: list[ParcelItem],
) -> tuple[list[ScanOutcome], QuaiError | None]:
    """One burst on the parcel (its lines in memory, counted there), as ``parcel_scans_record`` applies it: each
    code's outcome, and the refusal of the whole burst (the parcel no longer open, its order held or cancelled:
    every code then refused with it), if any. ``resolved``: the codes answered by ``scans_resolve``, by merchant."""
    try:
        if current.status != ParcelStatus.OPEN:
            raise Conflict(_("This parcel is no longer being packed."), code="parcel_not_open")
        order_packable_check(order)
    except QuaiError as exc:
        return [_refused(code, exc) for code in codes], exc
    return _codes_apply(current, codes, resolved[current.merchant_id], lines), None


def _codes_apply(
    current: Parcel, codes: Sequence[str], resolved: Mapping[str, ScanResult | QuaiError], lines: list[ParcelItem]
) -> list[ScanOutcome]:
    """A burst's codes on an open parcel of a packable order, in order, each as ``parcel_scan`` checks it: counted
    on its line in ``lines`` (in memory; the caller writes the lines changed) or refused. ``resolved``: the codes
    as ``scans_resolve`` answered them for the parcel's merchant. The one check of a burst's codes, shared by
    ``parcel_scans_record``, ``parcels_scans_record_many`` and ``parcels_pack_many``."""
    outcomes: list[ScanOutcome] = []
    for code in codes:
        found = resolved[code]
        try:
            if isinstance(found, QuaiError):
                raise found
            item = _line_for_scan(current, lines, found, code=code)
        except QuaiError as exc:
            outcomes.append(_refused(code, exc))
            continue
        item.scanned += found.quantity
        outcomes.append(ScanOutcome(code=code, sku_code=item.sku_code))
    return outcomes


def _packaging_for(parcel: Parcel) -> list[PackagingType]:
    from quai.catalog.selectors import packaging_type_list

    return list(packaging_type_list(scope=Scope.merchant(parcel.merchant_id), active=True))


def _cartonization_items(rows: Sequence[ParcelItem], skus: dict[int, Any]) -> list[cartonization.Item]:
    """The units of the parcel's lines as cartonization sees them; ``sku_dimensions_unknown`` for a SKU without
    dimensions or weight."""
    out = []
    for row in rows:
        sku = skus[row.sku_id]
        if not (sku.length_mm and sku.width_mm and sku.height_mm and sku.weight_g is not None):
            raise ValidationFailed(
                _("%(sku)s has no dimensions or weight in the catalogue: choose the box by scanning it.")
                % {"sku": sku.code},
                code="sku_dimensions_unknown",
                details={"sku": sku.code},
            )
        out.extend([cartonization.Item(sku.length_mm, sku.width_mm, sku.height_mm, sku.weight_g)] * row.expected)
    return out


def _items(parcel: Parcel) -> list[cartonization.Item]:
    from quai.catalog.models import Sku

    rows = list(parcel.items.all())
    return _cartonization_items(rows, {s.pk: s for s in Sku.objects.filter(pk__in=[r.sku_id for r in rows])})


def _box_of(packaging: PackagingType) -> cartonization.Box:
    return cartonization.Box(
        packaging.code,
        packaging.inner_length_mm,
        packaging.inner_width_mm,
        packaging.inner_height_mm,
        packaging.max_weight_g,
        packaging.tare_weight_g,
    )


def _suggest(parcel: Parcel, items: list[cartonization.Item], packaging: Sequence[PackagingType]) -> Any:
    suggestion = cartonization.choose_box(items, [_box_of(p) for p in packaging])
    if suggestion is None:
        raise ValidationFailed(
            _("No packaging holds these items (size or weight): split the parcel or call the supervisor."),
            code="no_box_fits",
            details={"parcel_id": parcel.pk},
        )
    return suggestion


def parcel_box_suggest(*, parcel: Parcel) -> cartonization.Suggestion:
    """The box cartonization suggests for the parcel's items; ``no_box_fits`` when none holds them."""
    items = _items(parcel)
    suggestion: cartonization.Suggestion = _suggest(parcel, items, _packaging_for(parcel))
    return suggestion


def _box_apply(
    current: Parcel,
    packaging_code: str,
    packaging: Sequence[PackagingType],
    items: list[Any],
    *,
    suggested: cartonization.Suggestion | None = None,
) -> None:
    """Put the items in the box of ``packaging_code`` if they fit (the parcel open, its order packable: checked
    by the caller); the parcel's fields are set, not saved. ``suggested``: cartonization's suggestion for these
    items, whose placement already proves they fit its box (not packed again)."""
    code = packaging_code.strip()
    found = next((p for p in packaging if p.code.lower() == code.lower()), None)
    if found is None:
        raise NotFound(_("No packaging has the code %(code)s.") % {"code": code}, code="packaging_type_not_found")
    box = _box_of(found)
    weight = sum(i.weight_g for i in items)
    proven = suggested is not None and suggested.box == box
    if weight + box.tare_g > box.max_weight_g or (not proven and cartonization.pack(items, box) is None):
        raise ValidationFailed(
            _("These items do not fit in %(code)s (size or weight): take a bigger box.") % {"code": found.code},
            code="box_too_small",
            details={"packaging_code": found.code},
        )
    current.packaging_code = found.code
    current.packaging_tare_g = found.tare_weight_g
    current.packaging_dims_mm = [found.inner_length_mm, found.inner_width_mm, found.inner_height_mm]
    current.expected_weight_g = weight + found.tare_weight_g
    current.weight_ok = False
    current.measured_weight_g = None


@transaction.atomic
def parcel_box_set(*, parcel: Parcel | int, packaging_code: str, actor: Any = None) -> Parcel:
    """The box the items go in (the suggested one, or another scanned by its code, if the items fit in it)."""
    current = _locked(parcel)
    if current.status != ParcelStatus.OPEN:
        raise Conflict(_("This parcel is no longer being packed."), code="parcel_not_open")
    _order_still_packable(current)
    packaging = _packaging_for(current)
    code = packaging_code.strip()
    if not any(p.code.lower() == code.lower() for p in packaging):
        raise NotFound(_("No packaging has the code %(code)s.") % {"code": code}, code="packaging_type_not_found")
    _box_apply(current, packaging_code, packaging, _items(current))
    current.save()
    return current


# Heavier than any parcel (a tonne): a number past it is no weight but a barcode scanned where the weight is asked
# (a GTIN is all digits, 8 to 14 of them), which would also overflow the weight's column.
WEIGHT_MAX_G = 1_000_000


def _weight_valid_check(weight_g: Any) -> None:
    if isinstance(weight_g, bool) or not isinstance(weight_g, int) or weight_g <= 0:
        raise ValidationFailed(
            _("Weigh the parcel: a weight above zero grams is needed."),
            code="weight_invalid",
            details={"field": "weight_g", "value": weight_g},
        )
    if weight_g > WEIGHT_MAX_G:
        raise ValidationFailed(
            _("%(value)s is not a weight (a barcode?): type the parcel's weight in grams.") % {"value": weight_g},
            code="weight_invalid",
            details={"field": "weight_g", "value": weight_g, "max": WEIGHT_MAX_G},
        )


def _weight_apply(current: Parcel, weight_g: int) -> bool:
    """The measured weight against the expected one (the parcel open, its order packable, checked by the
    caller); the parcel's fields are set, not saved. Whether it matched."""
    if current.expected_weight_g is None:
        raise Conflict(_("Choose the box first."), code="parcel_box_missing")
    ok = cartonization.weight_within_tolerance(expected_g=current.expected_weight_g, measured_g=weight_g)
    current.measured_weight_g = weight_g
    current.weight_ok = ok
    current.last_error = "" if ok else "weight_mismatch"
    return ok


def _weight_mismatch(current: Parcel, weight_g: int) -> ValidationFailed:
    return ValidationFailed(
        _("WEIGHT MISMATCH: %(measured)d g weighed, %(expected)d g expected. Check the parcel's contents.")
        % {"measured": weight_g, "expected": current.expected_weight_g},
        code="weight_mismatch",
        details={"measured_g": weight_g, "expected_g": current.expected_weight_g},
    )


def parcel_weigh(*, parcel: Parcel | int, weight_g: int, actor: Any = None) -> Parcel:
    """The measured weight (typed or from the scale) against the expected one; a mismatch blocks the parcel
    (``weight_mismatch``, recorded, the parcel stays open to be checked)."""
    _weight_valid_check(weight_g)
    with transaction.atomic():
        current = _locked(parcel)
        if current.status != ParcelStatus.OPEN:
            raise Conflict(_("This parcel is no longer being packed."), code="parcel_not_open")
        _order_still_packable(current)
        ok = _weight_apply(current, weight_g)
        current.save(update_fields=["measured_weight_g", "weight_ok", "last_error", "updated_at"])
        _scan_event(
            current,
            code=f"{weight_g}g",
            sku_code="",
            result="ok" if ok else "refused",
            reason="weighed" if ok else "weight_mismatch",
            actor=actor,
        )
    if not ok:
        raise _weight_mismatch(current, weight_g)
    return current


@dataclass(frozen=True)
class StepOutcome:
    """One parcel of a batch step (boxed, or weighed): done (``error`` None) or refused with the error the
    one-by-one service would have raised for it; ``parcel`` as the step left it."""

    parcel_id: int
    parcel: Parcel | None = None
    error: QuaiError | None = None

    @property
    def done(self) -> bool:
        return self.error is None


def _locked_many(ids: Sequence[int]) -> tuple[dict[int, Parcel], dict[int, Order]]:
    """The parcels locked in id order, and their orders (read, as ``_order_still_packable`` reads them)."""
    locked = {p.pk: p for p in Parcel.objects.select_for_update().filter(pk__in=list(ids)).order_by("pk")}
    orders = {o.pk: o for o in Order.objects.filter(pk__in=sorted({p.order_id for p in locked.values()}))}
    return locked, orders


def _open_and_packable(pk: int, current: Parcel | None, orders: dict[int, Order]) -> Parcel:
    if current is None:
        raise NotFound(_("Parcel not found."), code="parcel_not_found", details={"parcel_id": pk})
    if current.status != ParcelStatus.OPEN:
        raise Conflict(_("This parcel is no longer being packed."), code="parcel_not_open")
    order_packable_check(orders[current.order_id])
    return current


def parcels_box_many(*, parcels: Sequence[Parcel | int], actor: Any = None) -> list[StepOutcome]:
    """An auto-packing line's cartonizer for many scanned parcels: each goes in the box cartonization suggests,
    ending exactly as ``parcel_box_suggest`` then ``parcel_box_set`` with that box, called on each parcel in
    ascending id order, would leave it (the same refusals: no box fits, a SKU without dimensions, the parcel no
    longer open, its order held or cancelled; the same fields). In ONE transaction: the parcels locked, their
    orders, lines, SKUs and boxes read once and the parcels written in one statement, whatever their number.
    Returns one outcome per parcel, in ascending id order."""
    from quai.catalog.models import Sku

    ids = sorted({p if isinstance(p, int) else p.pk for p in parcels})
    outcomes: list[StepOutcome] = []
    with transaction.atomic():
        locked, orders = _locked_many(ids)
        lines = _items_by_parcel(list(locked))
        skus = {s.pk: s for s in Sku.objects.filter(pk__in=sorted({i.sku_id for r in lines.values() for i in r}))}
        packaging: dict[int, list[PackagingType]] = {}
        changed: list[Parcel] = []
        now = clock.now()
        for pk in ids:
            outcome = _box_one(pk, locked.get(pk), orders, lines.get(pk, []), skus, packaging, now=now)
            if outcome.done:
                changed.append(cast(Parcel, outcome.parcel))
            outcomes.append(outcome)
        if changed:
            fields = ["packaging_code", "packaging_tare_g", "packaging_dims_mm", "expected_weight_g"]
            rows_update(changed, [*fields, "measured_weight_g", "weight_ok", "updated_at"])
    return outcomes


def _box_one(
    pk: int,
    current: Parcel | None,
    orders: dict[int, Order],
    lines: Sequence[ParcelItem],
    skus: dict[int, Any],
    packaging: dict[int, list[PackagingType]],
    *,
    now: datetime,
) -> StepOutcome:
    """One parcel of ``parcels_box_many`` (``packaging``: the merchants' boxes, read here for a merchant not in it
    yet): boxed as cartonization suggests, its fields set in memory, or refused."""
    try:
        if current is not None:
            if current.merchant_id not in packaging:
                packaging[current.merchant_id] = _packaging_for(current)
            items = _cartonization_items(lines, skus)
            suggestion = _suggest(current, items, packaging[current.merchant_id])
        current = _open_and_packable(pk, current, orders)
        _box_apply(current, suggestion.box.code, packaging[current.merchant_id], items, suggested=suggestion)
    except QuaiError as exc:
        return StepOutcome(parcel_id=pk, parcel=current, error=exc)
    current.updated_at = now
    return StepOutcome(parcel_id=pk, parcel=current)


Weighing = tuple[Parcel | int, int] | tuple[Parcel | int, int, Any]


def parcels_weigh_many(*, weighings: Sequence[Weighing], actor: Any = None) -> list[StepOutcome]:
    """An inline scale's weights for many boxed parcels (``weighings``: the parcel, its grams and, when the pack
    table's stations send their readings together, who weighed it — ``actor`` otherwise), each ending exactly as
    ``parcel_weigh`` called on the parcels in ascending id order, each by its operator, would leave it: the same
    refusals (a weight invalid, the parcel no longer open or not boxed, its order held or cancelled; a mismatch
    recorded and refused), the same fields and the same ``packing.scan_recorded`` rows. In ONE transaction: the
    parcels locked and their orders read once, the parcels written in one statement and the events in one insert.
    Returns one outcome per parcel, in ascending id order (a parcel given twice keeps its last weight)."""
    weights: dict[int, tuple[int, Any]] = {}
    for parcel, grams, *who in weighings:
        weights[parcel if isinstance(parcel, int) else parcel.pk] = (grams, who[0] if who else actor)
    ids = sorted(weights)
    outcomes: list[StepOutcome] = []
    with transaction.atomic():
        locked, orders = _locked_many(ids)
        changed: list[Parcel] = []
        events: list[tuple[PackScanRecorded, int | None]] = []
        now = clock.now()
        for pk in ids:
            weight_g, weigher = weights[pk]
            outcome, weighed = _weigh_one(pk, locked.get(pk), orders, weight_g, now=now)
            if weighed:
                current = cast(Parcel, outcome.parcel)
                changed.append(current)
                events.append((_weighed_event(current, weight_g, weigher, now=now), current.merchant_id))
            outcomes.append(outcome)
        if changed:
            rows_update(changed, ["measured_weight_g", "weight_ok", "last_error", "updated_at"])
            events_record_many(events)
    return outcomes


def _weigh_one(
    pk: int, current: Parcel | None, orders: dict[int, Order], weight_g: Any, *, now: datetime
) -> tuple[StepOutcome, bool]:
    """One parcel of ``parcels_weigh_many``: its outcome (a mismatch is refused, yet weighed and recorded), and
    whether it was weighed (its fields set in memory)."""
    try:
        _weight_valid_check(weight_g)
        current = _open_and_packable(pk, current, orders)
        ok = _weight_apply(current, weight_g)
    except QuaiError as exc:
        return StepOutcome(parcel_id=pk, parcel=current, error=exc), False
    current.updated_at = now
    error = None if ok else _weight_mismatch(current, weight_g)
    return StepOutcome(parcel_id=pk, parcel=current, error=error), True


def _weighed_event(
    current: Parcel, weight_g: int, weigher: Any, *, now: datetime, ok: bool | None = None
) -> PackScanRecorded:
    ok = current.weight_ok if ok is None else ok
    return PackScanRecorded(
        parcel_id=current.pk,
        order_id=current.order_id,
        code=f"{weight_g}g",
        sku_code="",
        result="ok" if ok else "refused",
        reason="weighed" if ok else "weight_mismatch",
        operator=actor_of(weigher).label,
        scanned_at=now,
    )


@transaction.atomic
def parcel_photo_set(*, parcel: Parcel | int, content: bytes, content_type: str) -> Parcel:
    """Keep a photo of the open parcel (evidence for customer service). JPEG or PNG, at most 5 MB."""
    if content_type not in ("image/jpeg", "image/png") or not content or len(content) > 5 * 1024 * 1024:
        raise ValidationFailed(_("A photo is a JPEG or PNG of at most 5 MB."), code="photo_invalid")
    current = _locked(parcel)
    current.photo = content
    current.photo_type = content_type
    current.save(update_fields=["photo", "photo_type", "updated_at"])
    return current


def _carrier_codes(order: Order) -> list[str]:
    """The carrier account codes that may carry the order, in the order they are tried."""
    wanted = (order.carrier_service or "").split("_")[0]
    codes = [code for code in (order.carrier_service, wanted, wanted.replace("-", "_")) if code]
    return [*codes, "mondial_relay"] if wanted.startswith("mondial") else codes


def _carrier_for(order: Order, *, accounts: dict[str, Any] | None = None) -> Any:
    """The active carrier account of the order's service (else the sandbox); ``accounts``: the active accounts of
    ``_carrier_codes`` by code, when the caller read them for many orders at once."""
    from quai.shipping.models import CarrierAccount
    from quai.shipping.services import sandbox_carrier_ensure

    for code in _carrier_codes(order):
        if accounts is not None:
            found = accounts.get(code)
        else:
            found = CarrierAccount.objects.filter(code=code, active=True).first()
        if found is not None:
            return found
    return sandbox_carrier_ensure()


def _carriers_read(orders: Sequence[Order]) -> dict[str, Any]:
    """The active carrier accounts ``_carrier_for`` may choose for the orders, by code, in one read."""
    from quai.shipping.models import CarrierAccount

    codes = sorted({code for order in orders for code in _carrier_codes(order)})
    if not codes:
        return {}
    # ``CarrierAccount.objects.filter(code__in=codes, active=True)``, written once (``reads``): a round reads it.
    found = reads.instances_read(
        CarrierAccount, f"code IN ({', '.join(['%s'] * len(codes))}) AND active = %s", [*codes, True]
    )
    return {account.code: account for account in found}


def order_recipient(order: Order) -> Any:
    """Where the order's parcel goes, as the carriers' and the documents' ``Address``."""
    from quai.shipping.carriers.base import Address

    return Address(
        name=order.shopper_name,
        company=order.ship_company,
        line1=order.address_line1,
        line2=order.address_line2,
        postcode=order.postcode,
        city=order.city,
        country=order.country,
        phone=order.shopper_phone,
        email=order.shopper_email,
    )


def _close_check(current: Parcel, items: Sequence[ParcelItem]) -> None:
    """What a parcel needs before its label is asked for (its order already checked packable)."""
    missing = [i for i in items if not i.done]
    if missing:
        raise Conflict(
            _("Scan every item first: %(left)d unit(s) still to scan.")
            % {"left": sum(i.expected - i.scanned for i in missing)},
            code="parcel_incomplete",
        )
    if not current.packaging_code:
        raise Conflict(_("Choose the box first."), code="parcel_box_missing")
    if not current.weight_ok:
        raise Conflict(_("Weigh the parcel first: its weight must match."), code="parcel_weight_unchecked")


@dataclass
class _LabelJob:
    """A parcel between its checks and its label: the carrier, the addresses and the customs papers it needs."""

    parcel: Parcel
    order: Order
    carrier: Any
    sender: Any
    recipient: Any
    articles: list[Any]
    customs: dict[str, Any] | None = None
    answer: Any = None


def _label_job(
    current: Parcel, order: Order, items: Sequence[ParcelItem], skus: dict[int, Any], carrier: Any
) -> _LabelJob:
    """The parcel's label job; the customs papers a destination outside the EU's VAT area needs are drawn here
    (``customs_data_missing``, the parcel left waiting, when the catalogue lacks what they ask)."""
    from quai.shipping import labels
    from quai.shipping.carriers.base import CustomsArticle
    from quai.shipping.services import carrier_sender

    recipient = order_recipient(order)
    sender = carrier_sender(carrier)
    job = _LabelJob(current, order, carrier, sender, recipient, [])
    if _customs_required(order, carrier):
        # The articles go to the carrier only with the customs papers: the order's lines (their prices) are read
        # for those alone.
        articles = job.articles = [
            CustomsArticle(
                description=i.name,
                quantity=i.expected,
                weight_g=(skus[i.sku_id].weight_g or 0) * i.expected,
                value=str(next((line.unit_price for line in order.lines.all() if line.sku_id == i.sku_id), 0)),
                hs_code=skus[i.sku_id].hs_code,
                origin_country=skus[i.sku_id].country_of_origin,
                currency=order.currency,
            )
            for i in items
        ]
        try:
            job.customs = labels.cn23_data(
                articles=articles,
                reference=order.external_id,
                sender=sender,
                recipient=recipient,
                shipping_cost=order.shipping_total,
            )
        except ValueError as exc:
            _fail(current, "customs_data_missing")
            raise ValidationFailed(
                _("Customs papers cannot be made: %(why)s") % {"why": exc}, code="customs_data_missing"
            ) from exc
    return job


def _customs_required(order: Order, carrier: Any) -> bool:
    from quai.shipping import labels

    return labels.customs_required(
        origin_country=carrier.sender_country, destination_country=order.country, destination_postcode=order.postcode
    )


def _label_fetch(job: _LabelJob, *, sscc: str, label_format: str) -> None:
    """Ask the carrier for the label, outside any transaction; a failure leaves the parcel ``awaiting_label``."""
    from quai.shipping.carriers.base import ShipmentRequest
    from quai.shipping.services import shipment_label_request

    current, order = job.parcel, job.order
    dims = current.packaging_dims_mm or [0, 0, 0]
    request = ShipmentRequest(
        reference=order.external_id,
        service_code=_service_code(job.carrier.kind, order),
        sender=job.sender,
        recipient=job.recipient,
        weight_g=current.measured_weight_g or 0,
        sscc=sscc,
        length_mm=dims[0],
        width_mm=dims[1],
        height_mm=dims[2],
        pickup_point_id="",
        label_format=label_format,
        customs=job.articles if job.customs else (),
        ship_date=clock.today().isoformat(),
    )
    try:
        job.answer = shipment_label_request(carrier=job.carrier, request=request)
    except QuaiError as exc:
        _fail(current, exc.code)
        raise


def _close_record(current: Parcel, order: Order, items: Sequence[ParcelItem], job: _LabelJob, actor: Any) -> Order:
    """The close's transaction part (the caller's transaction, parcel and order locked and the order checked
    packable): units to the station, the shipment, the order packed, the parcel closed and its event. Returns the
    order as packed."""
    from quai.inventory.services import parcel_stock_pack
    from quai.orders.services.floor_shipping import order_pack
    from quai.shipping.services import shipment_record

    reservation_ids = [i.reservation_id for i in items if i.reservation_id]
    parcel_stock_pack(
        reservation_ids=reservation_ids, location=current.station, parcel_id=current.pk, actor=_user(actor)
    )
    shipment = shipment_record(record=_shipment_of(current, order.external_id, job, reservation_ids))
    packed = order_pack(order=order, actor=actor, parcel_id=current.pk)
    event = _closed(current, job, shipment, now=clock.now(), operator=actor_of(actor).label)
    current.save()
    event_record(event, merchant_id=current.merchant_id)
    return packed


def _shipment_of(current: Parcel, order_reference: str, job: _LabelJob, reservation_ids: list[int]) -> ShipmentRecord:
    """What the parcel's shipment records."""
    from quai.shipping.services import ShipmentRecord

    return ShipmentRecord(
        answer=job.answer,
        merchant_id=current.merchant_id,
        order_id=current.order_id,
        order_reference=order_reference,
        parcel_id=current.pk,
        stock_location_id=current.station_id,
        reservation_ids=reservation_ids,
        customs=job.customs,
    )


def _closed(current: Parcel, job: _LabelJob, shipment: Any, *, now: datetime, operator: str) -> ParcelClosed:
    """The parcel's fields as closed (set, not saved) and its ``ParcelClosed``."""
    current.status, current.closed_at = ParcelStatus.CLOSED, now
    current.shipment_id, current.carrier_code, current.last_error = shipment.pk, job.carrier.code, ""
    return ParcelClosed(
        parcel_id=current.pk,
        order_id=current.order_id,
        packaging_code=current.packaging_code,
        weight_g=current.measured_weight_g or 0,
        sscc=shipment.sscc,
        tracking_number=shipment.tracking_number,
        carrier=job.carrier.code,
        operator=operator,
        closed_at=now,
    )


def parcel_close(*, parcel: Parcel | int, actor: Any = None, label_format: str = "pdf") -> Parcel:
    """Label and close the parcel (see the module docstring for the two parts and what a failure leaves)."""
    from quai.catalog.models import Sku
    from quai.shipping.services import shipment_label_void, sscc_next

    pk = parcel if isinstance(parcel, int) else parcel.pk
    with transaction.atomic():
        current = _locked(pk)
        if current.status not in (ParcelStatus.OPEN, ParcelStatus.AWAITING_LABEL):
            raise Conflict(_("This parcel is already closed."), code="parcel_not_open")
        order = _order_still_packable(current)
        items = list(current.items.all())
        _close_check(current, items)
        current.status = ParcelStatus.AWAITING_LABEL
        current.save(update_fields=["status", "updated_at"])
    carrier = _carrier_for(order)
    skus = {s.pk: s for s in Sku.objects.filter(pk__in=[i.sku_id for i in items])}
    job = _label_job(current, order, items, skus, carrier)
    _label_fetch(job, sscc=sscc_next(), label_format=label_format)
    try:
        with transaction.atomic():
            current = _locked(pk)
            order = Order.objects.select_for_update().get(pk=current.order_id)
            order_packable_check(order)
            _close_record(current, order, list(current.items.all()), job, actor)
    except BaseException as exc:
        shipment_label_void(job.answer)
        if isinstance(exc, QuaiError):
            _fail(current, exc.code)
        raise
    _totes_release([current])
    return current


@dataclass(frozen=True)
class CloseOutcome:
    """One parcel of a batch close: closed (``error`` None, ``parcel`` as closed) or refused with the error
    ``parcel_close`` would have raised for it (``parcel`` then as it was left: open or awaiting its label)."""

    parcel_id: int
    parcel: Parcel | None = None
    error: QuaiError | None = None

    @property
    def closed(self) -> bool:
        return self.error is None


def parcels_close_many(
    *, parcels: Sequence[Parcel | int], actor: Any = None, label_format: str = "pdf"
) -> list[CloseOutcome]:
    """Close many weighed parcels in one go (an auto-packing line's, or a supervisor's batch of a pack table's
    parcels): each ends exactly as ``parcel_close`` called on the parcels one by one, in ascending id order, would
    leave it — the same checks and refusals, the same SSCCs, ledger moves, shipment, order step and events, in the
    same order.

    The work per parcel shrinks, not the rules: one transaction checks every parcel (parcels, orders and lines read
    and locked together); the labels are then asked for outside any transaction, the SSCCs taken in one step; one
    transaction records the closes, each parcel in a savepoint of its own, so a parcel refused there (its order
    held meanwhile) is rolled back alone and its label voided after the commit, the others closed. A carrier
    failure leaves its parcel ``awaiting_label`` with the reason, the others go on. Returns one outcome per parcel,
    in ascending id order (a parcel given twice is closed once)."""
    ids = sorted({p if isinstance(p, int) else p.pk for p in parcels})
    outcomes: dict[int, CloseOutcome] = {}
    with transaction.atomic():
        locked = {p.pk: p for p in Parcel.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        orders = {o.pk: o for o in Order.objects.filter(pk__in=[p.order_id for p in locked.values()])}
        items = _items_by_parcel(list(locked))
        ready: list[Parcel] = []
        for pk in ids:
            current = locked.get(pk)
            error = _close_ready_check(pk, current, orders, items.get(pk, []))
            if error is not None:
                outcomes[pk] = CloseOutcome(parcel_id=pk, parcel=current, error=error)
            else:
                ready.append(cast(Parcel, current))
        if ready:
            now = clock.now()
            Parcel.objects.filter(pk__in=[p.pk for p in ready]).update(
                status=ParcelStatus.AWAITING_LABEL, updated_at=now
            )
            for current in ready:
                current.status, current.updated_at = ParcelStatus.AWAITING_LABEL, now
    _close_labelled(ready, orders, items, outcomes, actor=actor, label_format=label_format)
    return [outcomes[pk] for pk in ids]


def _close_ready_check(
    pk: int, current: Parcel | None, orders: dict[int, Order], items: Sequence[ParcelItem]
) -> QuaiError | None:
    """The first part of ``parcel_close`` for one parcel of a batch: the refusal, or None when it may be labelled."""
    try:
        if current is None:
            raise NotFound(_("Parcel not found."), code="parcel_not_found", details={"parcel_id": pk})
        if current.status not in (ParcelStatus.OPEN, ParcelStatus.AWAITING_LABEL):
            raise Conflict(_("This parcel is already closed."), code="parcel_not_open")
        order_packable_check(orders[current.order_id])
        _close_check(current, items)
    except QuaiError as exc:
        return exc
    return None


def _close_labelled(
    ready: Sequence[Parcel],
    orders: dict[int, Order],
    items: dict[int, list[ParcelItem]],
    outcomes: dict[int, CloseOutcome],
    *,
    actor: Any,
    label_format: str,
    skus: dict[int, Any] | None = None,
    tote_codes: dict[int, set[str]] | None = None,
) -> None:
    """The rest of a batch close, for the parcels checked and left ``awaiting_label`` (in ascending id order): their
    labels asked for outside any transaction, then their closes recorded in one (see ``parcels_close_many``) and
    their totes given back. ``items``: their lines as checked; ``skus``: their SKUs, and ``tote_codes``: the totes
    their orders' units were picked into, when the caller read them. Each parcel's outcome is set in ``outcomes``."""
    from quai.catalog.models import Sku
    from quai.shipping.services import shipment_label_void, ssccs_next

    if not ready:
        return
    jobs: list[_LabelJob] = []
    carriers: dict[str, Any] = {}
    accounts = _carriers_read([orders[current.order_id] for current in ready])
    if skus is None:
        skus = {s.pk: s for s in Sku.objects.filter(pk__in=sorted({i.sku_id for p in ready for i in items[p.pk]}))}
    for current in ready:
        order = orders[current.order_id]
        service = order.carrier_service or ""
        if service not in carriers:
            carriers[service] = _carrier_for(order, accounts=accounts)
    # The lines of the orders whose parcels need customs papers (their prices), read together.
    prefetch_related_objects(
        [
            o
            for o in {p.order_id: orders[p.order_id] for p in ready}.values()
            if _customs_required(o, carriers[o.carrier_service or ""])
        ],
        "lines",
    )
    for current in ready:
        order = orders[current.order_id]
        try:
            jobs.append(_label_job(current, order, items[current.pk], skus, carriers[order.carrier_service or ""]))
        except QuaiError as exc:
            outcomes[current.pk] = CloseOutcome(parcel_id=current.pk, parcel=current, error=exc)
    labelled: list[_LabelJob] = []
    for job, sscc in zip(jobs, ssccs_next(count=len(jobs)), strict=True):
        try:
            _label_fetch(job, sscc=sscc, label_format=label_format)
        except QuaiError as exc:
            outcomes[job.parcel.pk] = CloseOutcome(parcel_id=job.parcel.pk, parcel=job.parcel, error=exc)
            continue
        labelled.append(job)
    refused: list[_LabelJob] = []
    if not labelled:
        return
    try:
        closed: list[Parcel] | None = None
        try:
            with transaction.atomic():
                relocked, current_orders, current_items = _relocked(labelled, items)
                closed = _close_record_many(labelled, relocked, current_orders, current_items, actor)
                if closed is None:  # refused before anything was written: one by one, in this transaction
                    refused = _close_each(labelled, relocked, current_orders, current_items, outcomes, actor=actor)
        except _TogetherRefused:
            # Refused on the way (the ledger's guards): nothing of it kept. One by one, each parcel in a savepoint
            # of its own, so the refused one is rolled back alone, with its reason.
            closed = None
            with transaction.atomic():
                relocked, current_orders, current_items = _relocked(labelled, items)
                refused = _close_each(labelled, relocked, current_orders, current_items, outcomes, actor=actor)
        for current in closed or ():
            outcomes[current.pk] = CloseOutcome(parcel_id=current.pk, parcel=current)
    except BaseException:
        for job in labelled:
            shipment_label_void(job.answer)
        raise
    for job in refused:
        shipment_label_void(job.answer)
    _totes_release([outcomes[p.pk].parcel for p in ready if outcomes[p.pk].closed], tote_codes=tote_codes)  # type: ignore[misc]


class _TogetherRefused(Exception):
    """The closes recorded together met a refusal after their first write: the caller's transaction is undone."""


def _relocked(
    labelled: Sequence[_LabelJob], items: dict[int, list[ParcelItem]]
) -> tuple[dict[int, Parcel], dict[int, Order], dict[int, list[ParcelItem]]]:
    """The labelled parcels locked again (with their stations and sites), their orders locked (id order; the
    columns ``orders_pack_many`` and ``order_packable_check`` read), and their lines: those checked before the
    label when every parcel still waits for it (nothing writes the lines of a parcel no longer open), else read
    again."""
    from quai.orders.services.floor_shipping import STEP_FIELDS

    pks = [job.parcel.pk for job in labelled]
    # Read by statements written once (``reads``): the parcels with their stations and sites (one station and
    # site made per station, not per parcel), locked; then their orders.
    relocked = {p.pk: p for p in reads.parcels_with_stations(pks, lock=True)}
    # The orders' step columns and what the packable check reads, not their forty: the labels are already drawn
    # from the first read, and a close recorded one by one (``order_pack``) locks and reads its order whole.
    orders = {
        o.pk: o
        for o in reads.by_ids(
            Order, sorted({p.order_id for p in relocked.values()}), fields=(*STEP_FIELDS, "hold_reason"), lock=True
        )
    }
    waiting = len(relocked) == len(pks) and all(p.status == ParcelStatus.AWAITING_LABEL for p in relocked.values())
    lines = {pk: items[pk] for pk in pks} if waiting and all(pk in items for pk in pks) else _items_by_parcel(pks)
    return relocked, orders, lines


def _close_each(
    labelled: Sequence[_LabelJob],
    relocked: dict[int, Parcel],
    orders: dict[int, Order],
    items: dict[int, list[ParcelItem]],
    outcomes: dict[int, CloseOutcome],
    *,
    actor: Any,
) -> list[_LabelJob]:
    """``_close_record`` parcel after parcel (the caller's transaction, each parcel in a savepoint of its own): a
    refused one is left waiting for its label with the reason. Returns the refused parcels' jobs."""
    refused: list[_LabelJob] = []
    for job in labelled:
        current = relocked.get(job.parcel.pk) or job.parcel
        try:
            if job.parcel.pk not in relocked:
                raise NotFound(_("Parcel not found."), code="parcel_not_found", details={"parcel_id": current.pk})
            with transaction.atomic():
                order = orders[current.order_id]
                order_packable_check(order)
                orders[order.pk] = _close_record(current, order, items[current.pk], job, actor)
        except QuaiError as exc:
            _fail(current, exc.code)
            current.status, current.last_error = ParcelStatus.AWAITING_LABEL, exc.code[:300]
            outcomes[current.pk] = CloseOutcome(parcel_id=current.pk, parcel=current, error=exc)
            refused.append(job)
            continue
        outcomes[current.pk] = CloseOutcome(parcel_id=current.pk, parcel=current)
    return refused


# --- A pack line's round, every step together ----------------------------------------------------------------


@dataclass(frozen=True)
class ParcelPack:
    """One order of a pack line's round in ``parcels_pack_many``: its code scanned at a station by a packer (and
    the tote it came in), then the codes the packer's batch-mode scanner uploads for it, in order."""

    code: str
    station: Any
    actor: Any = None
    codes: Sequence[str] = ()
    tote_code: str = ""


@dataclass
class PackOutcome:
    """One order of a round: its parcel (None when the open was refused), each scan's outcome, the refusals on
    the way by step (``open``, ``scan`` — the whole burst —, ``box``, ``weigh``, ``close``; a code refused alone is
    in ``scans``) and whether the parcel closed."""

    code: str
    parcel: Parcel | None = None
    scans: list[ScanOutcome] = field(default_factory=list)
    refusals: dict[str, QuaiError] = field(default_factory=dict)
    closed: bool = False


@dataclass(eq=False)
class _Slot:
    """A parcel of the round in memory: a new one (inserted at the end with its final fields) or one resumed."""

    parcel: Parcel
    lines: list[ParcelItem]
    new: bool
    order: Order
    weigher: Any = None
    before: tuple[Any, ...] = ()


_PARCEL_FIELDS = (
    "status",
    "packaging_code",
    "packaging_tare_g",
    "packaging_dims_mm",
    "expected_weight_g",
    "measured_weight_g",
    "weight_ok",
    "last_error",
    "updated_at",
)


def _parcel_values(parcel: Parcel) -> tuple[Any, ...]:
    return tuple(getattr(parcel, name) for name in _PARCEL_FIELDS)


def parcels_pack_many(
    *,
    packs: Sequence[ParcelPack],
    scale: Callable[[Parcel], int | None],
    actor: Any = None,
    label_format: str = "pdf",
) -> list[PackOutcome]:
    """A pack line's round, every step of every parcel together: each order ends exactly as the steps' batch forms
    called one after the other leave it — ``parcels_open_many`` (the packs' opens), ``parcels_scans_record_many``
    (each opened parcel's codes, in the packs' order, by its packer), ``parcels_box_many`` (the box cartonization
    suggests), ``parcels_weigh_many`` (each boxed parcel weighed by ``scale`` — the grams it reads, None for no
    reading — in the name of its packer) and ``parcels_close_many`` (in ``actor``'s name) — each of which ends as
    its one-by-one service: the same refusals at each step, the same parcels, lines, scans, weights, events,
    labels, ledger moves, shipments and order steps. Every unit's scan is still checked and recorded.

    Where the steps lock and read the same parcels again five times, here ONE transaction opens, scans, boxes,
    weighs and readies them for their labels: the orders found and locked in one read, their picking, the parcels
    they resume, the codes, SKUs and boxes read once, and the parcels, their lines and their events each written
    in one insert with what the steps would have left. The labels are then asked for and the closes recorded as
    ``parcels_close_many`` does (its second part). Returns one outcome per pack, in order."""
    from quai.catalog.models import Sku

    if not packs:
        return []
    results = [PackOutcome(code=pack.code) for pack in packs]
    opens = [ParcelOpen(code=p.code, station=p.station, actor=p.actor, tote_code=p.tote_code) for p in packs]
    closes: dict[int, CloseOutcome] = {}
    with transaction.atomic():
        now = clock.now()
        resolved, orders = _orders_locked_for_codes([p.code for p in packs])
        slots: dict[int, _Slot] = {}  # by order
        being_packed = (
            reads.instances_read(
                Parcel,
                f"order_id {ids_in(connection.vendor)} AND status IN (%s, %s)",
                [ids_param(sorted(orders)), ParcelStatus.OPEN.value, ParcelStatus.AWAITING_LABEL.value],
                lock=True,
            )
            if orders
            else []
        )
        for parcel in being_packed:
            if parcel.order_id not in slots:
                slots[parcel.order_id] = _Slot(parcel, [], False, orders[parcel.order_id])
        if slots:
            found = _items_by_parcel([slot.parcel.pk for slot in slots.values()])
            for slot in slots.values():
                slot.lines, slot.before = found[slot.parcel.pk], _parcel_values(slot.parcel)
        scanned_before = {item.pk: item.scanned for slot in slots.values() for item in slot.lines}
        decided, planned, picked = _opens_decide(opens, resolved, orders, {k: s.parcel for k, s in slots.items()})
        for _index, wanted, order, units in planned:
            parcel = Parcel(
                merchant_id=order.merchant_id,
                order_id=order.pk,
                order_reference=order.external_id,
                station_id=wanted.station.pk,
                tote_code=(wanted.tote_code or next((u.tote_code for u in units if u.tote_code), ""))[:40],
                opened_by=_user(wanted.actor),
                created_at=now,
                updated_at=now,
            )
            lines = [
                ParcelItem(
                    sku_id=u.sku_id,
                    sku_code=u.sku_code,
                    lot=u.lot,
                    expected=u.quantity,
                    reservation_id=u.reservation_id,
                )
                for u in units
            ]
            slots[order.pk] = _Slot(parcel, lines, True, order)
        # Which parcel each pack works on (a refused open: none).
        slot_of: list[_Slot | None] = []
        for result, outcome, wanted in zip(results, decided, opens, strict=True):
            if outcome is not None and outcome.error is not None:
                result.refusals["open"] = outcome.error
                slot_of.append(None)
                continue
            order_id = outcome.parcel.order_id if outcome is not None and outcome.parcel else None
            if order_id is None:
                order_id = cast(Order, resolved[wanted.code]).pk
            slot_of.append(slots[order_id])
        # The scans, burst after burst.
        codes: dict[int, dict[str, None]] = {}
        for pack, working in zip(packs, slot_of, strict=True):
            if working is not None:
                codes.setdefault(working.parcel.merchant_id, {}).update(dict.fromkeys(pack.codes))
        answers = {
            merchant_id: scans_resolve(merchant=merchant_id, codes=wanted_codes)
            for merchant_id, wanted_codes in codes.items()
        }
        events: list[tuple[_Slot, Callable[[Parcel], PackScanRecorded]]] = [
            (slots[order.pk], _opened_event(wanted.code, wanted.actor, now)) for _i, wanted, order, _u in planned
        ]
        for pack, working, result in zip(packs, slot_of, results, strict=True):
            if working is None:
                continue
            working.weigher = pack.actor  # the last pack of a parcel weighs it, as ``parcels_weigh_many`` keeps it
            if not pack.codes:
                continue
            outcomes, stopped = _burst_apply(working.parcel, working.order, pack.codes, answers, working.lines)
            result.scans = outcomes
            if stopped is not None:
                result.refusals["scan"] = stopped
            elif any(o.accepted for o in outcomes):
                # A box or weight chosen for fewer items no longer holds.
                working.parcel.weight_ok, working.parcel.last_error = False, ""
            operator = actor_of(pack.actor).label
            events.extend((working, _scan_event_of(outcome, operator, now)) for outcome in outcomes)
        # The SKUs, once: the lines' names, the cartonizer's sizes and weights, the customs papers' fields.
        wanted_skus = {item.sku_id for slot in slots.values() for item in slot.lines}
        skus: dict[int, Any] = {
            answer.sku.pk: answer.sku
            for merchant_answers in answers.values()
            for answer in merchant_answers.values()
            if isinstance(answer, ScanResult) and answer.sku is not None and answer.sku.pk in wanted_skus
        }
        missing = sorted(wanted_skus - set(skus))
        if missing:
            skus.update({sku.pk: sku for sku in Sku.objects.filter(pk__in=missing)})
        for slot in slots.values():
            for item in slot.lines if slot.new else ():
                item.name = skus[item.sku_id].name if item.sku_id in skus else item.sku_code
        # Boxed, weighed and readied for the label in ascending id order (the new parcels' ids come after the
        # resumed ones', in the order they are inserted).
        worked = list(dict.fromkeys(s for s in slot_of if s is not None))
        ordered = sorted(worked, key=lambda s: (s.new, s.parcel.pk or 0))
        steps: dict[_Slot, dict[str, QuaiError]] = {slot: {} for slot in ordered}
        packaging: dict[int, list[PackagingType]] = {}
        for slot in ordered:
            boxed = _box_one(slot.parcel.pk or 0, slot.parcel, orders, slot.lines, skus, packaging, now=now)
            if boxed.error is not None:
                steps[slot]["box"] = boxed.error
        for slot in ordered:
            if slot.parcel.expected_weight_g is None:
                continue
            grams = scale(slot.parcel)
            if grams is None:
                continue
            weighed, done = _weigh_one(slot.parcel.pk or 0, slot.parcel, orders, grams, now=now)
            if weighed.error is not None:
                steps[slot]["weigh"] = weighed.error
            if done:
                events.append((slot, _weighed_event_of(grams, slot.weigher, slot.parcel.weight_ok, now)))
        ready: list[_Slot] = []
        for slot in ordered:
            error = _close_ready_check(slot.parcel.pk or 0, slot.parcel, orders, slot.lines)
            if error is not None:
                steps[slot]["close"] = error
                continue
            slot.parcel.status, slot.parcel.updated_at = ParcelStatus.AWAITING_LABEL, now
            ready.append(slot)
        # Written once: the new parcels and their lines, the resumed ones changed, the events in the steps' order.
        fresh = [slot for slot in ordered if slot.new]
        model_rows_insert([slot.parcel for slot in fresh])
        for slot in fresh:
            for item in slot.lines:
                item.parcel_id = slot.parcel.pk
            _pk_in_details(steps[slot], slot.parcel.pk)
        model_rows_insert([item for slot in fresh for item in slot.lines])
        resumed = [slot.parcel for slot in ordered if not slot.new and _parcel_values(slot.parcel) != slot.before]
        if resumed:
            rows_update(resumed, list(_PARCEL_FIELDS))
        counted = [
            item for slot in ordered if not slot.new for item in slot.lines if item.scanned != scanned_before[item.pk]
        ]
        if counted:
            rows_update(counted, ["scanned"])
        events_record_many([(build(slot.parcel), slot.parcel.merchant_id) for slot, build in events])
    for slot in ordered:
        for step, error in steps[slot].items():
            if step == "close":
                closes[slot.parcel.pk] = CloseOutcome(parcel_id=slot.parcel.pk, parcel=slot.parcel, error=error)
    _close_labelled(
        [slot.parcel for slot in ready],
        orders,
        {slot.parcel.pk: slot.lines for slot in ready},
        closes,
        actor=actor,
        label_format=label_format,
        skus=skus,
        # The totes the units were picked into, as read with them (a pick of an order fully picked is done).
        tote_codes={
            order_id: {unit.tote_code for unit in units if unit.tote_code} for order_id, units in picked.items()
        },
    )
    for result, working in zip(results, slot_of, strict=True):
        if working is None:
            continue
        closed = closes[working.parcel.pk]
        result.parcel = closed.parcel if closed.parcel is not None else working.parcel
        for step in ("box", "weigh"):
            if step in steps[working]:
                result.refusals[step] = steps[working][step]
        if closed.error is not None:
            result.refusals["close"] = closed.error
        result.closed = closed.closed
    return results


def _pk_in_details(errors: dict[str, QuaiError], pk: int) -> None:
    """A refusal made before its new parcel had an id names the parcel as the step would have (its id)."""
    for error in errors.values():
        if error.details and "parcel_id" in error.details and error.details["parcel_id"] is None:
            error.details["parcel_id"] = pk


def _opened_event(code: str, actor: Any, now: datetime) -> Callable[[Parcel], PackScanRecorded]:
    operator = actor_of(actor).label
    return lambda parcel: PackScanRecorded(
        parcel_id=parcel.pk,
        order_id=parcel.order_id,
        code=code[:100],
        sku_code="",
        result="ok",
        reason="parcel_opened",
        operator=operator,
        scanned_at=now,
    )


def _scan_event_of(outcome: ScanOutcome, operator: str, now: datetime) -> Callable[[Parcel], PackScanRecorded]:
    return lambda parcel: _scan_payload(parcel, outcome, operator=operator, at=now)


def _weighed_event_of(grams: int, weigher: Any, ok: bool, now: datetime) -> Callable[[Parcel], PackScanRecorded]:
    return lambda parcel: _weighed_event(parcel, grams, weigher, now=now, ok=ok)


def _close_record_many(
    labelled: Sequence[_LabelJob],
    relocked: dict[int, Parcel],
    orders: dict[int, Order],
    items: dict[int, list[ParcelItem]],
    actor: Any,
) -> list[Parcel] | None:
    """``_close_record`` for every labelled parcel at once, when none is refused: the ledger
    (``parcels_stock_pack``), the shipments, the orders' steps (``orders_pack_many``), the parcels and their events
    each written in one go — the rows ``_close_record`` writes parcel after parcel, each aggregate's events in the
    same order. In the caller's transaction, without a savepoint of its own: a parcel gone or an order held
    meanwhile returns None before any write; a refusal after the first write (the ledger's guards) raises
    ``_TogetherRefused`` for the caller to undo its transaction whole. Either way the caller then closes the parcels
    one by one, each in a savepoint of its own, so the refused one is rolled back alone, with its reason. Returns
    the parcels as closed."""
    from quai.inventory.services.parcels import ParcelStock, parcels_stock_pack
    from quai.orders.services.floor_shipping import orders_pack_many
    from quai.shipping.services import shipments_record_many

    if not labelled or any(job.parcel.pk not in relocked for job in labelled):
        return None
    parcels = [relocked[job.parcel.pk] for job in labelled]
    reservations = {p.pk: [i.reservation_id for i in items[p.pk] if i.reservation_id] for p in parcels}
    try:
        for current in parcels:
            order_packable_check(orders[current.order_id])
    except QuaiError:
        return None
    try:
        parcels_stock_pack(
            parcels=[
                ParcelStock(parcel_id=p.pk, reservation_ids=reservations[p.pk], location=p.station) for p in parcels
            ],
            actor=_user(actor),
            savepoint=False,
        )
        shipments = shipments_record_many(
            records=[
                _shipment_of(current, orders[current.order_id].external_id, job, reservations[current.pk])
                for job, current in zip(labelled, parcels, strict=True)
            ]
        )
        # The orders _relocked locked in this transaction: not locked and read again, no savepoint.
        orders_pack_many(packed=[(p.order_id, p.pk) for p in parcels], actor=actor, locked=orders)
        now, operator = clock.now(), actor_of(actor).label
        closed = [
            (_closed(current, job, shipment, now=now, operator=operator), current.merchant_id)
            for job, current, shipment in zip(labelled, parcels, shipments, strict=True)
        ]
        for current in parcels:
            current.updated_at = now
        _closed_write(parcels, now=now)
        events_record_many(closed)
    except QuaiError as exc:
        raise _TogetherRefused from exc
    return parcels


def _closed_write(parcels: Sequence[Parcel], *, now: datetime) -> None:
    """The closed parcels' fields (``_closed``'s) written in one statement: what ``rows_update`` of ``status``,
    ``closed_at``, ``shipment_id``, ``carrier_code``, ``last_error`` and ``updated_at`` writes, with the values the
    parcels share (closed, at ``now``, no error) bound once, prepared by their fields once, and each parcel's
    shipment and carrier from one JSON parameter (``rows_update`` prepared two datetimes per parcel)."""
    if any((p.status, p.closed_at, p.last_error, p.updated_at) != (ParcelStatus.CLOSED, now, "", now) for p in parcels):
        rows_update(parcels, ["status", "closed_at", "shipment_id", "carrier_code", "last_error", "updated_at"])
        return
    quote = connection.ops.quote_name
    table = quote(Parcel._meta.db_table)
    moment = Parcel._meta.get_field("closed_at").get_db_prep_save(now, connection)
    rows = [[p.pk, p.shipment_id, p.carrier_code] for p in parcels]
    if connection.vendor == "postgresql":
        source = "json_to_recordset(%s) AS v(id bigint, shipment_id bigint, carrier_code text)"
        document = json.dumps([dict(zip(("id", "shipment_id", "carrier_code"), row, strict=True)) for row in rows])
    else:
        source = (
            "(SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS shipment_id, "
            "json_extract(value, '$[2]') AS carrier_code FROM json_each(%s)) AS v"
        )
        document = json.dumps(rows)
    sql = (
        f"UPDATE {table} SET {quote('status')} = %s, {quote('closed_at')} = %s, {quote('last_error')} = %s, "
        f"{quote('updated_at')} = %s, {quote('shipment_id')} = v.shipment_id, {quote('carrier_code')} = v.carrier_code "
        f"FROM {source} WHERE {table}.{quote('id')} = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ParcelStatus.CLOSED.value, moment, "", moment, document])


def _items_by_parcel(parcel_ids: Sequence[int]) -> dict[int, list[ParcelItem]]:
    found: dict[int, list[ParcelItem]] = {pk: [] for pk in parcel_ids}
    for item in ParcelItem.objects.filter(parcel_id__in=list(parcel_ids)).order_by("parcel_id", "pk"):
        found[item.parcel_id].append(item)
    return found


def _totes_release(parcels: Sequence[Parcel], *, tote_codes: dict[int, set[str]] | None = None) -> None:
    """Give back to the pool every tote the parcels' orders came in that the parcels emptied (a tote shared with
    orders not packed yet still holds their units: it stays with its batch). All in one go (``totes_release_many``,
    each as ``tote_release``); a tote refused (not found, or not empty) is left as it is, the others given back.
    ``tote_codes``: ``orders_tote_codes`` of the parcels' orders, when the caller read them (with what they were
    packed from); the stations' sites are those the parcels were locked with, when they were."""
    from quai.fulfillment.services import totes_release_many
    from quai.warehouse.models import Location

    if not parcels:
        return
    totes = (
        tote_codes
        if tote_codes is not None
        else orders_tote_codes(scope=FLOOR, order_ids=[p.order_id for p in parcels])
    )
    sites = {
        p.station_id: p.station.site
        for p in parcels
        if Parcel.station.is_cached(p) and Location.site.is_cached(p.station)
    }
    if len(sites) < len({p.station_id for p in parcels}):
        sites = {
            location.pk: location.site
            for location in Location.objects.select_related("site").filter(pk__in={p.station_id for p in parcels})
        }
    totes_release_many(
        releases=[
            (sites[parcel.station_id], code)
            for parcel in parcels
            for code in sorted(c for c in totes.get(parcel.order_id, set()) | {parcel.tote_code} if c)
        ]
    )


def _service_code(kind: str, order: Order) -> str:
    if kind == "colissimo":
        overseas = order.country == "FR" and order.postcode[:2] in ("97", "98")
        return "COM" if overseas else "DOM"
    if kind == "mondial_relay":
        return "HOM"
    return order.carrier_service or "STANDARD"


def _fail(parcel: Parcel, code: str) -> None:
    """The parcel waits for its label, the reason kept for the operator."""
    Parcel.objects.filter(pk=parcel.pk, status__in=[ParcelStatus.OPEN, ParcelStatus.AWAITING_LABEL]).update(
        status=ParcelStatus.AWAITING_LABEL, last_error=code[:300]
    )
