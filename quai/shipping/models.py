"""Carriers, parcels as the carrier sees them (shipments), their tracking, and the day's manifests.

Invariants, and where each is kept:

- One shipment per packed parcel (``parcel_id`` unique) and one SSCC per shipment (unique, from ``SsccSequence``,
  a serial never handed out twice: the sequence row is advanced by a guarded update under its lock).
- A shipment's ``status`` follows the normalised tracking scale (``domain.TRACKING_STATUSES``) once the carrier
  took it (``handed_over`` first); ``cancelled`` when the label was voided before handover.
- The units of a shipment wait in the ledger at ``stock_location_id`` (the pack station) until its manifest
  closes: ``inventory.services.parcel_stock_ship`` then takes them out, in the same transaction as the status.
- A manifest is the handover of one carrier's parcels: those scanned onto the truck leave, the others are flagged
  missing (kept in ``missing`` and detached, so they go on a later manifest).
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from quai.core.crypto import EncryptedTextField
from quai.core.models import TimeStampedModel
from quai.shipping import domain
from quai.tenants.models import MerchantOwned


class CarrierKind(models.TextChoices):
    SANDBOX = "sandbox", _("Sandbox (built in)")
    COLISSIMO = "colissimo", _("Colissimo")
    MONDIAL_RELAY = "mondial_relay", _("Mondial Relay")


class CarrierAccount(TimeStampedModel):
    """A carrier contract the warehouse ships with: which adapter, its endpoints, its credentials (encrypted), the
    sender."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("adapter"), max_length=20, choices=CarrierKind.choices)
    active = models.BooleanField(_("active"), default=True)
    settings = models.JSONField(
        _("settings"),
        default=dict,
        blank=True,
        help_text=_("Endpoints and options the adapter takes (e.g. sls_url, contract_number, timeout)."),
    )
    # The adapter's passwords and API keys (``domain.CARRIER_SECRET_KEYS``), a JSON object encrypted as one token
    # (``quai.core.crypto``): a database dump alone reveals none, and no screen shows them back.
    credentials = EncryptedTextField(_("credentials"), blank=True, default="")
    sender_name = models.CharField(_("sender name"), max_length=100)
    sender_line1 = models.CharField(_("sender address"), max_length=200)
    sender_postcode = models.CharField(_("sender postcode"), max_length=20)
    sender_city = models.CharField(_("sender city"), max_length=100)
    sender_country = models.CharField(_("sender country"), max_length=2, default="FR")
    sender_phone = models.CharField(_("sender phone"), max_length=20, blank=True)
    sender_email = models.EmailField(_("sender email"), blank=True)

    class Meta:
        verbose_name = _("carrier account")
        verbose_name_plural = _("carrier accounts")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class SsccSequence(models.Model):
    """Where the next SSCC serial comes from, per GS1 company prefix."""

    company_prefix = models.CharField(_("GS1 company prefix"), max_length=10, unique=True)
    extension_digit = models.PositiveSmallIntegerField(_("extension digit"), default=0)
    next_serial = models.BigIntegerField(_("next serial reference"), default=1)

    class Meta:
        verbose_name = _("SSCC sequence")
        verbose_name_plural = _("SSCC sequences")

    def __str__(self) -> str:
        return f"{self.extension_digit}{self.company_prefix}…"


class ShipmentStatus(models.TextChoices):
    LABEL_CREATED = domain.LABEL_CREATED, _("Label created")
    HANDED_OVER = "handed_over", _("Handed to the carrier")
    IN_TRANSIT = domain.IN_TRANSIT, _("In transit")
    AT_PICKUP_POINT = domain.AT_PICKUP_POINT, _("At the pickup point")
    OUT_FOR_DELIVERY = domain.OUT_FOR_DELIVERY, _("Out for delivery")
    DELIVERED = domain.DELIVERED, _("Delivered")
    EXCEPTION = domain.EXCEPTION, _("Exception")
    RETURNED = domain.RETURNED, _("Returned")
    CANCELLED = "cancelled", _("Cancelled")


class ManifestStatus(models.TextChoices):
    OPEN = domain.MANIFEST_OPEN, _("Open")
    CLOSED = domain.MANIFEST_CLOSED, _("Closed")


class Manifest(TimeStampedModel):
    """One carrier's end-of-day handover (several merchants' parcels: it belongs to the warehouse)."""

    number = models.CharField(_("number"), max_length=40, unique=True)
    carrier = models.ForeignKey(CarrierAccount, on_delete=models.PROTECT, related_name="+", verbose_name=_("carrier"))
    status = models.CharField(_("status"), max_length=10, choices=ManifestStatus.choices, default=ManifestStatus.OPEN)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    missing = models.JSONField(_("missing parcels"), default=list, blank=True)
    document = models.BinaryField(_("manifest PDF"), null=True, blank=True)
    carrier_document = models.BinaryField(_("carrier's deposit slip"), null=True, blank=True)

    class Meta:
        verbose_name = _("manifest")
        verbose_name_plural = _("manifests")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["carrier"], condition=models.Q(status="open"), name="manifest_one_open_per_carrier"
            )
        ]

    def __str__(self) -> str:
        return self.number


class Shipment(MerchantOwned, TimeStampedModel):
    """A labelled parcel as the carrier knows it."""

    # Indexed by ``shipment_order_idx``, which starts with it.
    order_id = models.BigIntegerField(_("order id"))
    order_reference = models.CharField(_("order reference"), max_length=100)
    parcel_id = models.BigIntegerField(_("parcel id"), unique=True)
    # Indexed by ``shipment_carrier_status_idx``, which starts with it (one index fewer to write at each update).
    carrier = models.ForeignKey(
        CarrierAccount, on_delete=models.PROTECT, related_name="+", verbose_name=_("carrier"), db_index=False
    )
    service = models.CharField(_("service"), max_length=40, blank=True)
    # Unique by ``shipment_sscc_unique`` (``Meta.constraints``), not ``unique=True``: on PostgreSQL that adds a
    # ``varchar_pattern_ops`` twin for ``LIKE`` that no read uses (a scan is an equality; the admin's search an
    # ``UPPER(...) LIKE '%...%'`` neither index serves), one more entry at each shipment's update.
    sscc = models.CharField(_("SSCC"), max_length=18)
    # Indexed in any case (``shipment_tracking_upper_idx``): every lookup of a number is case-blind.
    tracking_number = models.CharField(_("tracking number"), max_length=64)
    tracking_url = models.URLField(_("tracking link"), max_length=300, blank=True)
    label = models.BinaryField(_("label"))
    label_format = models.CharField(_("label format"), max_length=5, default="pdf")
    status = models.CharField(
        _("status"), max_length=20, choices=ShipmentStatus.choices, default=ShipmentStatus.LABEL_CREATED
    )
    weight_g = models.PositiveIntegerField(_("weight (g)"))
    pickup_point_id = models.CharField(_("pickup point"), max_length=40, blank=True)
    stock_location_id = models.BigIntegerField(_("where its units wait"))
    reservation_ids = models.JSONField(_("reservations of its units"), default=list)
    customs = models.JSONField(_("CN23 data"), null=True, blank=True)
    manifest = models.ForeignKey(
        Manifest, null=True, blank=True, on_delete=models.PROTECT, related_name="shipments", verbose_name=_("manifest")
    )
    loaded_at = models.DateTimeField(_("scanned onto the truck at"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("handed over at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    estimated_delivery = models.DateField(_("estimated delivery"), null=True, blank=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["sscc"], name="shipment_sscc_unique")]
        indexes = [
            models.Index(fields=["carrier", "status"], name="shipment_carrier_status_idx"),
            # A shopper's or a scanner's tracking number in any case (``UPPER(tracking_number)``, PostgreSQL's
            # ``iexact`` too): the plain index served none of them, each ticket's lookup read every shipment of the
            # merchant (5-10 ms a ticket at 1,000 orders on PostgreSQL, growing with the day, finding almost none).
            models.Index(Upper("tracking_number"), name="shipment_tracking_upper_idx"),
            # An order's shipments within the merchant's scope (``shipments_of_order``: a ticket's parcels, the
            # order's page): with the order's own index SQLite (no statistics) took the merchant's instead, both one
            # equality and both in id order, and read every shipment of the merchant (a ticket's two reads 15 ms at
            # 5,000 orders, 60 at 20,000). The merchant in the index makes it the narrower; it replaces the order's.
            models.Index(fields=["order_id", "merchant"], name="shipment_order_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.carrier_id}:{self.tracking_number}"


class TrackingEventRecord(MerchantOwned):
    """One carrier event of a shipment, normalised; the same event told twice is stored once."""

    # Indexed by ``tracking_event_once_per_shipment``, which starts with it (one index fewer to write per event).
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events", db_index=False)
    status = models.CharField(_("status"), max_length=20, blank=True)
    carrier_code = models.CharField(_("carrier code"), max_length=120)
    description = models.CharField(_("description"), max_length=300, blank=True)
    location = models.CharField(_("location"), max_length=120, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))

    class Meta:
        verbose_name = _("tracking event")
        verbose_name_plural = _("tracking events")
        ordering = ["shipment_id", "occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shipment", "carrier_code", "occurred_at"], name="tracking_event_once_per_shipment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.shipment_id} {self.status} {self.occurred_at}"
