"""The shopper's returns portal on the tracking page: lines and a reason chosen within the merchant's return window
become an RMA whose label is asked for at once (``rma_open``), or an exchange. The shopper acts on their own order
only (the signed link proves it); the window, the quantities left to return and the reasons are checked here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict
from quai.orders import selectors as orders_selectors
from quai.service import domain, warehouse
from quai.service.models import Category, Rma, RmaKind, RmaLine, RmaStatus
from quai.service.services.actions import rma_open
from quai.service.services.tickets import service_settings
from quai.tenants.scope import Scope

#: The reasons a shopper may give (the agents' categories that describe a return).
PORTAL_REASONS = (Category.RETURN, Category.DAMAGED, Category.WRONG_ITEM, Category.MISSING_ITEM, Category.EXCHANGE)


@dataclass(frozen=True)
class ReturnableLine:
    line_id: int
    sku_code: str
    name: str
    quantity: int  # still returnable: sent less what open returns already cover


@dataclass(frozen=True)
class PortalState:
    window_open: bool
    until: date | None
    lines: list[ReturnableLine]


def _left_since(order: Any) -> date | None:
    """The day the order left: its first parcel delivered, else its first shipped step (local dates)."""
    parcels = warehouse.order_parcels(scope=Scope.merchant(order.merchant_id), order_id=order.pk)
    delivered = [p.delivered_at for p in parcels if p.delivered_at]
    if delivered:
        return timezone.localdate(min(delivered))
    timeline = getattr(order, "timeline", None)
    if timeline is None:
        detail = orders_selectors.order_detail(scope=Scope.merchant(order.merchant_id), order_id=order.pk)
        timeline = detail.timeline  # type: ignore[attr-defined]  # set by order_detail
    left = [step.at for step in timeline if step.to_status in ("partially_shipped", "shipped", "delivered")]
    return timezone.localdate(min(left)) if left else None


def portal_state(*, order: Any) -> PortalState:
    days = service_settings(merchant_id=order.merchant_id).return_window_days
    since = _left_since(order)
    today = clock.today()
    open_ = domain.return_window_open(since=since, today=today, days=days)
    open_statuses = [s for s in RmaStatus.values if s != RmaStatus.CANCELLED]
    taken = dict(
        RmaLine.objects.filter(order_line__order_id=order.pk, rma__status__in=open_statuses)
        .values("order_line_id")
        .annotate(total=Sum("quantity"))
        .values_list("order_line_id", "total")
    )
    lines = [
        ReturnableLine(line.pk, line.sku_code, line.sku.name, line.quantity - taken.get(line.pk, 0))
        for line in order.lines.select_related("sku").order_by("position")
    ]
    until = since + timedelta(days=days) if since else None
    return PortalState(window_open=open_, until=until, lines=[line for line in lines if line.quantity > 0])


def portal_return_open(
    *, order: Any, lines: Sequence[Mapping[str, Any]], reason: str, exchange: bool, note: str = ""
) -> Rma:
    """Open the shopper's return (label asked at once) or exchange, inside the merchant's return window."""
    state = portal_state(order=order)
    if not state.window_open:
        raise Conflict(
            _("The return window of order %(order)s is closed.") % {"order": order.external_id},
            code="return_window_closed",
            details={"order_id": order.pk, "until": state.until.isoformat() if state.until else None},
        )
    if reason not in PORTAL_REASONS:
        reason = Category.EXCHANGE if exchange else Category.RETURN
    return rma_open(
        scope=Scope.merchant(order.merchant_id),
        order_id=order.pk,
        actor="returns portal",
        lines=lines,
        reason=reason,
        kind=RmaKind.EXCHANGE if exchange else RmaKind.RETURN,
        note=note[:2000],
        request_label=True,
    )


def order_rmas(*, order: Any) -> list[Rma]:
    """The order's returns, newest first, for the shopper's page (the order is the shopper's, by the signed link)."""
    return list(Rma.objects.within(Scope.merchant(order.merchant_id)).filter(order_id=order.pk).order_by("-id"))
