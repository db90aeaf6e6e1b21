"""Labour writes: staff, skills, shifts, standards, productivity from scan events, staffing plans.

Labour stands under the promise and above orders and inbound (pyproject's layers): it never imports fulfilment or
packing, it follows their scan events by name (``fulfilment.pick_confirmed``, ``packing.scan_recorded``, see
docs/EVENTS.md) into its own ``ProductivityEntry`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.core.events import Envelope
from quai.core.rows import Among, rows_insert
from quai.labor import domain, selectors
from quai.labor.models import (
    Activity,
    PlanSource,
    ProductivityEntry,
    Shift,
    Skill,
    StaffingPlan,
    StaffingPlanCell,
    StaffMember,
    Standard,
)
from quai.tenants.scope import Scope
from quai.warehouse.models import Location, Site, Zone

PICK_CONFIRMED = "fulfilment.pick_confirmed"
PACK_SCAN_RECORDED = "packing.scan_recorded"
#: The longest plan computed in one go: a fortnight of hours.
MAX_PLAN_HOURS = 14 * 24

_PLAN_MESSAGES = {
    "negative_volume": gettext_lazy("A forecast cannot hold negative volumes."),
    "absurd_volume": gettext_lazy("A forecast volume is beyond what any site handles; check the figures."),
    "invalid_lines_per_order": gettext_lazy("Lines per order must be above 0 and at most 200."),
    "invalid_instant": gettext_lazy("Every forecast hour needs a time zone."),
    "duplicate_hour": gettext_lazy("The forecast names the same hour twice."),
    "invalid_utilisation": gettext_lazy("The utilisation target must be above 0 and at most 1."),
    "standard_missing": gettext_lazy("No engineered standard for an activity with work: add one before planning."),
    "invalid_standard": gettext_lazy("A standard must be above 0 lines per hour."),
    "unknown_activity": gettext_lazy("Unknown activity."),
    "negative_workload": gettext_lazy("A workload cannot be negative."),
    "invalid_zone_shares": gettext_lazy("Zone shares must be positive and add up to 1."),
    "invalid_catch_up_hours": gettext_lazy("The catch-up must last at least one hour."),
    "invalid_handle_time": gettext_lazy("The average handle time must be above 0 seconds and at most a day."),
    "invalid_service_level": gettext_lazy("The service level target must be between 0 and 1."),
    "invalid_answer_time": gettext_lazy("The answer time cannot be negative."),
    "invalid_occupancy": gettext_lazy("The maximum occupancy must be above 0 and at most 1."),
    "invalid_shrinkage": gettext_lazy("Shrinkage must be at least 0 and below 1."),
    "plan_not_found": gettext_lazy("No staffing meets the work's due times: check the forecast and the cut-offs."),
    "invalid_max_wait": gettext_lazy("The longest wait must be at least 5 minutes and at most 7 days."),
    "invalid_flow_delay": gettext_lazy("The release delay and the handoff cannot be negative."),
}


def plan_error(exc: domain.PlanError) -> ValidationFailed:
    """The API's error for a domain ``PlanError``: its code, a sentence, its parameters."""
    message = str(_PLAN_MESSAGES.get(exc.code, _("The plan's inputs are not valid.")))
    return ValidationFailed(message, code=exc.code, details={k: _jsonable(v) for k, v in exc.params.items()})


def _jsonable(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _activity_check(activity: str) -> str:
    if activity not in Activity.values:
        raise ValidationFailed(
            _("'%(activity)s' is not an activity. Use one of: %(allowed)s.")
            % {"activity": activity, "allowed": ", ".join(Activity.values)},
            code="unknown_activity",
            details={"activity": activity, "allowed": list(Activity.values)},
        )
    return activity


def _zone_of_site(zone: Zone | None, site: Site) -> None:
    if zone is not None and zone.site_id != site.pk:
        raise ValidationFailed(
            _("Zone %(zone)s is not in site %(site)s.") % {"zone": zone.code, "site": site.code},
            code="zone_other_site",
            details={"zone_id": zone.pk, "site_id": site.pk},
        )


# --- Staff, skills, shifts, standards ---------------------------------------------------------------------------


@transaction.atomic
def staff_create(*, user: Any, site: Site) -> StaffMember:
    if StaffMember.objects.filter(user=user).exists():
        raise Conflict(
            _("%(user)s is already on the staff.") % {"user": user.get_username()},
            code="duplicate_staff_member",
            details={"user_id": user.pk},
        )
    return StaffMember.objects.create(user=user, site=site)


@transaction.atomic
def skill_add(*, staff: StaffMember, activity: str, zone: Zone | None = None) -> Skill:
    """Give ``staff`` an activity (in ``zone``, or anywhere on their site). Adding it twice changes nothing."""
    _activity_check(activity)
    _zone_of_site(zone, staff.site)
    existing = Skill.objects.filter(staff=staff, activity=activity, zone=zone).first()
    if existing is not None:
        return existing
    return Skill.objects.create(staff=staff, activity=activity, zone=zone)


@transaction.atomic
def shift_create(
    *, staff: StaffMember, activity: str, starts_at: datetime, ends_at: datetime, zone: Zone | None = None
) -> Shift:
    """Put ``staff`` on ``activity`` (in ``zone``) from ``starts_at`` to ``ends_at``: they must have the skill and
    be free then (one person, one place at a time)."""
    _activity_check(activity)
    _zone_of_site(zone, staff.site)
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValidationFailed(_("A shift's times need a time zone."), code="invalid_instant")
    if ends_at <= starts_at:
        raise ValidationFailed(_("A shift must end after it starts."), code="invalid_shift_window")
    if ends_at - starts_at > timedelta(hours=16):
        raise ValidationFailed(_("A shift lasts at most 16 hours."), code="invalid_shift_window")
    if not staff.active:
        raise ValidationFailed(_("This person is no longer on the active staff."), code="staff_inactive")
    skilled = Skill.objects.filter(staff=staff, activity=activity)
    if not (skilled.filter(zone=None).exists() or (zone is not None and skilled.filter(zone=zone).exists())):
        raise ValidationFailed(
            _("%(user)s has no %(activity)s skill here.") % {"user": staff, "activity": Activity(activity).label},
            code="skill_missing",
            details={"staff_id": staff.pk, "activity": activity, "zone_id": zone.pk if zone else None},
        )
    # Lock the person's row so two overlapping shifts written at once cannot both pass the check.
    StaffMember.objects.select_for_update().filter(pk=staff.pk).first()
    clash = Shift.objects.filter(staff=staff, starts_at__lt=ends_at, ends_at__gt=starts_at).first()
    if clash is not None:
        raise Conflict(
            _("%(user)s already works from %(start)s to %(end)s.")
            % {"user": staff, "start": clash.starts_at.isoformat(), "end": clash.ends_at.isoformat()},
            code="shift_overlap",
            details={"shift_id": clash.pk},
        )
    return Shift.objects.create(
        staff=staff, site=staff.site, activity=activity, zone=zone, starts_at=starts_at, ends_at=ends_at
    )


@transaction.atomic
def standard_set(*, site: Site, activity: str, lines_per_hour: Decimal, zone: Zone | None = None) -> Standard:
    """Set the engineered standard of ``activity`` (in ``zone``, or site-wide): created or replaced."""
    _activity_check(activity)
    _zone_of_site(zone, site)
    rate = Decimal(lines_per_hour)
    if not rate.is_finite() or rate <= 0 or rate > 100_000:
        raise ValidationFailed(
            _("A standard must be above 0 and at most 100,000 lines per hour."),
            code="invalid_standard",
            details={"lines_per_hour": str(lines_per_hour)},
        )
    current = Standard.objects.select_for_update().filter(site=site, activity=activity, zone=zone).first()
    if current is None:
        return Standard.objects.create(site=site, activity=activity, zone=zone, lines_per_hour=rate)
    current.lines_per_hour = rate
    current.version += 1
    current.save(update_fields=["lines_per_hour", "version", "updated_at"])
    return current


# --- Productivity from the scan events --------------------------------------------------------------------------


def _location_by_code(code: str) -> Location | None:
    """The location a pick names: codes are unique per site, so one match is the place, several is unknown."""
    found = list(Location.objects.filter(code=code.strip().upper()).select_related("zone")[:2])
    return found[0] if len(found) == 1 else None


def _locations_by_code(codes: Iterable[str]) -> dict[str, Location]:
    """``_location_by_code`` for many codes in one read: the codes (as picks name them) that match one place."""
    cleaned = {code: code.strip().upper() for code in codes}
    matches: dict[str, list[Location]] = {}
    for location in Location.objects.filter(Among(F("code"), cleaned.values(), texts=True)):
        matches.setdefault(location.code, []).append(location)
    return {code: matches[clean][0] for code, clean in cleaned.items() if len(matches.get(clean, ())) == 1}


def _entry(
    *, envelope: Envelope, activity: str, operator: Any, label: str, location: Location | None, lines: int, at: datetime
) -> ProductivityEntry:
    return ProductivityEntry(
        event_id=envelope.event_id,
        activity=activity,
        operator=operator,
        operator_label=label[:150],
        site_id=location.site_id if location else None,
        zone_id=location.zone_id if location else None,
        lines=lines,
        occurred_at=at,
    )


def _record(
    *,
    envelope: Envelope,
    activity: str,
    operator: Any,
    label: str,
    location: Location | None,
    lines: int,
    at: datetime,
) -> None:
    entry = _entry(
        envelope=envelope, activity=activity, operator=operator, label=label, location=location, lines=lines, at=at
    )
    try:
        with transaction.atomic():
            entry.save(force_insert=True)
    except IntegrityError:
        pass  # the same event delivered again: already counted


def _entry_row(
    *, envelope: Envelope, activity: str, operator_id: int | None, label: str, location: Location | None, at: datetime
) -> dict[str, Any]:
    """The row ``_entry`` builds (one line), as ``quai.core.rows`` inserts it."""
    return {
        "event_id": envelope.event_id,
        "activity": str(activity),  # the choice's text: a str passes ``quai.core.rows`` unprepared
        "operator_id": operator_id,
        "operator_label": label[:150],
        "site_id": location.site_id if location else None,
        "zone_id": location.zone_id if location else None,
        "lines": 1,
        "occurred_at": at,
    }


def _record_many(rows: Sequence[dict[str, Any]]) -> None:
    """``_record`` for many entries in one insert: an event already counted (delivered again, or twice in the
    batch) is skipped by the unique event id, as ``_record`` skips it, the first one counted. Raw rows
    (``quai.core.rows``), not ``bulk_create``: a model instance per scan and the ORM's statement compiled and its
    values prepared per call were most of these handlers' time (a pack scan is the relay's commonest event)."""
    if rows:
        rows_insert(ProductivityEntry, rows, skip_conflicts=True)


def on_pick_confirmed(event: Any, envelope: Envelope) -> None:
    """A confirmed pick is one line picked, by ``operator_id``, in the zone of the location it came from."""
    user = get_user_model().objects.filter(pk=event.operator_id).first() if event.operator_id else None
    _record(
        envelope=envelope,
        activity=Activity.PICK,
        operator=user,
        label=user.get_username() if user else "",
        location=_location_by_code(event.from_location_code),
        lines=1,
        at=envelope.occurred_at,
    )


def on_picks_confirmed(items: Sequence[tuple[Any, Envelope]]) -> None:
    """Batch form of ``on_pick_confirmed`` (``subscribe(..., batch=)``): exactly what it does for each event in
    turn, with the operators and the locations of the relay batch read once each and one insert (3 queries per
    batch instead of 5 per pick)."""
    wanted = {event.operator_id for event, _ in items if event.operator_id}
    users = {user.pk: user for user in get_user_model().objects.filter(Among(F("pk"), wanted))}  # in_bulk, one text
    locations = _locations_by_code({event.from_location_code for event, _ in items})
    rows = []
    for event, envelope in items:
        user = users.get(event.operator_id) if event.operator_id else None
        rows.append(
            _entry_row(
                envelope=envelope,
                activity=Activity.PICK,
                operator_id=user.pk if user else None,
                label=user.get_username() if user else "",
                location=locations.get(event.from_location_code),
                at=envelope.occurred_at,
            )
        )
    _record_many(rows)


def on_pack_scan(event: Any, envelope: Envelope) -> None:
    """An accepted pack scan is one unit packed (a refused scan is no work done). The pack station names its
    operator by username and no location: the entry has no site and counts for every site's pack rate."""
    if event.result != "ok":
        return
    user = get_user_model().objects.filter(username=event.operator).first() if event.operator else None
    _record(
        envelope=envelope,
        activity=Activity.PACK,
        operator=user,
        label=event.operator or "",
        location=None,
        lines=1,
        at=event.scanned_at,
    )


def on_pack_scans(items: Sequence[tuple[Any, Envelope]]) -> None:
    """Batch form of ``on_pack_scan``: exactly what it does for each event in turn, with the batch's operators read
    once and one insert (2 queries per relay batch instead of 4 per unit scanned)."""
    accepted = [(event, envelope) for event, envelope in items if event.result == "ok"]
    if not accepted:
        return
    names = {event.operator for event, _ in accepted if event.operator}
    users = {
        user.get_username(): user for user in get_user_model().objects.filter(Among(F("username"), names, texts=True))
    }
    rows = []
    for event, envelope in accepted:
        user = users.get(event.operator) if event.operator else None
        rows.append(
            _entry_row(
                envelope=envelope,
                activity=Activity.PACK,
                operator_id=user.pk if user else None,
                label=event.operator or "",
                location=None,
                at=event.scanned_at,
            )
        )
    _record_many(rows)


# --- Staffing plans ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ForecastHour:
    hour: datetime
    orders: float


def _standards_of(site: Site, *, measured_since: datetime | None) -> dict[tuple[str, str], float]:
    """(activity, zone code) → lines per hour: engineered, or measured where enough work was seen since then."""
    rates = {
        (row.activity, row.zone.code if row.zone is not None else ""): float(row.lines_per_hour)
        for row in Standard.objects.filter(site=site).select_related("zone")
    }
    if measured_since is not None:
        for (activity, zone_code), _rate in list(rates.items()):
            zone = Zone.objects.filter(site=site, code=zone_code).first() if zone_code else None
            measured = selectors.measured_rate(
                site=site, activity=activity, zone=zone, since=measured_since, until=clock.now()
            )
            if measured.lines >= selectors.MIN_MEASURED_LINES:
                rates[(activity, zone_code)] = measured.lines_per_hour
    return rates


def _zone_shares(site: Site, shares: Mapping[int, float] | None) -> tuple[dict[str, float], dict[str, Zone]]:
    if not shares:
        return {"": 1.0}, {}
    zones = {z.pk: z for z in Zone.objects.filter(pk__in=list(shares))}
    for zone_id in shares:
        zone = zones.get(zone_id)
        if zone is None:
            raise NotFound(_("Zone not found."), code="zone_not_found", details={"zone_id": zone_id})
        _zone_of_site(zone, site)
    return {zones[k].code: float(v) for k, v in shares.items()}, {z.code: z for z in zones.values()}


@transaction.atomic
def staffing_plan_create(
    *,
    site: Site,
    forecast: Sequence[ForecastHour],
    lines_per_order: float,
    utilisation: float = 0.85,
    zone_shares: Mapping[int, float] | None = None,
    work_per_line: Mapping[str, float] | None = None,
    backlog_lines: Mapping[str, float] | None = None,
    catch_up_hours: int = 1,
    measured_since: datetime | None = None,
    name: str = "",
    source: str = PlanSource.FORECAST,
    replaces: StaffingPlan | None = None,
    require_cover: bool = False,
    flow: domain.Flow | None = None,
) -> StaffingPlan:
    """Compute and store the heads per hour, zone and activity ``forecast`` needs at the site's standards.

    ``flow``: plan from the flow of work (``domain.Flow``: the release buffer, the handoff between stages, the
    carriers' cut-offs, the longest wait) instead of each hour's arrivals in that hour; the plan then runs past the
    forecast's last hour while work is left.

    ``measured_since``: use the rates measured from the scans since then where there were enough of them.
    ``require_cover``: refuse (``shift_unstaffed``) a plan with an hour of work and nobody rostered for it.
    """
    if not forecast:
        raise ValidationFailed(_("A forecast needs at least one hour."), code="forecast_required")
    if len(forecast) > MAX_PLAN_HOURS:
        raise ValidationFailed(
            _("A plan covers at most %(hours)d hours.") % {"hours": MAX_PLAN_HOURS},
            code="forecast_too_long",
            details={"hours": len(forecast), "maximum": MAX_PLAN_HOURS},
        )
    shares, zones = _zone_shares(site, zone_shares)
    hours = [domain.HourForecast(hour=_hour_of(f.hour), orders=float(f.orders)) for f in forecast]
    try:
        cells = domain.staffing_plan(
            hours,
            lines_per_order=float(lines_per_order),
            standards=_standards_of(site, measured_since=measured_since),
            utilisation=float(utilisation),
            work_per_line=work_per_line,
            zone_shares=shares,
            backlog_lines=backlog_lines,
            catch_up_hours=catch_up_hours,
            flow=flow,
        )
    except domain.PlanError as exc:
        raise plan_error(exc) from None
    starts = min(h.hour for h in hours)
    ends = max([h.hour for h in hours] + [cell.hour for cell in cells]) + timedelta(hours=1)
    plan = StaffingPlan.objects.create(
        site=site,
        name=name[:200],
        source=source,
        starts_at=starts,
        ends_at=ends,
        utilisation=Decimal(str(utilisation)).quantize(Decimal("0.001")),
        lines_per_order=Decimal(str(lines_per_order)).quantize(Decimal("0.001")),
        inputs={
            "forecast": [{"hour": h.hour.isoformat(), "orders": h.orders} for h in hours],
            "zone_shares": shares,
            "work_per_line": dict(work_per_line or {}),
            "backlog_lines": dict(backlog_lines or {}),
            "catch_up_hours": catch_up_hours,
            "measured_since": measured_since.isoformat() if measured_since else None,
            "flow": _flow_inputs(flow),
        },
        replaces=replaces,
    )
    _cells_write(plan, cells, zones)
    if require_cover:
        gaps = [gap for gap in selectors.staffing_gaps(plan=plan) if gap.rostered == 0]
        if gaps:
            first = gaps[0]
            raise ValidationFailed(
                _("Nobody is rostered for %(activity)s at %(hour)s although the plan has work then.")
                % {"activity": Activity(first.activity).label, "hour": first.hour.isoformat()},
                code="shift_unstaffed",
                details={
                    "gaps": [
                        {"hour": g.hour.isoformat(), "activity": g.activity, "zone": g.zone, "planned": g.planned}
                        for g in gaps
                    ]
                },
            )
    return plan


def _flow_inputs(flow: domain.Flow | None) -> dict[str, Any] | None:
    """The flow model as the plan's inputs keep it (and ``_flow_of`` reads it back to re-plan)."""
    if flow is None:
        return None
    return {
        "release_delay_minutes": flow.release_delay / timedelta(minutes=1),
        "handoff_minutes": flow.handoff / timedelta(minutes=1),
        "max_wait_minutes": flow.max_wait / timedelta(minutes=1),
        "cutoffs": [cutoff.isoformat() for cutoff in flow.cutoffs],
    }


def _flow_of(inputs: Mapping[str, Any] | None) -> domain.Flow | None:
    if not inputs:
        return None
    return domain.Flow(
        release_delay=timedelta(minutes=float(inputs["release_delay_minutes"])),
        handoff=timedelta(minutes=float(inputs["handoff_minutes"])),
        max_wait=timedelta(minutes=float(inputs["max_wait_minutes"])),
        cutoffs=tuple(datetime.fromisoformat(text) for text in inputs["cutoffs"]),
    )


def _hour_of(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValidationFailed(_("Every forecast hour needs a time zone."), code="invalid_instant")
    return moment.replace(minute=0, second=0, microsecond=0)


def _cells_write(plan: StaffingPlan, cells: Sequence[domain.PlanCell], zones: Mapping[str, Zone]) -> None:
    StaffingPlanCell.objects.bulk_create(
        StaffingPlanCell(
            plan=plan,
            hour=cell.hour,
            zone=zones.get(cell.zone),
            activity=cell.activity,
            workload_lines=Decimal(str(round(cell.workload_lines, 2))),
            lines_per_hour=Decimal(str(round(cell.lines_per_hour, 2))),
            heads=cell.heads,
        )
        for cell in cells
    )


@transaction.atomic
def staffing_plan_replan(
    *, plan: StaffingPlan, merchant_ids: Sequence[int] | None = None, catch_up_hours: int = 1
) -> StaffingPlan:
    """Re-plan the rest of ``plan``'s day from now: the orders still waiting (orders' selectors) are spread over the
    next ``catch_up_hours`` hours on top of the forecast of the hours left. A new plan, ``replaces`` the old one."""
    now = clock.now()
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    left = [
        ForecastHour(hour=datetime.fromisoformat(entry["hour"]), orders=float(entry["orders"]))
        for entry in plan.inputs.get("forecast", [])
        if datetime.fromisoformat(entry["hour"]) >= current_hour
    ]
    if not left:
        raise ValidationFailed(
            _("This plan's hours are over: nothing is left to re-plan."),
            code="plan_over",
            details={"plan_id": plan.pk, "ends_at": plan.ends_at.isoformat()},
        )
    backlog = selectors.backlog_lines_now(scope=Scope.system("labour re-planning"), merchant_ids=merchant_ids)
    zone_ids = {z.code: z.pk for z in Zone.objects.filter(site=plan.site)}
    shares = {zone_ids[code]: share for code, share in plan.inputs.get("zone_shares", {}).items() if code}
    return staffing_plan_create(
        site=plan.site,
        forecast=left,
        lines_per_order=float(plan.lines_per_order),
        utilisation=float(plan.utilisation),
        zone_shares=shares or None,
        work_per_line=plan.inputs.get("work_per_line") or None,
        backlog_lines={k: float(v) for k, v in backlog.items()},
        catch_up_hours=catch_up_hours,
        name=plan.name,
        source=PlanSource.BACKLOG,
        flow=_flow_of(plan.inputs.get("flow")),
        replaces=plan,
    )


@dataclass(frozen=True)
class TicketHour:
    hour: datetime
    tickets: float


@transaction.atomic
def contact_centre_plan_create(
    *,
    site: Site,
    forecast: Sequence[TicketHour],
    aht_seconds: float,
    target_service_level: float = 0.8,
    answer_within_seconds: float = 20,
    max_occupancy: float = 0.85,
    shrinkage: float = 0.3,
    name: str = "",
) -> StaffingPlan:
    """Agents per hour for a ticket forecast, by Erlang C (``domain.agents_needed``), shrinkage included."""
    if not forecast:
        raise ValidationFailed(_("A forecast needs at least one hour."), code="forecast_required")
    if len(forecast) > MAX_PLAN_HOURS:
        raise ValidationFailed(
            _("A plan covers at most %(hours)d hours.") % {"hours": MAX_PLAN_HOURS},
            code="forecast_too_long",
            details={"hours": len(forecast), "maximum": MAX_PLAN_HOURS},
        )
    hours = sorted(((_hour_of(f.hour), float(f.tickets)) for f in forecast), key=lambda pair: pair[0])
    if len({hour for hour, _t in hours}) != len(hours):
        raise plan_error(domain.PlanError("duplicate_hour"))
    try:
        needs = [
            (
                hour,
                tickets,
                domain.agents_needed(
                    contacts_per_hour=tickets,
                    aht_seconds=float(aht_seconds),
                    target_service_level=float(target_service_level),
                    answer_within_seconds=float(answer_within_seconds),
                    max_occupancy=float(max_occupancy),
                    shrinkage=float(shrinkage),
                ),
            )
            for hour, tickets in hours
        ]
    except domain.PlanError as exc:
        raise plan_error(exc) from None
    plan = StaffingPlan.objects.create(
        site=site,
        name=name[:200],
        source=PlanSource.FORECAST,
        starts_at=hours[0][0],
        ends_at=hours[-1][0] + timedelta(hours=1),
        utilisation=Decimal(str(max_occupancy)).quantize(Decimal("0.001")),
        lines_per_order=Decimal("1.000"),
        inputs={
            "tickets": [{"hour": hour.isoformat(), "tickets": tickets} for hour, tickets, _n in needs],
            "aht_seconds": float(aht_seconds),
            "target_service_level": float(target_service_level),
            "answer_within_seconds": float(answer_within_seconds),
            "shrinkage": float(shrinkage),
        },
    )
    StaffingPlanCell.objects.bulk_create(
        StaffingPlanCell(
            plan=plan,
            hour=hour,
            zone=None,
            activity=Activity.CUSTOMER_SERVICE,
            workload_lines=Decimal(str(round(tickets, 2))),
            lines_per_hour=Decimal(str(round(3600 / float(aht_seconds), 2))),
            heads=need.rostered,
        )
        for hour, tickets, need in needs
    )
    return plan
