"""Stock: the immutable ledger, the quantities it implies, reservations and the stock policy.

How the numbers hang together (``stock_check`` recomputes every one of them and reports any drift):

- ``StockMovement`` is the ledger: one immutable row per movement, ``quantity`` units leaving
  (``from_location``, ``from_status``) and/or entering (``to_location``, ``to_status``).
- ``StockQuantity`` holds, per (location, SKU, lot, expiry, status) — the owner being the SKU's merchant — the
  on-hand quantity (the ledger's net sum) and ``reserved``, the part allocated to reservations at that place.
- ``StockLevel`` is the one hot row per (merchant, SKU): ``on_hand`` is the sellable stock that counts toward
  availability and ``reserved`` the sum of the open reservations. A reservation is one guarded update of that row.

Which stock counts toward availability (temporary zones included) — the choice, and why:

A SKU-level counter cannot change by itself when a clock passes a temporary zone's end, so nothing is left to the
clock. Each ``StockQuantity`` carries ``counted``: whether its zone is counted. ``StockLevel.on_hand`` is, at
every commit, exactly the sum of ``on_hand`` over the SKU's *sellable* rows with ``counted`` set. A row is created
counted when its zone is active (open and, if temporary, inside its window) at that moment; afterwards only
``stock_counting_sync`` flips the flag (run by the zone-state hooks and by a periodic sweep), moving the row's
quantity into or out of the counter in the same transaction:

- a zone becoming active adds its stock to the counter (always safe);
- a zone leaving its window (or closing) removes each row with the guard ``on_hand - reserved >= row``; when that
  guard fails, the stock is the last cover of reservations already made, so the row stays counted until those
  reservations are consumed or released and a later sweep takes it out. A reservation, once made, always holds.

So availability and the reservation guard read the same counter, the drift check has one exact formula, and a
window is honoured to within one sweep.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from quai.core import clock
from quai.core.errors import Conflict
from quai.tenants.models import MerchantOwned, MerchantScopedQuerySet


def _now() -> Any:
    return clock.now()


NO_EXPIRY = date(1, 1, 1)  # stands for "no expiry" inside unique keys (NULLs are distinct in SQL)


class StockStatus(models.TextChoices):
    SELLABLE = "sellable", _("Sellable")
    QUARANTINE = "quarantine", _("Quarantine")
    DAMAGED = "damaged", _("Damaged")
    IN_TRANSIT = "in_transit", _("In transit")


class MovementKind(models.TextChoices):
    RECEIPT = "receipt", _("Receipt")
    PUTAWAY = "putaway", _("Putaway")
    MOVE = "move", _("Move")
    PICK = "pick", _("Pick")
    PACK = "pack", _("Pack")
    SHIP = "ship", _("Ship")
    ADJUSTMENT = "adjustment", _("Adjustment")
    COUNT = "count", _("Count")
    RETURN = "return", _("Return")
    SCRAP = "scrap", _("Scrap")


class LedgerQuerySet(MerchantScopedQuerySet):
    """The ledger is append-only: bulk updates and deletes are refused like single ones."""

    def update(self, **kwargs: Any) -> int:
        raise Conflict("Stock movements are immutable.", code="ledger_immutable")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise Conflict("Stock movements are immutable.", code="ledger_immutable")


class StockMovement(MerchantOwned):
    """One movement of stock, never changed nor deleted: corrections are new movements."""

    kind = models.CharField(_("kind"), max_length=20, choices=MovementKind.choices)
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    serial = models.CharField(_("serial number"), max_length=100, blank=True)
    from_location = models.ForeignKey(
        "warehouse.Location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("from location"),
    )
    from_status = models.CharField(_("from status"), max_length=20, choices=StockStatus.choices, blank=True)
    to_location = models.ForeignKey(
        "warehouse.Location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("to location"),
    )
    to_status = models.CharField(_("to status"), max_length=20, choices=StockStatus.choices, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("actor"),
    )
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    document_type = models.CharField(_("document type"), max_length=50, blank=True)
    document_id = models.CharField(_("document id"), max_length=100, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"), default=_now, db_index=True)

    objects = LedgerQuerySet.as_manager()  # type: ignore[misc]

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["merchant", "sku", "id"], name="movement_merchant_sku_idx"),
            models.Index(fields=["document_type", "document_id"], name="movement_document_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="movement_quantity_positive"),
            models.CheckConstraint(
                condition=Q(from_location__isnull=False) | Q(to_location__isnull=False),
                name="movement_has_a_side",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.quantity} × {self.sku_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise Conflict("Stock movements are immutable.", code="ledger_immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise Conflict("Stock movements are immutable.", code="ledger_immutable")


class StockQuantity(MerchantOwned):
    """What is at one place: per (location, SKU, lot, expiry, status), owner = the SKU's merchant."""

    # Neither indexed on its own: ``stock_quantity_sku_status_idx`` starts with the SKU, ``stock_quantity_key``
    # with the location (an index fewer each to write at every insert and every update that is not HOT).
    sku = models.ForeignKey(
        "catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"), db_index=False
    )
    location = models.ForeignKey(
        "warehouse.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("location"), db_index=False
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=StockStatus.choices)
    on_hand = models.IntegerField(_("on hand"), default=0)
    reserved = models.IntegerField(_("reserved"), default=0)
    counted = models.BooleanField(
        _("counts toward availability"),
        default=True,
        help_text=_("Whether this stock's zone is counted in the SKU's availability (see stock_counting_sync)."),
    )
    received_at = models.DateTimeField(_("first received at"), default=_now)

    class Meta:
        verbose_name = _("stock quantity")
        verbose_name_plural = _("stock quantities")
        ordering = ["location_id", "sku_id", "lot"]
        constraints = [
            models.UniqueConstraint(
                F("location"),
                F("sku"),
                F("lot"),
                F("status"),
                Coalesce(F("expiry"), Value(NO_EXPIRY), output_field=models.DateField()),
                name="stock_quantity_key",
            ),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_quantity_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_quantity_reserved_not_negative"),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")), name="stock_quantity_reserved_within_on_hand"
            ),
        ]
        indexes = [models.Index(fields=["sku", "status"], name="stock_quantity_sku_status_idx")]

    def __str__(self) -> str:
        return f"{self.sku_id}@{self.location_id} {self.lot} {self.status}: {self.on_hand}"

    @property
    def free(self) -> int:
        return self.on_hand - self.reserved


class StockLevel(MerchantOwned):
    """The hot row of one merchant's SKU: counted sellable on-hand and the open reservations' total.

    ``on_hand - reserved >= 0`` is the never-oversell invariant; the check constraint backs the guarded updates up.
    """

    sku = models.OneToOneField("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    on_hand = models.IntegerField(_("sellable on hand"), default=0)
    reserved = models.IntegerField(_("reserved"), default=0)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        ordering = ["merchant_id", "sku_id"]
        constraints = [
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_level_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_level_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_level_never_oversold"),
        ]

    def __str__(self) -> str:
        return f"{self.sku_id}: {self.on_hand} on hand, {self.reserved} reserved"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class ReservationStatus(models.TextChoices):
    OPEN = "open", _("Open")
    CONSUMED = "consumed", _("Consumed")
    RELEASED = "released", _("Released")


class Reservation(MerchantOwned):
    """Stock promised to an order line: first at SKU level, then allocated to locations and lots.

    ``quantity`` is what is still reserved; it shrinks as units are consumed (picked) or released. A document line
    (merchant, document type, document id, SKU) holds at most one open reservation: a retry is answered with the
    existing one (``reservation_exists``), never with a second hold on the stock.
    """

    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    quantity = models.PositiveIntegerField(_("reserved quantity"))
    requested_quantity = models.PositiveIntegerField(_("requested quantity"))
    consumed_quantity = models.PositiveIntegerField(_("consumed quantity"), default=0)
    released_quantity = models.PositiveIntegerField(_("released quantity"), default=0)
    status = models.CharField(
        _("status"), max_length=20, choices=ReservationStatus.choices, default=ReservationStatus.OPEN
    )
    document_type = models.CharField(_("document type"), max_length=50, blank=True)
    document_id = models.CharField(_("document id"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), default=_now, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), default=_now)

    class Meta:
        verbose_name = _("reservation")
        verbose_name_plural = _("reservations")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["merchant", "sku", "status"], name="reservation_sku_status_idx"),
            models.Index(fields=["document_type", "document_id"], name="reservation_document_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(requested_quantity=F("quantity") + F("consumed_quantity") + F("released_quantity")),
                name="reservation_quantities_add_up",
            ),
            # A client that retries a reservation (timeout, crash, double click) must not hold the stock twice:
            # one open reservation per document line and SKU. Reservations without a document (the benchmark,
            # manual holds) are not concerned, and a consumed or released one no longer blocks a new one.
            models.UniqueConstraint(
                fields=["merchant", "document_type", "document_id", "sku"],
                condition=Q(status="open") & ~Q(document_id=""),
                name="reservation_open_document_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.sku_id} × {self.quantity} ({self.status})"


class ReservationAllocation(models.Model):
    """The part of a reservation pinned to one stock quantity (location, lot): the second stage."""

    reservation = models.ForeignKey(Reservation, on_delete=models.PROTECT, related_name="allocations")
    # Indexed by ``allocation_stock_idx``, which starts with it.
    stock = models.ForeignKey(StockQuantity, on_delete=models.PROTECT, related_name="allocations", db_index=False)
    location = models.ForeignKey(
        "warehouse.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("location")
    )
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("allocated quantity"), default=0)
    consumed_quantity = models.PositiveIntegerField(_("consumed quantity"), default=0)
    created_at = models.DateTimeField(_("created at"), default=_now)

    class Meta:
        verbose_name = _("reservation allocation")
        verbose_name_plural = _("reservation allocations")
        ordering = ["id"]
        indexes = [models.Index(fields=["stock", "quantity"], name="allocation_stock_idx")]

    def __str__(self) -> str:
        return f"{self.reservation_id}@{self.location_id} × {self.quantity}"


class StockPolicy(MerchantOwned):
    """Units held back from the shops (per SKU, or the merchant's default) and the minimum shelf life."""

    sku = models.ForeignKey(
        "catalog.Sku",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("SKU"),
        help_text=_("Empty: the merchant's default for every SKU."),
    )
    safety_buffer = models.PositiveIntegerField(_("safety buffer"), default=0)
    min_shelf_life_days = models.PositiveIntegerField(
        _("minimum remaining shelf life (days)"),
        default=0,
        help_text=_("Lots expiring sooner are not allocated (merchant default only)."),
    )
    count_tolerance_units = models.PositiveIntegerField(
        _("count tolerance (units)"),
        null=True,
        blank=True,
        help_text=_("A cycle count differing by at most this many units is applied without approval (empty: 2)."),
    )
    count_tolerance_percent = models.PositiveIntegerField(
        _("count tolerance (%)"),
        null=True,
        blank=True,
        help_text=_("…or by at most this percentage of the expected quantity (empty: 5)."),
    )

    class Meta:
        verbose_name = _("stock policy")
        verbose_name_plural = _("stock policies")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "sku"], name="stock_policy_per_sku"),
            models.UniqueConstraint(
                fields=["merchant"], condition=Q(sku__isnull=True), name="stock_policy_merchant_default"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id}/{self.sku_id or '*'}: buffer {self.safety_buffer}"


class MoveTaskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class MoveTask(MerchantOwned):
    """A move a person must make: created to empty a closing zone; done by ``move_task_complete``."""

    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    stock = models.ForeignKey(StockQuantity, on_delete=models.PROTECT, related_name="+")
    from_location = models.ForeignKey(
        "warehouse.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("from location")
    )
    to_location = models.ForeignKey(
        "warehouse.Location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("to location"),
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=MoveTaskStatus.choices, default=MoveTaskStatus.OPEN)
    created_at = models.DateTimeField(_("created at"), default=_now)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)

    class Meta:
        verbose_name = _("move task")
        verbose_name_plural = _("move tasks")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.sku_id} {self.from_location_id}→{self.to_location_id} × {self.quantity}"


# --- Cycle counts (inventaire tournant) -------------------------------------------------------------------------


class CountTaskStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("count status", "Open")
    COUNTING = "counting", pgettext_lazy("count status", "Counting")
    SUBMITTED = "submitted", pgettext_lazy("count status", "Waiting for approval")
    APPROVED = "approved", pgettext_lazy("count status", "Approved")
    APPLIED = "applied", pgettext_lazy("count status", "Applied")
    REJECTED = "rejected", pgettext_lazy("count status", "Rejected: recount")
    CANCELLED = "cancelled", pgettext_lazy("count status", "Cancelled")


class CountTask(models.Model):
    """A cycle count of one location (every SKU there, or only ``sku``): counted, submitted, applied.

    The status only moves along ``quai.inventory.domain.COUNT_TASK_TRANSITIONS``, through
    ``count_task_transition`` (``quai.core.states``), which writes a ``core.StateTransition`` row (aggregate
    "count_task") each time. ``merchant`` is set when the count is for one SKU (its owner); a count of a whole
    location may cover several merchants.
    """

    site = models.ForeignKey("warehouse.Site", on_delete=models.PROTECT, related_name="+", verbose_name=_("site"))
    location = models.ForeignKey(
        "warehouse.Location", on_delete=models.PROTECT, related_name="+", verbose_name=_("location")
    )
    sku = models.ForeignKey(
        "catalog.Sku",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("SKU"),
        help_text=_("Empty: every SKU in the location."),
    )
    merchant = models.ForeignKey(
        "tenants.Merchant",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("merchant"),
    )
    blind = models.BooleanField(
        _("blind"), default=True, help_text=_("The counter does not see the expected quantities.")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=CountTaskStatus.choices, default=CountTaskStatus.OPEN, db_index=True
    )
    review_reasons = models.CharField(
        _("why it waits for approval"),
        max_length=200,
        blank=True,
        help_text=_("Comma-separated: variance_above_threshold, below_reserved."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("created by"),
    )
    counted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("counted by"),
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("approved or rejected by"),
    )
    created_at = models.DateTimeField(_("created at"), default=_now)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    decided_at = models.DateTimeField(_("approved or rejected at"), null=True, blank=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)

    class Meta:
        verbose_name = _("cycle count")
        verbose_name_plural = _("cycle counts")
        ordering = ["-id"]
        indexes = [models.Index(fields=["location", "status"], name="count_task_location_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.location_id}{'/' + str(self.sku_id) if self.sku_id else ''} ({self.status})"


class CountLine(models.Model):
    """What was counted of one (SKU, lot, expiry, status) at the task's location.

    ``expected_quantity`` is the books' on-hand, snapshotted when the count is submitted (never shown to a blind
    counter); ``variance`` = counted − expected.
    """

    task = models.ForeignKey(CountTask, on_delete=models.CASCADE, related_name="lines", verbose_name=_("count"))
    merchant = models.ForeignKey(
        "tenants.Merchant", on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant")
    )
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    expiry = models.DateField(_("expiry"), null=True, blank=True)
    status = models.CharField(_("stock status"), max_length=20, choices=StockStatus.choices)
    counted_quantity = models.PositiveIntegerField(_("counted"), default=0)
    expected_quantity = models.IntegerField(_("expected"), null=True, blank=True)
    reserved_quantity = models.IntegerField(_("reserved"), null=True, blank=True)
    variance = models.IntegerField(_("variance"), null=True, blank=True)
    needs_approval = models.BooleanField(_("needs approval"), default=False)
    updated_at = models.DateTimeField(_("updated at"), default=_now)

    class Meta:
        verbose_name = _("count line")
        verbose_name_plural = _("count lines")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.sku_id} {self.lot}: {self.counted_quantity}"
