"""Labour: the warehouse's people, what they can do, when they work, how fast, and the plans computed for them.

Staff, skills and shifts are the 3PL's, not a merchant's: no merchant column, staff-only API. Productivity entries
are written by the scan-event handlers only, one per event (``event_id`` unique: a redelivered event adds nothing).
A staffing plan is computed (``quai.labor.domain.staffing_plan``) and stored with its inputs, so a plan can be
explained afterwards; nobody edits its cells.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from quai.core.models import TimeStampedModel, VersionedModel
from quai.labor import domain
from quai.warehouse.models import Site, Zone


class Activity(models.TextChoices):
    RECEIVE = domain.RECEIVE, _("Receiving")
    PUTAWAY = domain.PUTAWAY, _("Putaway")
    PICK = domain.PICK, _("Picking")
    PACK = domain.PACK, _("Packing")
    SHIP = domain.SHIP, _("Shipping")
    RETURNS = domain.RETURNS, _("Returns")
    CUSTOMER_SERVICE = domain.CUSTOMER_SERVICE, _("Customer service")


class StaffMember(TimeStampedModel, VersionedModel):
    """A person of the warehouse, linked to the user they log in as."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="staff_member", verbose_name=_("user")
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff members")
        ordering = ["site_id", "user__username"]

    def __str__(self) -> str:
        return str(self.user.get_username())


class Skill(models.Model):
    """What a person can do, and where: an activity in a zone (no zone: anywhere on the site)."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="skills", verbose_name=_("staff"))
    activity = models.CharField(_("activity"), max_length=20, choices=Activity.choices)
    zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("zone")
    )

    class Meta:
        verbose_name = _("skill")
        verbose_name_plural = _("skills")
        constraints = [
            models.UniqueConstraint(fields=["staff", "activity", "zone"], name="labor_skill_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.staff} · {self.activity}" + (f" · {self.zone.code}" if self.zone is not None else "")


class Shift(TimeStampedModel):
    """A person at work from ``starts_at`` to ``ends_at`` on one activity (in one zone, or anywhere)."""

    staff = models.ForeignKey(StaffMember, on_delete=models.CASCADE, related_name="shifts", verbose_name=_("staff"))
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    activity = models.CharField(_("activity"), max_length=20, choices=Activity.choices)
    zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("zone")
    )
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))

    class Meta:
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        ordering = ["starts_at", "id"]
        indexes = [models.Index(fields=["site", "activity", "starts_at"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="labor_shift_ordered")
        ]

    def __str__(self) -> str:
        return f"{self.staff} {self.activity} {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%H:%M}"


class Standard(TimeStampedModel, VersionedModel):
    """An engineered standard: lines per hour one trained person keeps at an activity (in a zone, or site-wide)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    activity = models.CharField(_("activity"), max_length=20, choices=Activity.choices)
    zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("zone")
    )
    lines_per_hour = models.DecimalField(
        _("lines per hour"),
        max_digits=8,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100000"))],
    )

    class Meta:
        verbose_name = _("engineered standard")
        verbose_name_plural = _("engineered standards")
        ordering = ["site_id", "activity", "zone_id"]
        constraints = [
            models.UniqueConstraint(fields=["site", "activity", "zone"], name="labor_standard_unique"),
            models.CheckConstraint(condition=models.Q(lines_per_hour__gt=0), name="labor_standard_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.activity}: {self.lines_per_hour}/h"


class ProductivityEntry(models.Model):
    """One scan of work from another app's event (a pick confirmed, a pack scan): who, what, where, when."""

    event_id = models.UUIDField(_("event"), unique=True)
    activity = models.CharField(_("activity"), max_length=20, choices=Activity.choices)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("operator"),
    )
    operator_label = models.CharField(_("operator"), max_length=150, blank=True)
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("site")
    )
    zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("zone")
    )
    lines = models.PositiveIntegerField(_("lines"), default=1)
    occurred_at = models.DateTimeField(_("occurred at"), db_index=True)

    class Meta:
        verbose_name = _("productivity entry")
        verbose_name_plural = _("productivity entries")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["activity", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.activity} {self.operator_label} {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class PlanSource(models.TextChoices):
    FORECAST = "forecast", _("Forecast")
    BACKLOG = "backlog", _("Live backlog")


class StaffingPlan(TimeStampedModel):
    """Heads per hour, zone and activity computed for a site from a forecast (or re-planned from the backlog)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    name = models.CharField(_("name"), max_length=200, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=PlanSource.choices, default=PlanSource.FORECAST)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    utilisation = models.DecimalField(_("utilisation target"), max_digits=4, decimal_places=3)
    lines_per_order = models.DecimalField(_("lines per order"), max_digits=8, decimal_places=3)
    inputs = models.JSONField(_("inputs"), default=dict, help_text=_("The forecast and backlog the plan came from."))
    replaces = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("replaces")
    )

    class Meta:
        verbose_name = _("staffing plan")
        verbose_name_plural = _("staffing plans")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")), name="labor_plan_ordered")
        ]

    def __str__(self) -> str:
        return self.name or f"{self.site} {self.starts_at:%Y-%m-%d %H:%M}"


class StaffingPlanCell(models.Model):
    plan = models.ForeignKey(StaffingPlan, on_delete=models.CASCADE, related_name="cells", verbose_name=_("plan"))
    hour = models.DateTimeField(_("hour"))
    zone = models.ForeignKey(
        Zone, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("zone")
    )
    activity = models.CharField(_("activity"), max_length=20, choices=Activity.choices)
    workload_lines = models.DecimalField(_("workload (lines)"), max_digits=12, decimal_places=2)
    lines_per_hour = models.DecimalField(_("lines per hour per person"), max_digits=8, decimal_places=2)
    heads = models.PositiveIntegerField(_("heads"))

    class Meta:
        verbose_name = _("staffing plan cell")
        verbose_name_plural = _("staffing plan cells")
        ordering = ["hour", "activity", "zone_id"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "hour", "zone", "activity"], name="labor_cell_unique"),
        ]

    def __str__(self) -> str:
        return f"{localtime(self.hour):%Y-%m-%d %H:%M} {self.activity}: {self.heads}"  # the hour as the page shows it
