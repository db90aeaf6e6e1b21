"""The supervisor's promise page: kept rate by merchant, carrier and day (an inline SVG chart), the orders at risk
now and the lanes whose promises were widened. The at-risk list refreshes itself (htmx) every 30 seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy

from quai.promise import selectors
from quai.tenants.access import staff_role_required, staff_scope

SUPERVISOR_GROUPS = ("admin", "supervisor")
supervisor_required = staff_role_required(SUPERVISOR_GROUPS, gettext_lazy("This screen is for supervisors."))

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 200, 32


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    rate: float | None
    total: int
    low: bool


def _day_bars(rates: list[selectors.KeptRate], threshold: float = 0.95) -> list[Bar]:
    """One bar per day (kept rate, 0–100 %), in chart coordinates; a day with no decided promise has no bar."""
    if not rates:
        return []
    inner = CHART_WIDTH - 2 * CHART_PAD
    step = inner / len(rates)
    bars = []
    for index, rate in enumerate(rates):
        share = rate.rate
        height = (CHART_HEIGHT - 2 * CHART_PAD) * (share or 0)
        bars.append(
            Bar(
                x=round(CHART_PAD + index * step + step * 0.15, 1),
                y=round(CHART_HEIGHT - CHART_PAD - height, 1),
                width=round(step * 0.7, 1),
                height=round(height, 1),
                label=rate.key[5:],
                rate=share,
                total=rate.total,
                low=share is not None and share < threshold,
            )
        )
    return bars


def _context(request: HttpRequest) -> dict[str, Any]:
    scope = staff_scope(request.user)
    rates = selectors.kept_rates(scope=scope)
    threshold_y = CHART_HEIGHT - CHART_PAD - (CHART_HEIGHT - 2 * CHART_PAD) * 0.95
    return {
        "by_merchant": rates["merchant"],
        "by_carrier": rates["carrier"],
        "bars": _day_bars(rates["day"]),
        "chart": {"width": CHART_WIDTH, "height": CHART_HEIGHT, "pad": CHART_PAD, "threshold_y": threshold_y},
        "at_risk": selectors.at_risk_now(scope=scope),
        "widened": selectors.widened_lanes(),
    }


@supervisor_required
def promise_board(request: HttpRequest) -> HttpResponse:
    return render(request, "promise/board.html", _context(request))


@supervisor_required
def promise_at_risk(request: HttpRequest) -> HttpResponse:
    return render(request, "promise/_at_risk.html", {"at_risk": selectors.at_risk_now(scope=staff_scope(request.user))})
