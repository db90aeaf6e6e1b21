"""Waves, pick batches, totes, pick tasks, scans and shortages: the picking floor.

Invariants, and where each is kept:

- A batch's status only moves along ``quai.fulfillment.services.BATCH_MACHINE`` (audit rows, aggregate
  "pick_batch"), through ``batch_transition``.
- An operator works one batch at a time: at most one batch per operator is ``picking`` or ``paused`` (partial unique
  constraint below; the service says so first, with ``operator_busy``).
- A task's ``picked_quantity`` never exceeds its ``quantity`` (check constraint); picked units are in the tote's
  location in the ledger (``reservation_pick_to``), never out of it.
- A tote is in at most one open batch (``Tote.batch``): it is given back (``tote_release``) once emptied.
- Scans are append-only: one ``PickScan`` row per scan, accepted or refused, with its operator and time.
- A release limit (``ReleaseLimit``) caps how many of one merchant's orders (or order lines) the waves of one site
  send to the floor in any sliding hour of its window; every wave release reads the limits in force and holds back
  the orders beyond them (``Wave.held`` says how many and why). Limits are set and cleared by services only
  (``release_limit_set`` / ``release_limit_clear``), e.g. by an event sale when it opens and closes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from quai.core import clock
from quai.core.models import TimeStampedModel
from quai.tenants.models import MerchantOwned


def _now() -> Any:
    return clock.now()


class WaveStatus(models.TextChoices):
    RELEASED = "released", _("Released")
    DONE = "done", _("Done")


class Wave(models.Model):
    """Orders sent to the floor together, chosen by a supervisor's criteria or by the schedule."""

    site = models.ForeignKey("warehouse.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    status = models.CharField(_("status"), max_length=20, choices=WaveStatus.choices, default=WaveStatus.RELEASED)
    criteria = models.JSONField(_("criteria"), default=dict, blank=True)
    capacity = models.PositiveIntegerField(_("capacity (orders)"))
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    skipped = models.JSONField(_("orders left out and why"), default=list, blank=True)
    held = models.JSONField(_("orders held back by release limits"), default=list, blank=True)
    scheduled = models.BooleanField(_("released by the schedule"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=_now)

    class Meta:
        verbose_name = _("wave")
        verbose_name_plural = _("waves")
        ordering = ["-id"]
        # A release limit counts what the site's waves of the last hour released (``release_rooms``, each wave).
        indexes = [models.Index(fields=["site", "created_at"], name="wave_site_created_idx")]

    def __str__(self) -> str:
        return f"W{self.pk}"


class ReleaseLimit(MerchantOwned, TimeStampedModel):
    """At most ``orders_per_hour`` orders (and/or ``lines_per_hour`` order lines) of the merchant go to the floor of
    ``site`` in any sliding hour between ``valid_from`` and ``valid_until`` (open-ended when empty). ``source`` names
    who set it ("campaign:12"): setting again from the same source replaces the limit; several sources in force at
    once: the strictest figure of each kind applies."""

    site = models.ForeignKey("warehouse.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    source = models.CharField(_("set by"), max_length=60)
    orders_per_hour = models.PositiveIntegerField(_("orders per hour"), null=True, blank=True)
    lines_per_hour = models.PositiveIntegerField(_("order lines per hour"), null=True, blank=True)
    valid_from = models.DateTimeField(_("from"))
    valid_until = models.DateTimeField(_("until"), null=True, blank=True)

    class Meta:
        verbose_name = _("release limit")
        verbose_name_plural = _("release limits")
        ordering = ["site_id", "merchant_id", "valid_from", "id"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "site", "source"], name="release_limit_one_per_source"),
            models.CheckConstraint(
                condition=Q(orders_per_hour__gte=1) | Q(lines_per_hour__gte=1), name="release_limit_has_a_figure"
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="release_limit_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.orders_per_hour or '-'} orders / {self.lines_per_hour or '-'} lines per hour"


class BatchStatus(models.TextChoices):
    OPEN = "open", _("Ready to pick")
    PICKING = "picking", _("Picking")
    PAUSED = "paused", _("Paused")
    DONE = "done", _("Picked")
    CANCELLED = "cancelled", _("Cancelled")


class PickBatch(models.Model):
    """One cart's round: its totes, its tasks in route order, and the route's length against the alternatives."""

    wave = models.ForeignKey(Wave, on_delete=models.PROTECT, related_name="batches", verbose_name=_("wave"))
    site = models.ForeignKey("warehouse.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    zone = models.ForeignKey("warehouse.Zone", on_delete=models.PROTECT, related_name="+", verbose_name=_("zone"))
    status = models.CharField(
        _("status"), max_length=20, choices=BatchStatus.choices, default=BatchStatus.OPEN, db_index=True
    )
    single_units = models.BooleanField(_("single-unit orders"), default=False)
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("operator"),
    )
    routing = models.CharField(_("routing"), max_length=20, help_text=_("optimal (single block) or heuristic"))
    route_m = models.FloatField(_("route (m)"), default=0)
    s_shape_m = models.FloatField(_("S-shape route (m)"), null=True, blank=True)
    largest_gap_m = models.FloatField(_("largest-gap route (m)"), null=True, blank=True)
    order_by_order_m = models.FloatField(_("order by order (m)"), default=0)
    route = models.JSONField(_("route polyline (m)"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"), default=_now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)

    class Meta:
        verbose_name = _("pick batch")
        verbose_name_plural = _("pick batches")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["operator"],
                condition=Q(status__in=["picking", "paused"]),
                name="pick_batch_one_per_operator",
            )
        ]
        # The floor's open batches of a site (the waves' check, the pickers' list) are read at every tick; the batch
        # table keeps every batch ever made, and SQLite, with an index on each column alone, took the site's and
        # walked all of its batches for the few open ones.
        indexes = [models.Index(fields=["site", "status"], name="pick_batch_site_status_idx")]

    def __str__(self) -> str:
        return f"B{self.pk}"


class Tote(models.Model):
    """A tote (bac) on a cart: a location of the site, so the ledger knows what it holds."""

    site = models.ForeignKey("warehouse.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    code = models.CharField(_("code"), max_length=40)
    location = models.OneToOneField(
        "warehouse.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("location")
    )
    batch = models.ForeignKey(
        PickBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="totes", verbose_name=_("batch")
    )
    slot = models.PositiveIntegerField(_("slot on the cart"), default=0)

    class Meta:
        verbose_name = _("tote")
        verbose_name_plural = _("totes")
        ordering = ["site_id", "code"]
        constraints = [models.UniqueConstraint(fields=["site", "code"], name="tote_code_unique_per_site")]

    def __str__(self) -> str:
        return self.code


class TaskStatus(models.TextChoices):
    OPEN = "open", _("To pick")
    PICKED = "picked", _("Picked")
    SHORT = "short", _("Short")
    CANCELLED = "cancelled", _("Cancelled")


class PickTask(models.Model):
    """Take ``quantity`` units of one order line at one place into one tote: a stop of the route."""

    batch = models.ForeignKey(PickBatch, on_delete=models.CASCADE, related_name="tasks", verbose_name=_("batch"))
    sequence = models.PositiveIntegerField(_("sequence"))
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.PROTECT, related_name="+")
    order_id = models.BigIntegerField(_("order id"), db_index=True)
    line_id = models.BigIntegerField(_("order line id"))
    reservation_id = models.BigIntegerField(_("reservation id"))
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    location = models.ForeignKey(
        "warehouse.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("location")
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    tote = models.ForeignKey(Tote, on_delete=models.PROTECT, related_name="tasks", verbose_name=_("tote"))
    quantity = models.PositiveIntegerField(_("quantity"))
    picked_quantity = models.PositiveIntegerField(_("picked"), default=0)
    status = models.CharField(_("status"), max_length=20, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    location_ok = models.BooleanField(_("location scanned"), default=False)
    item_ok = models.BooleanField(_("item scanned"), default=False)
    note = models.CharField(_("note"), max_length=255, blank=True)
    picked_at = models.DateTimeField(_("picked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("pick task")
        verbose_name_plural = _("pick tasks")
        ordering = ["batch_id", "sequence", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(picked_quantity__lte=F("quantity")), name="pick_task_picked_within_quantity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sequence}: {self.sku_id}@{self.location_id} × {self.quantity}"


class ScanKind(models.TextChoices):
    LOCATION = "location", _("Location")
    ITEM = "item", _("Item")
    TOTE = "tote", _("Tote")
    ACTION = "action", _("Action")


class PickScan(models.Model):
    """One scan (or action) on the pick screen: what was typed, by whom, when, and whether it was accepted."""

    batch = models.ForeignKey(PickBatch, on_delete=models.CASCADE, related_name="scans", verbose_name=_("batch"))
    task = models.ForeignKey(PickTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="scans")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=ScanKind.choices)
    value = models.CharField(_("value"), max_length=200, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), null=True, blank=True)
    accepted = models.BooleanField(_("accepted"))
    error_code = models.CharField(_("error code"), max_length=60, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), default=_now, db_index=True)

    class Meta:
        verbose_name = _("pick scan")
        verbose_name_plural = _("pick scans")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.value} ({'ok' if self.accepted else self.error_code})"


class ShortageStatus(models.TextChoices):
    OPEN = "open", _("Open")
    OTHER_LOCATION = "other_location", _("Taken from another location")
    BACKORDERED = "backordered", _("Backordered")


class PickShortage(models.Model):
    """A pick that found fewer units than the books said: the supervisor sees it and what was done about it."""

    task = models.ForeignKey(PickTask, on_delete=models.PROTECT, related_name="shortages", verbose_name=_("task"))
    merchant = models.ForeignKey("tenants.Merchant", on_delete=models.PROTECT, related_name="+")
    order_id = models.BigIntegerField(_("order id"))
    location = models.ForeignKey("warehouse.Location", on_delete=models.PROTECT, related_name="+")
    missing_quantity = models.PositiveIntegerField(_("missing"))
    status = models.CharField(_("status"), max_length=20, choices=ShortageStatus.choices, default=ShortageStatus.OPEN)
    resolution_location = models.ForeignKey(
        "warehouse.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reported_at = models.DateTimeField(_("reported at"), default=_now)

    class Meta:
        verbose_name = _("pick shortage")
        verbose_name_plural = _("pick shortages")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.missing_quantity} missing"
