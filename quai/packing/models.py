"""Parcels at the pack station and the items scanned into them.

Invariants, and where each is kept:

- At most one parcel being packed per order (partial unique constraint on open / awaiting_label).
- ``ParcelItem.scanned`` never exceeds ``expected`` (check constraint; the service refuses an extra unit first).
- A parcel is ``closed`` only with every item scanned, a box, a weight within tolerance and a shipment: the close
  service checks all of it and writes the status, the stock movement, the shipment and the order's step together.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from quai.core.models import TimeStampedModel
from quai.tenants.models import MerchantOwned, StaffRole

#: Who works at a pack station (its screen and its API calls): one list, so the screen and the API never differ.
PACK_STATION_ROLES: tuple[str, ...] = (StaffRole.ADMIN, StaffRole.SUPERVISOR, StaffRole.PACKER)


class ParcelStatus(models.TextChoices):
    OPEN = "open", _("Being packed")
    AWAITING_LABEL = "awaiting_label", _("Waiting for its label")
    CLOSED = "closed", _("Closed")
    CANCELLED = "cancelled", _("Cancelled")


class Parcel(MerchantOwned, TimeStampedModel):
    order_id = models.BigIntegerField(_("order id"), db_index=True)
    order_reference = models.CharField(_("order"), max_length=100)
    station = models.ForeignKey(
        "warehouse.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("pack station")
    )
    status = models.CharField(_("status"), max_length=20, choices=ParcelStatus.choices, default=ParcelStatus.OPEN)
    packaging_code = models.CharField(_("box"), max_length=40, blank=True)
    packaging_tare_g = models.PositiveIntegerField(_("box tare (g)"), default=0)
    packaging_dims_mm = models.JSONField(_("box inner dimensions (mm)"), default=list, blank=True)
    expected_weight_g = models.PositiveIntegerField(_("expected weight (g)"), null=True, blank=True)
    measured_weight_g = models.PositiveIntegerField(_("measured weight (g)"), null=True, blank=True)
    weight_ok = models.BooleanField(_("weight checked"), default=False)
    carrier_code = models.CharField(_("carrier"), max_length=40, blank=True)
    shipment_id = models.BigIntegerField(_("shipment id"), null=True, blank=True)
    tote_code = models.CharField(_("tote"), max_length=40, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    photo = models.BinaryField(_("photo of the open parcel"), null=True, blank=True)
    photo_type = models.CharField(_("photo type"), max_length=40, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("parcel")
        verbose_name_plural = _("parcels")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id"],
                condition=Q(status__in=["open", "awaiting_label"]),
                name="parcel_one_in_progress_per_order",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.order_reference}"


class ParcelItem(models.Model):
    parcel = models.ForeignKey(Parcel, on_delete=models.CASCADE, related_name="items")
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    sku_code = models.CharField(_("SKU code"), max_length=64)
    name = models.CharField(_("name"), max_length=255)
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expected = models.PositiveIntegerField(_("expected"))
    scanned = models.PositiveIntegerField(_("scanned"), default=0)
    reservation_id = models.BigIntegerField(_("reservation id"), null=True, blank=True)

    class Meta:
        verbose_name = _("parcel item")
        verbose_name_plural = _("parcel items")
        ordering = ["parcel_id", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(scanned__lte=F("expected")), name="parcel_item_scanned_within_expected")
        ]

    def __str__(self) -> str:
        return f"{self.sku_code} {self.scanned}/{self.expected}"

    @property
    def done(self) -> bool:
        return self.scanned >= self.expected
