"""Event sales (ventes événementielles): a merchant's campaign, its SKUs, its ASNs and the plan made for it.

A campaign's status moves only through ``quai.campaigns.services.campaign_transition`` (one state table,
``domain.CAMPAIGN_TRANSITIONS``): draft → planned → open → closing → closed. The temporary zone, its locations and
the staffing plan are created by the warehouse and labour services and only linked here.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from quai.campaigns import domain
from quai.catalog.models import Sku
from quai.core.models import TimeStampedModel, VersionedModel
from quai.inbound.models import Asn
from quai.labor.models import StaffingPlan
from quai.tenants.models import MerchantOwned
from quai.warehouse.models import Site, Zone


class CampaignStatus(models.TextChoices):
    DRAFT = domain.DRAFT, _("Draft")
    PLANNED = domain.PLANNED, _("Planned")
    OPEN = domain.OPEN, _("Open")
    CLOSING = domain.CLOSING, _("Closing")
    CLOSED = domain.CLOSED, _("Closed")


class Campaign(MerchantOwned, TimeStampedModel, VersionedModel):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=200)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    status = models.CharField(_("status"), max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    lines_per_order = models.DecimalField(_("lines per order"), max_digits=6, decimal_places=2, default=1)
    order_curve = models.JSONField(
        _("expected order curve"), default=list, help_text=_("Orders expected per hour: [{hour, orders}].")
    )
    release_per_hour = models.PositiveIntegerField(
        _("release throttle (orders per hour)"),
        null=True,
        blank=True,
        help_text=_(
            "At most this many of the merchant's orders at the campaign's site go to the floor per hour, from the "
            "sale's start to its close-out (all the merchant's orders count, not only the sale's); empty: no throttle."
        ),
    )
    zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("temporary zone")
    )
    staffing_plan = models.ForeignKey(
        StaffingPlan,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("staffing plan"),
    )
    warnings = models.JSONField(_("capacity warnings"), default=list, blank=True)
    checked_at = models.DateTimeField(_("capacity checked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("event sale")
        verbose_name_plural = _("event sales")
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="campaign_code_unique_per_merchant"),
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="campaign_ordered"),
        ]

    def __str__(self) -> str:
        return self.name


class CampaignSku(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="skus", verbose_name=_("campaign"))
    sku = models.ForeignKey(Sku, on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    expected_units = models.PositiveIntegerField(_("expected units"))

    class Meta:
        verbose_name = _("campaign SKU")
        verbose_name_plural = _("campaign SKUs")
        constraints = [models.UniqueConstraint(fields=["campaign", "sku"], name="campaign_sku_unique")]

    def __str__(self) -> str:
        return f"{self.sku} × {self.expected_units}"


class CampaignAsn(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="asns", verbose_name=_("campaign"))
    asn = models.OneToOneField(Asn, on_delete=models.PROTECT, related_name="+", verbose_name=_("ASN"))

    class Meta:
        verbose_name = _("campaign ASN")
        verbose_name_plural = _("campaign ASNs")

    def __str__(self) -> str:
        return str(self.asn)
