"""The supervisor's board (``/ops/supervisor/``): one site's backlog per stage, today's cut-offs and whether each will
be made, the last hour's throughput, the orders at risk, staff per zone against plan and the day's backlog curve.

The page holds a panel that htmx fetches again every ``REFRESH_SECONDS`` (``board_panel``): one read model per
refresh (``selectors.supervisor_board``), a handful of aggregate queries. Desk first (two columns), one column on a
tablet held upright.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from quai.analytics import domain, selectors
from quai.core.errors import NotFound
from quai.tenants.access import staff_role_required, staff_scope
from quai.warehouse.selectors import site_list

REFRESH_SECONDS = 10
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 560, 190, 26

supervisor_required = staff_role_required(("admin", "supervisor"), _("This screen is for supervisors."))

STAGE_LABELS = {
    domain.RECEIVED: _("Received / allocated"),
    domain.RELEASED: _("Released, awaiting a wave"),
    domain.PICKING: _("Picking"),
    domain.PACKED: _("Packed, awaiting the truck"),
    "backordered": _("Backordered"),
    "on_hold": _("On hold"),
}
# Orders counted, in the plural: a context of their own, as other catalogues translate the same words as a status.
STEP_LABELS = {
    "received": pgettext_lazy("orders in the last hour", "Received"),
    "allocated": pgettext_lazy("orders in the last hour", "Allocated"),
    "released": pgettext_lazy("orders in the last hour", "Released"),
    "picking": pgettext_lazy("orders in the last hour", "Picking started"),
    "packed": pgettext_lazy("orders in the last hour", "Packed"),
    "shipped": pgettext_lazy("orders in the last hour", "Shipped"),
}
VERDICT_LABELS = {
    domain.ON_TRACK: _("On track"),
    domain.AT_RISK: _("Will be late"),
    domain.STALLED: _("Nothing packed in the last hour"),
    domain.READY: _("All packed"),
    domain.MADE: _("Made"),
    domain.MISSED: _("Missed"),
    domain.NONE: _("Nothing due"),
}
ACTIVITY_LABELS = {
    "receive": _("Receiving"),
    "putaway": _("Putaway"),
    "pick": _("Picking"),
    "pack": _("Packing"),
    "ship": _("Shipping"),
    "returns": _("Returns"),
    "customer_service": _("Customer service"),
}
STAGE_COLOURS = {
    domain.RECEIVED: "#94a3b8",
    domain.RELEASED: "#60a5fa",
    domain.PICKING: "#f59e0b",
    domain.PACKED: "#16a34a",
}


def _context(request: HttpRequest) -> dict[str, Any]:
    site = selectors.board_site(site=request.GET.get("site"))
    board = selectors.supervisor_board(scope=staff_scope(request.user), site=site)
    bands, top, ticks = domain.stacked_bands(board.curve, width=CHART_WIDTH, height=CHART_HEIGHT, pad=CHART_PAD)
    next_step = {domain.RECEIVED: "released", domain.RELEASED: "picking", domain.PICKING: "packed"}
    return {
        "screen": "supervisor",
        "board": board,
        "site": site,
        "sites": list(site_list()[:20]),
        "refresh": REFRESH_SECONDS,
        "stages": [
            {
                "key": figure.stage,
                "label": STAGE_LABELS[figure.stage],
                "orders": figure.orders,
                "lines": figure.lines,
                "out_per_hour": board.throughput.get(next_step.get(figure.stage, "shipped"), 0),
                "colour": STAGE_COLOURS[figure.stage],
            }
            for figure in board.backlog
        ],
        "aside": [{"label": STAGE_LABELS[f.stage], "orders": f.orders} for f in board.aside],
        "steps": [{"label": STEP_LABELS[key], "orders": n} for key, n in board.throughput.items()],
        "lines": [
            {"label": ACTIVITY_LABELS.get(key, key), "lines": n} for key, n in sorted(board.lines_last_hour.items())
        ],
        "cutoffs": [{"row": row, "label": VERDICT_LABELS[row.verdict]} for row in board.cutoffs],
        "at_risk": [
            {"row": row, "url": reverse("admin:orders_order_change", args=[row.order_id])} for row in board.at_risk
        ],
        "staffing": [
            {"row": row, "activity": ACTIVITY_LABELS.get(row.activity, row.activity), "gap": row.rostered < row.planned}
            for row in board.staffing or []
        ],
        "chart": {
            "width": CHART_WIDTH,
            "height": CHART_HEIGHT,
            "pad": CHART_PAD,
            "top": top,
            "bands": [
                {"points": b.points, "colour": STAGE_COLOURS[b.stage], "label": STAGE_LABELS[b.stage]} for b in bands
            ],
            "ticks": ticks,
            "base": CHART_HEIGHT - CHART_PAD,
        },
    }


@supervisor_required
def board(request: HttpRequest) -> HttpResponse:
    try:
        context = _context(request)
    except NotFound as missing:
        return render(
            request, "analytics/no_site.html", {"screen": "supervisor", "message": missing.message}, status=404
        )
    return render(request, "analytics/board.html", context)


@supervisor_required
def board_panel(request: HttpRequest) -> HttpResponse:
    try:
        context = _context(request)
    except NotFound as missing:
        return HttpResponse(str(missing.message), status=404)
    return render(request, "analytics/_panel.html", context)
