"""Reads of the pack station. Those about merchants' parcels take a required ``scope``."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.packing.models import Parcel, ParcelStatus
from quai.tenants.scope import Scope
from quai.warehouse.models import Location, LocationStatus, Site, ZoneKind, ZoneStatus


def parcel_get(*, scope: Scope, parcel_id: int) -> Parcel:
    """The parcel, inside ``scope``; another merchant's parcel is ``parcel_not_found`` like a missing one."""
    parcel = Parcel.objects.filter(scope.q()).filter(pk=parcel_id).first()
    if parcel is None:
        raise NotFound(_("Parcel not found."), code="parcel_not_found", details={"parcel_id": parcel_id})
    return parcel


def parcels_within(*, scope: Scope, parcel_ids: Sequence[int]) -> dict[int, Parcel]:
    """Those of ``parcel_ids`` inside ``scope`` (with their lines), by id; another merchant's are left out, like
    missing ones."""
    rows = Parcel.objects.filter(scope.q()).filter(pk__in=list(parcel_ids)).prefetch_related("items")
    return {parcel.pk: parcel for parcel in rows}


def parcels_of_order(*, scope: Scope, order_id: int) -> QuerySet[Parcel]:
    return Parcel.objects.filter(scope.q()).filter(order_id=order_id).prefetch_related("items").order_by("pk")


def orders_with_closed_parcel(*, scope: Scope, order_ids: Sequence[int]) -> set[int]:
    """Those of ``order_ids`` with at least one closed parcel, in one read."""
    return set(
        Parcel.objects.filter(scope.q())
        .filter(order_id__in=list(order_ids), status=ParcelStatus.CLOSED)
        .values_list("order_id", flat=True)
        .distinct()
    )


def pack_stations(*, site: Site | None) -> QuerySet[Location]:
    """The places parcels are packed at: the active locations of the site's open packing zones."""
    qs = Location.objects.filter(
        zone__kind=ZoneKind.PACKING, zone__status=ZoneStatus.OPEN, status=LocationStatus.ACTIVE
    )
    if site is not None:
        qs = qs.filter(site=site)
    return qs.select_related("site").order_by("site__code", "code")
