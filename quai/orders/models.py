"""Orders: what a merchant's shop sent, its lines and the stock they hold, and each merchant's order policy.

Invariants, and where each is kept:

- One order per (merchant, channel, external id): the unique constraint below is the last line of defence; the
  service answers a resend with the existing order (``fingerprint`` tells "the same order again" from "another
  order reusing the id").
- ``status`` only moves along ``quai.orders.domain.ORDER_TRANSITIONS``, written by ``quai.core.states.transition``
  (audit row ``core.StateTransition`` with aggregate "order", and an event), never by a plain save.
- A line's stock is held by an inventory reservation (``reservation_id``; document "order", "<order id>/<position>"):
  this app never writes inventory's tables. ``reserved_quantity + backordered_quantity`` is what the line still
  waits for or holds; both are bounded by ``quantity``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from quai.core.models import TimeStampedModel, VersionedModel
from quai.orders import domain
from quai.tenants.models import MerchantOwned


class OrderStatus(models.TextChoices):
    RECEIVED = domain.RECEIVED, _("Received")
    ALLOCATED = domain.ALLOCATED, _("Allocated")
    BACKORDERED = domain.BACKORDERED, _("Backordered")
    RELEASED = domain.RELEASED, _("Released to the warehouse")
    PICKING = domain.PICKING, _("Picking")
    PACKED = domain.PACKED, _("Packed")
    PARTIALLY_SHIPPED = domain.PARTIALLY_SHIPPED, _("Partially shipped")
    SHIPPED = domain.SHIPPED, _("Shipped")
    DELIVERED = domain.DELIVERED, _("Delivered")
    ON_HOLD = domain.ON_HOLD, _("On hold")
    CANCELLED = domain.CANCELLED, _("Cancelled")


class HoldReason(models.TextChoices):
    PAYMENT = domain.HoldReason.PAYMENT, _("Payment")
    FRAUD = domain.HoldReason.FRAUD, _("Fraud check")
    ADDRESS = domain.HoldReason.ADDRESS, _("Address")
    CUSTOMER_SERVICE = domain.HoldReason.CUSTOMER_SERVICE, _("Customer service")
    MERCHANT = domain.HoldReason.MERCHANT, _("Merchant")


class Priority(models.TextChoices):
    EXPRESS = domain.Priority.EXPRESS, _("Express")
    VIP = domain.Priority.VIP, _("VIP")
    MARKETPLACE = domain.Priority.MARKETPLACE, _("Marketplace")
    STANDARD = domain.Priority.STANDARD, _("Standard")


class Order(MerchantOwned, TimeStampedModel, VersionedModel):
    """A shopper's order as the merchant's shop sent it, and where it stands."""

    channel = models.CharField(_("channel"), max_length=50, help_text=_("Where it came from: api, shopify, csv…"))
    external_id = models.CharField(_("external id"), max_length=100, help_text=_("The shop's own order number."))
    status = models.CharField(_("status"), max_length=20, choices=OrderStatus.choices, default=OrderStatus.RECEIVED)
    held_from = models.CharField(
        _("held from"), max_length=20, choices=OrderStatus.choices, blank=True, help_text=_("Where a hold returns.")
    )
    hold_reason = models.CharField(_("hold reason"), max_length=20, choices=HoldReason.choices, blank=True)
    priority = models.CharField(_("priority"), max_length=20, choices=Priority.choices, default=Priority.STANDARD)

    shopper_name = models.CharField(_("shopper name"), max_length=200)
    shopper_email = models.EmailField(_("shopper email"), max_length=254, blank=True)
    shopper_phone = models.CharField(_("shopper phone (E.164)"), max_length=20, blank=True)

    ship_company = models.CharField(_("company"), max_length=200, blank=True)
    address_line1 = models.CharField(_("address line 1"), max_length=200)
    address_line2 = models.CharField(_("address line 2"), max_length=200, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20)
    city = models.CharField(_("city"), max_length=100)
    region = models.CharField(_("region"), max_length=100, blank=True)
    country = models.CharField(_("country (ISO 3166-1)"), max_length=2)

    carrier_service = models.CharField(_("requested carrier service"), max_length=64, blank=True)
    promise_id = models.CharField(_("promise id"), max_length=100, blank=True)
    promised_from = models.DateField(_("promised delivery from"), null=True, blank=True)
    promised_to = models.DateField(_("promised delivery by"), null=True, blank=True, db_index=True)

    gift_message = models.TextField(_("gift message"), blank=True)
    notes = models.TextField(_("notes"), blank=True)

    currency = models.CharField(_("currency"), max_length=3)
    lines_total = models.DecimalField(_("lines total"), max_digits=12, decimal_places=2)
    shipping_total = models.DecimalField(_("shipping total"), default=0, max_digits=12, decimal_places=2)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)

    release_after = models.DateTimeField(
        _("release after"), help_text=_("End of the release buffer: until then the shopper may still change it.")
    )
    # The digest of the order as validated: a resend with the same digest is the same order (answered with it);
    # another digest under the same external id is a different order reusing the id (409).
    fingerprint = models.CharField(_("fingerprint"), max_length=64, editable=False)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-id"]
        constraints = [
            # The external id before the channel: its index also finds a shop's order number without the channel
            # (a ticket's reference, ``orders_referenced``), which otherwise read every order of the merchant.
            models.UniqueConstraint(
                fields=["merchant", "external_id", "channel"], name="order_unique_external_id_per_channel"
            ),
            models.CheckConstraint(condition=Q(total__gte=0) & Q(lines_total__gte=0), name="order_totals_not_negative"),
        ]
        # The plain ``Index`` of ``status`` and ``carrier_service``, not ``db_index=True``: PostgreSQL's
        # ``db_index`` on a ``CharField`` adds a ``varchar_pattern_ops`` twin that only serves ``LIKE`` (no query
        # filters these two with ``startswith``/``contains``), one more entry each status step writes. The merchant
        # keeps its own index although two below start with it: on SQLite a one-column index is (merchant, rowid),
        # which reads a merchant's orders newest first (the admin's merchant filter) without sorting them all.
        indexes = [
            models.Index(fields=["merchant", "status", "created_at"], name="order_merchant_status_idx"),
            models.Index(fields=["status"], name="order_status_idx"),
            models.Index(fields=["carrier_service"], name="order_carrier_service_idx"),
            # The pack station's scan of an order number, any merchant's, in any case (``UPPER(external_id) IN``,
            # PostgreSQL's ``iexact`` too): the unique key starts with the merchant and serves neither.
            models.Index(Upper("external_id"), name="order_external_id_upper_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.external_id}"


class OrderLine(models.Model):
    """One SKU of an order: what was asked, what stock holds for it, what still waits for stock."""

    # Indexed by ``order_line_unique_position``, which starts with it.
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"), db_index=False
    )
    position = models.PositiveIntegerField(_("position"))
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+", verbose_name=_("SKU"))
    sku_code = models.CharField(_("SKU code"), max_length=64)
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)
    # The inventory reservation holding this line's stock (no foreign key: inventory's rows are its own, and this
    # app reaches them only through its services and selectors).
    reservation_id = models.BigIntegerField(_("reservation id"), null=True, blank=True)
    reserved_quantity = models.PositiveIntegerField(_("reserved quantity"), default=0)
    backordered_quantity = models.PositiveIntegerField(_("backordered quantity"), default=0)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["order_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="order_line_unique_position"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(reserved_quantity__lte=F("quantity")) & Q(backordered_quantity__lte=F("quantity")),
                name="order_line_holds_at_most_its_quantity",
            ),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="order_line_price_not_negative"),
        ]
        indexes = [
            # The backorder allocator's question: which lines of this SKU still wait for stock?
            models.Index(
                fields=["sku"], condition=Q(backordered_quantity__gt=0), name="order_line_backordered_sku_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku_code} × {self.quantity}"


class OrderPolicy(MerchantOwned, TimeStampedModel):
    """How a merchant's orders flow: the release buffer and whether a backorder may ship in parts."""

    release_buffer_minutes = models.PositiveIntegerField(
        _("release buffer (minutes)"),
        default=15,
        help_text=_("How long after intake an order waits for the warehouse (the shopper may still edit it)."),
    )
    split_shipments = models.BooleanField(
        _("split shipments for backorders"),
        default=False,
        help_text=_("Ship what is in stock first and the backordered rest later, instead of waiting for all of it."),
    )

    class Meta:
        verbose_name = _("order policy")
        verbose_name_plural = _("order policies")
        constraints = [models.UniqueConstraint(fields=["merchant"], name="order_policy_one_per_merchant")]

    def __str__(self) -> str:
        return str(_("Order policy"))


DEFAULT_RELEASE_BUFFER_MINUTES = OrderPolicy._meta.get_field("release_buffer_minutes").get_default()
