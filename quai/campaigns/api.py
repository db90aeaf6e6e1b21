"""Event sales HTTP API: a merchant reads and runs its own campaigns; staff any merchant's (scoped per request).

Thin: every write resolves the campaign through the principal's scope (another merchant's campaign answers
``campaign_not_found``) and calls the campaign services, which hold the rules and the state machine.
"""

# No "from __future__ import annotations" here: Ninja reads the list's query annotations at runtime, under @paginate.
from datetime import date, datetime
from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import StrictBool, StrictInt

from quai.campaigns import domain, selectors, services
from quai.campaigns.models import Campaign, CampaignStatus
from quai.core.errors import NotFound, ValidationFailed
from quai.tenants.auth import principal_of
from quai.tenants.principal import Principal
from quai.tenants.schemas import MAX_INT
from quai.warehouse.selectors import site_list, zone_get

router = Router(tags=["campaigns"])

#: An event sale lasts at most 62 days (the service's rule): this bounds the curve's hours before any parsing.
CURVE_MAX_POINTS = 62 * 24
SKUS_MAX = 5000


class CampaignOut(Schema):
    id: int
    merchant_id: int
    site_id: int
    code: str
    name: str
    status: str
    starts_at: datetime
    ends_at: datetime
    release_per_hour: int | None
    zone_id: int | None
    staffing_plan_id: int | None
    order_curve: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    checked_at: datetime | None

    @staticmethod
    def resolve_warnings(obj: Campaign) -> list[dict[str, Any]]:
        return services.warnings_worded(obj.warnings)  # in the reader's language, not the checker's


class CurvePointIn(Schema):
    hour: datetime = Field(..., description="The hour's start, with its time zone.")
    orders: float = Field(..., ge=0, strict=True, description="Orders expected in that hour.")


class CampaignSkuIn(Schema):
    sku: str = Field(..., min_length=1, max_length=64, description="The merchant's SKU code.")
    expected_units: StrictInt = Field(..., ge=1, le=MAX_INT)


class CampaignCreateIn(Schema):
    merchant_id: StrictInt | None = Field(None, description="Staff only: the merchant the campaign is for.")
    site: str | None = Field(
        None, max_length=20, description="Site code; may be left out when the warehouse has one site."
    )
    code: str = Field(
        ..., min_length=1, max_length=64, description="1 to 40 letters, digits, - or _ (e.g. spring-sale)."
    )
    name: str = Field("", max_length=200)
    starts_at: datetime
    ends_at: datetime
    skus: list[CampaignSkuIn] = Field(default_factory=list, max_length=SKUS_MAX)
    order_curve: list[CurvePointIn] = Field(default_factory=list, max_length=CURVE_MAX_POINTS)
    lines_per_order: float = Field(1, strict=True, description="Between 0.01 and 200.")
    release_per_hour: StrictInt | None = Field(
        None,
        description="The merchant's orders released to the floor per hour at most at the campaign's site, from the "
        "sale's start to its close-out (all its orders count, not only the sale's).",
    )


class RackPatternIn(Schema):
    aisles: str = Field(..., min_length=1, max_length=20, description="Aisle letters or range, e.g. 'T' or 'T-V'.")
    bays: StrictInt = Field(..., ge=1, le=999)
    levels: StrictInt = Field(..., ge=1, le=99)
    positions: StrictInt = Field(1, ge=1, le=99)


class CampaignPlanIn(Schema):
    zone_id: StrictInt | None = Field(None, description="An open zone of the site to use instead of a new one.")
    zone_code: str = Field("", max_length=20, description="The temporary zone to create (when no zone_id).")
    racks: RackPatternIn | None = Field(None, description="Racks to create in the new zone.")
    utilisation: float = Field(0.85, gt=0, le=1, strict=True)


class CampaignAsnIn(Schema):
    reference: str = Field(..., min_length=1, max_length=64)
    supplier: str = Field("", max_length=200)
    expected_at: date | None = None


class CampaignOpenIn(Schema):
    acknowledge_warnings: StrictBool = Field(
        False, description="Open although the capacity check warns (the warnings are those of a fresh check)."
    )


# ``Any``: a warehouse Site or Zone, read through warehouse's selectors; this API names no other app's model.
def _site(code: str | None) -> Any:
    """The site named by ``code``, or the only site when the warehouse has one."""
    if code:
        site = site_list().filter(code=code).first()
        if site is None:
            raise NotFound(
                _("Site '%(site)s' not found.") % {"site": code}, code="site_not_found", details={"site": code}
            )
        return site
    sites = list(site_list().order_by("id")[:2])
    if len(sites) != 1:
        raise ValidationFailed(_("Say which site the campaign runs in (site)."), code="site_required")
    return sites[0]


def _zone(campaign: Campaign, zone_id: int) -> Any:
    """A zone the campaign's merchant may use: a shared one or its own; another merchant's does not exist for it."""
    zone = zone_get(zone_id=zone_id)
    if zone.merchant_id is not None and zone.merchant_id != campaign.merchant_id:
        raise NotFound(_("Zone not found."), code="zone_not_found", details={"zone_id": zone_id})
    return zone


def _campaign(principal: Principal, campaign_id: int) -> Campaign:
    return selectors.campaign_get(scope=principal.scope(), campaign_id=campaign_id)


def _fresh(principal: Principal, campaign: Campaign) -> Campaign:
    return selectors.campaign_get(scope=principal.scope(), campaign_id=campaign.pk)


@router.get("/", response=list[CampaignOut])
@paginate
def campaign_list(request: HttpRequest, status: CampaignStatus | None = None) -> Any:
    """The principal's campaigns, newest sale first: ``{"items", "count"}`` as every list of the API (a bare list
    of 500 at most before); an unknown ``status`` is refused (it answered an empty list)."""
    return selectors.campaign_list(scope=principal_of(request).scope(), status=status)


@router.post("/", response={201: CampaignOut})
def campaign_create(request: HttpRequest, payload: CampaignCreateIn) -> Status[Campaign]:
    principal = principal_of(request)
    merchant = principal.merchant_for(payload.merchant_id)
    campaign = services.campaign_create(
        merchant=merchant,
        site=_site(payload.site),
        code=payload.code,
        name=payload.name,
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        skus=[services.SkuLine(sku_code=s.sku, expected_units=s.expected_units) for s in payload.skus],
        order_curve=[domain.CurvePoint(hour=p.hour, orders=p.orders) for p in payload.order_curve],
        lines_per_order=payload.lines_per_order,
        release_per_hour=payload.release_per_hour,
    )
    return Status(201, _fresh(principal, campaign))


@router.get("/{campaign_id}", response=CampaignOut)
def campaign_detail(request: HttpRequest, campaign_id: int) -> Any:
    return selectors.campaign_get(scope=principal_of(request).scope(), campaign_id=campaign_id)


@router.post("/{campaign_id}/plan", response=CampaignOut)
def campaign_plan(request: HttpRequest, campaign_id: int, payload: CampaignPlanIn) -> Campaign:
    principal = principal_of(request)
    campaign = _campaign(principal, campaign_id)
    zone = _zone(campaign, payload.zone_id) if payload.zone_id is not None else None
    racks = (
        services.RackPattern(
            aisles=payload.racks.aisles,
            bays=payload.racks.bays,
            levels=payload.racks.levels,
            positions=payload.racks.positions,
        )
        if payload.racks is not None
        else None
    )
    services.campaign_plan(
        campaign=campaign,
        zone_code=payload.zone_code,
        racks=racks,
        zone=zone,
        utilisation=payload.utilisation,
        actor=principal,
    )
    return _fresh(principal, campaign)


@router.post("/{campaign_id}/asns", response={201: CampaignOut})
def campaign_asn_announce(request: HttpRequest, campaign_id: int, payload: CampaignAsnIn) -> Status[Campaign]:
    principal = principal_of(request)
    campaign = _campaign(principal, campaign_id)
    services.campaign_asn_announce(
        campaign=campaign,
        reference=payload.reference,
        expected_at=payload.expected_at,
        supplier=payload.supplier,
        actor=principal,
    )
    return Status(201, _fresh(principal, campaign))


@router.post("/{campaign_id}/open", response=CampaignOut)
def campaign_open(request: HttpRequest, campaign_id: int, payload: CampaignOpenIn) -> Campaign:
    principal = principal_of(request)
    campaign = _campaign(principal, campaign_id)
    services.campaign_open(campaign=campaign, acknowledge_warnings=payload.acknowledge_warnings, actor=principal)
    return _fresh(principal, campaign)


@router.post("/{campaign_id}/close-out", response=CampaignOut)
def campaign_close_out(request: HttpRequest, campaign_id: int) -> Campaign:
    principal = principal_of(request)
    campaign = _campaign(principal, campaign_id)
    services.campaign_close_out(campaign=campaign, actor=principal)
    return _fresh(principal, campaign)


@router.post("/{campaign_id}/close", response=CampaignOut)
def campaign_close(request: HttpRequest, campaign_id: int) -> Campaign:
    principal = principal_of(request)
    campaign = _campaign(principal, campaign_id)
    services.campaign_close(campaign=campaign, actor=principal)
    return _fresh(principal, campaign)
