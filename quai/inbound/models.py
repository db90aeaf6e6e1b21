"""Inbound: advance shipping notices (ASN), what was received against them, putaway and pick-face replenishment.

The invariant of this app: what is received equals what is put away. Every receipt adds its quantity to exactly one
putaway task in the same transaction, and every difference with the ASN ends in the discrepancy report.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from quai.core import clock
from quai.core.models import TimeStampedModel
from quai.tenants.models import MerchantOwned


def _now() -> datetime:
    return clock.now()


class AsnStatus(models.TextChoices):
    ANNOUNCED = "announced", _("Announced")
    RECEIVING = "receiving", _("Receiving")
    CLOSED = "closed", _("Closed")
    CANCELLED = "cancelled", _("Cancelled")


class Asn(MerchantOwned, TimeStampedModel):
    """An advance shipping notice: a merchant tells the warehouse what is on its way, from whom and when."""

    reference = models.CharField(_("reference"), max_length=64)
    supplier = models.CharField(_("supplier"), max_length=200, blank=True)
    expected_at = models.DateField(_("expected date"), null=True, blank=True)
    site = models.ForeignKey("warehouse.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    status = models.CharField(_("status"), max_length=20, choices=AsnStatus.choices, default=AsnStatus.ANNOUNCED)
    notes = models.TextField(_("notes"), blank=True)
    receiving_location = models.ForeignKey(
        "warehouse.Location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("receiving location"),
    )
    receiving_started_at = models.DateTimeField(_("receiving started at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("ASN")
        verbose_name_plural = _("ASNs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "reference"], name="asn_reference_unique_per_merchant"),
        ]
        indexes = [models.Index(fields=["status", "expected_at"], name="asn_status_expected_idx")]

    def __str__(self) -> str:
        return self.reference


class HandlingUnitKind(models.TextChoices):
    CARTON = "carton", _("Carton")
    PALLET = "pallet", _("Pallet")


class HandlingUnit(MerchantOwned):
    """A carton or pallet of an ASN, labelled with an SSCC (18 digits, GS1 check digit)."""

    asn = models.ForeignKey(Asn, on_delete=models.CASCADE, related_name="handling_units")
    kind = models.CharField(_("kind"), max_length=10, choices=HandlingUnitKind.choices, default=HandlingUnitKind.CARTON)
    sscc = models.CharField(_("SSCC"), max_length=18)
    received_at = models.DateTimeField(_("received at"), null=True, blank=True)

    class Meta:
        verbose_name = _("handling unit")
        verbose_name_plural = _("handling units")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["merchant", "sscc"], name="handling_unit_sscc_unique")]

    def __str__(self) -> str:
        return self.sscc


class AsnLine(models.Model):
    """One SKU (and lot, when known) announced on an ASN, with what was counted against it.

    A line that was not announced (``unexpected``) is added at receiving, with an expected quantity of zero.
    """

    asn = models.ForeignKey(Asn, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    handling_unit = models.ForeignKey(
        HandlingUnit, null=True, blank=True, on_delete=models.SET_NULL, related_name="lines"
    )
    expected_quantity = models.PositiveIntegerField(_("expected quantity"))
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry date"), null=True, blank=True)
    received_quantity = models.PositiveIntegerField(_("received quantity"), default=0)
    damaged_quantity = models.PositiveIntegerField(_("damaged quantity"), default=0)
    unexpected = models.BooleanField(_("not on the ASN"), default=False)

    class Meta:
        verbose_name = _("ASN line")
        verbose_name_plural = _("ASN lines")
        ordering = ["asn_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(damaged_quantity__lte=models.F("received_quantity")),
                name="asn_line_damaged_within_received",
            ),
            models.CheckConstraint(
                condition=models.Q(unexpected=True) | models.Q(expected_quantity__gt=0),
                name="asn_line_expected_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asn_id}/{self.sku_id} × {self.expected_quantity}"


class Receipt(models.Model):
    """One scan at receiving: what was counted, by whom, when, into which receiving location."""

    asn = models.ForeignKey(Asn, on_delete=models.PROTECT, related_name="receipts")
    line = models.ForeignKey(AsnLine, on_delete=models.PROTECT, related_name="receipts")
    handling_unit = models.ForeignKey(
        HandlingUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="receipts"
    )
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(_("scanned code"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"))
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry date"), null=True, blank=True)
    damaged = models.BooleanField(_("damaged"), default=False)
    location = models.ForeignKey("warehouse.Location", on_delete=models.PROTECT, related_name="+")
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(_("received at"), default=_now)
    movement_id = models.BigIntegerField(_("stock movement"), null=True, blank=True)

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        ordering = ["-received_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(quantity__gt=0), name="receipt_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.code} × {self.quantity}"


class DiscrepancyKind(models.TextChoices):
    OVER = "over", _("Over")
    SHORT = "short", _("Short")
    UNEXPECTED = "unexpected", _("Unexpected SKU")
    DAMAGED = "damaged", _("Damaged")
    LOT = "lot", _("Lot not as announced")


class DiscrepancyReport(models.Model):
    """What differed between the ASN and the count, written when receiving closes and sent to the merchant."""

    asn = models.OneToOneField(Asn, on_delete=models.CASCADE, related_name="discrepancy_report")
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=_now)
    expected_total = models.PositiveIntegerField(_("expected units"), default=0)
    received_total = models.PositiveIntegerField(_("received units"), default=0)
    damaged_total = models.PositiveIntegerField(_("damaged units"), default=0)

    class Meta:
        verbose_name = _("discrepancy report")
        verbose_name_plural = _("discrepancy reports")

    def __str__(self) -> str:
        return f"{self.asn}"


class DiscrepancyLine(models.Model):
    report = models.ForeignKey(DiscrepancyReport, on_delete=models.CASCADE, related_name="lines")
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(_("kind"), max_length=20, choices=DiscrepancyKind.choices)
    lot = models.CharField(_("lot"), max_length=64, blank=True, help_text=_("For a lot difference: which lot."))
    expected_quantity = models.PositiveIntegerField(_("expected"))
    received_quantity = models.PositiveIntegerField(_("received"))
    damaged_quantity = models.PositiveIntegerField(_("damaged"), default=0)
    difference = models.IntegerField(_("difference"), help_text=_("Received minus expected (damaged: units)."))

    class Meta:
        verbose_name = _("discrepancy")
        verbose_name_plural = _("discrepancies")
        ordering = ["report_id", "id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.sku_id} {self.difference:+d}"


class PutawayStatus(models.TextChoices):
    OPEN = "open", _("To put away")
    DONE = "done", _("Put away")


class PutawayTask(MerchantOwned, TimeStampedModel):
    """Received goods waiting in the receiving location: quantity → suggested location → confirmed location."""

    asn = models.ForeignKey(Asn, on_delete=models.PROTECT, related_name="putaway_tasks")
    line = models.ForeignKey(AsnLine, on_delete=models.PROTECT, related_name="putaway_tasks")
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry date"), null=True, blank=True)
    stock_status = models.CharField(_("stock status"), max_length=20, default="sellable")
    quantity = models.PositiveIntegerField(_("quantity"))
    from_location = models.ForeignKey("warehouse.Location", on_delete=models.PROTECT, related_name="+")
    suggested_location = models.ForeignKey(
        "warehouse.Location", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    suggestion_reason = models.CharField(_("why this location"), max_length=40, blank=True)
    confirmed_location = models.ForeignKey(
        "warehouse.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(_("status"), max_length=10, choices=PutawayStatus.choices, default=PutawayStatus.OPEN)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    movement_id = models.BigIntegerField(_("stock movement"), null=True, blank=True)

    class Meta:
        verbose_name = _("putaway task")
        verbose_name_plural = _("putaway tasks")
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=models.Q(quantity__gt=0), name="putaway_quantity_positive")]
        indexes = [models.Index(fields=["status", "sku"], name="putaway_status_sku_idx")]

    def __str__(self) -> str:
        return f"PT{self.pk}"

    @property
    def code(self) -> str:
        """What the task label's barcode carries; the putaway screen accepts it like an item scan."""
        return f"PT{self.pk}"


class PickFace(MerchantOwned, TimeStampedModel):
    """The location a SKU is picked from, with the min/max that drive its replenishment."""

    location = models.OneToOneField(
        "warehouse.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("location")
    )
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    min_quantity = models.PositiveIntegerField(_("min"))
    max_quantity = models.PositiveIntegerField(_("max"))

    class Meta:
        verbose_name = _("pick face")
        verbose_name_plural = _("pick faces")
        ordering = ["location_id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(max_quantity__gt=0) & models.Q(max_quantity__gte=models.F("min_quantity")),
                name="pick_face_min_le_max",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location_id}: {self.sku_id} [{self.min_quantity}-{self.max_quantity}]"


class ReplenishmentStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class ReplenishmentTask(MerchantOwned, TimeStampedModel):
    """Bring stock from reserve to a pick face that fell below its min, up to its max."""

    pick_face = models.ForeignKey(PickFace, on_delete=models.CASCADE, related_name="replenishment_tasks")
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+")
    from_location = models.ForeignKey(
        "warehouse.Location",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("take from"),
        help_text=_("The reserve location suggested as the source (earliest expiry first); empty when none holds any."),
    )
    to_location = models.ForeignKey("warehouse.Location", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(_("quantity"))
    on_hand_at_creation = models.IntegerField(_("on hand when created"), default=0)
    status = models.CharField(
        _("status"), max_length=10, choices=ReplenishmentStatus.choices, default=ReplenishmentStatus.OPEN
    )

    class Meta:
        verbose_name = _("replenishment task")
        verbose_name_plural = _("replenishment tasks")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pick_face"], condition=models.Q(status="open"), name="replenishment_one_open_per_face"
            ),
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="replenishment_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"R{self.pk} {self.sku_id} × {self.quantity}"
