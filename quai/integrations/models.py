"""Outbound webhooks: what a merchant subscribed to, each delivery of an event to it, and each attempt to send it.

Invariants and the choices behind them:

- A delivery is written in the outbox relay's transaction, one per (subscription, outbox event), with a snapshot of
  the body it will send: what a receiver gets does not change if the subscription or the code changes later. A
  replay is a new delivery of the same event (``replay_of`` set), so the unique constraint holds for originals only.
- ``webhook-id`` is the event id, on every attempt and every replay: receivers deduplicate on it (at-least-once).
- Deliveries of one subscription about one resource (``resource_key`` = "aggregate:aggregate_id") go out in the
  order of their ids: a delivery is not sent while an older one of the same subscription and resource is pending.
- A delivery is ``pending`` until it ends: ``succeeded`` (a 2xx), ``failed`` (refused for good: a 4xx other than 408
  and 429, or a URL that now points at a private address) or ``dead`` (retried with exponential backoff for 24 hours
  without success: timeouts, 5xx, 408, 429, and redirects, which are never followed but logged with their
  ``Location`` so the URL can be corrected while the delivery still waits). Only ``pending`` deliveries are ever sent.
- A subscription gets the events that occurred from its creation on (``occurred_at`` ≥ ``created_at``), even when
  the relay passes an older event on after it was made; an older one reaches it only by an explicit replay.
- A worker claims a delivery by setting ``locked_until`` (a lease) in a short transaction, sends outside any
  transaction, then records the attempt. A worker that dies between the two leaves the lease to expire, and the
  next sweep sends the delivery again: nothing is lost, and the receiver may see it twice (same ``webhook-id``).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from quai.core.crypto import EncryptedTextField
from quai.core.models import TimeStampedModel, VersionedModel
from quai.tenants.models import MerchantOwned


class WebhookSubscription(MerchantOwned, TimeStampedModel, VersionedModel):
    """A merchant's endpoint and the events it wants (``order.*``, ``inventory.stock_changed``, ``*``).

    Secrets follow the Standard Webhooks format (``whsec_`` + base64). During a rotation the previous secret still
    signs until ``previous_secret_expires_at``, so every delivery carries both signatures while the receiver moves.
    They are kept readable (not hashed) because signing needs them, and encrypted at rest (``crypto``).
    """

    url = models.URLField(_("URL"), max_length=2000)
    event_types = models.JSONField(_("event types"), default=list)
    description = models.CharField(_("description"), max_length=500, blank=True)
    active = models.BooleanField(_("active"), default=True)
    secret = EncryptedTextField(_("secret"))
    previous_secret = EncryptedTextField(_("previous secret"), blank=True)
    previous_secret_expires_at = models.DateTimeField(_("previous secret valid until"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["id"]
        indexes = [models.Index(fields=["merchant", "active"], name="webhook_sub_merchant_idx")]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    DEAD = "dead", _("Dead")


class WebhookDelivery(MerchantOwned, TimeStampedModel):
    """One event to send to one subscription, until it succeeds, is refused or gives up after 24 hours."""

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("subscription")
    )
    event_id = models.UUIDField(_("event id"))
    event_name = models.CharField(_("event"), max_length=100)
    resource_key = models.CharField(_("resource"), max_length=210)
    payload = models.JSONField(_("payload"), default=dict)
    status = models.CharField(
        _("status"), max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    # The lease of the worker sending it now; past it, another worker may send it again.
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    replay_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replays", verbose_name=_("replay of")
    )

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_id"], condition=Q(replay_of=None), name="webhook_delivery_once"
            ),
        ]
        indexes = [
            # The claim's question: which pending deliveries are due, the longest due first. Walked in this order, the
            # claim stops at its batch: finished deliveries are not in the index, those waiting for a retry sort after
            # now (a primary-key walk read past both: 57 ms a claim with 150,000 of them, 0.4 ms with this index).
            models.Index(
                fields=["next_attempt_at", "id"], name="webhook_delivery_due_idx", condition=Q(status="pending")
            ),
            # The ordering question: is an older delivery of this subscription and resource still pending?
            models.Index(
                fields=["subscription", "resource_key", "id"],
                name="webhook_delivery_order_idx",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_name} → {self.subscription_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: what the receiver answered (or why nothing came back) and how long it took."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log", verbose_name=_("delivery")
    )
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    response_excerpt = models.TextField(_("response excerpt"), blank=True)
    error = models.TextField(_("error"), blank=True)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} {self.status_code or self.error[:40]}"


# --- Shop connections ---------------------------------------------------------------------------------------------
#
# One ``Connection`` per merchant shop. Its inbound URL names it (``/api/v1/shops/{id}/hooks/{topic}``), so the
# secret that checks a call is known before anything is read: a call is verified on its raw bytes by the platform's
# adapter, then de-duplicated on the adapter's delivery key (unique per connection), stored, answered, and processed
# by a task. Invariants:
#
# - an ``InboundDelivery`` exists only for a call whose signature verified; one row per (connection, delivery key);
# - a shop order becomes at most one Quai order (``ShopOrder`` unique per connection and external id, and orders'
#   own unique (merchant, channel, external id));
# - an order the warehouse cannot take yet (an SKU unknown to Quai) is never dropped: its delivery is ``held`` with
#   the reason and the missing SKUs, and taken again when such a SKU is created (or by hand);
# - a stock change marks (connection, SKU) dirty by bumping ``generation``; a push records the generation it read,
#   so a change that lands during a push is pushed again (latest level wins, nothing lost);
# - every call to a shop runs in a task, outside any transaction; a ``ConnectorCall`` logs it with its retries.


class ConnectionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    PAUSED = "paused", _("Paused")
    FAILING = "failing", _("Failing")


class Connection(MerchantOwned, TimeStampedModel, VersionedModel):
    """A merchant's shop on a platform (WooCommerce, Shopify, PrestaShop, Saleor), with its encrypted credentials
    and the state of the sync (last sync, lag, last error, next retry, poll cursor)."""

    name = models.CharField(_("name"), max_length=200)
    platform = models.CharField(_("platform"), max_length=30)
    base_url = models.URLField(_("shop address"), max_length=500)
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    # A JSON object of the credentials (API keys, tokens, webhook secret), encrypted as one token.
    credentials = EncryptedTextField(_("credentials"), blank=True, default="")
    status = models.CharField(
        _("status"), max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.ACTIVE
    )
    safety_buffer = models.PositiveIntegerField(
        _("safety buffer"), default=0, help_text=_("Units of each SKU never offered to this shop.")
    )
    push_stock = models.BooleanField(_("push stock"), default=True)
    poll_orders = models.BooleanField(_("poll orders"), default=True)
    # A TextField: a cursor keeps the ids taken at its last second (PrestaShop, Saleor, WooCommerce), and a busy
    # second of a shop holds hundreds of orders; cut, it would be unreadable or forget ids (orders taken twice).
    cursor = models.TextField(_("poll cursor"), blank=True)
    last_sync_at = models.DateTimeField(_("last sync"), null=True, blank=True)
    last_polled_at = models.DateTimeField(_("last poll"), null=True, blank=True)
    last_stock_push_at = models.DateTimeField(_("last stock push"), null=True, blank=True)
    lag_ms = models.PositiveIntegerField(
        _("lag (ms)"), null=True, blank=True, help_text=_("Delay between the last stock change and its push.")
    )
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    next_retry_at = models.DateTimeField(_("next retry"), null=True, blank=True)
    last_health = models.JSONField(_("last health check"), default=dict, blank=True)
    last_reconcile = models.JSONField(_("last stock reconcile"), default=dict, blank=True)
    # A stock push in flight holds this lease, so two workers never push one shop at once (rate limit per shop).
    stock_lease_until = models.DateTimeField(_("stock push lease"), null=True, blank=True)

    class Meta:
        verbose_name = _("shop connection")
        verbose_name_plural = _("shop connections")
        ordering = ["id"]
        indexes = [models.Index(fields=["merchant", "status"], name="connection_merchant_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.platform})"


class InboundStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    HELD = "held", _("Held")
    FAILED = "failed", _("Failed")


class InboundDelivery(MerchantOwned, TimeStampedModel):
    """A verified call from a shop (or an order found by a poll), kept raw until processed."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="inbound", verbose_name=_("connection")
    )
    delivery_key = models.CharField(_("delivery key"), max_length=300)
    topic = models.CharField(_("topic"), max_length=100)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.BinaryField(_("raw body"))
    status = models.CharField(_("status"), max_length=20, choices=InboundStatus.choices, default=InboundStatus.RECEIVED)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    reason = models.TextField(_("reason"), blank=True)
    error_code = models.CharField(_("error code"), max_length=100, blank=True)
    missing_skus = models.JSONField(_("missing SKUs"), default=list, blank=True)
    external_id = models.CharField(_("shop order"), max_length=100, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("shop delivery")
        verbose_name_plural = _("shop deliveries")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "delivery_key"], name="inbound_delivery_once"),
        ]
        indexes = [models.Index(fields=["merchant", "status"], name="inbound_delivery_status_idx")]

    def __str__(self) -> str:
        return f"{self.topic} {self.delivery_key[:40]} ({self.status})"


class ShopOrder(MerchantOwned, TimeStampedModel):
    """A shop's order and the Quai order made of it, with what later calls to the shop need (line ids…)."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="shop_orders", verbose_name=_("connection")
    )
    external_id = models.CharField(_("shop order id"), max_length=100)
    external_number = models.CharField(_("shop order number"), max_length=100, blank=True)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="+", verbose_name=_("order"), null=True, blank=True
    )
    snapshot = models.JSONField(_("shop order"), default=dict)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)

    class Meta:
        verbose_name = _("shop order")
        verbose_name_plural = _("shop orders")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="shop_order_once"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.external_id}"


class StockSync(MerchantOwned):
    """What a shop was last told about one SKU, and whether a newer change waits (``generation`` > pushed)."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="stock_syncs", verbose_name=_("connection")
    )
    sku_id = models.BigIntegerField(_("SKU id"))
    sku_code = models.CharField(_("SKU"), max_length=64)
    generation = models.PositiveBigIntegerField(_("generation"), default=0)
    pushed_generation = models.PositiveBigIntegerField(_("pushed generation"), default=0)
    changed_at = models.DateTimeField(_("first unpushed change"), null=True, blank=True)
    pushed_quantity = models.IntegerField(_("pushed quantity"), null=True, blank=True)
    pushed_at = models.DateTimeField(_("pushed at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("stock sync")
        verbose_name_plural = _("stock syncs")
        ordering = ["connection_id", "sku_code"]
        constraints = [models.UniqueConstraint(fields=["connection", "sku_id"], name="stock_sync_once")]
        indexes = [
            models.Index(
                fields=["connection", "changed_at"],
                name="stock_sync_dirty_idx",
                condition=Q(changed_at__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.sku_code}"


class CallKind(models.TextChoices):
    ACCEPT = "accept", _("Accept the order")
    FULFILMENT = "fulfilment", _("Fulfilment with tracking")
    REFUND = "refund", _("Refund")
    NOTE = "note", _("Note")
    CANCELLATION = "cancellation", _("Answer a cancellation")


class CallStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    DEAD = "dead", _("Dead")


class ConnectorCall(MerchantOwned, TimeStampedModel):
    """One write to a shop (accept, fulfilment, refund, note), retried with backoff until it succeeds, is refused
    for good or gives up; ``idempotency_key`` makes a repeated request one call."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="calls", verbose_name=_("connection")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=CallKind.choices)
    shop_order = models.ForeignKey(
        ShopOrder, on_delete=models.CASCADE, related_name="calls", verbose_name=_("shop order"), null=True, blank=True
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    payload = models.JSONField(_("payload"), default=dict)
    status = models.CharField(_("status"), max_length=20, choices=CallStatus.choices, default=CallStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    result = models.CharField(_("shop reference"), max_length=200, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("shop call")
        verbose_name_plural = _("shop calls")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "idempotency_key"], name="connector_call_once"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="connector_call_due_idx", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key} ({self.status})"
