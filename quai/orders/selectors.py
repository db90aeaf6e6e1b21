"""Reads of orders, always inside a tenant scope (``quai.tenants.scope.Scope``, required, never a default)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, tzinfo
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.core.models import StateTransition
from quai.core.selectors import state_history
from quai.orders.models import DEFAULT_RELEASE_BUFFER_MINUTES, Order, OrderLine, OrderPolicy
from quai.tenants.scope import Scope


def order_list(
    *,
    scope: Scope,
    status: str | None = None,
    priority: str | None = None,
    carrier_service: str | None = None,
    channel: str | None = None,
    promised_from: date | None = None,
    promised_to: date | None = None,
    q: str | None = None,
) -> QuerySet[Order]:
    """Orders inside ``scope``, newest first. ``promised_from``/``promised_to`` bound the promised delivery date
    (``promised_to`` of the order); ``q`` finds an order by its external id, its shopper's name or email."""
    qs = Order.objects.within(scope)
    if status:
        qs = qs.filter(status=status)
    if priority:
        qs = qs.filter(priority=priority)
    if carrier_service:
        qs = qs.filter(carrier_service=carrier_service)
    if channel:
        qs = qs.filter(channel=channel)
    if promised_from:
        qs = qs.filter(promised_to__gte=promised_from)
    if promised_to:
        qs = qs.filter(promised_to__lte=promised_to)
    if q:
        term = q.strip()
        qs = qs.filter(
            Q(external_id__icontains=term) | Q(shopper_name__icontains=term) | Q(shopper_email__icontains=term)
        )
    return qs.order_by("-created_at", "-id")


def order_get(*, scope: Scope, order_id: int) -> Order:
    """One order inside ``scope`` with its lines; another merchant's is ``order_not_found`` like a missing one."""
    order = (
        Order.objects.within(scope)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("position")))
        .filter(pk=order_id)
        .first()
    )
    if order is None:
        raise NotFound(_("Order not found."), code="order_not_found", details={"order_id": order_id})
    return order


def order_detail(*, scope: Scope, order_id: int) -> Order:
    """One order inside ``scope`` with its lines (prefetched, in position order) and its ``timeline``: every status
    change, oldest first (``core.StateTransition`` rows), as a list set on the order it returns."""
    order = order_get(scope=scope, order_id=order_id)
    order.timeline = list(state_history(aggregate="order", aggregate_id=order.pk))  # type: ignore[attr-defined]
    return order


def order_policy_for(*, scope: Scope, merchant_id: int) -> OrderPolicy | None:
    """The merchant's order policy if it set one (the defaults apply otherwise)."""
    if not scope.allows(merchant_id):
        return None
    return OrderPolicy.objects.within(scope).filter(merchant_id=merchant_id).first()


def release_buffer_minutes_of(*, scope: Scope, merchant_id: int) -> int:
    """The merchant's release buffer in minutes as intake applies it: its policy's, else the default."""
    if not scope.allows(merchant_id):
        return DEFAULT_RELEASE_BUFFER_MINUTES
    policies = OrderPolicy.objects.within(scope).filter(merchant_id=merchant_id)
    minutes = policies.values_list("release_buffer_minutes", flat=True).first()
    return DEFAULT_RELEASE_BUFFER_MINUTES if minutes is None else int(minutes)


# --- The supervisor's figures (read by quai.analytics) --------------------------------------------------------------


def _of_merchants(qs: QuerySet[Any], merchant_ids: Collection[int] | None) -> QuerySet[Any]:
    return qs if merchant_ids is None else qs.filter(merchant_id__in=list(merchant_ids))


def order_counts_by_status(
    *, scope: Scope, merchant_ids: Collection[int] | None, statuses: Collection[str]
) -> dict[str, tuple[int, int]]:
    """Orders and order lines per status (of ``statuses``) inside ``scope`` (and ``merchant_ids``): one query."""
    rows = (
        _of_merchants(Order.objects.within(scope), merchant_ids)
        .filter(status__in=list(statuses))
        .order_by()
        .values_list("status")
        .annotate(orders=Count("id", distinct=True), lines=Count("lines"))
    )
    return {str(status): (int(orders), int(lines)) for status, orders, lines in rows}


def order_steps_count(
    *,
    scope: Scope,
    merchant_ids: Collection[int] | None,
    since: datetime,
    until: datetime,
    by_hour: tzinfo | None = None,
) -> dict[tuple[datetime | None, str, str], int]:
    """Status steps of orders between ``since`` and ``until`` (their audit rows), counted per (from, to) — and per
    local hour (``by_hour``: the time zone the hours are cut in; the key's first item, None without it). One query."""
    rows = _of_merchants(StateTransition.objects.filter(scope.q()), merchant_ids).filter(
        aggregate="order", at__gte=since, at__lt=until
    )
    fields = ["from_status", "to_status"]
    if by_hour is not None:
        rows = rows.annotate(hour=TruncHour("at", tzinfo=by_hour))
        fields.insert(0, "hour")
    found = rows.order_by().values_list(*fields).annotate(n=Count("id"))
    if by_hour is None:
        return {(None, str(a), str(b)): int(n) for a, b, n in found}
    return {(hour, str(a), str(b)): int(n) for hour, a, b, n in found}


def orders_created_count(
    *, scope: Scope, merchant_ids: Collection[int] | None, since: datetime, until: datetime, by_hour: tzinfo
) -> dict[datetime, int]:
    """Orders received between ``since`` and ``until``, per local hour (cut in ``by_hour``). One query."""
    rows = (
        _of_merchants(Order.objects.within(scope), merchant_ids)
        .filter(created_at__gte=since, created_at__lt=until)
        .annotate(hour=TruncHour("created_at", tzinfo=by_hour))
        .order_by()
        .values_list("hour")
        .annotate(n=Count("id"))
    )
    return {hour: int(n) for hour, n in rows}
