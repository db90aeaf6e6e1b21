"""The site map: an SVG drawing of a site's zones and locations, for supervisors (back office and API).

Presentation, kept apart from the layout rules of ``domain.py``: ``site_map_render`` is pure (plain data in, the
same bytes out for the same layout, tested without a database); ``site_map_data`` reads the site through the
selectors and translates the words the map shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from django.utils.translation import gettext as _

from quai.warehouse import selectors
from quai.warehouse.models import LocationStatus, Site, ZoneKind, ZoneStatus

KIND_COLOURS: dict[str, str] = {
    "receiving": "#1f77b4",
    "storage": "#8c564b",
    "picking": "#2ca02c",
    "processing": "#9467bd",
    "packing": "#ff7f0e",
    "shipping": "#17becf",
    "returns": "#e377c2",
    "quarantine": "#d62728",
}
_FALLBACK_COLOUR = "#7f7f7f"


@dataclass(frozen=True)
class MapZone:
    id: int
    code: str
    name: str
    kind: str
    closed: bool = False
    temporary: bool = False


@dataclass(frozen=True)
class MapLocation:
    code: str
    zone_id: int
    x_m: Decimal
    y_m: Decimal
    aisle: str = ""
    blocked: bool = False


@dataclass(frozen=True)
class MapText:
    """Every word the map shows, translated by the caller (the domain stays free of Django)."""

    title: str
    kind_labels: Mapping[str, str]
    legend_heading: str = "Zone kinds"
    blocked: str = "blocked location"
    closed: str = "closed zone (dashed)"
    temporary: str = "temporary"
    empty: str = "No locations yet."
    metres: str = "m"
    subtitle: str = ""


@dataclass(frozen=True)
class SiteMap:
    zones: Sequence[MapZone]
    locations: Sequence[MapLocation]
    text: MapText
    extra_kinds: Sequence[str] = field(default_factory=tuple)


def _fmt(value: float) -> str:
    """Fixed two-decimal numbers keep the output byte-for-byte deterministic."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _nice_scale_length(metres_per_100px: float) -> int:
    for candidate in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000):
        if candidate >= metres_per_100px:
            return candidate
    return 1000


def site_map_render(site_map: SiteMap) -> str:
    """An SVG picture of a site: zones as tinted rectangles around their locations, each location as a small square
    in its zone kind's colour (blocked ones crossed out), aisle labels, a legend by kind, a scale in metres and a
    title. The same input always gives the same bytes."""
    text = site_map.text
    zones = sorted(site_map.zones, key=lambda z: (z.code, z.id))
    zone_by_id = {zone.id: zone for zone in zones}
    locations = sorted(site_map.locations, key=lambda loc: (loc.code, loc.zone_id))

    margin = 24.0
    title_h = 58.0 if text.subtitle else 40.0
    legend_w = 230.0
    if locations:
        xs = [float(loc.x_m) for loc in locations]
        ys = [float(loc.y_m) for loc in locations]
        min_x, max_x, min_y, max_y = min(xs) - 1.5, max(xs) + 1.5, min(ys) - 2.0, max(ys) + 1.5
    else:
        min_x, max_x, min_y, max_y = 0.0, 20.0, 0.0, 10.0
    span_x, span_y = max_x - min_x, max_y - min_y
    # Fit the drawing in about 900 × 640 px, but never so small that a slot vanishes nor so big it is a poster.
    scale = min(900.0 / span_x, 640.0 / span_y)
    scale = max(6.0, min(scale, 60.0))
    plan_w, plan_h = span_x * scale, span_y * scale
    plan_x0, plan_y0 = margin, margin + title_h
    kinds_present = sorted({z.kind for z in zones} | set(site_map.extra_kinds))
    legend_rows = len(kinds_present) + 3
    width = plan_x0 + plan_w + margin + legend_w
    height = max(plan_y0 + plan_h + 56.0, plan_y0 + 30.0 + legend_rows * 22.0 + margin)

    def px(x_m: float) -> float:
        return plan_x0 + (x_m - min_x) * scale

    def py(y_m: float) -> float:
        # Warehouse y grows "up" the plan; SVG y grows down the page.
        return plan_y0 + (max_y - y_m) * scale

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(width)}" height="{_fmt(height)}" '
        f'viewBox="0 0 {_fmt(width)} {_fmt(height)}" font-family="sans-serif" role="img" '
        f"aria-label={quoteattr(text.title)}>",
        f"<title>{escape(text.title)}</title>",
        f'<rect x="0" y="0" width="{_fmt(width)}" height="{_fmt(height)}" fill="#ffffff"/>',
        f'<text x="{_fmt(margin)}" y="{_fmt(margin + 14)}" font-size="20" font-weight="bold" fill="#222">'
        f"{escape(text.title)}</text>",
    ]
    if text.subtitle:
        out.append(
            f'<text x="{_fmt(margin)}" y="{_fmt(margin + 36)}" font-size="13" fill="#555">'
            f"{escape(text.subtitle)}</text>"
        )
    out.append(
        f'<rect class="plan" x="{_fmt(plan_x0)}" y="{_fmt(plan_y0)}" width="{_fmt(plan_w)}" height="{_fmt(plan_h)}" '
        'fill="#fafafa" stroke="#bbb"/>'
    )

    if not locations:
        out.append(
            f'<text x="{_fmt(plan_x0 + plan_w / 2)}" y="{_fmt(plan_y0 + plan_h / 2)}" font-size="16" fill="#777" '
            f'text-anchor="middle">{escape(text.empty)}</text>'
        )

    # Zones: one rectangle around each zone's locations.
    by_zone: dict[int, list[MapLocation]] = {}
    for loc in locations:
        by_zone.setdefault(loc.zone_id, []).append(loc)
    # Less than half the 1 m back-to-back gap of the default spacing, so neighbouring zones never overlap.
    pad = 0.4
    for zone in zones:
        members = by_zone.get(zone.id)
        if not members:
            continue
        colour = KIND_COLOURS.get(zone.kind, _FALLBACK_COLOUR)
        zx0 = min(float(m.x_m) for m in members) - pad
        zx1 = max(float(m.x_m) for m in members) + pad
        zy0 = min(float(m.y_m) for m in members) - pad
        zy1 = max(float(m.y_m) for m in members) + pad
        dash = ' stroke-dasharray="6 4"' if zone.closed else ""
        label = f"{zone.code} — {zone.name}" + (f" ({text.temporary})" if zone.temporary else "")
        out.append(
            f'<g class="zone" data-zone={quoteattr(zone.code)} data-kind={quoteattr(zone.kind)}>'
            f"<title>{escape(label)}</title>"
            f'<rect x="{_fmt(px(zx0))}" y="{_fmt(py(zy1))}" width="{_fmt((zx1 - zx0) * scale)}" '
            f'height="{_fmt((zy1 - zy0) * scale)}" fill="{colour}" fill-opacity="{"0.06" if zone.closed else "0.14"}" '
            f'stroke="{colour}" stroke-width="1.5"{dash} rx="3"/>'
            f'<text x="{_fmt(px(zx0) + 3)}" y="{_fmt(py(zy1) - 4)}" font-size="12" font-weight="bold" '
            f'fill="{colour}">{escape(label)}</text></g>'
        )

    # Locations: levels share a slot's x/y, so draw one square per slot and zone, marked if any level is blocked.
    slots: dict[tuple[Decimal, Decimal, int], list[MapLocation]] = {}
    for loc in locations:
        slots.setdefault((loc.x_m, loc.y_m, loc.zone_id), []).append(loc)
    size = max(4.0, min(0.7 * scale, 16.0))
    out.append('<g class="locations">')
    for (x_m, y_m, zone_id), members in sorted(slots.items(), key=lambda item: (item[0][0], item[0][1], item[0][2])):
        zone_or_none = zone_by_id.get(zone_id)
        colour = KIND_COLOURS.get(zone_or_none.kind, _FALLBACK_COLOUR) if zone_or_none else _FALLBACK_COLOUR
        cx, cy = px(float(x_m)), py(float(y_m))
        blocked = [m for m in members if m.blocked]
        codes = ", ".join(m.code for m in members)
        tip = codes + (f" — {text.blocked}: {', '.join(m.code for m in blocked)}" if blocked else "")
        out.append(
            f'<g class="slot{" blocked" if blocked else ""}"><title>{escape(tip)}</title>'
            f'<rect x="{_fmt(cx - size / 2)}" y="{_fmt(cy - size / 2)}" width="{_fmt(size)}" height="{_fmt(size)}" '
            f'fill="{colour}" stroke="#333" stroke-width="0.5"/>'
        )
        if blocked:
            h = size / 2
            out.append(
                f'<path d="M{_fmt(cx - h)} {_fmt(cy - h)}L{_fmt(cx + h)} {_fmt(cy + h)}M{_fmt(cx - h)} {_fmt(cy + h)}'
                f'L{_fmt(cx + h)} {_fmt(cy - h)}" stroke="#000" stroke-width="2"/>'
            )
        out.append("</g>")
    out.append("</g>")

    # Aisles: a light band along each walkway (between its two faces) and the aisle's name below its zone outline.
    aisles: dict[str, list[MapLocation]] = {}
    for loc in locations:
        if loc.aisle:
            aisles.setdefault(loc.aisle, []).append(loc)
    bands: list[str] = []
    for aisle, members in sorted(aisles.items()):
        ax0 = min(float(m.x_m) for m in members)
        ax1 = max(float(m.x_m) for m in members)
        ay0 = min(float(m.y_m) for m in members)
        ay1 = max(float(m.y_m) for m in members)
        if ax1 > ax0:
            bands.append(
                f'<rect class="walkway" x="{_fmt(px(ax0) + size / 2 + 2)}" y="{_fmt(py(ay1) - size / 2)}" '
                f'width="{_fmt(max(0.0, (ax1 - ax0) * scale - size - 4))}" height="{_fmt((ay1 - ay0) * scale + size)}" '
                'fill="#e6e6e6"/>'
            )
        out.append(
            f'<text class="aisle" x="{_fmt(px((ax0 + ax1) / 2))}" y="{_fmt(py(ay0 - pad) + 16)}" font-size="13" '
            f'font-weight="bold" text-anchor="middle" fill="#333">{escape(aisle)}</text>'
        )
    # Walkways go under the slots: insert them right after the zone outlines.
    slots_at = out.index('<g class="locations">')
    out[slots_at:slots_at] = bands

    # Scale bar: a round number of metres about 100 px long.
    bar_m = _nice_scale_length(100.0 / scale)
    bar_px = bar_m * scale
    sx, sy = plan_x0, plan_y0 + plan_h + 30
    out.append(
        f'<g class="scale"><path d="M{_fmt(sx)} {_fmt(sy)}h{_fmt(bar_px)}M{_fmt(sx)} {_fmt(sy - 5)}v10'
        f'M{_fmt(sx + bar_px)} {_fmt(sy - 5)}v10" stroke="#222" stroke-width="2" fill="none"/>'
        f'<text x="{_fmt(sx + bar_px + 8)}" y="{_fmt(sy + 4)}" font-size="12" fill="#222">'
        f"{bar_m} {escape(text.metres)}</text></g>"
    )

    # Legend by kind, plus the meaning of the marks.
    lx, ly = plan_x0 + plan_w + margin, plan_y0
    out.append(
        f'<g class="legend"><text x="{_fmt(lx)}" y="{_fmt(ly + 12)}" font-size="13" font-weight="bold" fill="#222">'
        f"{escape(text.legend_heading)}</text>"
    )
    row_y = ly + 24
    for kind in kinds_present:
        colour = KIND_COLOURS.get(kind, _FALLBACK_COLOUR)
        out.append(
            f'<rect x="{_fmt(lx)}" y="{_fmt(row_y)}" width="14" height="14" fill="{colour}" stroke="#333" '
            f'stroke-width="0.5"/><text x="{_fmt(lx + 22)}" y="{_fmt(row_y + 11)}" font-size="12" fill="#222">'
            f"{escape(text.kind_labels.get(kind, kind))}</text>"
        )
        row_y += 22
    out.append(
        f'<rect x="{_fmt(lx)}" y="{_fmt(row_y)}" width="14" height="14" fill="#ddd" stroke="#333" stroke-width="0.5"/>'
        f'<path d="M{_fmt(lx)} {_fmt(row_y)}l14 14M{_fmt(lx)} {_fmt(row_y + 14)}l14 -14" stroke="#000" '
        f'stroke-width="2"/><text x="{_fmt(lx + 22)}" y="{_fmt(row_y + 11)}" font-size="12" fill="#222">'
        f"{escape(text.blocked)}</text>"
    )
    row_y += 22
    out.append(
        f'<rect x="{_fmt(lx)}" y="{_fmt(row_y)}" width="14" height="14" fill="none" stroke="#555" '
        f'stroke-dasharray="3 2"/><text x="{_fmt(lx + 22)}" y="{_fmt(row_y + 11)}" font-size="12" fill="#222">'
        f"{escape(text.closed)}</text>"
    )
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def site_map_data(site: Site) -> SiteMap:
    """Plain data for ``site_map_render``: every zone and location of ``site`` and the words, translated."""
    zones = [
        MapZone(
            id=zone.pk,
            code=zone.code,
            name=zone.name,
            kind=zone.kind,
            closed=zone.status == ZoneStatus.CLOSED,
            temporary=zone.is_temporary,
        )
        for zone in selectors.zone_list(site_id=site.pk)
    ]
    locations = [
        MapLocation(
            code=row["code"],
            zone_id=row["zone_id"],
            x_m=row["x_m"],
            y_m=row["y_m"],
            aisle=row["aisle"],
            blocked=row["status"] == LocationStatus.BLOCKED,
        )
        for row in selectors.location_list(site_id=site.pk)
        .order_by("code")
        .values("code", "zone_id", "x_m", "y_m", "aisle", "status")
    ]
    blocked = sum(1 for loc in locations if loc.blocked)
    text = MapText(
        title=_("%(name)s (%(code)s) — site map") % {"name": site.name, "code": site.code},
        subtitle=_("zones: %(zones)d · locations: %(locations)d · blocked: %(blocked)d")
        % {"zones": len(zones), "locations": len(locations), "blocked": blocked},
        kind_labels={str(kind.value): str(kind.label) for kind in ZoneKind},
        legend_heading=_("Zone kinds"),
        blocked=_("blocked location"),
        closed=_("closed zone (dashed)"),
        temporary=_("temporary"),
        empty=_("No locations yet."),
        metres=_("m"),
    )
    return SiteMap(zones=zones, locations=locations, text=text)


def site_map_svg(*, site: Site) -> str:
    """The SVG map of ``site``, as the back office and ``GET /sites/{id}/map.svg`` serve it."""
    return site_map_render(site_map_data(site))
