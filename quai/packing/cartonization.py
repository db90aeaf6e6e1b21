# mypy: disallow-untyped-defs, disallow-incomplete-defs, disallow-any-generics, warn-return-any, disallow-untyped-calls
"""Cartonization: which box a parcel's items go in.

The rule: the smallest packaging (by inner volume, then tare) whose maximum weight holds the items and whose inner
dimensions hold them in 3D. Exact 3D bin packing is NP-hard, so the fit is decided by a constructive packer
(extreme points, largest item first, every one of the six orientations): when it says "fits" it returns the
placement that proves it (each item's corner and oriented size, inside the box, no two overlapping), so a suggested
box is never one the items cannot go in. It can miss a fit a cleverer arrangement would find; the operator may
then choose a smaller box by scanning its code. A single item always fits a box whose sorted dimensions dominate
its own (the packer tries every orientation at the origin).

Pure (no Django), mypy strict.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations


@dataclass(frozen=True)
class Item:
    length_mm: int
    width_mm: int
    height_mm: int
    weight_g: int

    @property
    def volume(self) -> int:
        return self.length_mm * self.width_mm * self.height_mm


@dataclass(frozen=True)
class Box:
    code: str
    length_mm: int
    width_mm: int
    height_mm: int
    max_weight_g: int
    tare_g: int = 0

    @property
    def volume(self) -> int:
        return self.length_mm * self.width_mm * self.height_mm


@dataclass(frozen=True)
class Placement:
    """Where one item sits: its corner and its size as oriented."""

    x: int
    y: int
    z: int
    length: int
    width: int
    height: int

    def overlaps(self, other: Placement) -> bool:
        return (
            self.x < other.x + other.length
            and other.x < self.x + self.length
            and self.y < other.y + other.width
            and other.y < self.y + self.width
            and self.z < other.z + other.height
            and other.z < self.z + self.height
        )


@dataclass(frozen=True)
class Suggestion:
    box: Box
    placements: tuple[Placement, ...]  # in the order of the items given
    weight_g: int  # items + tare


def _orientations(item: Item) -> list[tuple[int, int, int]]:
    sizes = (item.length_mm, item.width_mm, item.height_mm)
    return sorted({(a, b, c) for a, b, c in permutations(sizes)})


def pack(items: Sequence[Item], box: Box) -> tuple[Placement, ...] | None:
    """A placement of every item inside ``box`` (in the items' order), or None when the packer finds none."""
    if sum(item.volume for item in items) > box.volume:
        return None
    order = sorted(range(len(items)), key=lambda i: (-items[i].volume, i))
    placed: dict[int, Placement] = {}
    points: list[tuple[int, int, int]] = [(0, 0, 0)]
    for index in order:
        item = items[index]
        found: Placement | None = None
        for x, y, z in sorted(points, key=lambda p: (p[2], p[1], p[0])):
            for length, width, height in _orientations(item):
                if x + length > box.length_mm or y + width > box.width_mm or z + height > box.height_mm:
                    continue
                candidate = Placement(x, y, z, length, width, height)
                if any(candidate.overlaps(other) for other in placed.values()):
                    continue
                found = candidate
                break
            if found is not None:
                break
        if found is None:
            return None
        placed[index] = found
        points.remove((found.x, found.y, found.z))
        points.extend(
            [
                (found.x + found.length, found.y, found.z),
                (found.x, found.y + found.width, found.z),
                (found.x, found.y, found.z + found.height),
            ]
        )
    return tuple(placed[i] for i in range(len(items)))


def choose_box(items: Sequence[Item], boxes: Sequence[Box]) -> Suggestion | None:
    """The smallest box (inner volume, then tare, then code) that holds the items' weight and fits them in 3D;
    None when none does (the parcel must be split or a bigger packaging added)."""
    if not items:
        return None
    return _choose_box(tuple(items), tuple(boxes))


# The answer depends on the items' and boxes' values alone (all frozen), and a pack line sees the same few SKU
# mixes against the same merchant's boxes all day: the packer's walk (~0.5 ms a parcel) is done once per mix.
@functools.lru_cache(maxsize=4096)
def _choose_box(items: tuple[Item, ...], boxes: tuple[Box, ...]) -> Suggestion | None:
    weight = sum(item.weight_g for item in items)
    for box in sorted(boxes, key=lambda b: (b.volume, b.tare_g, b.code)):
        if weight + box.tare_g > box.max_weight_g:
            continue
        placements = pack(items, box)
        if placements is not None:
            return Suggestion(box=box, placements=placements, weight_g=weight + box.tare_g)
    return None


def weight_within_tolerance(*, expected_g: int, measured_g: int, absolute_g: int = 50, percent: int = 5) -> bool:
    """Whether a measured parcel weight matches the expected one: within ``absolute_g`` or ``percent`` of it,
    whichever is larger (a scale's resolution matters for light parcels, a proportion for heavy ones)."""
    allowed = max(absolute_g, expected_g * percent // 100)
    return abs(measured_g - expected_g) <= allowed
