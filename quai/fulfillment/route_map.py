"""A batch's route drawn on the site's map (``quai.warehouse.site_map``): the polyline walked, the stops numbered.

The map is the site map's own SVG; the route is laid over it with the same metres → pixels mapping, which
``_plan_transform`` reads back from the drawing itself (the plan's rectangle and one drawn location), so the two
cannot drift apart if the map's layout changes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from xml.sax.saxutils import escape

from django.utils.translation import gettext as _

from quai.fulfillment.models import PickBatch
from quai.warehouse.site_map import site_map_data, site_map_render


def _fmt(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


_PLAN = re.compile(r'<rect class="plan" x="([-\d.]+)" y="([-\d.]+)" width="([-\d.]+)" height="([-\d.]+)"')


def _plan_transform(svg: str, xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float, float]:
    """(x0 px, y0 px, scale, max_y m) of the site map: px = x0 + (x - min_x) * scale; py = y0 + (max_y - y) * scale.

    The map frames its locations with 1.5 m left/right and 2 m below / 1.5 m above (``site_map_render``); the plan
    rectangle's width then gives the scale."""
    match = _PLAN.search(svg)
    if match is None:  # pragma: no cover - the site map always draws its plan
        raise ValueError("no plan in the site map")
    x0, y0, width, _height = (float(v) for v in match.groups())
    min_x, max_x = min(xs) - 1.5, max(xs) + 1.5
    scale = width / (max_x - min_x)
    return x0 - min_x * scale, y0, scale, max(ys) + 1.5


def route_svg(*, batch: PickBatch) -> str:
    """The site map with the batch's route over it (red line, numbered stops, the depot as a black square)."""
    data = site_map_data(batch.site)
    title = _("Batch %(batch)s — route %(length).0f m (%(routing)s)") % {
        "batch": batch,
        "length": batch.route_m,
        "routing": batch.routing,
    }
    text = data.text.__class__(**{**data.text.__dict__, "subtitle": _route_subtitle(batch)})
    svg = site_map_render(data.__class__(zones=data.zones, locations=data.locations, text=text))
    if not data.locations or not batch.route:
        return svg
    stops: list[tuple[float, float, str]] = []
    seen: set[int] = set()
    for task in batch.tasks.select_related("location").order_by("sequence", "pk"):
        if task.location_id not in seen:
            seen.add(task.location_id)
            stops.append((float(task.location.x_m), float(task.location.y_m), task.location.code))
    return route_overlay(
        svg,
        xs=[float(loc.x_m) for loc in data.locations],
        ys=[float(loc.y_m) for loc in data.locations],
        path=[(float(x), float(y)) for x, y in batch.route],
        stops=stops,
        title=title,
    )


def route_overlay(
    svg: str,
    *,
    xs: Sequence[float],
    ys: Sequence[float],
    path: Sequence[tuple[float, float]],
    stops: Sequence[tuple[float, float, str]],
    title: str,
    colour: str = "#d00",
) -> str:
    """Lay a route over a site map's SVG (``xs``/``ys``: the map's location coordinates, which frame it)."""
    origin_x, origin_y, scale, max_y = _plan_transform(svg, xs, ys)

    def px(x: float) -> float:
        return origin_x + x * scale

    def py(y: float) -> float:
        return origin_y + (max_y - y) * scale

    points = " ".join(f"{_fmt(px(x))},{_fmt(py(y))}" for x, y in path)
    overlay = [
        f'<g class="route"><title>{escape(title)}</title>',
        f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="3" stroke-opacity="0.8" '
        'stroke-linejoin="round"/>',
    ]
    depot_x, depot_y = path[0]
    overlay.append(
        f'<rect class="depot" x="{_fmt(px(depot_x) - 6)}" y="{_fmt(py(depot_y) - 6)}" width="12" height="12" '
        'fill="#000"/>'
    )
    for number, (x, y, code) in enumerate(stops, start=1):
        cx, cy = px(x), py(y)
        overlay.append(
            f'<g class="stop"><circle cx="{_fmt(cx)}" cy="{_fmt(cy)}" r="8" fill="#fff" stroke="{colour}" '
            f'stroke-width="2"/><text x="{_fmt(cx)}" y="{_fmt(cy + 4)}" font-size="10" text-anchor="middle" '
            f'fill="{colour}" font-weight="bold">{number}</text><title>{escape(code)}</title></g>'
        )
    overlay.append("</g>")
    return svg.replace("</svg>", "\n".join(overlay) + "\n</svg>")


def _route_subtitle(batch: PickBatch) -> str:
    parts = [_("route %(m).0f m") % {"m": batch.route_m}]
    if batch.s_shape_m is not None:
        parts.append(_("S-shape %(m).0f m") % {"m": batch.s_shape_m})
    if batch.largest_gap_m is not None:
        parts.append(_("largest gap %(m).0f m") % {"m": batch.largest_gap_m})
    parts.append(_("order by order %(m).0f m") % {"m": batch.order_by_order_m})
    return f"{batch} · " + " · ".join(parts)
