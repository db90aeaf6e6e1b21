"""Event-sale writes: a campaign, its SKUs and ASNs, its plan (temporary zone, racks, staffing), the capacity check
against the promise, opening (its release throttle pushed down to fulfilment's release limits), putaway into the
zone, close-out (the throttle lifted).

Campaigns stand at the top of the layers: every write of another app goes through that app's services (warehouse:
zone and racks; inbound: ASNs and putaway; inventory: move tasks; labour: the staffing plan), never its tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from quai.campaigns import domain
from quai.campaigns.events import CampaignStatusChanged
from quai.campaigns.models import Campaign, CampaignAsn, CampaignSku, CampaignStatus
from quai.catalog.models import Sku
from quai.core import clock
from quai.core.errors import Conflict, ValidationFailed
from quai.core.states import StateMachine, transition
from quai.fulfillment.services import release_limit_clear, release_limit_set
from quai.inbound.models import PutawayTask
from quai.inbound.services import AsnLineInput, asn_create, putaway_confirm
from quai.inventory.models import StockQuantity
from quai.inventory.services.move_tasks import zone_empty_tasks
from quai.labor import domain as labor_domain
from quai.labor import services as labor_services
from quai.labor.selectors import capacity_lines_per_hour, staffing_gaps
from quai.promise.selectors import backlog_for, release_buffer_for, site_config_for
from quai.tenants.models import Merchant
from quai.warehouse.models import Location, Site, Zone, ZoneKind, ZoneStatus
from quai.warehouse.services import rack_bulk_create, zone_close, zone_create

CAMPAIGN_MACHINE = StateMachine.from_table(
    "campaign", domain.CAMPAIGN_TRANSITIONS, names=domain.CAMPAIGN_TRANSITION_NAMES
)
#: A campaign's code: a slug of the model's 40 characters (a longer one reached the database: 422 out_of_range).
CODE_PATTERN = re.compile(r"[-a-z0-9_]{1,40}")
#: After the sale ends, the zone stays valid this long so its leftovers can be moved out.
CLOSE_OUT_DAYS = 7
#: The staffing plan's flow (labour's ``Flow``): no order's work is planned to wait more than this after its release
#: (the spike is spread over the hours after it, never left for the next day), and between an order's picking and
#: its packing there is about one wave's turn.
DEFAULT_MAX_WAIT = timedelta(hours=3)
DEFAULT_HANDOFF = timedelta(minutes=10)

_CURVE_MESSAGES = {
    "invalid_window": gettext_lazy("A campaign must end after it starts."),
    "campaign_too_long": gettext_lazy("An event sale lasts at most 62 days."),
    "invalid_instant": gettext_lazy("Every hour of the order curve needs a time zone."),
    "duplicate_hour": gettext_lazy("The order curve names the same hour twice."),
    "negative_volume": gettext_lazy("The order curve cannot hold negative volumes."),
    "absurd_volume": gettext_lazy("An hour of the order curve is beyond what any site handles; check the figures."),
    "hour_outside_campaign": gettext_lazy("An hour of the order curve lies outside the campaign's dates."),
}


def _curve_error(exc: domain.CurveError) -> ValidationFailed:
    return ValidationFailed(str(_CURVE_MESSAGES.get(exc.code, exc.code)), code=exc.code, details=exc.params)


def _curve_of(campaign: Campaign) -> list[domain.CurvePoint]:
    return [
        domain.CurvePoint(hour=datetime.fromisoformat(p["hour"]), orders=float(p["orders"]))
        for p in campaign.order_curve
    ]


@dataclass(frozen=True)
class SkuLine:
    sku_code: str
    expected_units: int


@transaction.atomic
def campaign_create(
    *,
    merchant: Merchant,
    site: Site,
    code: str,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    skus: Sequence[SkuLine] = (),
    order_curve: Sequence[domain.CurvePoint] = (),
    lines_per_order: Decimal | float = 1,
    release_per_hour: int | None = None,
) -> Campaign:
    """A draft campaign; every input is checked before anything is written."""
    code = code.strip().lower()
    if not code:
        raise ValidationFailed(_("A campaign needs a code."), code="code_required", details={"field": "code"})
    if not CODE_PATTERN.fullmatch(code):
        raise ValidationFailed(
            _("A campaign's code is at most 40 letters, digits, hyphens or underscores (e.g. spring-sale)."),
            code="invalid_campaign_code",
            details={"field": "code", "code": code},
        )
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValidationFailed(_("A campaign's dates need a time zone."), code="invalid_instant")
    hours = [
        domain.CurvePoint(hour=p.hour.replace(minute=0, second=0, microsecond=0), orders=p.orders) for p in order_curve
    ]
    try:
        domain.curve_check(hours, starts_at=starts_at, ends_at=ends_at)
    except domain.CurveError as exc:
        raise _curve_error(exc) from None
    try:
        per_order = Decimal(str(lines_per_order))
    except InvalidOperation:
        per_order = Decimal("NaN")
    if not per_order.is_finite() or not Decimal("0.01") <= per_order <= Decimal("200"):
        raise ValidationFailed(
            _("Lines per order must be between 0.01 and 200."),
            code="invalid_lines_per_order",
            details={"lines_per_order": str(lines_per_order)},
        )
    if release_per_hour is not None and not 1 <= release_per_hour <= 1_000_000:
        raise ValidationFailed(
            _("The release throttle must be between 1 and 1,000,000 orders per hour."),
            code="invalid_release_throttle",
        )
    if Campaign.objects.for_merchant(merchant).filter(code=code).exists():
        raise Conflict(
            _("A campaign with code '%(code)s' already exists.") % {"code": code},
            code="duplicate_campaign_code",
            details={"code": code},
        )
    campaign = Campaign.objects.create(
        merchant=merchant,
        site=site,
        code=code,
        name=name[:200] or code,
        starts_at=starts_at,
        ends_at=ends_at,
        order_curve=[{"hour": p.hour.isoformat(), "orders": p.orders} for p in hours],
        lines_per_order=per_order,
        release_per_hour=release_per_hour,
    )
    if skus:
        campaign_skus_set(campaign=campaign, skus=skus)
    return campaign


def _campaign_locked(campaign: Campaign) -> Campaign:
    return Campaign.objects.select_for_update().get(pk=campaign.pk)


def _must_be(campaign: Campaign, *statuses: str) -> None:
    if campaign.status not in statuses:
        raise Conflict(
            _("This campaign is %(status)s: this step needs it %(wanted)s.")
            % {
                "status": CampaignStatus(campaign.status).label,
                "wanted": " / ".join(str(CampaignStatus(s).label) for s in statuses),
            },
            code="invalid_transition",
            details={"from": campaign.status, "allowed": list(statuses)},
        )


@transaction.atomic
def campaign_skus_set(*, campaign: Campaign, skus: Sequence[SkuLine]) -> list[CampaignSku]:
    """The campaign's SKUs and expected units (replacing the previous list); only before it opens."""
    campaign = _campaign_locked(campaign)
    _must_be(campaign, CampaignStatus.DRAFT, CampaignStatus.PLANNED)
    codes = [line.sku_code for line in skus]
    found = {s.code: s for s in Sku.objects.for_merchant(campaign.merchant_id).filter(code__in=codes)}
    errors = []
    for index, line in enumerate(skus):
        if line.sku_code not in found:
            errors.append({"line": index, "code": "sku_not_found", "sku": line.sku_code})
        elif not 0 < line.expected_units <= 10_000_000:
            errors.append({"line": index, "code": "invalid_quantity", "sku": line.sku_code})
    if len(set(codes)) != len(codes):
        errors.append({"line": None, "code": "duplicate_sku"})
    if errors:
        raise ValidationFailed(
            _("Some SKUs of the campaign are unknown or have an invalid quantity."),
            code=str(errors[0]["code"]),
            details={"errors": errors},
        )
    CampaignSku.objects.filter(campaign=campaign).delete()
    return CampaignSku.objects.bulk_create(
        CampaignSku(campaign=campaign, sku=found[line.sku_code], expected_units=line.expected_units) for line in skus
    )


@transaction.atomic
def campaign_asn_announce(
    *, campaign: Campaign, reference: str, expected_at: Any = None, supplier: str = "", actor: Any = None
) -> CampaignAsn:
    """Announce the campaign's stock as an ASN (inbound's ``asn_create``: one line per campaign SKU)."""
    campaign = _campaign_locked(campaign)
    _must_be(campaign, CampaignStatus.DRAFT, CampaignStatus.PLANNED)
    lines = [
        AsnLineInput(sku_code=row.sku.code, quantity=row.expected_units)
        for row in campaign.skus.select_related("sku").order_by("id")
    ]
    if not lines:
        raise ValidationFailed(_("Add the campaign's SKUs before announcing its stock."), code="lines_required")
    asn = asn_create(
        merchant=campaign.merchant,
        reference=reference,
        site=campaign.site,
        lines=lines,
        supplier=supplier,
        expected_at=expected_at,
        actor=actor,
    )
    return CampaignAsn.objects.create(campaign=campaign, asn=asn)


def campaign_transition(*, campaign: Campaign, to_status: str, actor: Any = None, reason: str = "") -> Campaign:
    """The campaign's only status writer: status, audit row and ``campaign.status_changed`` together."""
    transition(
        campaign,
        machine=CAMPAIGN_MACHINE,
        to_status=to_status,
        event=lambda step: CampaignStatusChanged(
            campaign_id=campaign.pk,
            code=campaign.code,
            from_status=step.from_status,
            to_status=step.to_status,
            reason=reason,
        ),
        actor=actor,
        reason=reason,
    )
    return campaign


@dataclass(frozen=True)
class RackPattern:
    aisles: str
    bays: int | str
    levels: int | str
    positions: int | str = 1


@transaction.atomic
def campaign_plan(
    *,
    campaign: Campaign,
    zone_code: str,
    racks: RackPattern | None = None,
    zone: Zone | None = None,
    utilisation: float = 0.85,
    actor: Any = None,
    work_per_line: Mapping[str, float] | None = None,
    max_wait: timedelta = DEFAULT_MAX_WAIT,
    handoff: timedelta = DEFAULT_HANDOFF,
) -> Campaign:
    """Plan a draft campaign: its temporary zone (created with racks from a pattern, or an existing zone given),
    the staffing plan of its order curve, and the capacity check. Moves it to ``planned``.

    The staffing plan follows the flow of the work (``_plan_flow``): the merchant's release buffer, the promise's
    cut-offs, ``handoff`` between picking and packing, no order waiting more than ``max_wait``; ``work_per_line``
    is labour's (activity → work per order line; default a pick and a pack per line, a shipment per order)."""
    campaign = _campaign_locked(campaign)
    _must_be(campaign, CampaignStatus.DRAFT)
    if campaign.ends_at <= clock.now():
        # Planned anyway, its new zone's window would end before it starts: a refusal no planner could read.
        raise Conflict(
            _("This campaign ended on %(day)s: there is nothing left to plan.")
            % {"day": campaign.ends_at.astimezone(ZoneInfo(campaign.site.time_zone)).date().isoformat()},
            code="campaign_over",
            details={"ends_at": campaign.ends_at.isoformat()},
        )
    valid_until = campaign.ends_at + timedelta(days=CLOSE_OUT_DAYS)
    if zone is not None:
        if zone.site_id != campaign.site_id:
            raise ValidationFailed(_("This zone is in another site."), code="zone_other_site")
        if zone.status == ZoneStatus.CLOSED:
            raise Conflict(
                _("Zone %(code)s is closed: a campaign cannot use it.") % {"code": zone.code},
                code="zone_closed",
                details={"zone_id": zone.pk},
            )
        if zone.valid_until is not None and zone.valid_until < campaign.ends_at:
            raise Conflict(
                _("Zone %(code)s closes before the campaign ends.") % {"code": zone.code},
                code="zone_window_too_short",
                details={"zone_id": zone.pk, "valid_until": zone.valid_until.isoformat()},
            )
        if zone.valid_from is not None and zone.valid_from > campaign.starts_at:
            # Its stock would not be available before the zone opens: the sale's first hours would sell nothing.
            raise Conflict(
                _("Zone %(code)s opens after the campaign starts.") % {"code": zone.code},
                code="zone_window_too_short",
                details={"zone_id": zone.pk, "valid_from": zone.valid_from.isoformat()},
            )
    else:
        closed = Zone.objects.filter(site=campaign.site, code=zone_code.strip().upper(), status=ZoneStatus.CLOSED)
        if closed.exists():
            raise Conflict(
                _("Zone %(code)s is closed: a campaign cannot use it.") % {"code": zone_code.strip().upper()},
                code="zone_closed",
            )
        zone = zone_create(
            site=campaign.site,
            code=zone_code,
            name=_("Event sale %(name)s") % {"name": campaign.name},
            kind=ZoneKind.STORAGE,
            merchant=campaign.merchant,
            valid_from=clock.now(),
            valid_until=valid_until,
        )
        if racks is not None:
            rack_bulk_create(
                site=campaign.site,
                zone=zone,
                aisles=racks.aisles,
                bays=racks.bays,
                levels=racks.levels,
                positions=racks.positions,
            )
    plan = None
    curve = _curve_of(campaign)
    if any(p.orders > 0 for p in curve):
        plan = labor_services.staffing_plan_create(
            site=campaign.site,
            forecast=[labor_services.ForecastHour(hour=p.hour, orders=p.orders) for p in curve],
            lines_per_order=float(campaign.lines_per_order),
            utilisation=utilisation,
            name=_("Event sale %(name)s") % {"name": campaign.name},
            work_per_line=work_per_line,
            flow=_plan_flow(campaign, curve, max_wait=max_wait, handoff=handoff),
        )
    campaign.zone = zone
    campaign.staffing_plan = plan
    campaign.warnings = capacity_warnings(campaign=campaign)
    campaign.checked_at = clock.now()
    campaign.version += 1
    campaign.save(update_fields=["zone", "staffing_plan", "warnings", "checked_at", "version", "updated_at"])
    return campaign_transition(campaign=campaign, to_status=CampaignStatus.PLANNED, actor=actor, reason="planned")


def _plan_flow(
    campaign: Campaign, curve: Sequence[domain.CurvePoint], *, max_wait: timedelta, handoff: timedelta
) -> labor_domain.Flow:
    """How the campaign's orders flow, for labour's plan: released after the merchant's buffer, due at the first
    cut-off of the promise's carrier services they can make (any service's: the plan does not know the carrier mix,
    so every order may have been promised the earliest pick-up), on every working day of the curve and the next."""
    config = site_config_for(campaign.merchant_id)
    cutoffs: set[datetime] = set()
    if config is not None:
        calendar = config.snapshot.calendar
        days = {point.hour.astimezone(calendar.zone).date() for point in curve}
        for day in days | {day + timedelta(days=1) for day in days}:
            if not calendar.works_on(day):
                continue
            for service in config.snapshot.services:
                at = service.cutoffs.get(day.isoweekday())
                if at is not None:
                    cutoffs.add(calendar.local(day, at))
    return labor_domain.Flow(
        release_delay=release_buffer_for(campaign.merchant_id),
        handoff=handoff,
        cutoffs=tuple(sorted(cutoffs)),
        max_wait=max_wait,
    )


_WARNING_MESSAGES = {
    "no_promise_site": gettext_lazy("No promise site serves this merchant: the capacity cannot be checked."),
    "no_capacity": gettext_lazy("Neither labour nor the promise knows the site's capacity: it cannot be checked."),
    "peak_ships_tomorrow": gettext_lazy(
        "At the forecast peak (%(day)s), orders after %(time)s ship the next working day (%(service)s)."
    ),
    "staffing_gaps": gettext_lazy("%(count)d hour(s) of the staffing plan have fewer people rostered than planned."),
}


def _warning(code: str, **params: Any) -> dict[str, Any]:
    warning = {"code": code, "message": "", "params": params}
    warning["message"] = warning_message(warning)
    return warning


def warning_message(warning: Mapping[str, Any]) -> str:
    """A capacity warning's sentence in the active language, from its code and parameters: a campaign keeps the
    warnings of its last check, and the one who reads them may not read the language of the one who checked. A
    warning this cannot word again keeps the sentence it was stored with."""
    template = _WARNING_MESSAGES.get(str(warning.get("code")))
    params = dict(warning.get("params") or {})
    if warning.get("code") == "peak_ships_tomorrow":
        params["service"] = params.get("service_name")
    if warning.get("code") == "staffing_gaps":
        params["count"] = len(params.get("hours") or ())
    if template is None or None in params.values():
        return str(warning.get("message", ""))
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):
        return str(warning.get("message", ""))


def warnings_worded(warnings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``warning_message`` of each warning: the campaign's warnings as the reader reads them."""
    return [{**warning, "message": warning_message(warning)} for warning in warnings]


def capacity_warnings(*, campaign: Campaign) -> list[dict[str, Any]]:
    """What the promise engine's figures say about the campaign's peak day, as warnings (code, message, params).

    The capacity is labour's (the rostered or planned heads at the peak's busiest hour) where it knows the hour,
    else the promise's configured rate; the slowest of pick and pack. The cut-offs are the promise's carrier
    services'.
    """
    warnings: list[dict[str, Any]] = []
    config = site_config_for(campaign.merchant_id)
    if config is None:
        return [_warning("no_promise_site")]
    snapshot = config.snapshot
    calendar = snapshot.calendar
    peak = domain.peak_day(_curve_of(campaign), calendar.zone)
    if not peak:
        return warnings
    busiest = max(peak, key=lambda p: p.orders)
    day = busiest.hour.astimezone(calendar.zone).date()
    rates = []
    for stage in ("pick", "pack"):
        labour = capacity_lines_per_hour(site=campaign.site_id, stage=stage, at=busiest.hour + timedelta(minutes=30))
        configured = snapshot.capacity.lines_per_hour.get(stage)
        rate = labour if labour is not None else configured
        if rate is not None:
            rates.append(rate)
    if not rates:
        warnings.append(_warning("no_capacity"))
        return warnings
    capacity = min(rates)
    backlog = max(backlog_for(config).values(), default=0)
    opens = calendar.local(day, calendar.opens_at)
    for service in snapshot.services:
        cutoff_time = service.cutoffs.get(day.isoweekday())
        if cutoff_time is None or not calendar.works_on(day):
            continue
        cutoff = calendar.local(day, cutoff_time)
        last = domain.last_same_day_arrival(
            peak,
            lines_per_order=float(campaign.lines_per_order),
            capacity_lines_per_hour=capacity,
            opens_at=opens,
            cutoff=cutoff,
            backlog_lines=float(backlog),
        )
        if last is None:
            continue
        local = last.astimezone(calendar.zone)
        warnings.append(
            _warning(
                "peak_ships_tomorrow",
                day=day.isoformat(),
                time=domain.hhmm(local),
                service=service.code,
                service_name=service.name,
                capacity_lines_per_hour=round(capacity, 1),
            )
        )
    if campaign.staffing_plan_id:
        gaps = staffing_gaps(plan=campaign.staffing_plan)  # type: ignore[arg-type]
        if gaps:
            warnings.append(_warning("staffing_gaps", hours=sorted({g.hour.isoformat() for g in gaps})))
    return warnings


@transaction.atomic
def campaign_open(*, campaign: Campaign, acknowledge_warnings: bool = False, actor: Any = None) -> Campaign:
    """Open a planned campaign after a fresh capacity check; warnings must be acknowledged to open anyway."""
    campaign = _campaign_locked(campaign)
    _must_be(campaign, CampaignStatus.PLANNED)
    warnings = capacity_warnings(campaign=campaign)
    Campaign.objects.filter(pk=campaign.pk).update(warnings=warnings, checked_at=clock.now())
    campaign.warnings = warnings
    if warnings and not acknowledge_warnings:
        raise Conflict(
            _("The capacity check raised warnings: read them and open again acknowledging them."),
            code="capacity_warnings_unacknowledged",
            details={"warnings": warnings},
        )
    campaign_transition(campaign=campaign, to_status=CampaignStatus.OPEN, actor=actor, reason="opened")
    _throttle_apply(campaign)
    return campaign


def throttle_source(campaign: Campaign) -> str:
    """The name a campaign's release limit goes by in fulfilment (one per campaign)."""
    return f"campaign:{campaign.pk}"


def _throttle_apply(campaign: Campaign) -> None:
    """Push the campaign's release throttle down to fulfilment, which every wave release reads: the merchant's
    orders at the campaign's site, from the sale's start until its zone's close-out window ends (closing the
    campaign lifts it sooner). Fulfilment cannot tell the sale's orders from the merchant's others: all count."""
    if campaign.release_per_hour is None:
        release_limit_clear(merchant=campaign.merchant, site=campaign.site, source=throttle_source(campaign))
        return
    release_limit_set(
        merchant=campaign.merchant,
        site=campaign.site,
        source=throttle_source(campaign),
        orders_per_hour=campaign.release_per_hour,
        valid_from=campaign.starts_at,
        valid_until=max(campaign.ends_at + timedelta(days=CLOSE_OUT_DAYS), clock.now() + timedelta(hours=1)),
    )


def _throttle_lift(campaign: Campaign) -> None:
    release_limit_clear(merchant=campaign.merchant, site=campaign.site, source=throttle_source(campaign))


def putaway_location(*, campaign: Campaign, sku: Sku) -> Location:
    """Where a campaign SKU goes in the campaign's zone: a place already holding it, else the first empty one."""
    if campaign.zone_id is None:
        raise Conflict(_("This campaign has no zone yet: plan it first."), code="campaign_not_planned")
    places = Location.objects.filter(zone_id=campaign.zone_id, status="active").order_by("pick_sequence", "id")
    holding = StockQuantity.objects.filter(location__zone_id=campaign.zone_id, on_hand__gt=0)
    same = places.filter(pk__in=holding.filter(sku=sku).values("location_id")).first()
    empty = places.exclude(pk__in=holding.values("location_id")).first()
    found = same or empty
    if found is None:
        raise Conflict(
            _("The campaign's zone has no room left for %(sku)s.") % {"sku": sku.code}, code="campaign_zone_full"
        )
    return found


@transaction.atomic
def campaign_putaway(*, campaign: Campaign, task: PutawayTask, actor: Any = None) -> PutawayTask:
    """Put a received campaign SKU away in the campaign's zone (through inbound's ``putaway_confirm``)."""
    if task.merchant_id != campaign.merchant_id or not campaign.skus.filter(sku_id=task.sku_id).exists():
        raise ValidationFailed(_("This putaway task is not stock of this campaign."), code="not_campaign_stock")
    location = putaway_location(campaign=campaign, sku=task.sku)
    return putaway_confirm(task=task, location_code=location.code, actor=actor)


@transaction.atomic
def campaign_close_out(*, campaign: Campaign, actor: Any = None) -> Campaign:
    """Stop the sale and start emptying its zone: one move task per stock row left there (inventory's service)."""
    campaign = _campaign_locked(campaign)
    _must_be(campaign, CampaignStatus.OPEN)
    if campaign.zone is not None:
        zone_empty_tasks(zone=campaign.zone, actor=actor)
    _throttle_lift(campaign)  # the sale is over: its orders go to the floor as fast as the floor takes them
    return campaign_transition(campaign=campaign, to_status=CampaignStatus.CLOSING, actor=actor, reason="close-out")


@transaction.atomic
def campaign_close(*, campaign: Campaign, actor: Any = None) -> Campaign:
    """Dissolve the zone (warehouse's ``zone_close``: refused with ``zone_not_empty`` while stock or reservations
    remain) and close the campaign."""
    campaign = _campaign_locked(campaign)
    _must_be(campaign, CampaignStatus.CLOSING)
    if campaign.zone is not None:
        zone_close(zone=campaign.zone, actor=actor)
    _throttle_lift(campaign)
    return campaign_transition(campaign=campaign, to_status=CampaignStatus.CLOSED, actor=actor, reason="closed")
