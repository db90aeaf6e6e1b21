"""Warehouse layout rules that need no database: rack patterns, location codes, opening hours, the site map.

Rack convention (documented once, used everywhere):
- an aisle is a walkway running along the y axis between two rack faces. Aisle number ``i`` (0 for the first aisle
  of the pattern) has its left face at ``x = origin_x + i * aisle_spacing`` and its right face two thirds of the
  spacing further; the last third is the back-to-back gap to the next aisle's left face. So no x is below the
  origin, and on the map racks pair up back to back with the wider walkways between them;
- bays are numbered like a street: odd bays stand on the LEFT of the walkway, even bays on the RIGHT, and bays
  ``2k-1`` and ``2k`` face each other at the same depth;
- depth: bay pair ``k`` (bays 1-2 → 0, 3-4 → 1, …) covers ``[origin_y + k * bay_width, origin_y + (k+1) * bay_width)``
  and its positions split that width evenly; a location's y is the centre of its slot;
- levels stack vertically and share the x/y of their slot;
- codes are ``AISLE-BAY-LEVEL-POSITION`` with two-digit (or wider) numbers: ``A-01-02-03``;
- pick sequence is a serpentine: the first aisle is walked up (depth ascending), the second down, and so on, so a
  route that follows the sequence never walks an aisle back empty-handed; inside a slot, lower levels first.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CENTIMETRE = Decimal("0.01")
MAX_RACK_LOCATIONS = 50_000


class LayoutError(ValueError):
    """A layout input that breaks a rule; ``code`` is the stable error code the service reports."""

    def __init__(self, message: str, *, code: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details: dict[str, object] = details or {}


@dataclass(frozen=True)
class ZoneCloseBlocker:
    """Something another app still holds in a zone that is asked to close (stock, open tasks, …)."""

    kind: str
    message: str
    count: int


# --- Validity windows and opening hours ------------------------------------------------------------------------


def validity_window_check(valid_from: datetime | None, valid_until: datetime | None) -> None:
    """A temporary zone's window must end after it starts (either end may be open)."""
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise LayoutError(
            "The validity window ends before it starts.",
            code="invalid_validity_window",
            details={"valid_from": valid_from.isoformat(), "valid_until": valid_until.isoformat()},
        )


def window_contains(valid_from: datetime | None, valid_until: datetime | None, at: datetime) -> bool:
    """Half-open window [from, until): a zone valid until 20:00 is no longer valid at 20:00."""
    return (valid_from is None or valid_from <= at) and (valid_until is None or at < valid_until)


def opening_days_clean(days: Iterable[int]) -> list[int]:
    """ISO weekdays (1 = Monday … 7 = Sunday), sorted and without repeats."""
    cleaned = sorted(set(days))
    if not cleaned or any(not isinstance(day, int) or day < 1 or day > 7 for day in cleaned):
        raise LayoutError(
            "Opening days are ISO weekdays from 1 (Monday) to 7 (Sunday), at least one.",
            code="invalid_opening_days",
            details={"opening_days": list(days)},
        )
    return cleaned


def opening_hours_check(opens_at: time, closes_at: time) -> None:
    if closes_at <= opens_at:
        raise LayoutError(
            "The site must close after it opens.",
            code="invalid_opening_hours",
            details={"opens_at": opens_at.isoformat(), "closes_at": closes_at.isoformat()},
        )


def time_zone_check(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise LayoutError(
            f"'{name}' is not a known time zone (use an IANA name such as Europe/Paris).",
            code="invalid_time_zone",
            details={"time_zone": name},
        ) from None


# --- Location codes ---------------------------------------------------------------------------------------------

_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,39}$")
_RACK_CODE_RE = re.compile(r"^([A-Z]{1,3}|\d{1,3})-(\d{1,4})-(\d{1,4})-(\d{1,4})$")


def location_code_clean(code: str) -> str:
    """Codes are compared the way a scanner types them: trimmed and upper-cased."""
    cleaned = code.strip().upper()
    if not _CODE_RE.match(cleaned):
        raise LayoutError(
            f"'{code}' is not a valid location code: letters, digits, '-', '_' or '.', up to 40 characters.",
            code="invalid_location_code",
            details={"code": code},
        )
    return cleaned


@dataclass(frozen=True)
class RackAddress:
    aisle: str
    bay: int
    level: int
    position: int


def rack_address_parse(code: str) -> RackAddress | None:
    """``A-01-02-03`` → aisle A, bay 1, level 2, position 3; None for codes of another shape (docks, tables)."""
    match = _RACK_CODE_RE.match(code.strip().upper())
    if match is None:
        return None
    aisle, bay, level, position = match.groups()
    return RackAddress(aisle=aisle, bay=int(bay), level=int(level), position=int(position))


def side_of_bay(bay: int) -> str:
    """Odd bays on the left of the walkway, even bays on the right (street numbering)."""
    return "left" if bay % 2 == 1 else "right"


# --- Rack patterns ----------------------------------------------------------------------------------------------


def aisles_parse(spec: str | Sequence[str]) -> list[str]:
    """``"A-F"``, ``"A,B,C"``, ``"A-C,F"`` or ``["A", "B"]`` → aisle names, in the order given, without repeats.

    Letter ranges run A…Z; numeric ranges (``"1-12"``) keep the width of their widest end (``"01-12"`` → 01…12).
    """
    tokens = (
        [t.strip().upper() for t in spec.split(",")] if isinstance(spec, str) else [s.strip().upper() for s in spec]
    )
    names: list[str] = []
    for token in tokens:
        if not token:
            raise LayoutError(
                "An aisle list has an empty entry.", code="invalid_rack_pattern", details={"aisles": spec}
            )
        if "-" in token:
            start, _, end = token.partition("-")
            start, end = start.strip(), end.strip()
            if len(start) == 1 and len(end) == 1 and start in string.ascii_uppercase and end in string.ascii_uppercase:
                if end < start:
                    raise LayoutError(
                        f"The aisle range '{token}' runs backwards.",
                        code="invalid_rack_pattern",
                        details={"aisles": spec},
                    )
                names.extend(chr(c) for c in range(ord(start), ord(end) + 1))
                continue
            if start.isdigit() and end.isdigit() and int(start) <= int(end):
                width = max(len(start), len(end))
                names.extend(str(n).zfill(width) for n in range(int(start), int(end) + 1))
                continue
            raise LayoutError(
                f"'{token}' is not an aisle range: use letters (A-F) or numbers (1-12).",
                code="invalid_rack_pattern",
                details={"aisles": spec},
            )
        if not re.fullmatch(r"[A-Z]{1,3}|\d{1,3}", token):
            raise LayoutError(
                f"'{token}' is not an aisle name: up to three letters or three digits.",
                code="invalid_rack_pattern",
                details={"aisles": spec},
            )
        names.append(token)
    unique = list(dict.fromkeys(names))
    if len(unique) != len(names):
        raise LayoutError("An aisle is listed twice.", code="invalid_rack_pattern", details={"aisles": spec})
    return unique


def numbers_parse(spec: int | str | Sequence[int], *, what: str) -> list[int]:
    """``30`` → 1…30; ``"1-30"``, ``"1,3,5"``, ``"1-4,7"`` or ``[1, 2]`` → those numbers, ascending, each ≥ 1."""
    numbers: list[int] = []
    if isinstance(spec, bool):
        raise LayoutError(f"'{spec}' is not a list of {what}.", code="invalid_rack_pattern", details={what: spec})
    if isinstance(spec, int):
        numbers = list(range(1, spec + 1))
    elif isinstance(spec, str):
        for token in spec.split(","):
            token = token.strip()
            match = re.fullmatch(r"(\d{1,4})\s*-\s*(\d{1,4})|(\d{1,4})", token)
            if match is None:
                raise LayoutError(
                    f"'{token}' is not a number or a range of {what} (such as 1-30).",
                    code="invalid_rack_pattern",
                    details={what: spec},
                )
            if match.group(3) is not None:
                numbers.append(int(match.group(3)))
            else:
                low, high = int(match.group(1)), int(match.group(2))
                if high < low:
                    raise LayoutError(
                        f"The range '{token}' of {what} runs backwards.",
                        code="invalid_rack_pattern",
                        details={what: spec},
                    )
                numbers.extend(range(low, high + 1))
    else:
        numbers = [int(n) for n in spec]
    if not numbers or any(n < 1 for n in numbers):
        raise LayoutError(
            f"The {what} must be numbered from 1 upwards, at least one.",
            code="invalid_rack_pattern",
            details={what: str(spec)},
        )
    if len(set(numbers)) != len(numbers):
        raise LayoutError(f"One of the {what} is listed twice.", code="invalid_rack_pattern", details={what: str(spec)})
    return sorted(numbers)


@dataclass(frozen=True)
class RackPattern:
    aisles: tuple[str, ...]
    bays: tuple[int, ...]
    levels: tuple[int, ...]
    positions: tuple[int, ...] = (1,)
    origin_x_m: Decimal = Decimal("0")
    origin_y_m: Decimal = Decimal("0")
    aisle_spacing_m: Decimal = Decimal("3")
    bay_width_m: Decimal = Decimal("1.2")

    @property
    def size(self) -> int:
        return len(self.aisles) * len(self.bays) * len(self.levels) * len(self.positions)


@dataclass(frozen=True)
class PlannedLocation:
    code: str
    aisle: str
    bay: int
    level: int
    position: int
    side: str
    x_m: Decimal
    y_m: Decimal
    pick_sequence: int


def rack_pattern_build(
    *,
    aisles: str | Sequence[str],
    bays: int | str | Sequence[int],
    levels: int | str | Sequence[int],
    positions: int | str | Sequence[int] = 1,
    origin_x_m: Decimal | float | int | str = 0,
    origin_y_m: Decimal | float | int | str = 0,
    aisle_spacing_m: Decimal | float | int | str = 3,
    bay_width_m: Decimal | float | int | str = Decimal("1.2"),
) -> RackPattern:
    """Parse and check what a person typed into a pattern; refuse sizes and spacings that make no rack."""
    spacing = Decimal(str(aisle_spacing_m))
    width = Decimal(str(bay_width_m))
    if spacing <= 0 or width <= 0:
        raise LayoutError(
            "Aisle spacing and bay width must be more than 0 m.",
            code="invalid_rack_pattern",
            details={"aisle_spacing_m": str(spacing), "bay_width_m": str(width)},
        )
    pattern = RackPattern(
        aisles=tuple(aisles_parse(aisles)),
        bays=tuple(numbers_parse(bays, what="bays")),
        levels=tuple(numbers_parse(levels, what="levels")),
        positions=tuple(numbers_parse(positions, what="positions")),
        origin_x_m=Decimal(str(origin_x_m)),
        origin_y_m=Decimal(str(origin_y_m)),
        aisle_spacing_m=spacing,
        bay_width_m=width,
    )
    if pattern.size > MAX_RACK_LOCATIONS:
        raise LayoutError(
            f"This pattern makes {pattern.size} locations; split it (at most {MAX_RACK_LOCATIONS} at once).",
            code="rack_pattern_too_large",
            details={"size": pattern.size, "max": MAX_RACK_LOCATIONS},
        )
    return pattern


def _metres(value: Decimal) -> Decimal:
    return value.quantize(CENTIMETRE, rounding=ROUND_HALF_UP)


def rack_pattern_expand(pattern: RackPattern, *, first_sequence: int = 1) -> list[PlannedLocation]:
    """Every location of the pattern, in pick-sequence order (serpentine across aisles, see the module doc)."""
    width_digits = max(2, len(str(max(*pattern.bays, *pattern.levels, *pattern.positions))))
    positions = pattern.positions
    slot_width = pattern.bay_width_m / len(positions)
    # Two thirds walkway, one third back-to-back racks (see the module doc).
    face_gap = pattern.aisle_spacing_m * 2 / 3
    pair_of = {bay: (bay - 1) // 2 for bay in pattern.bays}
    planned: list[PlannedLocation] = []
    sequence = first_sequence
    for aisle_index, aisle in enumerate(pattern.aisles):
        left_x = pattern.origin_x_m + aisle_index * pattern.aisle_spacing_m
        upwards = aisle_index % 2 == 0
        # One stop per depth along the walkway: the picker faces both sides of a bay pair at once.
        stops = sorted({(pair_of[bay], p_index) for bay in pattern.bays for p_index in range(len(positions))})
        if not upwards:
            stops.reverse()
        bays_by_pair: dict[int, list[int]] = {}
        for bay in pattern.bays:
            bays_by_pair.setdefault(pair_of[bay], []).append(bay)
        for pair, p_index in stops:
            y = pattern.origin_y_m + pair * pattern.bay_width_m + (Decimal(p_index) + Decimal("0.5")) * slot_width
            for bay in bays_by_pair[pair]:
                side = side_of_bay(bay)
                x = left_x if side == "left" else left_x + face_gap
                for level in pattern.levels:
                    position = positions[p_index]
                    planned.append(
                        PlannedLocation(
                            code=f"{aisle}-{bay:0{width_digits}d}-{level:0{width_digits}d}-{position:0{width_digits}d}",
                            aisle=aisle,
                            bay=bay,
                            level=level,
                            position=position,
                            side=side,
                            x_m=_metres(x),
                            y_m=_metres(y),
                            pick_sequence=sequence,
                        )
                    )
                    sequence += 1
    return planned


# --- The site map (SVG) -----------------------------------------------------------------------------------------

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
