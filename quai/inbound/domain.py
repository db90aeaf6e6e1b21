"""Inbound rules that need no database: ASN state machine, SSCC check, putaway choice, discrepancies, replenishment.

Everything here works on plain, frozen snapshots the services build from the database; the tests run in
milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# --- ASN state machine ---------------------------------------------------------------------------------------------
ANNOUNCED = "announced"
RECEIVING = "receiving"
CLOSED = "closed"
CANCELLED = "cancelled"

#: The one transition table of an ASN: from → the states it may move to. ``quai.inbound.services.asns`` builds the
#: ASN's ``StateMachine`` from it (this module stays free of Django, so its tests run without a database).
ASN_TRANSITIONS: dict[str, tuple[str, ...]] = {
    ANNOUNCED: (RECEIVING, CANCELLED),
    RECEIVING: (CLOSED,),
    CLOSED: (),
    CANCELLED: (),
}

#: The steps' names, as the audit rows (``core.StateTransition.transition``) record them.
ASN_TRANSITION_NAMES: dict[tuple[str, str], str] = {
    (ANNOUNCED, RECEIVING): "start_receiving",
    (ANNOUNCED, CANCELLED): "cancel",
    (RECEIVING, CLOSED): "close",
}


# --- SSCC ----------------------------------------------------------------------------------------------------------
def gs1_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of ``body`` (digits without their check digit)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


# Symbology identifiers (ISO/IEC 15424) of the GS1 carriers an SSCC label is printed in: GS1-128, GS1 DataMatrix,
# GS1 QR Code, GS1 DataBar, GS1 DotCode. A scanner set to send them types one before the data ("]C1" + "00…").
GS1_SYMBOLOGY_IDENTIFIERS = ("]C1", "]d2", "]Q3", "]e0", "]J1")
GROUP_SEPARATOR = "\x1d"


def sscc_normalize(code: str) -> str | None:
    """The 18-digit SSCC in ``code`` ("(00)" or "00" application identifier allowed), or None if it is not one.

    A GS1 symbology identifier in front (``]C1``, ``]d2``…) and a leading FNC1 (group separator) are not data.
    """
    raw = code.strip().replace(" ", "")
    if raw[:3] in GS1_SYMBOLOGY_IDENTIFIERS:
        raw = raw[3:]
    raw = raw.strip(GROUP_SEPARATOR)
    if raw.startswith("(00)"):
        raw = raw[4:]
    elif len(raw) == 20 and raw.startswith("00"):
        raw = raw[2:]
    if len(raw) != 18 or not raw.isdecimal():
        return None
    if gs1_check_digit(raw[:17]) != int(raw[17]):
        return None
    return raw


# --- Putaway -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocationSnapshot:
    """A location as putaway sees it: where it is, what it can hold and what it already holds."""

    location_id: int
    code: str
    x: float
    y: float
    active: bool = True
    max_volume_mm3: int | None = None
    max_weight_g: int | None = None
    used_volume_mm3: int = 0
    used_weight_g: int = 0
    sku_ids: frozenset[int] = field(default_factory=frozenset)
    mixed_sku: bool = True


@dataclass(frozen=True)
class PutawayItem:
    """What is to be put away: ``quantity`` units of one SKU, with its unit size when the catalog knows it."""

    sku_id: int
    quantity: int
    unit_volume_mm3: int | None = None
    unit_weight_g: int | None = None
    fast_mover: bool = False

    @property
    def volume_mm3(self) -> int:
        return (self.unit_volume_mm3 or 0) * self.quantity

    @property
    def weight_g(self) -> int:
        return (self.unit_weight_g or 0) * self.quantity


@dataclass(frozen=True)
class PickFaceSnapshot:
    location: LocationSnapshot
    sku_id: int
    max_quantity: int
    on_hand: int


@dataclass(frozen=True)
class PutawaySuggestion:
    location_id: int
    code: str
    reason: str  # "pick_face" | "storage_near_packing" | "storage_nearest"


# Why a location cannot take an item; the services turn these into errors a person understands.
BLOCKED = "blocked"
TOO_LITTLE_VOLUME = "volume"
TOO_HEAVY = "weight"
OTHER_SKU = "mixed"


def location_refusal(location: LocationSnapshot, item: PutawayItem) -> str | None:
    """None when ``location`` can take ``item``; else why not (blocked, volume, weight, mixed)."""
    if not location.active:
        return BLOCKED
    if not location.mixed_sku and location.sku_ids - {item.sku_id}:
        return OTHER_SKU
    if location.max_volume_mm3 is not None and location.used_volume_mm3 + item.volume_mm3 > location.max_volume_mm3:
        return TOO_LITTLE_VOLUME
    if location.max_weight_g is not None and location.used_weight_g + item.weight_g > location.max_weight_g:
        return TOO_HEAVY
    return None


def distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def putaway_suggest(
    item: PutawayItem,
    *,
    pick_faces: Sequence[PickFaceSnapshot],
    storage: Iterable[LocationSnapshot],
    origin: tuple[float, float],
    packing_point: tuple[float, float] | None = None,
) -> PutawaySuggestion | None:
    """Where ``item`` should go, or None when nothing fits.

    1. The SKU's own pick face, if it has room for the whole quantity under its max (and physically fits).
    2. Else the nearest storage location that fits volume, weight and its one-SKU rule: a fast mover is measured
       from the packing zone (so it lands near where orders leave), anything else from where it stands now
       (``origin``, the receiving location). Ties go to the lower location code, so the answer is deterministic.
    """
    if item.quantity <= 0:
        return None
    for face in sorted(pick_faces, key=lambda f: (f.location.code, f.location.location_id)):
        if face.sku_id != item.sku_id:
            continue
        if face.on_hand + item.quantity <= face.max_quantity and location_refusal(face.location, item) is None:
            return PutawaySuggestion(face.location.location_id, face.location.code, "pick_face")
    near_packing = item.fast_mover and packing_point is not None
    anchor = packing_point if near_packing and packing_point is not None else origin
    fitting = [loc for loc in storage if location_refusal(loc, item) is None]
    if not fitting:
        return None
    best = min(fitting, key=lambda loc: (distance((loc.x, loc.y), anchor), loc.code, loc.location_id))
    return PutawaySuggestion(best.location_id, best.code, "storage_near_packing" if near_packing else "storage_nearest")


# --- Discrepancies -------------------------------------------------------------------------------------------------
OVER = "over"
SHORT = "short"
UNEXPECTED = "unexpected"
DAMAGED = "damaged"
LOT = "lot"


@dataclass(frozen=True)
class CountedLine:
    """One ASN line as counted: ``unexpected`` lines were not announced (expected is then 0).

    An ``unexpected`` line of an announced SKU holds units of a lot the ASN did not announce for it.
    """

    sku_id: int
    expected: int
    received: int
    damaged: int = 0
    unexpected: bool = False
    lot: str = ""


@dataclass(frozen=True)
class Discrepancy:
    sku_id: int
    kind: str
    expected: int
    received: int
    damaged: int
    difference: int
    lot: str = ""


def discrepancies(lines: Iterable[CountedLine]) -> list[Discrepancy]:
    """What differs between the ASN and the count, per SKU (lots of one SKU added up).

    A SKU that was never announced is ``unexpected``; else more than expected is ``over``, less is ``short``.
    Damaged units were received (they count in ``received``) and are reported on their own as ``damaged``.
    When a lot was received that the ASN did not announce for the SKU, every lot of that SKU whose count differs
    is reported as ``lot`` (announced lots with what came of them, the other lot with what came): the totals may
    match while the goods are not the announced ones.
    """
    lines = list(lines)
    totals: dict[int, list[int]] = {}
    announced: set[int] = set()
    for line in lines:
        expected, received, damaged = totals.setdefault(line.sku_id, [0, 0, 0])
        totals[line.sku_id] = [expected + line.expected, received + line.received, damaged + line.damaged]
        if not line.unexpected:
            announced.add(line.sku_id)
    found: list[Discrepancy] = []
    for sku_id in sorted(totals):
        expected, received, damaged = totals[sku_id]
        difference = received - expected
        if sku_id not in announced:
            if received > 0:
                found.append(Discrepancy(sku_id, UNEXPECTED, 0, received, damaged, received))
        elif difference > 0:
            found.append(Discrepancy(sku_id, OVER, expected, received, damaged, difference))
        elif difference < 0:
            found.append(Discrepancy(sku_id, SHORT, expected, received, damaged, difference))
        if damaged > 0:
            found.append(Discrepancy(sku_id, DAMAGED, expected, received, damaged, damaged))
        if sku_id in announced:
            found += _lot_differences(sku_id, [line for line in lines if line.sku_id == sku_id])
    return found


def _lot_differences(sku_id: int, lines: Sequence[CountedLine]) -> list[Discrepancy]:
    announced_lots = {line.lot for line in lines if line.lot and line.expected > 0}
    other_lots = {line.lot for line in lines if line.lot and line.lot not in announced_lots and line.received > 0}
    if not announced_lots or not other_lots:
        return []
    per_lot: dict[str, list[int]] = {}
    for line in lines:
        if not line.lot:
            continue
        expected, received, damaged = per_lot.setdefault(line.lot, [0, 0, 0])
        per_lot[line.lot] = [expected + line.expected, received + line.received, damaged + line.damaged]
    # Announced lots first (what the merchant expects to read), then the lots that came instead.
    order = sorted(announced_lots) + sorted(other_lots)
    return [
        Discrepancy(sku_id, LOT, expected, received, damaged, received - expected, lot=lot)
        for lot in order
        for expected, received, damaged in [per_lot[lot]]
        if received != expected
    ]


# --- Replenishment -------------------------------------------------------------------------------------------------
def replenishment_need(*, on_hand: int, min_quantity: int, max_quantity: int) -> int:
    """Units to bring to a pick face: none while it holds at least its min, else enough to fill it up to its max."""
    if on_hand >= min_quantity:
        return 0
    return max(max_quantity - max(on_hand, 0), 0)
