"""Reads of the warehouse layout."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.warehouse.models import Location, Site, Zone, ZoneStatus


def zone_active_q(at: datetime, prefix: str = "") -> Q:
    """Zones that are open and, when temporary, inside their validity window at ``at`` (half-open: a zone valid
    until 20:00 no longer is at 20:00). ``prefix`` filters through a relation, e.g. ``"location__zone__"``."""
    return (
        Q(**{f"{prefix}status": ZoneStatus.OPEN})
        & (Q(**{f"{prefix}valid_from__isnull": True}) | Q(**{f"{prefix}valid_from__lte": at}))
        & (Q(**{f"{prefix}valid_until__isnull": True}) | Q(**{f"{prefix}valid_until__gt": at}))
    )


def site_get(*, site_id: int) -> Site:
    try:
        return Site.objects.get(pk=site_id)
    except Site.DoesNotExist:
        raise NotFound(_("Site not found."), code="site_not_found", details={"site_id": site_id}) from None


def zone_get(*, zone_id: int) -> Zone:
    try:
        return Zone.objects.select_related("site").get(pk=zone_id)
    except Zone.DoesNotExist:
        raise NotFound(_("Zone not found."), code="zone_not_found", details={"zone_id": zone_id}) from None


def location_get(*, location_id: int) -> Location:
    try:
        return Location.objects.select_related("site", "zone").get(pk=location_id)
    except Location.DoesNotExist:
        raise NotFound(
            _("Location not found."), code="location_not_found", details={"location_id": location_id}
        ) from None


def location_get_by_code(*, site: Site | int, code: str) -> Location:
    """The location a scanner read (codes are trimmed and upper-cased the way they are stored)."""
    site_id = site if isinstance(site, int) else site.pk
    cleaned = code.strip().upper()
    try:
        return Location.objects.select_related("zone").get(site_id=site_id, code=cleaned)
    except Location.DoesNotExist:
        raise NotFound(
            _("No location '%(code)s' on this site.") % {"code": cleaned},
            code="location_not_found",
            details={"code": cleaned, "site_id": site_id},
        ) from None


def site_list(*, q: str | None = None) -> QuerySet[Site]:
    qs = Site.objects.all()
    if q:
        qs = qs.filter(Q(code__icontains=q) | Q(name__icontains=q) | Q(city__icontains=q))
    return qs.order_by("code", "id")


def zone_list(
    *,
    site_id: int | None = None,
    kind: str | None = None,
    status: str | None = None,
    merchant_id: int | None = None,
    shared: bool | None = None,
    active_at: datetime | None = None,
) -> QuerySet[Zone]:
    """``shared=True`` keeps the zones no merchant owns; ``active_at`` keeps the zones usable at that moment."""
    qs = Zone.objects.annotate(location_count=Count("locations"))
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    if shared is not None:
        qs = qs.filter(merchant__isnull=shared)
    if active_at is not None:
        qs = qs.filter(zone_active_q(active_at))
    return qs.order_by("site_id", "code", "id")


def location_list(
    *,
    site_id: int | None = None,
    zone_id: int | None = None,
    aisle: str | None = None,
    status: str | None = None,
    code_prefix: str | None = None,
) -> QuerySet[Location]:
    qs = Location.objects.all()
    if site_id is not None:
        qs = qs.filter(site_id=site_id)
    if zone_id is not None:
        qs = qs.filter(zone_id=zone_id)
    if aisle:
        qs = qs.filter(aisle=aisle.upper())
    if status:
        qs = qs.filter(status=status)
    if code_prefix:
        qs = qs.filter(code__startswith=code_prefix.strip().upper())
    return qs.order_by("site_id", "pick_sequence", "code", "id")
