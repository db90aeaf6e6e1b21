"""Reads of orders, always inside a tenant scope (``quai.tenants.scope.Scope``, required, never a default)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.db.models import Prefetch, Q, QuerySet
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.core.models import StateTransition
from quai.core.selectors import state_history
from quai.orders.models import Order, OrderLine, OrderPolicy
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


def order_detail_of(*, order: Order, lines: Sequence[OrderLine], timeline: Sequence[StateTransition]) -> Order:
    """``order`` shaped like ``order_detail``'s answer from rows the caller holds (intake's, just written): its lines
    as if prefetched (``order.lines.all()`` answers them without a query) and its ``timeline``."""
    prefetched = order.lines.all()  # lazy: no query
    prefetched._result_cache = sorted(lines, key=lambda line: line.position)
    prefetched._prefetch_done = True  # type: ignore[attr-defined]
    # The cache Django's own prefetch_related fills, under the relation's name.
    order._prefetched_objects_cache = {"lines": prefetched}  # type: ignore[attr-defined]
    order.timeline = list(timeline)  # type: ignore[attr-defined]
    return order


def order_policy_for(*, scope: Scope, merchant_id: int) -> OrderPolicy | None:
    """The merchant's order policy if it set one (the defaults apply otherwise)."""
    if not scope.allows(merchant_id):
        return None
    return OrderPolicy.objects.within(scope).filter(merchant_id=merchant_id).first()
