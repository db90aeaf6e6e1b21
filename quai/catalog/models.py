"""What merchants sell (SKUs and their barcodes) and what parcels are packed in (packaging types)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from quai.core.models import TimeStampedModel, VersionedModel
from quai.tenants.models import Merchant, MerchantOwned, MerchantScopedQuerySet


class SkuStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    INACTIVE = "inactive", _("Inactive")
    DISCONTINUED = "discontinued", _("Discontinued")


class Sku(MerchantOwned, TimeStampedModel, VersionedModel):
    """A stock-keeping unit of one merchant. Quantities of it are whole units."""

    code = models.CharField(_("SKU code"), max_length=64)
    name = models.CharField(_("name"), max_length=255)
    description = models.TextField(_("description"), blank=True)
    gtin = models.CharField(
        _("GTIN"), max_length=14, blank=True, help_text=_("GTIN-8, 12, 13 or 14, stored as 14 digits.")
    )
    length_mm = models.PositiveIntegerField(_("length (mm)"), null=True, blank=True)
    width_mm = models.PositiveIntegerField(_("width (mm)"), null=True, blank=True)
    height_mm = models.PositiveIntegerField(_("height (mm)"), null=True, blank=True)
    weight_g = models.PositiveIntegerField(_("weight (g)"), null=True, blank=True)
    lot_tracked = models.BooleanField(_("lot tracked"), default=False)
    expiry_tracked = models.BooleanField(_("expiry tracked"), default=False)
    serial_tracked = models.BooleanField(_("serial tracked"), default=False)
    fragile = models.BooleanField(_("fragile"), default=False)
    hazmat = models.BooleanField(_("hazardous material"), default=False)
    hs_code = models.CharField(_("customs HS code"), max_length=12, blank=True)
    country_of_origin = models.CharField(_("country of origin"), max_length=2, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=SkuStatus.choices, default=SkuStatus.ACTIVE)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["merchant_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="sku_code_unique_per_merchant"),
            # "MUG-RED" and "mug-red" are one code: a scan looks codes up without case. Lower(code) comes first so
            # the index also serves the staff screens' look-up of a code across merchants.
            models.UniqueConstraint(Lower("code"), "merchant", name="sku_code_ci_unique_per_merchant"),
        ]
        indexes = [models.Index(fields=["merchant", "gtin"], name="sku_merchant_gtin_idx")]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def volume_mm3(self) -> int | None:
        if self.length_mm and self.width_mm and self.height_mm:
            return self.length_mm * self.width_mm * self.height_mm
        return None


class BarcodeKind(models.TextChoices):
    GTIN = "gtin", _("GTIN / EAN / UPC")
    INTERNAL = "internal", _("Internal code")
    SUPPLIER = "supplier", _("Supplier code")


class Barcode(MerchantOwned):
    """Every code that resolves to a SKU, the primary GTIN included: one code, one SKU, within a merchant.

    No barcode may also be another SKU's code (the services check it: no constraint spans two tables).
    """

    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="barcodes")
    code = models.CharField(_("code"), max_length=64)
    kind = models.CharField(_("kind"), max_length=20, choices=BarcodeKind.choices, default=BarcodeKind.GTIN)
    is_primary = models.BooleanField(_("primary GTIN"), default=False)

    class Meta:
        verbose_name = _("barcode")
        verbose_name_plural = _("barcodes")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="barcode_unique_per_merchant"),
            # Internal and supplier codes hold letters, which a scan compares without case.
            models.UniqueConstraint(Lower("code"), "merchant", name="barcode_ci_unique_per_merchant"),
            # The primary row mirrors Sku.gtin: a second one would make the SKU's GTIN ambiguous.
            models.UniqueConstraint(
                fields=["sku"], condition=models.Q(is_primary=True), name="barcode_one_primary_per_sku"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class PackagingKind(models.TextChoices):
    BOX = "box", _("Box")
    ENVELOPE = "envelope", _("Envelope")
    MAILER_BAG = "mailer_bag", _("Mailer bag")
    PALLET = "pallet", _("Pallet")


class PackagingType(TimeStampedModel, VersionedModel):
    """A carton, envelope or bag a parcel can be packed in; the operator's own (merchant empty) or a merchant's."""

    merchant = models.ForeignKey(
        Merchant,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("merchant"),
        help_text=_("Empty: the operator's packaging, offered to every merchant."),
    )
    code = models.CharField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=PackagingKind.choices, default=PackagingKind.BOX)
    inner_length_mm = models.PositiveIntegerField(_("inner length (mm)"))
    inner_width_mm = models.PositiveIntegerField(_("inner width (mm)"))
    inner_height_mm = models.PositiveIntegerField(_("inner height (mm)"))
    max_weight_g = models.PositiveIntegerField(_("max weight (g)"))
    tare_weight_g = models.PositiveIntegerField(_("tare weight (g)"), default=0)
    cost = models.DecimalField(
        _("cost"), max_digits=10, decimal_places=4, default=Decimal("0"), validators=[MinValueValidator(0)]
    )
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    active = models.BooleanField(_("active"), default=True)

    objects = MerchantScopedQuerySet.as_manager()

    class Meta:
        verbose_name = _("packaging type")
        verbose_name_plural = _("packaging types")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "code"],
                condition=models.Q(merchant__isnull=False),
                name="packaging_code_unique_per_merchant",
            ),
            models.UniqueConstraint(
                fields=["code"], condition=models.Q(merchant__isnull=True), name="packaging_code_unique_operator"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"

    @property
    def inner_volume_mm3(self) -> int:
        return self.inner_length_mm * self.inner_width_mm * self.inner_height_mm
