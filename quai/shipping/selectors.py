"""Reads of shipping. Those about merchants' shipments take a required ``scope``; manifests and carriers are the
warehouse's (staff)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Count, QuerySet
from django.db.models.functions import Upper
from django.utils.translation import gettext as _

from quai.core.crypto import credentials_load
from quai.core.errors import NotFound
from quai.shipping.models import CarrierAccount, Manifest, Shipment, ShipmentStatus, TrackingEventRecord
from quai.tenants.scope import Scope


def shipment_get(*, scope: Scope, shipment_id: int) -> Shipment:
    shipment = Shipment.objects.filter(scope.q()).select_related("carrier").filter(pk=shipment_id).first()
    if shipment is None:
        raise NotFound(_("Shipment not found."), code="shipment_not_found", details={"shipment_id": shipment_id})
    return shipment


def shipments_of_order(*, scope: Scope, order_id: int) -> QuerySet[Shipment]:
    return Shipment.objects.filter(scope.q()).filter(order_id=order_id).select_related("carrier").order_by("pk")


def shipment_of_parcel(*, scope: Scope, parcel_id: int) -> Shipment | None:
    """The shipment of a packed parcel (with its carrier), or None while the parcel has no label."""
    return Shipment.objects.filter(scope.q()).filter(parcel_id=parcel_id).select_related("carrier").first()


def shipment_order_ids_by_tracking(*, scope: Scope, tracking_numbers: Sequence[str], limit: int = 20) -> list[int]:
    """The orders of ``scope`` with a parcel whose tracking number is one of ``tracking_numbers``, in any case (a
    shopper types it as they read it), each once; at most ``limit`` parcels are read."""
    wanted = [number.upper() for number in tracking_numbers]
    if not wanted:
        return []
    rows = (
        Shipment.objects.filter(scope.q())
        .annotate(number=Upper("tracking_number"))
        .filter(number__in=wanted)
        .values_list("order_id", flat=True)[:limit]
    )
    return sorted({int(value) for value in rows})


def tracking_events(*, scope: Scope, shipment_id: int) -> QuerySet[TrackingEventRecord]:
    shipment = shipment_get(scope=scope, shipment_id=shipment_id)
    return shipment.events.order_by("occurred_at", "pk")


def carrier_list(*, active: bool = True) -> QuerySet[CarrierAccount]:
    return CarrierAccount.objects.filter(active=active).order_by("code")


def carrier_waiting_counts(*, scope: Scope) -> dict[int, int]:
    """Per carrier account id, how many labelled parcels wait for its truck (not yet on a closed manifest)."""
    rows = (
        Shipment.objects.filter(scope.q())
        .filter(status=ShipmentStatus.LABEL_CREATED)
        .values("carrier_id")
        .annotate(waiting=Count("pk"))
        .values_list("carrier_id", "waiting")
    )
    return {int(carrier_id): int(waiting) for carrier_id, waiting in rows}


def carrier_credential_names(carrier: CarrierAccount) -> list[str]:
    """The names of the credentials set on ``carrier`` (never their values: what a screen may show of them)."""
    return sorted(credentials_load(carrier.credentials))


def manifest_get(*, manifest_id: int) -> Manifest:
    manifest = Manifest.objects.select_related("carrier").filter(pk=manifest_id).first()
    if manifest is None:
        raise NotFound(_("Manifest not found."), code="manifest_not_found", details={"manifest_id": manifest_id})
    return manifest


def manifest_list(*, status: str | None = None) -> QuerySet[Manifest]:
    qs = Manifest.objects.select_related("carrier").order_by("-pk")
    return qs.filter(status=status) if status else qs


def manifest_shipments(*, scope: Scope, manifest: Manifest) -> QuerySet[Shipment]:
    """The parcels on the manifest (once closed, those loaded: the missing ones are in ``manifest.missing``); a
    manifest holds several merchants' parcels, the staff's truck screen reads them all."""
    return Shipment.objects.filter(scope.q()).filter(manifest=manifest).order_by("pk")


def shipments_handed_over(*, scope: Scope) -> QuerySet[Shipment]:
    """The shipments of ``scope`` handed to their carrier (shipped, whatever happened since), in id order."""
    return Shipment.objects.filter(scope.q()).filter(shipped_at__isnull=False).order_by("pk")
