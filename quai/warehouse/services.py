"""Every write to the warehouse layout: sites, zones (opened, re-shaped, closed while the site runs), locations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.tenants.models import Merchant
from quai.warehouse import domain
from quai.warehouse.domain import LayoutError, ZoneCloseBlocker
from quai.warehouse.models import Location, LocationSide, LocationStatus, Site, Zone, ZoneKind, ZoneStatus

# How many clashing codes a refusal lists; the count says how many there were in all.
CLASH_LIST_LIMIT = 20
BULK_BATCH_SIZE = 500


class _Unset:
    """Marks an argument the caller did not pass (None is a real value: "no merchant", "no end")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _layout_messages() -> dict[str, str]:
    # The domain speaks plain English without Django; people read these, in their language.
    return {
        "invalid_time_zone": _("This is not a known time zone (use an IANA name such as Europe/Paris)."),
        "invalid_opening_days": _("Opening days are weekdays from 1 (Monday) to 7 (Sunday), at least one."),
        "invalid_opening_hours": _("The site must close after it opens."),
        "invalid_location_code": _("A location code is made of letters, digits, '-', '_' or '.', up to 40 characters."),
        "invalid_rack_pattern": _("The rack pattern cannot be read: %(reason)s"),
        "rack_pattern_too_large": _("This pattern makes too many locations at once; split it."),
        "invalid_validity_window": _("The validity window must end after it starts."),
    }


def _layout_error(exc: LayoutError) -> ValidationFailed:
    template = _layout_messages().get(exc.code)
    message = template % {"reason": exc.message} if template else exc.message
    return ValidationFailed(message, code=exc.code, details={**exc.details, "reason": exc.message})


# --- Zone-close checks: the one hook apps above the warehouse fill in ------------------------------------------

ZoneCloseCheck = Callable[[Zone], list[ZoneCloseBlocker]]
_zone_close_checks: dict[str, ZoneCloseCheck] = {}


def register_zone_close_check(name: str, check: ZoneCloseCheck) -> None:
    """Let an app (inventory: stock; fulfillment: open tasks; …) veto closing a zone that still holds its things.

    Called from the app's ``AppConfig.ready()``; registering the same name again replaces the check, so a reload
    never runs a check twice.
    """
    _zone_close_checks[name] = check


def unregister_zone_close_check(name: str) -> None:
    _zone_close_checks.pop(name, None)


def zone_close_blockers(*, zone: Zone) -> list[ZoneCloseBlocker]:
    """What every registered app still holds in ``zone``, in the order the checks were registered."""
    blockers: list[ZoneCloseBlocker] = []
    for check in list(_zone_close_checks.values()):
        blockers.extend(blocker for blocker in check(zone) if blocker.count > 0)
    return blockers


# --- Zone-change listeners: apps above the warehouse follow a zone's state at once ---------------------------------

ZoneChangeListener = Callable[[Zone], Any]
_zone_change_listeners: dict[str, ZoneChangeListener] = {}


def register_zone_change_listener(name: str, fn: ZoneChangeListener) -> None:
    """Let an app react when a zone opens, is re-windowed or re-kinded, or gains or loses locations.

    ``fn(zone)`` runs inside the same transaction as the change (after it is written), so a failure undoes both.
    Inventory uses it to put a temporary zone's stock into or out of availability at once, instead of waiting for
    the periodic sweep. Registering the same name again replaces the listener.
    """
    _zone_change_listeners[name] = fn


def unregister_zone_change_listener(name: str) -> None:
    _zone_change_listeners.pop(name, None)


def _zone_changed(zone: Zone) -> None:
    for listener in list(_zone_change_listeners.values()):
        listener(zone)


# --- Sites -----------------------------------------------------------------------------------------------------


def _site_rules(*, time_zone: str, opening_days: Iterable[int], opens_at: time, closes_at: time) -> list[int]:
    try:
        domain.time_zone_check(time_zone)
        days = domain.opening_days_clean(opening_days)
        domain.opening_hours_check(opens_at, closes_at)
    except LayoutError as exc:
        raise _layout_error(exc) from None
    return days


@transaction.atomic
def site_create(
    *,
    code: str,
    name: str,
    address_line1: str = "",
    address_line2: str = "",
    postal_code: str = "",
    city: str = "",
    country: str = "FR",
    time_zone: str = "Europe/Paris",
    opening_days: Sequence[int] = (1, 2, 3, 4, 5),
    opens_at: time = time(8, 0),
    closes_at: time = time(18, 0),
) -> Site:
    days = _site_rules(time_zone=time_zone, opening_days=opening_days, opens_at=opens_at, closes_at=closes_at)
    if Site.objects.filter(code=code).exists():
        raise Conflict(
            _("A site with code '%(code)s' already exists.") % {"code": code},
            code="duplicate_site_code",
            details={"code": code},
        )
    return Site.objects.create(
        code=code,
        name=name,
        address_line1=address_line1,
        address_line2=address_line2,
        postal_code=postal_code,
        city=city,
        country=country.upper(),
        time_zone=time_zone,
        opening_days=days,
        opens_at=opens_at,
        closes_at=closes_at,
    )


@transaction.atomic
def site_update(
    *,
    site: Site,
    name: str = UNSET,
    address_line1: str = UNSET,
    address_line2: str = UNSET,
    postal_code: str = UNSET,
    city: str = UNSET,
    country: str = UNSET,
    time_zone: str = UNSET,
    opening_days: Sequence[int] = UNSET,
    opens_at: time = UNSET,
    closes_at: time = UNSET,
) -> Site:
    site = Site.objects.select_for_update().get(pk=site.pk)
    changes = {
        key: value
        for key, value in {
            "name": name,
            "address_line1": address_line1,
            "address_line2": address_line2,
            "postal_code": postal_code,
            "city": city,
            "country": country.upper() if isinstance(country, str) else country,
            "time_zone": time_zone,
            "opening_days": opening_days,
            "opens_at": opens_at,
            "closes_at": closes_at,
        }.items()
        if value is not UNSET
    }
    for key, value in changes.items():
        setattr(site, key, value)
    site.opening_days = _site_rules(
        time_zone=site.time_zone, opening_days=site.opening_days, opens_at=site.opens_at, closes_at=site.closes_at
    )
    site.save()
    return site


# --- Zones -----------------------------------------------------------------------------------------------------


def _kind_check(kind: str) -> str:
    if kind not in ZoneKind.values:
        raise ValidationFailed(
            _("'%(kind)s' is not a zone kind. Use one of: %(allowed)s.")
            % {"kind": kind, "allowed": ", ".join(ZoneKind.values)},
            code="unknown_zone_kind",
            details={"kind": kind, "allowed": list(ZoneKind.values)},
        )
    return kind


def _window_check(valid_from: datetime | None, valid_until: datetime | None) -> None:
    try:
        domain.validity_window_check(valid_from, valid_until)
    except LayoutError as exc:
        raise _layout_error(exc) from None


@transaction.atomic
def zone_create(
    *,
    site: Site,
    code: str,
    name: str,
    kind: str,
    merchant: Merchant | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> Zone:
    _kind_check(kind)
    _window_check(valid_from, valid_until)
    code = code.strip().upper()
    if not code:
        raise ValidationFailed(_("A zone needs a code."), code="zone_code_required")
    if Zone.objects.filter(site=site, code=code).exists():
        raise Conflict(
            _("Site %(site)s already has a zone '%(code)s'.") % {"site": site.code, "code": code},
            code="duplicate_zone_code",
            details={"site_id": site.pk, "code": code},
        )
    return Zone.objects.create(
        site=site,
        code=code,
        name=name,
        kind=kind,
        merchant=merchant,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def _zone_locked(zone: Zone) -> Zone:
    try:
        return Zone.objects.select_for_update().get(pk=zone.pk)
    except Zone.DoesNotExist:
        raise NotFound(_("Zone not found."), code="zone_not_found") from None


@transaction.atomic
def zone_update(
    *,
    zone: Zone,
    version: int,
    name: str = UNSET,
    kind: str = UNSET,
    merchant: Merchant | None = UNSET,
    valid_from: datetime | None = UNSET,
    valid_until: datetime | None = UNSET,
) -> Zone:
    """Rename, re-window, change kind or owning merchant. ``version`` is the one the editor saw: a stale edit is
    refused rather than silently overwriting someone else's change."""
    current = _zone_locked(zone)
    if current.version != version:
        raise Conflict(
            _("This zone was changed by someone else; reload it and try again."),
            code="stale_version",
            details={"zone_id": current.pk, "version": current.version, "your_version": version},
        )
    if kind is not UNSET:
        current.kind = _kind_check(kind)
    if name is not UNSET:
        current.name = name
    if merchant is not UNSET:
        current.merchant = merchant
    if valid_from is not UNSET:
        current.valid_from = valid_from
    if valid_until is not UNSET:
        current.valid_until = valid_until
    _window_check(current.valid_from, current.valid_until)
    current.version = current.version + 1
    current.save()
    _zone_changed(current)
    return current


@transaction.atomic
def zone_open(*, zone: Zone, actor: Any = None) -> Zone:
    """Open a zone (again). Opening an open zone changes nothing."""
    current = _zone_locked(zone)
    if current.status == ZoneStatus.OPEN:
        return current
    current.status = ZoneStatus.OPEN
    current.closed_at = None
    current.closed_by = None
    current.version = current.version + 1
    current.save(update_fields=["status", "closed_at", "closed_by", "version"])
    _zone_changed(current)
    return current


@transaction.atomic
def zone_close(*, zone: Zone, actor: Any = None) -> Zone:
    """Close a zone, refused while any app still holds something there (stock, open tasks, …).

    The zone row is locked first so an app that takes the same lock before putting something in the zone cannot
    slip in between the checks and the close.
    """
    current = _zone_locked(zone)
    if current.status == ZoneStatus.CLOSED:
        return current
    blockers = zone_close_blockers(zone=current)
    if blockers:
        summary = "; ".join(f"{b.message} ({b.count})" for b in blockers)
        raise Conflict(
            _("Zone %(code)s cannot close while it still holds something: %(summary)s.")
            % {"code": current.code, "summary": summary},
            code="zone_not_empty",
            details={"zone_id": current.pk, "blockers": [asdict(b) for b in blockers]},
        )
    current.status = ZoneStatus.CLOSED
    current.closed_at = clock.now()
    current.closed_by = actor if getattr(actor, "pk", None) is not None else None
    current.version = current.version + 1
    current.save(update_fields=["status", "closed_at", "closed_by", "version"])
    return current


# --- Locations -------------------------------------------------------------------------------------------------


def _zone_of_site(*, site: Site, zone: Zone) -> None:
    if zone.site_id != site.pk:
        raise ValidationFailed(
            _("Zone %(zone)s is not in site %(site)s.") % {"zone": zone.code, "site": site.code},
            code="zone_site_mismatch",
            details={"site_id": site.pk, "zone_id": zone.pk},
        )


def _zone_must_be_open(zone: Zone) -> None:
    if zone.status != ZoneStatus.OPEN:
        raise Conflict(
            _("Zone %(code)s is closed; open it first.") % {"code": zone.code},
            code="zone_closed",
            details={"zone_id": zone.pk},
        )


def _duplicate_codes(codes: list[str]) -> Conflict:
    shown = codes[:CLASH_LIST_LIMIT]
    return Conflict(
        _("%(count)d location code(s) already exist on this site: %(codes)s.")
        % {"count": len(codes), "codes": ", ".join(shown) + ("…" if len(codes) > len(shown) else "")},
        code="duplicate_location_code",
        details={"codes": shown, "count": len(codes)},
    )


def _existing_codes(site: Site, codes: Sequence[str]) -> list[str]:
    found: list[str] = []
    # In chunks: SQLite caps the number of query parameters.
    for start in range(0, len(codes), BULK_BATCH_SIZE):
        chunk = codes[start : start + BULK_BATCH_SIZE]
        found.extend(Location.objects.filter(site=site, code__in=chunk).values_list("code", flat=True))
    return sorted(found)


def _next_sequence(site: Site) -> int:
    highest = Location.objects.filter(site=site).aggregate(top=Max("pick_sequence"))["top"]
    return (highest or 0) + 1


def _metres(value: Decimal | float | int | str) -> Decimal:
    """Coordinates are stored to the centimetre; round here so the caller gets back what was stored."""
    return Decimal(str(value)).quantize(domain.CENTIMETRE)


def _positive_or_none(value: int | None, field: str) -> int | None:
    if value is not None and value <= 0:
        raise ValidationFailed(
            _("%(field)s must be more than 0.") % {"field": field}, code="invalid_capacity", details={"field": field}
        )
    return value


@dataclass(frozen=True)
class NewLocation:
    """One location of ``locations_create_many``: ``location_create``'s arguments but the site and the zone."""

    code: str
    aisle: str | None = None
    bay: int | None = None
    level: int | None = None
    position: int | None = None
    side: str = ""
    x_m: Decimal | float | int = 0
    y_m: Decimal | float | int = 0
    max_volume_cm3: int | None = None
    max_weight_g: int | None = None
    pick_sequence: int | None = None
    mixed_sku: bool = True
    status: str = LocationStatus.ACTIVE


def _code_cleaned(code: str) -> str:
    try:
        return domain.location_code_clean(code)
    except LayoutError as exc:
        raise _layout_error(exc) from None


def _location_planned(site: Site, zone: Zone, spec: NewLocation, code: str) -> Location:
    """The unsaved location ``spec`` describes (``code`` already cleaned), checked as ``location_create`` checks it;
    its pick sequence is left as given (None: the caller gives the next one)."""
    _zone_of_site(site=site, zone=zone)
    _zone_must_be_open(zone)
    side, status = spec.side, spec.status
    if side not in LocationSide.values:
        raise ValidationFailed(_("Side must be left, right or empty."), code="invalid_side", details={"side": side})
    if status not in LocationStatus.values:
        raise ValidationFailed(
            _("'%(status)s' is not a location status.") % {"status": status},
            code="invalid_location_status",
            details={"status": status, "allowed": list(LocationStatus.values)},
        )
    aisle, bay, level, position = spec.aisle, spec.bay, spec.level, spec.position
    address = domain.rack_address_parse(code)
    if address is not None:
        aisle = address.aisle if aisle is None else aisle
        bay = address.bay if bay is None else bay
        level = address.level if level is None else level
        position = address.position if position is None else position
        side = side or domain.side_of_bay(address.bay)
    return Location(
        site=site,
        zone=zone,
        code=code,
        aisle=(aisle or "").upper(),
        bay=bay,
        level=level,
        position=position,
        side=side,
        x_m=_metres(spec.x_m),
        y_m=_metres(spec.y_m),
        max_volume_cm3=_positive_or_none(spec.max_volume_cm3, "max_volume_cm3"),
        max_weight_g=_positive_or_none(spec.max_weight_g, "max_weight_g"),
        pick_sequence=spec.pick_sequence,  # type: ignore[misc]  # None until the caller numbers it
        mixed_sku=spec.mixed_sku,
        status=status,
    )


@transaction.atomic
def location_create(
    *,
    site: Site,
    zone: Zone,
    code: str,
    aisle: str | None = None,
    bay: int | None = None,
    level: int | None = None,
    position: int | None = None,
    side: str = "",
    x_m: Decimal | float | int = 0,
    y_m: Decimal | float | int = 0,
    max_volume_cm3: int | None = None,
    max_weight_g: int | None = None,
    pick_sequence: int | None = None,
    mixed_sku: bool = True,
    status: str = LocationStatus.ACTIVE,
) -> Location:
    """One location. A rack-shaped code (``A-01-02-03``) fills aisle, bay, level, position and side by itself."""
    spec = NewLocation(
        code=code,
        aisle=aisle,
        bay=bay,
        level=level,
        position=position,
        side=side,
        x_m=x_m,
        y_m=y_m,
        max_volume_cm3=max_volume_cm3,
        max_weight_g=max_weight_g,
        pick_sequence=pick_sequence,
        mixed_sku=mixed_sku,
        status=status,
    )
    code = _code_cleaned(code)
    row = _location_planned(site, zone, spec, code)
    if Location.objects.filter(site=site, code=code).exists():
        raise _duplicate_codes([code])
    try:
        # A savepoint, so a concurrent insert of the same code surfaces as the same clear error.
        with transaction.atomic():
            if row.pick_sequence is None:
                row.pick_sequence = _next_sequence(site)
            row.save(force_insert=True)
            return row
    except IntegrityError:
        raise _duplicate_codes([code]) from None


@transaction.atomic
def locations_create_many(*, site: Site, zone: Zone, locations: Sequence[NewLocation]) -> list[Location]:
    """``location_create`` for many locations of one zone in a few queries whatever their number (the tote pool
    of a wave grows this way): the same checks, each location's in the order given, the first refusal raised with
    nothing written (as the one-by-one calls in one transaction would); the same rows — a location without a pick
    sequence takes the next one after the site's highest, as each call in turn would. Returned in the order
    given."""
    if not locations:
        return []
    cleaned: list[str | ValidationFailed] = []
    for spec in locations:
        try:
            cleaned.append(_code_cleaned(spec.code))
        except ValidationFailed as refusal:
            cleaned.append(refusal)
    taken = set(_existing_codes(site, [code for code in cleaned if isinstance(code, str)]))
    rows: list[Location] = []
    for spec, code in zip(locations, cleaned, strict=True):
        if isinstance(code, ValidationFailed):
            raise code
        row = _location_planned(site, zone, spec, code)
        if code in taken:
            raise _duplicate_codes([code])
        taken.add(code)
        rows.append(row)
    if any(row.pick_sequence is None for row in rows):
        top = _next_sequence(site) - 1
        for row in rows:
            row.pick_sequence = top + 1 if row.pick_sequence is None else row.pick_sequence
            top = max(top, row.pick_sequence)
    try:
        with transaction.atomic():
            Location.objects.bulk_create(rows, batch_size=BULK_BATCH_SIZE)
    except IntegrityError:
        # Someone created one of these codes between our check and our insert.
        raise _duplicate_codes(_existing_codes(site, [row.code for row in rows])) from None
    return rows


@transaction.atomic
def location_update(
    *,
    location: Location,
    x_m: Decimal | float | int = UNSET,
    y_m: Decimal | float | int = UNSET,
    max_volume_cm3: int | None = UNSET,
    max_weight_g: int | None = UNSET,
    pick_sequence: int = UNSET,
    mixed_sku: bool = UNSET,
) -> Location:
    """Physical attributes only; the zone changes through ``locations_move_to_zone``, the status by block/unblock."""
    current = Location.objects.select_for_update().get(pk=location.pk)
    if x_m is not UNSET:
        current.x_m = _metres(x_m)
    if y_m is not UNSET:
        current.y_m = _metres(y_m)
    if max_volume_cm3 is not UNSET:
        current.max_volume_cm3 = _positive_or_none(max_volume_cm3, "max_volume_cm3")
    if max_weight_g is not UNSET:
        current.max_weight_g = _positive_or_none(max_weight_g, "max_weight_g")
    if pick_sequence is not UNSET:
        current.pick_sequence = pick_sequence
    if mixed_sku is not UNSET:
        current.mixed_sku = mixed_sku
    current.save()
    return current


@dataclass(frozen=True)
class LocationsMoved:
    zone_id: int
    moved: int
    already_there: int


@transaction.atomic
def locations_move_to_zone(*, zone: Zone, location_ids: Sequence[int], actor: Any = None) -> LocationsMoved:
    """Re-shape zones while the site runs: the locations (and whatever they hold) now belong to ``zone``.

    All or nothing: one unknown location or one from another site and nothing moves.
    """
    target = _zone_locked(zone)
    _zone_must_be_open(target)
    wanted = sorted(set(location_ids))
    if not wanted:
        raise ValidationFailed(_("Say which locations to move."), code="locations_required")
    # Locked in id order, like every multi-row write, so two moves never deadlock.
    rows = list(
        Location.objects.select_for_update().filter(pk__in=wanted).order_by("pk").values("pk", "site_id", "zone_id")
    )
    missing = sorted(set(wanted) - {row["pk"] for row in rows})
    if missing:
        raise NotFound(
            _("%(count)d location(s) not found.") % {"count": len(missing)},
            code="location_not_found",
            details={"location_ids": missing[:CLASH_LIST_LIMIT]},
        )
    foreign = [row["pk"] for row in rows if row["site_id"] != target.site_id]
    if foreign:
        raise ValidationFailed(
            _("Locations can only move to a zone of their own site."),
            code="location_site_mismatch",
            details={"location_ids": foreign[:CLASH_LIST_LIMIT], "zone_id": target.pk},
        )
    to_move = [row["pk"] for row in rows if row["zone_id"] != target.pk]
    moved = Location.objects.filter(pk__in=to_move).update(zone=target, updated_at=clock.now()) if to_move else 0
    if moved:
        left = sorted({row["zone_id"] for row in rows if row["zone_id"] != target.pk})
        for zone_left in Zone.objects.filter(pk__in=left).order_by("pk"):
            _zone_changed(zone_left)
        _zone_changed(target)
    return LocationsMoved(zone_id=target.pk, moved=moved, already_there=len(rows) - moved)


@transaction.atomic
def location_block(*, location: Location, reason: str = "", actor: Any = None) -> Location:
    """A blocked location takes nothing in and gives nothing out (damaged rack, count in progress)."""
    current = Location.objects.select_for_update().get(pk=location.pk)
    current.status = LocationStatus.BLOCKED
    current.blocked_reason = reason[:200]
    current.save(update_fields=["status", "blocked_reason"])
    return current


@transaction.atomic
def location_unblock(*, location: Location, actor: Any = None) -> Location:
    current = Location.objects.select_for_update().get(pk=location.pk)
    current.status = LocationStatus.ACTIVE
    current.blocked_reason = ""
    current.save(update_fields=["status", "blocked_reason"])
    return current


# --- Racks in bulk ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RackCreated:
    zone_id: int
    count: int
    first_code: str
    last_code: str
    first_sequence: int
    last_sequence: int


@transaction.atomic
def rack_bulk_create(
    *,
    site: Site,
    zone: Zone,
    aisles: str | Sequence[str],
    bays: int | str | Sequence[int],
    levels: int | str | Sequence[int],
    positions: int | str | Sequence[int] = 1,
    origin_x_m: Decimal | float | int = 0,
    origin_y_m: Decimal | float | int = 0,
    aisle_spacing_m: Decimal | float | int = 3,
    bay_width_m: Decimal | float | int = Decimal("1.2"),
    max_volume_cm3: int | None = None,
    max_weight_g: int | None = None,
    mixed_sku: bool = True,
) -> RackCreated:
    """Create every location of a rack pattern (aisles × bays × levels × positions) in one go, or none.

    Codes, sides, coordinates and the serpentine pick sequence come from ``domain.rack_pattern_expand``; the
    sequence continues after the site's highest one so new racks are walked after the existing ones.
    """
    _zone_of_site(site=site, zone=zone)
    try:
        pattern = domain.rack_pattern_build(
            aisles=aisles,
            bays=bays,
            levels=levels,
            positions=positions,
            origin_x_m=origin_x_m,
            origin_y_m=origin_y_m,
            aisle_spacing_m=aisle_spacing_m,
            bay_width_m=bay_width_m,
        )
    except LayoutError as exc:
        raise _layout_error(exc) from None
    _positive_or_none(max_volume_cm3, "max_volume_cm3")
    _positive_or_none(max_weight_g, "max_weight_g")
    # Lock the zone so it cannot close while it is being filled.
    zone = _zone_locked(zone)
    _zone_must_be_open(zone)
    planned = domain.rack_pattern_expand(pattern, first_sequence=_next_sequence(site))
    clashes = _existing_codes(site, [p.code for p in planned])
    if clashes:
        raise _duplicate_codes(clashes)
    now = clock.now()
    rows = [
        Location(
            site=site,
            zone=zone,
            code=p.code,
            aisle=p.aisle,
            bay=p.bay,
            level=p.level,
            position=p.position,
            side=p.side,
            x_m=p.x_m,
            y_m=p.y_m,
            max_volume_cm3=max_volume_cm3,
            max_weight_g=max_weight_g,
            pick_sequence=p.pick_sequence,
            mixed_sku=mixed_sku,
            created_at=now,
            updated_at=now,
        )
        for p in planned
    ]
    try:
        with transaction.atomic():
            Location.objects.bulk_create(rows, batch_size=BULK_BATCH_SIZE)
    except IntegrityError:
        # Someone created one of these codes between our check and our insert.
        raise _duplicate_codes(_existing_codes(site, [p.code for p in planned])) from None
    return RackCreated(
        zone_id=zone.pk,
        count=len(planned),
        first_code=planned[0].code,
        last_code=planned[-1].code,
        first_sequence=planned[0].pick_sequence,
        last_sequence=planned[-1].pick_sequence,
    )
