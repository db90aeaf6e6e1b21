"""What the promise is computed from (per site: calendar, closures, carrier services, transit lanes, capacity) and
what was promised to each order, watched until it is kept or broken.

Invariants, and where each is kept:

- Configuration is validated by ``quai.promise.services.config`` before it is written (time zones that exist,
  holidays the ``holidays`` library knows, cut-offs that are times, transit distributions that rise to 100 %), so
  the snapshot built from these rows is always one ``quai.promise.domain`` accepts.
- One recorded promise per order (unique ``order``): the one the shop showed at checkout when it passed it, else the
  one computed at intake. ``status`` moves pending → at_risk → kept | broken (or pending → kept | broken); a broken
  promise always has a ``cause`` (check constraint).
- "Shipped on time" (``shipped_on_time``) and "delivered by the promised date" (``status`` kept/broken) are
  recorded apart: a parcel shipped late may still arrive in time, and the reverse.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from quai.core.models import TimeStampedModel, VersionedModel
from quai.promise import domain
from quai.tenants.models import Merchant, MerchantOwned


def _weekdays_to_saturday() -> list[int]:
    return [1, 2, 3, 4, 5, 6]


def _no_cutoffs() -> dict[str, str]:
    return {}


class PromiseSite(TimeStampedModel, VersionedModel):
    """A warehouse site as the promise sees it: whose holidays it keeps, how sure a promise must be."""

    site = models.OneToOneField("warehouse.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    holiday_country = models.CharField(_("public holidays of (country)"), max_length=2, default="FR")
    holiday_subdivision = models.CharField(
        _("public holidays of (subdivision)"),
        max_length=10,
        blank=True,
        help_text=_("Where holidays differ inside the country: 57 (Moselle), 6AE (Alsace), 974 (La Réunion)…"),
    )
    works_public_holidays = models.BooleanField(_("works on public holidays"), default=False)
    confidence = models.DecimalField(
        _("confidence"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.950"),
        help_text=_("Share of parcels the latest promised date must cover (0.95 = 95 %)."),
    )
    putaway_hours = models.DecimalField(
        _("putaway time (hours)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        help_text=_("Working hours between an ASN's receipt and its stock being pickable."),
    )
    kept_rate_threshold = models.DecimalField(
        _("kept-rate threshold"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.950"),
        help_text=_("A lane whose kept rate falls under this widens its promises."),
    )
    widened_confidence = models.DecimalField(
        _("widened confidence"), max_digits=4, decimal_places=3, default=Decimal("0.990")
    )
    merchants = models.ManyToManyField(
        Merchant,
        blank=True,
        related_name="+",
        verbose_name=_("merchants"),
        help_text=_("The merchants this site ships for; none means every merchant."),
    )

    class Meta:
        verbose_name = _("promise site")
        verbose_name_plural = _("promise sites")
        ordering = ["site__code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gt=0) & Q(confidence__lte=1) & Q(widened_confidence__lte=1),
                name="promise_site_confidence_is_a_share",
            ),
        ]

    def __str__(self) -> str:
        return str(self.site)


class SiteClosure(models.Model):
    """A day the site does not ship although it would (inventory count, a bridge day, a strike)."""

    promise_site = models.ForeignKey(PromiseSite, on_delete=models.CASCADE, related_name="closures")
    day = models.DateField(_("day"))
    reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("closure")
        verbose_name_plural = _("closures")
        ordering = ["day"]
        constraints = [models.UniqueConstraint(fields=["promise_site", "day"], name="site_closure_unique_day")]

    def __str__(self) -> str:
        return f"{self.day}"


class CarrierService(TimeStampedModel):
    """A carrier service as one site uses it: pick-up cut-offs per weekday (site local time), delivery weekdays."""

    promise_site = models.ForeignKey(PromiseSite, on_delete=models.CASCADE, related_name="services")
    code = models.SlugField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=100)
    carrier = models.CharField(_("carrier"), max_length=50, blank=True)
    cutoffs = models.JSONField(
        _("cut-offs"),
        default=_no_cutoffs,
        help_text=_('ISO weekday → local cut-off, e.g. {"1": "15:00", "6": "11:00"}; a weekday absent has no pick-up.'),
    )
    delivery_weekdays = models.JSONField(
        _("delivery weekdays"), default=_weekdays_to_saturday, help_text=_("ISO weekdays: 1 = Monday … 7 = Sunday.")
    )
    pickup_point = models.BooleanField(_("pickup point"), default=False)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("carrier service")
        verbose_name_plural = _("carrier services")
        ordering = ["promise_site_id", "code"]
        constraints = [
            models.UniqueConstraint(fields=["promise_site", "code"], name="carrier_service_unique_code_per_site")
        ]

    def __str__(self) -> str:
        return self.name


class TransitLane(TimeStampedModel):
    """Transit of one service to one zone: the configured seed, the parcels observed, and how the lane keeps its
    promises (a lane is site × carrier service × zone)."""

    service = models.ForeignKey(CarrierService, on_delete=models.CASCADE, related_name="lanes")
    zone = models.CharField(_("zone"), max_length=20, help_text=_("FR-MAINLAND, FR-CORSICA, FR-974, FR-COM, BE…"))
    seed = models.JSONField(
        _("transit (configured)"), help_text=_("[[days, cumulative share], …] e.g. [[1, 0.8], [2, 0.97], [3, 1]].")
    )
    observed = models.JSONField(
        _("transit (observed)"), default=dict, blank=True, help_text=_("Parcels by delivery days.")
    )
    widened = models.BooleanField(
        _("widened"),
        default=False,
        help_text=_("Kept rate under the threshold: promises are made at the widened confidence."),
    )
    kept = models.PositiveIntegerField(_("kept"), default=0)
    broken = models.PositiveIntegerField(_("broken"), default=0)

    class Meta:
        verbose_name = _("transit lane")
        verbose_name_plural = _("transit lanes")
        ordering = ["service_id", "zone"]
        constraints = [models.UniqueConstraint(fields=["service", "zone"], name="transit_lane_unique_zone")]

    def __str__(self) -> str:
        return f"{self.service.code} → {self.zone}"


class Stage(models.TextChoices):
    PICK = "pick", _("Pick")
    PACK = "pack", _("Pack")


class StageCapacity(models.Model):
    """Order lines per hour a stage of the site does in opening hours (configured until labor plans staff it)."""

    promise_site = models.ForeignKey(PromiseSite, on_delete=models.CASCADE, related_name="capacities")
    stage = models.CharField(_("stage"), max_length=10, choices=Stage.choices)
    lines_per_hour = models.PositiveIntegerField(_("lines per hour"))

    class Meta:
        verbose_name = _("stage capacity")
        verbose_name_plural = _("stage capacities")
        ordering = ["promise_site_id", "stage"]
        constraints = [models.UniqueConstraint(fields=["promise_site", "stage"], name="stage_capacity_unique")]

    def __str__(self) -> str:
        return f"{self.stage}: {self.lines_per_hour}/h"


class PromiseStatus(models.TextChoices):
    PENDING = domain.PENDING, _("Pending")
    AT_RISK = domain.AT_RISK, _("At risk")
    KEPT = domain.KEPT, _("Kept")
    BROKEN = domain.BROKEN, _("Broken")


class PromiseCause(models.TextChoices):
    WAREHOUSE_LATE = domain.Cause.WAREHOUSE_LATE, _("Warehouse late")
    CARRIER_LATE = domain.Cause.CARRIER_LATE, _("Carrier late")
    STOCK_SHORT = domain.Cause.STOCK_SHORT, _("Stock short")
    ADDRESS_PROBLEM = domain.Cause.ADDRESS_PROBLEM, _("Address problem")
    CUSTOMER_HOLD = domain.Cause.CUSTOMER_HOLD, _("Customer hold")
    FORCE_MAJEURE = domain.Cause.FORCE_MAJEURE, _("Force majeure")


class PromiseSource(models.TextChoices):
    SHOP = "shop", _("Shown at checkout")
    INTAKE = "intake", _("Computed at intake")


class PromiseRecord(MerchantOwned, TimeStampedModel):
    """The promise made for one order, and how it went."""

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="+", verbose_name=_("order"))
    promise_site = models.ForeignKey(PromiseSite, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source = models.CharField(_("source"), max_length=10, choices=PromiseSource.choices)
    promise_id = models.CharField(_("promise id"), max_length=100, blank=True)
    service = models.CharField(_("carrier service"), max_length=30, blank=True)
    carrier = models.CharField(_("carrier"), max_length=50, blank=True)
    zone = models.CharField(_("zone"), max_length=20, blank=True)
    ship_by = models.DateTimeField(_("ship by (cut-off)"), null=True, blank=True, db_index=True)
    ship_date = models.DateField(_("promised ship date"), null=True, blank=True)
    delivery_from = models.DateField(_("promised delivery from"), null=True, blank=True)
    delivery_by = models.DateField(_("promised delivery by"), null=True, blank=True)
    confidence = models.DecimalField(_("confidence"), max_digits=4, decimal_places=3, null=True, blank=True)
    # Indexed by ``Meta.indexes``, not ``db_index``: PostgreSQL's ``LIKE`` twin of it was one more entry at each
    # status step, and no query filters it with ``LIKE``. Its own index, although ``promise_record_open_idx`` starts
    # with it: on SQLite it is (status, rowid), the admin's status filter newest first without a sort.
    status = models.CharField(_("status"), max_length=10, choices=PromiseStatus.choices, default=PromiseStatus.PENDING)
    cause = models.CharField(_("cause"), max_length=20, choices=PromiseCause.choices, blank=True)
    at_risk_since = models.DateTimeField(_("at risk since"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    shipped_on_time = models.BooleanField(_("shipped on time"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    forecast_date = models.DateField(
        _("re-forecast delivery"),
        null=True,
        blank=True,
        help_text=_("The carrier's new date for a parcel late in transit."),
    )
    closed_on = models.DateField(_("decided on"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("recorded promise")
        verbose_name_plural = _("recorded promises")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=domain.BROKEN) | ~Q(cause=""), name="promise_record_broken_has_a_cause"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "ship_by"], name="promise_record_open_idx"),
            models.Index(fields=["status"], name="promise_record_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.delivery_by}"


class BacklogDelta(MerchantOwned):
    """Order lines of one merchant that joined (positive) or left (negative) one order status (allocated, released,
    picking): the backlog the promise counts is the sum of these rows per status, so the hot path reads a few rows
    instead of counting the open orders.

    Append-only, so that two relays handling a flash sale's ``order.status_changed`` events at once never wait on
    each other: each relay batch inserts its net moves in one statement and no row is ever updated (a tally row per
    merchant and status, updated in place, was a lock every relay queued on). ``backlog_compact`` (run by the watch)
    folds the rows into one per merchant and status, deleting exactly the rows it sums; ``backlog_recount`` appends
    the correction that brings the sums back to the count of the orders themselves."""

    status = models.CharField(_("order status"), max_length=20)
    lines = models.IntegerField(_("order lines"), default=0)

    class Meta:
        verbose_name = _("backlog move")
        verbose_name_plural = _("backlog moves")

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.status}: {self.lines:+d}"
