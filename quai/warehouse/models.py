"""Sites, zones and locations: the physical warehouse, re-shaped while it runs."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from quai.core.models import TimeStampedModel, VersionedModel
from quai.tenants.models import Merchant


def _weekdays() -> list[int]:
    return [1, 2, 3, 4, 5]


class Site(TimeStampedModel):
    """A warehouse building."""

    code = models.SlugField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=200)
    address_line1 = models.CharField(_("address"), max_length=200, blank=True)
    address_line2 = models.CharField(_("address (continued)"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, default="FR")
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Paris")
    opening_days = models.JSONField(
        _("opening days"), default=_weekdays, help_text=_("ISO weekdays the site works: 1 = Monday … 7 = Sunday.")
    )
    opens_at = models.TimeField(_("opens at"), default="08:00")
    closes_at = models.TimeField(_("closes at"), default="18:00")

    class Meta:
        verbose_name = _("site")
        verbose_name_plural = _("sites")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class ZoneKind(models.TextChoices):
    RECEIVING = "receiving", _("Receiving")
    STORAGE = "storage", _("Storage / reserve")
    PICKING = "picking", _("Picking")
    PROCESSING = "processing", _("Processing")
    PACKING = "packing", _("Packing")
    SHIPPING = "shipping", _("Shipping")
    RETURNS = "returns", _("Returns")
    QUARANTINE = "quarantine", _("Quarantine")


class ZoneStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CLOSED = "closed", _("Closed")


class Zone(TimeStampedModel, VersionedModel):
    """An area of a site with one purpose; a temporary zone (event sale) has a validity window."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="zones")
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=ZoneKind.choices)
    merchant = models.ForeignKey(
        Merchant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("owning merchant"),
        help_text=_("Empty: shared by every merchant."),
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=ZoneStatus.choices, default=ZoneStatus.OPEN)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("closed by"),
    )

    class Meta:
        verbose_name = _("zone")
        verbose_name_plural = _("zones")
        ordering = ["site_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["site", "code"], name="zone_code_unique_per_site"),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gt=models.F("valid_from")),
                name="zone_validity_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def is_temporary(self) -> bool:
        return self.valid_from is not None or self.valid_until is not None


class LocationStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    BLOCKED = "blocked", _("Blocked")


class LocationSide(models.TextChoices):
    NONE = "", _("—")
    LEFT = "left", _("Left")
    RIGHT = "right", _("Right")


class Location(TimeStampedModel):
    """A place that holds stock: a rack slot (aisle-bay-level-position), a floor spot, a dock, a pack table."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="locations")
    zone = models.ForeignKey(Zone, on_delete=models.PROTECT, related_name="locations")
    code = models.CharField(_("code"), max_length=40)
    aisle = models.CharField(_("aisle"), max_length=10, blank=True)
    bay = models.PositiveIntegerField(_("bay"), null=True, blank=True)
    level = models.PositiveIntegerField(_("level"), null=True, blank=True)
    position = models.PositiveIntegerField(_("position"), null=True, blank=True)
    side = models.CharField(_("side"), max_length=5, choices=LocationSide.choices, blank=True, default="")
    x_m = models.DecimalField(_("x (m)"), max_digits=8, decimal_places=2, default=Decimal("0"))
    y_m = models.DecimalField(_("y (m)"), max_digits=8, decimal_places=2, default=Decimal("0"))
    max_volume_cm3 = models.PositiveBigIntegerField(_("capacity (cm³)"), null=True, blank=True)
    max_weight_g = models.PositiveBigIntegerField(_("capacity (g)"), null=True, blank=True)
    pick_sequence = models.PositiveIntegerField(_("pick sequence"), default=0, db_index=True)
    mixed_sku = models.BooleanField(_("mixed SKUs allowed"), default=True)
    status = models.CharField(_("status"), max_length=10, choices=LocationStatus.choices, default=LocationStatus.ACTIVE)
    blocked_reason = models.CharField(_("reason for blocking"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("location")
        verbose_name_plural = _("locations")
        ordering = ["site_id", "pick_sequence", "code"]
        constraints = [
            models.UniqueConstraint(fields=["site", "code"], name="location_code_unique_per_site"),
        ]
        indexes = [models.Index(fields=["zone", "status"], name="location_zone_status_idx")]

    def __str__(self) -> str:
        return self.code
