"""Every write of shipping: SSCCs, labels (through the carrier adapters), manifests and tracking.

The carrier is called outside any transaction of ours (``shipment_label_request``): a slow or failing carrier
never holds a lock, and a 500 or a timeout leaves nothing written (``carrier_unavailable``; the parcel waits).
What the carrier answered is then recorded by the caller's transaction (``shipment_record``); if that
transaction fails, ``shipment_label_void`` tells the carrier the label will not be used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Upper
from django.utils.translation import gettext as _

from quai.catalog.domain import parse_scan
from quai.core import clock
from quai.core.crypto import credentials_load, credentials_merge
from quai.core.errors import Conflict, NotFound, QuaiError, ValidationFailed
from quai.core.outbox import event_record, events_record_many
from quai.core.rows import by_ids, model_rows_insert, rows_update, values_update
from quai.core.states import actor_of
from quai.shipping import domain
from quai.shipping.carriers.base import (
    Address,
    CarrierAdapter,
    CarrierRefused,
    CarrierUnavailable,
    ShipmentRequest,
    ShipmentResult,
    TrackingEvent,
)
from quai.shipping.carriers.colissimo import ColissimoAdapter
from quai.shipping.carriers.mondial_relay import MondialRelayAdapter
from quai.shipping.carriers.sandbox import SandboxAdapter
from quai.shipping.events import ParcelLoaded, ShipmentDelivered, ShipmentShipped, ShipmentTrackingEvent
from quai.shipping.models import (
    CarrierAccount,
    CarrierKind,
    Manifest,
    ManifestStatus,
    Shipment,
    ShipmentStatus,
    SsccSequence,
    TrackingEventRecord,
)

logger = logging.getLogger(__name__)

#: Who the carrier's tracking moves orders in the audit.
TRACKING_ACTOR = "carrier tracking"

#: Quai's own GS1 company prefix until the 3PL sets its own in the SSCC sequence (France: 300–379).
DEFAULT_COMPANY_PREFIX = "3760123"
#: Statuses in which tracking is still worth asking for.
TRACKED = (
    ShipmentStatus.HANDED_OVER,
    ShipmentStatus.IN_TRANSIT,
    ShipmentStatus.AT_PICKUP_POINT,
    ShipmentStatus.OUT_FOR_DELIVERY,
    ShipmentStatus.EXCEPTION,
)


# --- Carriers ---------------------------------------------------------------------------------------------------


def carrier_get(*, code: str) -> CarrierAccount:
    carrier = CarrierAccount.objects.filter(code=code, active=True).first()
    if carrier is None:
        raise NotFound(_("Carrier %(code)s not found.") % {"code": code}, code="carrier_not_found")
    return carrier


def carrier_sender(carrier: CarrierAccount) -> Address:
    return Address(
        name=carrier.sender_name,
        line1=carrier.sender_line1,
        postcode=carrier.sender_postcode,
        city=carrier.sender_city,
        country=carrier.sender_country,
        phone=carrier.sender_phone,
        email=carrier.sender_email,
    )


def _carrier_credentials(carrier: CarrierAccount) -> dict[str, str]:
    return credentials_load(carrier.credentials)


def carrier_adapter(carrier: CarrierAccount) -> CarrierAdapter:
    """The adapter of ``carrier`` configured from its settings (endpoints, timeout) and its credentials, decrypted
    for the time of the call."""
    options: dict[str, Any] = {**(carrier.settings or {}), **_carrier_credentials(carrier)}
    sender = carrier_sender(carrier)
    if carrier.kind == CarrierKind.COLISSIMO:
        return ColissimoAdapter(sender=sender, **options)
    if carrier.kind == CarrierKind.MONDIAL_RELAY:
        return MondialRelayAdapter(sender=sender, **options)
    return SandboxAdapter(sender=sender)


@transaction.atomic
def carrier_credentials_set(*, carrier: CarrierAccount, changes: Mapping[str, str | None]) -> CarrierAccount:
    """Set the carrier's passwords and API keys, merged key by key (an empty value removes the key), stored
    encrypted; nothing reads them back but the adapter. A name that is not one of the adapters' secrets
    (``domain.CARRIER_SECRET_KEYS``) is refused (``carrier_credential_unknown``), with nothing written."""
    unknown = sorted(set(changes) - domain.CARRIER_SECRET_KEYS)
    if unknown:
        raise ValidationFailed(
            _("%(names)s: not a carrier credential (one of %(known)s).")
            % {"names": ", ".join(unknown), "known": ", ".join(sorted(domain.CARRIER_SECRET_KEYS))},
            code="carrier_credential_unknown",
            details={"names": unknown, "known": sorted(domain.CARRIER_SECRET_KEYS)},
        )
    locked = CarrierAccount.objects.select_for_update().get(pk=carrier.pk)
    locked.credentials = credentials_merge(_carrier_credentials(locked), changes)
    locked.save(update_fields=["credentials", "updated_at"])
    return locked


def sandbox_carrier_ensure(*, code: str = "sandbox", name: str = "Sandbox") -> CarrierAccount:
    """The built-in sandbox carrier account, created on first use (a site runs end to end without a contract).
    ``code``/``name``: a sandbox account standing in for a named carrier (a simulation's Colissimo truck)."""
    carrier, _created = CarrierAccount.objects.get_or_create(
        code=code,
        defaults={
            "name": name,
            "kind": CarrierKind.SANDBOX,
            "sender_name": "Quai 3PL",
            "sender_line1": "1 quai du Port",
            "sender_postcode": "69002",
            "sender_city": "Lyon",
        },
    )
    return carrier


# --- SSCC -------------------------------------------------------------------------------------------------------


@transaction.atomic
def sscc_next(*, company_prefix: str = DEFAULT_COMPANY_PREFIX) -> str:
    """The next SSCC of ``company_prefix``: its serial is taken under the sequence row's lock, never twice."""
    SsccSequence.objects.get_or_create(company_prefix=company_prefix)
    sequence = SsccSequence.objects.select_for_update().get(company_prefix=company_prefix)
    serial = sequence.next_serial
    SsccSequence.objects.filter(pk=sequence.pk).update(next_serial=F("next_serial") + 1)
    return domain.sscc_build(extension=sequence.extension_digit, company_prefix=company_prefix, serial=serial)


@transaction.atomic
def ssccs_next(*, count: int, company_prefix: str = DEFAULT_COMPANY_PREFIX) -> list[str]:
    """The next ``count`` SSCCs of ``company_prefix`` in one step (a batch of parcels): the same serials, in the same
    order, as ``count`` calls of ``sscc_next``; none taken for a count of 0."""
    if count <= 0:
        return []
    SsccSequence.objects.get_or_create(company_prefix=company_prefix)
    sequence = SsccSequence.objects.select_for_update().get(company_prefix=company_prefix)
    first = sequence.next_serial
    SsccSequence.objects.filter(pk=sequence.pk).update(next_serial=F("next_serial") + count)
    return [
        domain.sscc_build(extension=sequence.extension_digit, company_prefix=company_prefix, serial=serial)
        for serial in range(first, first + count)
    ]


# --- Labels -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelAnswer:
    """What the carrier gave for a parcel, not yet recorded."""

    carrier: CarrierAccount
    request: ShipmentRequest
    result: ShipmentResult
    tracking_url: str


def shipment_label_request(*, carrier: CarrierAccount, request: ShipmentRequest) -> LabelAnswer:
    """Ask the carrier for the parcel's shipment and label. Must run outside a transaction: a failing carrier
    raises ``carrier_unavailable`` (503) or ``carrier_refused`` (422) with nothing of ours written."""
    adapter = carrier_adapter(carrier)
    result = adapter.create_shipment(request)
    return LabelAnswer(
        carrier=carrier, request=request, result=result, tracking_url=adapter.tracking_url(result.tracking_number)
    )


def shipment_label_void(answer: LabelAnswer) -> None:
    """Tell the carrier a label will not be used (best effort: an unused label is never handed over anyway)."""
    try:
        carrier_adapter(answer.carrier).cancel(answer.result.tracking_number)
    except (CarrierUnavailable, CarrierRefused):
        logger.warning("could not void label %s", answer.result.tracking_number, exc_info=True)


@dataclass(frozen=True)
class ShipmentRecord:
    """What a labelled parcel's shipment records: the carrier's answer, the order and parcel, where its units wait
    (the pack station, the reservations holding them) and its customs papers."""

    answer: LabelAnswer
    merchant_id: int
    order_id: int
    order_reference: str
    parcel_id: int
    stock_location_id: int
    reservation_ids: Sequence[int]
    customs: dict[str, Any] | None = None


def shipment_record(*, record: ShipmentRecord) -> Shipment:
    """Record the carrier's answer as the parcel's shipment (inside the caller's transaction)."""
    shipment = _shipment_row(record)
    shipment.save(force_insert=True)
    return shipment


def shipments_record_many(*, records: Sequence[ShipmentRecord]) -> list[Shipment]:
    """``shipment_record`` for many parcels (a batch of closes) in one insert; the shipments are returned in the
    order of ``records``, with their ids. ``model_rows_insert``, not ``bulk_create``: the ORM compiled the insert
    and prepared each of a shipment's 25 values through its compiler per call, a tenth of a pack line's round."""
    shipments = [_shipment_row(record) for record in records]
    model_rows_insert(shipments)
    return shipments


def _shipment_row(record: ShipmentRecord) -> Shipment:
    answer = record.answer
    request, result = answer.request, answer.result
    return Shipment(
        merchant_id=record.merchant_id,
        order_id=record.order_id,
        order_reference=record.order_reference,
        parcel_id=record.parcel_id,
        carrier=answer.carrier,
        service=request.service_code,
        sscc=request.sscc,
        tracking_number=result.tracking_number,
        tracking_url=answer.tracking_url,
        label=result.label,
        label_format=result.label_format,
        weight_g=request.weight_g,
        pickup_point_id=request.pickup_point_id,
        stock_location_id=record.stock_location_id,
        reservation_ids=sorted(record.reservation_ids),
        customs=record.customs,
    )


# --- Manifests --------------------------------------------------------------------------------------------------


@transaction.atomic
def manifest_open(*, carrier: CarrierAccount, actor: Any = None) -> Manifest:
    """The carrier's open manifest (one at a time), holding every labelled parcel not yet handed over."""
    manifest = Manifest.objects.select_for_update().filter(carrier=carrier, status=ManifestStatus.OPEN).first()
    if manifest is None:
        now = clock.now()
        count = Manifest.objects.filter(carrier=carrier).count() + 1
        manifest = Manifest.objects.create(carrier=carrier, number=f"{carrier.code.upper()}-{now:%Y%m%d}-{count:03d}")
    Shipment.objects.filter(carrier=carrier, status=ShipmentStatus.LABEL_CREATED, manifest__isnull=True).update(
        manifest=manifest
    )
    return manifest


def _sscc_of(code: str) -> str | None:
    """The SSCC a scan at the dock carries, or None: the 18 digits printed under the label's barcode, the label's
    GS1-128 read as its element string (AI 00 then the 18 digits), or any other GS1 form a scanner sends or a
    loader types — a symbology identifier in front (``]C1``), a leading FNC1, ``(00)…`` copied from the label —
    read by the scan parser receiving uses (``parse_scan``). The truck refused those forms that receiving took."""
    text = code.strip()
    if text.isdecimal():  # the scanner's usual forms, read without the parser (a truck's burst is thousands of them)
        digits = text[2:] if len(text) == 20 and text.startswith("00") else text
        return digits if domain.sscc_is_valid(digits) else None
    return parse_scan(text).sscc


def _shipment_for_code(code: str) -> Shipment | None:
    text = code.strip()
    sscc = _sscc_of(text)
    if sscc is not None:
        found = Shipment.objects.filter(sscc=sscc).first()
        if found is not None:
            return found
    # ``UPPER(number) = UPPER(code)``: PostgreSQL's ``iexact``, read through the number's index on both databases
    # (SQLite's ``iexact`` is a LIKE no index serves).
    numbered = Shipment.objects.annotate(number=Upper("tracking_number")).filter(number=Upper(Value(text)))
    return numbered.order_by("-id").first()


def _load_check(shipment: Shipment, manifest: Manifest, *, code: str) -> None:
    """A parcel not yet on this manifest may go on the truck: the truck's carrier, not handed over yet."""
    if shipment.manifest_id == manifest.pk:
        return
    if shipment.carrier_id != manifest.carrier_id:
        raise ValidationFailed(
            _("Parcel %(code)s goes with another carrier: keep it off this truck.") % {"code": code},
            code="shipment_other_carrier",
            details={"shipment_id": shipment.pk},
        )
    if shipment.status != ShipmentStatus.LABEL_CREATED:
        raise Conflict(
            _("Parcel %(code)s was already handed over.") % {"code": code},
            code="shipment_already_shipped",
            details={"shipment_id": shipment.pk},
        )


@transaction.atomic
def manifest_scan(*, manifest: Manifest | int, code: str, actor: Any = None) -> Shipment:
    """A parcel scanned onto the truck (by its SSCC or tracking number): marked loaded, the scan recorded."""
    current = Manifest.objects.select_for_update().get(pk=manifest if isinstance(manifest, int) else manifest.pk)
    if current.status != ManifestStatus.OPEN:
        raise Conflict(_("This manifest is closed."), code="manifest_closed", details={"manifest_id": current.pk})
    shipment = _shipment_for_code(code)
    if shipment is None:
        raise NotFound(
            _("No parcel has the code %(code)s.") % {"code": code}, code="shipment_not_found", details={"code": code}
        )
    _load_check(shipment, current, code=code)
    shipment.manifest = current
    now = clock.now()
    if shipment.loaded_at is None:
        shipment.loaded_at = now
    shipment.save(update_fields=["manifest", "loaded_at", "updated_at"])
    event_record(
        ParcelLoaded(
            manifest_id=current.pk,
            shipment_id=shipment.pk,
            sscc=shipment.sscc,
            operator=actor_of(actor).label,
            scanned_at=now,
        ),
        merchant_id=shipment.merchant_id,
    )
    return shipment


@dataclass(frozen=True)
class LoadOutcome:
    """One code of a truck's scan burst: loaded (``error`` None, ``shipment`` the parcel) or refused."""

    code: str
    shipment: Shipment | None = None
    error: QuaiError | None = None

    @property
    def loaded(self) -> bool:
        return self.error is None


def _shipments_for_codes(codes: Sequence[str]) -> dict[str, Shipment | None]:
    """``_shipment_for_code`` for many codes in two reads: by SSCC first, else by tracking number (any case, the
    latest parcel of that number)."""
    by_sscc: dict[str, str] = {}
    for code in codes:
        sscc = _sscc_of(code)
        if sscc is not None:
            by_sscc[code] = sscc
    ssccs: dict[str, Shipment] = {}
    # Without the label (a few KB each, read for every parcel of a truck and never used by a scan).
    parcels = Shipment.objects.filter(sscc__in=sorted(set(by_sscc.values()))).defer("label").order_by("pk")
    for shipment in parcels:
        ssccs.setdefault(shipment.sscc, shipment)
    found: dict[str, Shipment | None] = {code: ssccs.get(by_sscc.get(code, "")) for code in codes}
    rest = sorted({code.strip().upper() for code, shipment in found.items() if shipment is None})
    if rest:
        numbers: dict[str, Shipment] = {}
        rows = (
            Shipment.objects.annotate(number=Upper("tracking_number"))
            .filter(number__in=rest)
            .defer("label")
            .order_by("-id")
        )
        for row in rows:
            numbers.setdefault(row.tracking_number.upper(), row)
        for code in [code for code, shipment in found.items() if shipment is None]:
            found[code] = numbers.get(code.strip().upper())
    return found


def manifest_scans_record(*, manifest: Manifest | int, codes: Sequence[str], actor: Any = None) -> list[LoadOutcome]:
    """A truck's scan burst: the parcels a driver's batch-mode scanner buffered, each applied in order exactly as
    ``manifest_scan`` applies it (the same refusals — unknown code, another carrier's parcel, a parcel already
    handed over —, the same loaded parcels and ``shipment.loaded`` rows), in ONE transaction: the manifest is
    locked once, the codes resolved in two reads, the parcels and their events written in bulk. A refused code is
    skipped, the others loaded; a closed manifest refuses the burst (``manifest_closed``) with nothing written.
    Returns one outcome per code, in order."""
    if not codes:
        return []
    with transaction.atomic():
        current = Manifest.objects.select_for_update().get(pk=manifest if isinstance(manifest, int) else manifest.pk)
        if current.status != ManifestStatus.OPEN:
            raise Conflict(_("This manifest is closed."), code="manifest_closed", details={"manifest_id": current.pk})
        resolved = _shipments_for_codes(codes)
        shipments: dict[int, Shipment] = {}
        outcomes: list[LoadOutcome] = []
        events: list[tuple[ParcelLoaded, int | None]] = []
        now, operator = clock.now(), actor_of(actor).label
        for code in codes:
            found = resolved[code]
            shipment = shipments.get(found.pk, found) if found is not None else None
            try:
                if shipment is None:
                    raise NotFound(
                        _("No parcel has the code %(code)s.") % {"code": code},
                        code="shipment_not_found",
                        details={"code": code},
                    )
                _load_check(shipment, current, code=code)
            except QuaiError as exc:
                outcomes.append(LoadOutcome(code=code, error=exc))
                continue
            shipment.manifest = current
            if shipment.loaded_at is None:
                shipment.loaded_at = now
            shipment.updated_at = now
            shipments[shipment.pk] = shipment
            outcomes.append(LoadOutcome(code=code, shipment=shipment))
            events.append(
                (
                    ParcelLoaded(
                        manifest_id=current.pk,
                        shipment_id=shipment.pk,
                        sscc=shipment.sscc,
                        operator=operator,
                        scanned_at=now,
                    ),
                    shipment.merchant_id,
                )
            )
        if shipments:
            rows_update(list(shipments.values()), ["manifest", "loaded_at", "updated_at"])
            events_record_many(events)
    return outcomes


def manifest_close(*, manifest: Manifest | int, actor: Any = None) -> Manifest:
    """Hand the loaded parcels to the carrier: their units leave the ledger, their orders are shipped
    (``shipment.shipped``), the manifest PDF is drawn; parcels not scanned are flagged missing and detached.

    The carrier's close of day (Colissimo's deposit slip) is asked first, outside the transaction: if it fails
    (``carrier_unavailable``) the manifest stays open and nothing moved.
    """
    from quai.inventory.services.parcels import ParcelStock, parcels_stock_ship
    from quai.orders.services.floor_shipping import orders_ship_many
    from quai.shipping import labels
    from quai.warehouse.models import Location

    manifest_id = manifest if isinstance(manifest, int) else manifest.pk
    current = Manifest.objects.select_related("carrier").get(pk=manifest_id)
    if current.status != ManifestStatus.OPEN:
        raise Conflict(_("This manifest is closed."), code="manifest_closed", details={"manifest_id": current.pk})
    loaded_numbers = list(
        Shipment.objects.filter(manifest=current, loaded_at__isnull=False).values_list("tracking_number", flat=True)
    )
    carrier_document = carrier_adapter(current.carrier).close_day(loaded_numbers) if loaded_numbers else None
    with transaction.atomic():
        current = Manifest.objects.select_for_update().select_related("carrier").get(pk=manifest_id)
        if current.status != ManifestStatus.OPEN:
            raise Conflict(_("This manifest is closed."), code="manifest_closed")
        now = clock.now()
        # Without the labels: the handover never prints them again.
        shipments = list(
            Shipment.objects.select_for_update().filter(manifest=current).defer("label", "customs").order_by("pk")
        )
        loaded = [s for s in shipments if s.loaded_at is not None]
        missing = [s for s in shipments if s.loaded_at is None]
        by_order: dict[int, list[Shipment]] = {}
        # The truck's pack stations are read once (a few for hundreds of parcels); the ledger, the parcels, the
        # orders and the events are each written for the whole truck at once (``parcels_stock_ship``,
        # ``orders_ship_many``): the rows of one parcel after the other, each order's events in its order.
        locations = Location.objects.in_bulk(sorted({s.stock_location_id for s in loaded if s.stock_location_id}))
        parcels_stock_ship(
            parcels=[
                ParcelStock(
                    parcel_id=shipment.parcel_id,
                    reservation_ids=shipment.reservation_ids,
                    location=locations[shipment.stock_location_id],
                )
                for shipment in loaded
            ],
            actor=actor,
        )
        for shipment in loaded:
            shipment.status = ShipmentStatus.HANDED_OVER
            shipment.shipped_at = now
            shipment.updated_at = now
            by_order.setdefault(shipment.order_id, []).append(shipment)
        # The loaded parcels read above, under their lock, named by their manifest (their ids were a parameter each:
        # 2,373 on a 5,000-order day's largest truck).
        Shipment.objects.filter(manifest=current, loaded_at__isnull=False).update(
            status=ShipmentStatus.HANDED_OVER, shipped_at=now, updated_at=now
        )
        in_order = sorted(by_order.items())
        orders_ship_many(
            shipped=[(order_id, [p.parcel_id for p in parcels]) for order_id, parcels in in_order], actor=actor
        )
        events_record_many(
            [
                (
                    ShipmentShipped(
                        order_id=order_id,
                        shipped_at=now,
                        parcel_ids=[p.parcel_id for p in parcels],
                        tracking_numbers=[p.tracking_number for p in parcels],
                        carrier=current.carrier.code,
                    ),
                    parcels[0].merchant_id,
                )
                for order_id, parcels in in_order
            ]
        )
        current.missing = [
            {"shipment_id": s.pk, "sscc": s.sscc, "tracking_number": s.tracking_number, "order": s.order_reference}
            for s in missing
        ]
        Shipment.objects.filter(pk__in=[s.pk for s in missing]).update(manifest=None)
        current.document = labels.manifest_pdf(
            labels.ManifestData(
                number=current.number,
                carrier_name=current.carrier.name,
                closed_at=now.isoformat(timespec="minutes"),
                site=current.carrier.sender_city,
                lines=[
                    labels.ManifestLine(
                        s.sscc, s.tracking_number, s.order_reference, s.weight_g, s.loaded_at is not None
                    )
                    for s in shipments
                ],
            )
        )
        current.carrier_document = carrier_document
        current.status = ManifestStatus.CLOSED
        current.closed_at = now
        current.save()
    return current


# --- Tracking ---------------------------------------------------------------------------------------------------


def _estimated(value: str) -> date | None:
    try:
        return date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def _tracking_apply(
    current: Shipment,
    events: Sequence[TrackingEvent],
    known: set[tuple[str, Any]],
    records: list[TrackingEventRecord],
    outbox: list[tuple[Any, int | None]],
    deliver: Callable[[int], None],
) -> list[TrackingEventRecord]:
    """``tracking_record``'s rule for one locked shipment: the fresh events become records (appended to
    ``records``, not saved) and outbox events (appended to ``outbox``, not saved); ``deliver`` is called with the
    order when the parcel is delivered, between the outbox events before it and ``shipment.delivered``; the
    shipment's fields are set, not saved. Returns the shipment's new records."""
    if current.status in (ShipmentStatus.LABEL_CREATED, ShipmentStatus.CANCELLED):
        # Before handover the parcel is still ours: a carrier's "in transit" then is not true yet.
        events = [e for e in events if e.status == domain.LABEL_CREATED]
    fresh = [
        e for e in sorted(events, key=lambda e: e.occurred_at) if (e.carrier_code[:120], e.occurred_at) not in known
    ]
    own: list[TrackingEventRecord] = []
    for event in fresh:
        record = TrackingEventRecord(
            merchant_id=current.merchant_id,
            shipment=current,
            status=event.status or "",
            carrier_code=event.carrier_code[:120],
            description=event.description[:300],
            location=event.location[:120],
            occurred_at=event.occurred_at,
        )
        own.append(record)
        estimated = _estimated(event.estimated_delivery)
        if estimated is not None:
            current.estimated_delivery = estimated
        if event.status is None:
            continue
        outbox.append(
            (
                ShipmentTrackingEvent(
                    order_id=current.order_id,
                    status=event.status,
                    occurred_at=event.occurred_at,
                    estimated_delivery=current.estimated_delivery,
                ),
                current.merchant_id,
            )
        )
        if current.status in (ShipmentStatus.LABEL_CREATED, ShipmentStatus.CANCELLED, ShipmentStatus.DELIVERED):
            continue
        if event.status == domain.LABEL_CREATED:
            continue
        current.status = event.status
        if event.status == domain.DELIVERED:
            current.delivered_at = event.occurred_at
            deliver(current.order_id)
            outbox.append(
                (ShipmentDelivered(order_id=current.order_id, delivered_at=event.occurred_at), current.merchant_id)
            )
    # Seen from the next update of the same shipment (one by one, its records would be in the table by then).
    known.update((record.carrier_code, record.occurred_at) for record in own)
    records.extend(own)
    return own


@transaction.atomic
def tracking_record(*, shipment: Shipment | int, events: Sequence[TrackingEvent]) -> list[TrackingEventRecord]:
    """Store the carrier's events not seen before, move the shipment to the latest known status and tell it
    (``shipment.tracking_event`` each; ``shipment.delivered`` and the order delivered when it is)."""
    from quai.orders.services.floor_shipping import order_deliver

    pk = shipment if isinstance(shipment, int) else shipment.pk
    current = Shipment.objects.select_for_update().get(pk=pk)
    known = set(current.events.values_list("carrier_code", "occurred_at"))
    records: list[TrackingEventRecord] = []
    outbox: list[tuple[Any, int | None]] = []

    def deliver(order_id: int) -> None:
        # The order's step and its event come after the shipment's events so far (the outbox keeps their order).
        events_record_many(outbox)
        outbox.clear()
        order_deliver(order=order_id, actor=TRACKING_ACTOR)

    _tracking_apply(current, events, known, records, outbox, deliver)
    TrackingEventRecord.objects.bulk_create(records)
    events_record_many(outbox)
    current.save(update_fields=["status", "delivered_at", "estimated_delivery", "updated_at"])
    return records


#: What ``tracking_record_many`` reads of a shipment: what ``_tracking_apply`` reads and the file writes back.
_TRACKING_FIELDS = ("id", "merchant", "order_id", "status", "delivered_at", "estimated_delivery", "updated_at")
#: What it writes back of each, in ``values_update``'s order.
_TRACKING_WRITTEN = ("status", "delivered_at", "estimated_delivery", "updated_at")


@transaction.atomic
def tracking_record_many(
    *, updates: Sequence[tuple[Shipment | int, Sequence[TrackingEvent]]]
) -> list[list[TrackingEventRecord]]:
    """``tracking_record`` for many shipments (a carrier's tracking file, a sweep's answers): each shipment's events
    applied in the order given exactly as one by one — the same records, statuses, ``shipment.tracking_event`` /
    ``shipment.delivered`` rows, the orders delivered with their audit — with the shipments locked (in id order)
    and their known events read once, the records and events written in bulk, the orders delivered together
    (``orders_deliver_many``) and the shipments written in one statement. Each order's events keep the order one by
    one gives them (the relay's order, per aggregate): the events before its delivery, its step, then what follows.
    Returns each update's new records, in order."""
    from quai.orders.services.floor_shipping import orders_deliver_many

    ids = sorted({s if isinstance(s, int) else s.pk for s, _events in updates})
    # Only the columns the rule reads and writes (a file's hundreds of shipments, each with its label otherwise),
    # locked in id order by a statement written once (``by_ids``: the queryset compiled its SQL at every file, a
    # simulated day's deliveries have hundreds), the ids one parameter.
    locked = {s.pk: s for s in by_ids(Shipment, ids, fields=_TRACKING_FIELDS, lock=True)}
    missing = [pk for pk in ids if pk not in locked]
    if missing:
        raise Shipment.DoesNotExist(f"Shipment matching query does not exist: {missing[0]}")
    known: dict[int, set[tuple[str, Any]]] = {pk: set() for pk in ids}
    for shipment_id, code, at in TrackingEventRecord.objects.filter(shipment_id__in=ids).values_list(
        "shipment_id", "carrier_code", "occurred_at"
    ):
        known[shipment_id].add((code, at))
    records: list[TrackingEventRecord] = []
    outbox: list[tuple[Any, int | None]] = []
    delivered: list[int] = []
    delivered_at: dict[int, int] = {}  # order → where its step falls among the outbox events

    def deliver(order_id: int) -> None:
        delivered.append(order_id)
        delivered_at.setdefault(order_id, len(outbox))

    answers = []
    for shipment, events in updates:
        pk = shipment if isinstance(shipment, int) else shipment.pk
        answers.append(_tracking_apply(locked[pk], events, known[pk], records, outbox, deliver))
    model_rows_insert(records)  # the rows ``bulk_create`` writes, ids set, without compiling the insert again
    # Every event of this file is about an order (its aggregate): those before the order's step, the steps, the rest.
    ahead = [position < delivered_at.get(event.order_id, len(outbox)) for position, (event, _m) in enumerate(outbox)]
    events_record_many([item for item, first in zip(outbox, ahead, strict=True) if first])
    # Within this file's transaction, undone whole if a delivery is refused: the orders need no savepoint apart.
    orders_deliver_many(order_ids=delivered, actor=TRACKING_ACTOR, savepoint=False)
    events_record_many([item for item, first in zip(outbox, ahead, strict=True) if not first])
    now = clock.now()
    for current in locked.values():
        current.updated_at = now
    # The rows as ONE JSON parameter (``quai.core.rows.values_update``): the statement's text is the same for any
    # number of shipments, so PostgreSQL's prepared form serves every file; ``UPDATE … FROM (VALUES …)`` was a new
    # text, parsed and planned again, for each file's size (each ticket between two deliveries cuts a file).
    values_update(
        Shipment,
        _TRACKING_WRITTEN,
        [(s.pk, s.status, s.delivered_at, s.estimated_delivery, s.updated_at) for s in locked.values()],
    )
    return answers


def tracking_poll(*, limit: int = 200) -> int:
    """Ask each carrier for the parcels still travelling; returns how many new events were recorded. A carrier
    that does not answer is skipped until the next sweep."""
    recorded = 0
    shipments = list(
        Shipment.objects.filter(status__in=TRACKED).select_related("carrier").order_by("updated_at")[:limit]
    )
    for shipment in shipments:
        try:
            events = carrier_adapter(shipment.carrier).track(shipment.tracking_number)
        except (CarrierUnavailable, CarrierRefused):
            logger.warning("tracking of %s failed", shipment.tracking_number, exc_info=True)
            continue
        recorded += len(tracking_record(shipment=shipment.pk, events=events))
    return recorded
