"""Warehouse layout rules that need no database: rack patterns, location codes, opening hours.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal
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
            if start.isdecimal() and end.isdecimal() and int(start) <= int(end):
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
