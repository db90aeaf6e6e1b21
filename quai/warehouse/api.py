"""Warehouse layout API. The layout belongs to the 3PL: every route is for staff; a merchant key gets 403."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status
from ninja.pagination import paginate

from quai.tenants.auth import MerchantKeyAuth, SessionAuth, principal_of
from quai.tenants.principal import Principal
from quai.tenants.scope import Scope
from quai.tenants.selectors import merchant_get
from quai.warehouse import selectors, services
from quai.warehouse.models import Location, Site, Zone
from quai.warehouse.schemas import (
    LocationBlockIn,
    LocationCreateIn,
    LocationOut,
    LocationsMovedOut,
    LocationsMoveIn,
    RackCreatedOut,
    RackCreateIn,
    SiteCreateIn,
    SiteOut,
    SiteUpdateIn,
    ZoneCreateIn,
    ZoneOut,
    ZoneUpdateIn,
)
from quai.warehouse.site_map import site_map_svg


class StaffOnlyKeyAuth(MerchantKeyAuth):
    """A merchant key is a valid credential but never staff: refused here, before the body is even read, so a
    merchant learns nothing from validation errors of routes it may not use."""

    openapi_description = "Merchant API keys are refused on the layout routes (403 staff_only)."

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        principal = super().authenticate(request, token)
        principal.require_staff()  # always refuses: a key speaks for a merchant
        return principal


class StaffSessionAuth(SessionAuth):
    """A merchant user's session is refused the same way (403 staff_only)."""

    openapi_description = "Session cookie of a logged-in member of the warehouse staff (CSRF token required)."

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        principal = super().authenticate(request, key)
        if principal is not None:
            principal.require_staff()
        return principal


router = Router(tags=["warehouse"], auth=[StaffOnlyKeyAuth(), StaffSessionAuth()])


def _staff(request: HttpRequest) -> Any:
    """The acting staff user (the router's auth already refused everyone else; checked again here)."""
    principal = principal_of(request)
    principal.require_staff()
    return principal.user


def _merchant(merchant_id: int) -> Any:
    return merchant_get(scope=Scope.merchant(merchant_id), merchant_id=merchant_id)  # merchant_not_found


# --- Sites -----------------------------------------------------------------------------------------------------


@router.get("/sites", response=list[SiteOut])
@paginate
def site_list(request: HttpRequest, q: str | None = None):
    _staff(request)
    return selectors.site_list(q=q)


@router.post("/sites", response={201: SiteOut})
def site_create(request: HttpRequest, payload: SiteCreateIn) -> Status[Site]:
    _staff(request)
    return Status(201, services.site_create(**payload.dict()))


@router.get("/sites/{site_id}", response=SiteOut)
def site_detail(request: HttpRequest, site_id: int) -> Site:
    _staff(request)
    return selectors.site_get(site_id=site_id)


@router.patch("/sites/{site_id}", response=SiteOut)
def site_update(request: HttpRequest, site_id: int, payload: SiteUpdateIn) -> Site:
    _staff(request)
    site = selectors.site_get(site_id=site_id)
    return services.site_update(site=site, **payload.dict(exclude_none=True))


@router.post("/sites/{site_id}/racks", response={201: RackCreatedOut})
def rack_bulk_create(request: HttpRequest, site_id: int, payload: RackCreateIn) -> Status[Any]:
    _staff(request)
    site = selectors.site_get(site_id=site_id)
    data = payload.dict()
    zone = selectors.zone_get(zone_id=data.pop("zone_id"))
    return Status(201, services.rack_bulk_create(site=site, zone=zone, **data))


_SVG_RESPONSE = {
    200: {
        "description": "An SVG map of the site's zones and locations.",
        "content": {"image/svg+xml": {"schema": {"type": "string"}}},
    }
}


@router.get("/sites/{site_id}/map.svg", openapi_extra={"responses": _SVG_RESPONSE})
def site_map(request: HttpRequest, site_id: int) -> HttpResponse:
    _staff(request)
    site = selectors.site_get(site_id=site_id)
    return HttpResponse(site_map_svg(site=site), content_type="image/svg+xml; charset=utf-8")


# --- Zones -----------------------------------------------------------------------------------------------------


@router.get("/zones", response=list[ZoneOut])
@paginate
def zone_list(
    request: HttpRequest,
    site_id: int | None = None,
    kind: str | None = None,
    status: str | None = None,
    merchant_id: int | None = None,
    shared: bool | None = None,
    active_at: datetime | None = None,
):
    _staff(request)
    return selectors.zone_list(
        site_id=site_id, kind=kind, status=status, merchant_id=merchant_id, shared=shared, active_at=active_at
    )


@router.post("/zones", response={201: ZoneOut})
def zone_create(request: HttpRequest, payload: ZoneCreateIn) -> Status[Zone]:
    _staff(request)
    site = selectors.site_get(site_id=payload.site_id)
    merchant = _merchant(payload.merchant_id) if payload.merchant_id is not None else None
    zone = services.zone_create(
        site=site,
        code=payload.code,
        name=payload.name,
        kind=payload.kind,
        merchant=merchant,
        valid_from=payload.valid_from,
        valid_until=payload.valid_until,
    )
    return Status(201, zone)


@router.get("/zones/{zone_id}", response=ZoneOut)
def zone_detail(request: HttpRequest, zone_id: int) -> Zone:
    _staff(request)
    return selectors.zone_get(zone_id=zone_id)


@router.patch("/zones/{zone_id}", response=ZoneOut)
def zone_update(request: HttpRequest, zone_id: int, payload: ZoneUpdateIn) -> Zone:
    _staff(request)
    zone = selectors.zone_get(zone_id=zone_id)
    changes: dict[str, Any] = {}
    if payload.name is not None:
        changes["name"] = payload.name
    if payload.kind is not None:
        changes["kind"] = payload.kind
    if payload.clear_merchant:
        changes["merchant"] = None
    elif payload.merchant_id is not None:
        changes["merchant"] = _merchant(payload.merchant_id)
    if payload.clear_window:
        changes["valid_from"] = changes["valid_until"] = None
    else:
        if payload.valid_from is not None:
            changes["valid_from"] = payload.valid_from
        if payload.valid_until is not None:
            changes["valid_until"] = payload.valid_until
    return services.zone_update(zone=zone, version=payload.version, **changes)


@router.post("/zones/{zone_id}/close", response=ZoneOut)
def zone_close(request: HttpRequest, zone_id: int) -> Zone:
    actor = _staff(request)
    return services.zone_close(zone=selectors.zone_get(zone_id=zone_id), actor=actor)


@router.post("/zones/{zone_id}/open", response=ZoneOut)
def zone_open(request: HttpRequest, zone_id: int) -> Zone:
    actor = _staff(request)
    return services.zone_open(zone=selectors.zone_get(zone_id=zone_id), actor=actor)


@router.post("/zones/{zone_id}/locations", response=LocationsMovedOut)
def locations_move_to_zone(request: HttpRequest, zone_id: int, payload: LocationsMoveIn) -> Any:
    actor = _staff(request)
    zone = selectors.zone_get(zone_id=zone_id)
    return services.locations_move_to_zone(zone=zone, location_ids=payload.location_ids, actor=actor)


# --- Locations -------------------------------------------------------------------------------------------------


@router.get("/locations", response=list[LocationOut])
@paginate
def location_list(
    request: HttpRequest,
    site_id: int | None = None,
    zone_id: int | None = None,
    aisle: str | None = None,
    status: str | None = None,
    code_prefix: str | None = None,
):
    _staff(request)
    return selectors.location_list(
        site_id=site_id, zone_id=zone_id, aisle=aisle, status=status, code_prefix=code_prefix
    )


@router.post("/locations", response={201: LocationOut})
def location_create(request: HttpRequest, payload: LocationCreateIn) -> Status[Location]:
    _staff(request)
    data = payload.dict()
    zone = selectors.zone_get(zone_id=data.pop("zone_id"))
    return Status(201, services.location_create(site=zone.site, zone=zone, **data))


@router.get("/locations/{location_id}", response=LocationOut)
def location_detail(request: HttpRequest, location_id: int) -> Location:
    _staff(request)
    return selectors.location_get(location_id=location_id)


@router.post("/locations/{location_id}/block", response=LocationOut)
def location_block(request: HttpRequest, location_id: int, payload: LocationBlockIn | None = None) -> Location:
    actor = _staff(request)
    location = selectors.location_get(location_id=location_id)
    return services.location_block(location=location, reason=payload.reason if payload else "", actor=actor)


@router.post("/locations/{location_id}/unblock", response=LocationOut)
def location_unblock(request: HttpRequest, location_id: int) -> Location:
    actor = _staff(request)
    location = selectors.location_get(location_id=location_id)
    return services.location_unblock(location=location, actor=actor)
