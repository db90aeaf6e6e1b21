"""Reads of stock: availability (per merchant and SKU, per location, per zone), contents, load, the drift check."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import connection
from django.db.models import Case, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.core.rows import ids_in, ids_param
from quai.inventory import domain
from quai.inventory.models import (
    CountLine,
    CountTask,
    Reservation,
    ReservationAllocation,
    ReservationStatus,
    StockLevel,
    StockMovement,
    StockPolicy,
    StockQuantity,
    StockStatus,
)
from quai.tenants.access import user_has_staff_role
from quai.tenants.scope import Scope

# --- Incoming stock (sources registered by inbound) --------------------------------------------------------------

IncomingSource = Callable[[int, list[int]], dict[int, list[tuple[date | None, int]]]]
_incoming_sources: list[IncomingSource] = []


def register_incoming_source(fn: IncomingSource) -> None:
    """Let an app above inventory (inbound: open ASNs) say what is coming: ``fn(merchant_id, sku_ids)`` answers
    ``{sku_id: [(expected_date, quantity), …]}``. Registering the same function twice keeps one.

    Kept here, beside the availability reads that call the sources, because selectors never import services;
    ``quai.inventory.services`` re-exports it (docs/CONTRACTS.md)."""
    if fn not in _incoming_sources:
        _incoming_sources.append(fn)


def unregister_incoming_source(fn: IncomingSource) -> None:
    if fn in _incoming_sources:
        _incoming_sources.remove(fn)


def incoming_sources() -> list[IncomingSource]:
    return list(_incoming_sources)


# --- Availability per merchant and SKU --------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    expected_date: date | None
    quantity: int


@dataclass(frozen=True)
class SkuAvailability:
    """``available`` = sellable on-hand (counted zones) − reserved; the shops see ``available_to_sell``, which
    also holds back the safety buffer."""

    merchant_id: int
    sku_id: int
    sku_code: str
    sku_name: str
    on_hand: int
    reserved: int
    available: int
    safety_buffer: int
    available_to_sell: int
    incoming: list[Incoming] = field(default_factory=list)

    @property
    def incoming_quantity(self) -> int:
        return sum(i.quantity for i in self.incoming)


def _incoming_for(merchant_id: int, sku_ids: list[int]) -> dict[int, list[Incoming]]:
    found: dict[int, list[Incoming]] = defaultdict(list)
    if not sku_ids:
        return found
    for source in incoming_sources():
        for sku_id, expected in source(merchant_id, list(sku_ids)).items():
            found[int(sku_id)].extend(Incoming(expected_date=d, quantity=int(q)) for d, q in expected if q)
    for incoming in found.values():
        incoming.sort(key=lambda i: (i.expected_date is None, i.expected_date or date.max))
    return found


def min_shelf_life_days(*, merchant_id: int) -> int:
    """The merchant's minimum shelf life (days left before expiry) for stock to be allocated; 0 when unset."""
    value = (
        StockPolicy.objects.filter(merchant_id=merchant_id, sku=None)
        .values_list("min_shelf_life_days", flat=True)
        .first()
    )
    return int(value or 0)


def _buffers(merchant_ids: set[int], sku_ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    per_sku = dict(StockPolicy.objects.filter(sku_id__in=sku_ids).values_list("sku_id", "safety_buffer"))
    per_merchant = dict(
        StockPolicy.objects.filter(merchant_id__in=merchant_ids, sku=None).values_list("merchant_id", "safety_buffer")
    )
    return per_sku, per_merchant


def _sku_queryset(scope: Scope) -> QuerySet[Any]:
    from quai.catalog.models import Sku

    level = StockLevel.objects.filter(sku_id=OuterRef("pk"))
    return Sku.objects.within(scope).annotate(
        level_on_hand=Coalesce(Subquery(level.values("on_hand")[:1]), Value(0), output_field=IntegerField()),
        level_reserved=Coalesce(Subquery(level.values("reserved")[:1]), Value(0), output_field=IntegerField()),
    )


def _availability_rows(skus: list[Any]) -> list[SkuAvailability]:
    if not skus:
        return []
    sku_ids = [s.pk for s in skus]
    merchant_ids = {s.merchant_id for s in skus}
    per_sku, per_merchant = _buffers(merchant_ids, sku_ids)
    incoming: dict[int, list[Incoming]] = {}
    for merchant_id in merchant_ids:
        incoming.update(_incoming_for(merchant_id, [s.pk for s in skus if s.merchant_id == merchant_id]))
    rows = []
    for sku in skus:
        buffer = per_sku.get(sku.pk, per_merchant.get(sku.merchant_id, 0))
        on_hand, reserved = int(sku.level_on_hand), int(sku.level_reserved)
        rows.append(
            SkuAvailability(
                merchant_id=sku.merchant_id,
                sku_id=sku.pk,
                sku_code=sku.code,
                sku_name=sku.name,
                on_hand=on_hand,
                reserved=reserved,
                available=on_hand - reserved,
                safety_buffer=buffer,
                available_to_sell=domain.available_for_shops(on_hand=on_hand, reserved=reserved, safety_buffer=buffer),
                incoming=incoming.get(sku.pk, []),
            )
        )
    return rows


class AvailabilityPage:
    """A lazily sliced list for ``@paginate``: only the page's SKUs are enriched (one incoming call per page)."""

    def __init__(self, queryset: QuerySet[Any]) -> None:
        self.queryset = queryset

    def all(self) -> AvailabilityPage:
        return self

    def count(self) -> int:
        return int(self.queryset.count())

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[SkuAvailability]:
        return _availability_rows(list(self.queryset[index]))

    def __iter__(self) -> Iterator[SkuAvailability]:
        return iter(_availability_rows(list(self.queryset)))


def availability_list(
    *, scope: Scope, sku_id: int | None = None, q: str | None = None, in_stock: bool | None = None
) -> AvailabilityPage:
    qs = _sku_queryset(scope)
    if sku_id is not None:
        qs = qs.filter(pk=sku_id)
    if q:
        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q))
    if in_stock is True:
        qs = qs.filter(level_on_hand__gt=F("level_reserved"))
    elif in_stock is False:
        qs = qs.filter(level_on_hand__lte=F("level_reserved"))
    return AvailabilityPage(qs.order_by("merchant_id", "code", "pk"))


def availability_get(*, scope: Scope, sku_id: int) -> SkuAvailability:
    rows = _availability_rows(list(_sku_queryset(scope).filter(pk=sku_id)))
    if not rows:
        raise NotFound(_("SKU not found."), code="sku_not_found", details={"sku_id": sku_id})
    return rows[0]


def available_to_sell_many(*, merchant_id: int, sku_ids: list[int]) -> dict[int, tuple[str, int]]:
    """Each of these SKUs of the merchant: (code, what the shops may sell) — ``available_to_sell`` as
    ``availability_list`` computes it, in ONE query (levels and safety buffers as subqueries) and without the
    incoming stock the shops' stock push does not send. Why: that push reads it on every round, between its shop's
    interval and its HTTP call, so each query there delays every change it carries (was four: SKUs, two buffer
    reads, the incoming); the promise reads it on every relay batch. The statement is written once per database
    (``_available_sql``) with the ids as one parameter (``quai.core.rows.ids_param``): the ORM compiled its three
    subqueries on every call, most of the call's cost. Every value is an integer or text, as the ORM returns it."""
    with connection.cursor() as cursor:
        cursor.execute(_available_sql(connection.vendor), [merchant_id, ids_param(sku_ids)])
        rows = cursor.fetchall()
    return {
        pk: (
            code,
            domain.available_for_shops(on_hand=int(on_hand), reserved=int(reserved), safety_buffer=int(buffer)),
        )
        for pk, code, on_hand, reserved, buffer in rows
    }


@functools.cache
def _available_sql(vendor: str) -> str:
    """``available_to_sell_many``'s statement: the ORM's form (kept in ``test_available_reads``) written once, the
    level a join (one row per SKU at most: ``StockLevel.sku`` is one-to-one) and the ids one parameter."""
    from quai.catalog.models import Sku

    among = ids_in(vendor)
    policy = StockPolicy._meta.db_table
    return (
        "SELECT s.id, s.code, COALESCE(l.on_hand, 0), COALESCE(l.reserved, 0), COALESCE("
        f"(SELECT p.safety_buffer FROM {policy} p WHERE p.sku_id = s.id LIMIT 1), "
        f"(SELECT p.safety_buffer FROM {policy} p WHERE p.merchant_id = s.merchant_id AND p.sku_id IS NULL LIMIT 1), "
        f"0) FROM {Sku._meta.db_table} s LEFT JOIN {StockLevel._meta.db_table} l ON l.sku_id = s.id "
        f"WHERE s.merchant_id = %s AND s.id {among}"
    )


# --- Per location and per zone ----------------------------------------------------------------------------------


def stock_list(
    *,
    scope: Scope,
    location_id: int | None = None,
    zone_id: int | None = None,
    sku_id: int | None = None,
    status: str | None = None,
    lot: str | None = None,
) -> QuerySet[StockQuantity]:
    """Stock per place (location, SKU, lot, expiry, status), empty places left out."""
    qs = StockQuantity.objects.within(scope).filter(on_hand__gt=0).select_related("sku", "location")
    if location_id is not None:
        qs = qs.filter(location_id=location_id)
    if zone_id is not None:
        qs = qs.filter(location__zone_id=zone_id)
    if sku_id is not None:
        qs = qs.filter(sku_id=sku_id)
    if status:
        qs = qs.filter(status=status)
    if lot is not None:
        qs = qs.filter(lot=lot)
    return qs.order_by("location__pick_sequence", "location__code", "sku_id", "lot", "pk")


def stock_by_zone(*, scope: Scope, zone_id: int | None = None, sku_id: int | None = None) -> QuerySet[Any]:
    """Totals per (zone, SKU, status): on hand, reserved, free."""
    qs = StockQuantity.objects.within(scope).filter(on_hand__gt=0)
    if zone_id is not None:
        qs = qs.filter(location__zone_id=zone_id)
    if sku_id is not None:
        qs = qs.filter(sku_id=sku_id)
    return (
        qs.values(
            "merchant_id",
            "sku_id",
            "status",
            zone_id_value=F("location__zone_id"),
            zone_code=F("location__zone__code"),
            sku_code=F("sku__code"),
        )
        .annotate(on_hand=Sum("on_hand"), reserved=Sum("reserved"))
        .order_by("zone_code", "sku_code", "status")
    )


def location_contents(*, location: Any) -> list[StockQuantity]:
    """What a location holds now (every owner, lot and status), for putaway and moves by scan."""
    return list(
        StockQuantity.objects.filter(location_id=location.pk, on_hand__gt=0)
        .select_related("sku")
        .order_by("sku_id", "lot", "expiry", "status")
    )


@dataclass(frozen=True)
class LocationLoad:
    volume_mm3: int
    weight_g: int
    sku_ids: set[int]


def location_load(*, location: Any) -> LocationLoad:
    """How full a location is: the volume and weight of what it holds (SKUs without dimensions count zero)."""
    volume = weight = 0
    sku_ids: set[int] = set()
    for row in location_contents(location=location):
        sku_ids.add(row.sku_id)
        volume += (row.sku.volume_mm3 or 0) * row.on_hand
        weight += (row.sku.weight_g or 0) * row.on_hand
    return LocationLoad(volume_mm3=volume, weight_g=weight, sku_ids=sku_ids)


def movement_list(
    *,
    scope: Scope,
    sku_id: int | None = None,
    location_id: int | None = None,
    kind: str | None = None,
    document_type: str | None = None,
    document_id: str | None = None,
) -> QuerySet[StockMovement]:
    qs = StockMovement.objects.within(scope)
    if sku_id is not None:
        qs = qs.filter(sku_id=sku_id)
    if location_id is not None:
        qs = qs.filter(Q(from_location_id=location_id) | Q(to_location_id=location_id))
    if kind:
        qs = qs.filter(kind=kind)
    if document_type:
        qs = qs.filter(document_type=document_type)
    if document_id:
        qs = qs.filter(document_id=document_id)
    return qs.order_by("-id")


def reservation_list(
    *, scope: Scope, sku_id: int | None = None, status: str | None = None, document_id: str | None = None
) -> QuerySet[Reservation]:
    qs = Reservation.objects.within(scope)
    if sku_id is not None:
        qs = qs.filter(sku_id=sku_id)
    if status:
        qs = qs.filter(status=status)
    if document_id:
        qs = qs.filter(document_id=document_id)
    return qs.prefetch_related("allocations").order_by("-id")


def reservation_get(*, scope: Scope, reservation_id: int) -> Reservation:
    found = Reservation.objects.within(scope).prefetch_related("allocations").filter(pk=reservation_id).first()
    if found is None:
        raise NotFound(
            _("Reservation not found."), code="reservation_not_found", details={"reservation_id": reservation_id}
        )
    return found


def reservation_open_for_document(
    *, merchant_id: int, document_type: str, document_id: str, sku_id: int
) -> Reservation | None:
    """The open reservation of one document line and SKU, if any (there is at most one: a unique index says so)."""
    return (
        Reservation.objects.filter(
            merchant_id=merchant_id,
            document_type=document_type,
            document_id=document_id,
            sku_id=sku_id,
            status=ReservationStatus.OPEN,
        )
        .exclude(document_id="")
        .first()
    )


# --- The drift check: every stored number recomputed from its source ---------------------------------------------


@dataclass(frozen=True)
class Drift:
    what: str  # "on_hand" | "reserved" | "level_on_hand" | "level_reserved" | "reservation"
    key: str
    stored: int
    expected: int


@dataclass(frozen=True)
class Overcommitment:
    """Units reserved beyond what is on hand (a SKU's level or a place), and places counted below zero: both are 0
    when the ledger never oversold."""

    oversold_units: int
    negative_places: int


def stock_overcommitment() -> Overcommitment:
    """Every merchant's levels and places checked for units reserved beyond those on hand (three queries)."""
    levels = StockLevel.objects.filter(reserved__gt=F("on_hand")).values_list("on_hand", "reserved")
    places = StockQuantity.objects.filter(reserved__gt=F("on_hand")).values_list("on_hand", "reserved")
    return Overcommitment(
        oversold_units=sum(r - o for o, r in levels) + sum(r - o for o, r in places),
        negative_places=StockQuantity.objects.filter(on_hand__lt=0).count(),
    )


def stock_drift(*, progress: Callable[[int], object] | None = None) -> list[Drift]:
    """Recompute quantities from the ledger, location reservations from allocations and the SKU counters from
    both; return every difference (expected: none, ever). ``progress(n)`` is told of each n movements read."""
    lines: Iterator[domain.LedgerLine] = (
        domain.LedgerLine(
            sku_id=sku_id,
            lot=lot,
            expiry=expiry,
            from_location_id=from_location_id,
            from_status=from_status,
            to_location_id=to_location_id,
            to_status=to_status,
            quantity=quantity,
        )
        for sku_id, lot, expiry, from_location_id, from_status, to_location_id, to_status, quantity in (
            StockMovement.objects.order_by()
            .values_list(
                "sku_id", "lot", "expiry", "from_location_id", "from_status", "to_location_id", "to_status", "quantity"
            )
            .iterator(chunk_size=10_000)
        )
    )

    def counted(source: Iterator[domain.LedgerLine]) -> Iterator[domain.LedgerLine]:
        n = 0
        for line in source:
            n += 1
            if progress is not None and n % 10_000 == 0:
                progress(10_000)
            yield line
        if progress is not None:
            progress(n % 10_000)

    expected = domain.ledger_fold(counted(lines))
    drifts: list[Drift] = []
    allocated = dict(
        ReservationAllocation.objects.filter(quantity__gt=0)
        .values("stock_id")
        .annotate(total=Sum("quantity"))
        .values_list("stock_id", "total")
    )
    level_on_hand: dict[int, int] = defaultdict(int)
    seen: set[domain.StockKey] = set()
    for row in StockQuantity.objects.order_by("pk").iterator(chunk_size=10_000):
        key: domain.StockKey = (row.location_id, row.sku_id, row.lot, row.expiry, row.status)
        seen.add(key)
        want = expected.get(key, 0)
        if row.on_hand != want:
            drifts.append(Drift("on_hand", _key_text(key), row.on_hand, want))
        if row.reserved != allocated.get(row.pk, 0):
            drifts.append(Drift("reserved", _key_text(key), row.reserved, allocated.get(row.pk, 0)))
        if row.status == StockStatus.SELLABLE and row.counted:
            level_on_hand[row.sku_id] += row.on_hand
    for key, total in expected.items():
        if key not in seen and total != 0:
            drifts.append(Drift("on_hand", _key_text(key), 0, total))
    reserved = dict(
        Reservation.objects.filter(status=ReservationStatus.OPEN)
        .values("sku_id")
        .annotate(total=Sum("quantity"))
        .values_list("sku_id", "total")
    )
    levels = {
        sku_id: (on_hand, res)
        for sku_id, on_hand, res in StockLevel.objects.values_list("sku_id", "on_hand", "reserved")
    }
    for sku_id in set(levels) | set(level_on_hand) | set(reserved):
        stored_on_hand, stored_reserved = levels.get(sku_id, (0, 0))
        if stored_on_hand != level_on_hand.get(sku_id, 0):
            drifts.append(Drift("level_on_hand", f"sku={sku_id}", stored_on_hand, level_on_hand.get(sku_id, 0)))
        if stored_reserved != reserved.get(sku_id, 0):
            drifts.append(Drift("level_reserved", f"sku={sku_id}", stored_reserved, reserved.get(sku_id, 0)))
    over_allocated = (
        Reservation.objects.filter(status=ReservationStatus.OPEN)
        .annotate(allocated=Coalesce(Sum("allocations__quantity"), Value(0)))
        .filter(allocated__gt=F("quantity"))
        .values_list("pk", "quantity", "allocated")
    )
    for pk, quantity, allocated_total in over_allocated:
        drifts.append(Drift("reservation", f"reservation={pk} allocated beyond reserved", allocated_total, quantity))
    return drifts


def _key_text(key: domain.StockKey) -> str:
    location_id, sku_id, lot, expiry, status = key
    return f"location={location_id} sku={sku_id} lot={lot!r} expiry={expiry} status={status}"


# --- Cycle counts -----------------------------------------------------------------------------------------------


def count_task_list(
    *,
    scope: Scope,
    site_id: int | None = None,
    location_id: int | None = None,
    sku_id: int | None = None,
    status: str | list[str] | None = None,
) -> QuerySet[CountTask]:
    """Count tasks inside ``scope``; a count of a whole location (no merchant: it may cover several) is in an
    all-merchants scope only."""
    qs = (
        CountTask.objects.filter(scope.q())
        .select_related("location", "sku")
        .prefetch_related("lines__sku")
        .order_by("-pk")
    )
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    if location_id is not None:
        qs = qs.filter(location_id=location_id)
    if sku_id is not None:
        qs = qs.filter(sku_id=sku_id)
    if isinstance(status, str):
        qs = qs.filter(status=status)
    elif status is not None:
        qs = qs.filter(status__in=status)
    return qs


def count_task_get(*, scope: Scope, count_task_id: int) -> CountTask:
    found = count_task_list(scope=scope).filter(pk=count_task_id).first()
    if found is None:
        raise NotFound(_("Count not found."), code="count_task_not_found", details={"count_task_id": count_task_id})
    return found


def count_expected(*, task: CountTask) -> dict[tuple[int, str, date | None, str], int]:
    """What the books hold now in a count's scope, per (SKU, lot, expiry, status): shown only when not blind."""
    rows = StockQuantity.objects.filter(location_id=task.location_id, on_hand__gt=0)
    if task.sku_id is not None:
        rows = rows.filter(sku_id=task.sku_id)
    expected: dict[tuple[int, str, date | None, str], int] = defaultdict(int)
    for row in rows.values("sku_id", "lot", "expiry", "status", "on_hand"):
        expected[(row["sku_id"], row["lot"], row["expiry"], row["status"])] += row["on_hand"]
    return dict(expected)


SUPERVISOR_GROUPS = ("admin", "supervisor")


def is_supervisor(user: Any) -> bool:
    """Supervisors and 3PL admins (and superusers) may approve or reject counts."""
    return user is not None and user_has_staff_role(user, SUPERVISOR_GROUPS)


def count_tolerance(*, merchant_id: int, sku_id: int) -> domain.CountTolerance:
    """The SKU's count tolerance: its own StockPolicy, else the merchant's default, else the domain defaults."""
    policies: dict[int | None, Any] = {
        p["sku_id"]: p
        for p in StockPolicy.objects.filter(merchant_id=merchant_id)
        .filter(Q(sku_id=sku_id) | Q(sku=None))
        .values("sku_id", "count_tolerance_units", "count_tolerance_percent")
    }
    units: int | None = None
    percent: int | None = None
    for key in (sku_id, None):
        policy = policies.get(key)
        if policy is None:
            continue
        units = policy["count_tolerance_units"] if units is None else units
        percent = policy["count_tolerance_percent"] if percent is None else percent
    return domain.CountTolerance(
        units=domain.DEFAULT_COUNT_TOLERANCE_UNITS if units is None else units,
        percent=domain.DEFAULT_COUNT_TOLERANCE_PERCENT if percent is None else percent,
    )


def count_books(*, task: CountTask) -> dict[tuple[int, str, date | None, str], tuple[int, int, int]]:
    """What the books hold in the task's scope: (sku, lot, expiry, status) → (merchant, on hand, reserved)."""
    rows = StockQuantity.objects.filter(location_id=task.location_id)
    if task.sku_id is not None:
        rows = rows.filter(sku_id=task.sku_id)
    books: dict[tuple[int, str, date | None, str], tuple[int, int, int]] = {}
    for row in rows.order_by("pk").values("sku_id", "lot", "expiry", "status", "merchant_id", "on_hand", "reserved"):
        key = (row["sku_id"], row["lot"], row["expiry"], row["status"])
        merchant_id, on_hand, reserved = books.get(key, (row["merchant_id"], 0, 0))
        books[key] = (merchant_id, on_hand + row["on_hand"], reserved + row["reserved"])
    return books


def count_scan_merchant_ids(*, task: CountTask) -> list[int]:
    """The merchants whose codes a scan in this count may be, in order of preference: the count's own merchant
    alone when it has one; else those with stock at the location, then those with lines counted there, then the
    others (by id). One query."""
    from quai.tenants.models import Merchant

    if task.merchant_id is not None:
        return [task.merchant_id]
    stock_here = StockQuantity.objects.filter(location_id=task.location_id, merchant_id=OuterRef("pk"))
    lines_here = CountLine.objects.filter(task_id=task.pk, merchant_id=OuterRef("pk"))
    preference = Case(When(Exists(stock_here), then=Value(0)), When(Exists(lines_here), then=Value(1)), default=2)
    return list(Merchant.objects.order_by(preference, "pk").values_list("pk", flat=True))
