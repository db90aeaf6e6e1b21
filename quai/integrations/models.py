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

from quai.core.models import TimeStampedModel, VersionedModel
from quai.tenants.models import MerchantOwned


class WebhookSubscription(MerchantOwned, TimeStampedModel, VersionedModel):
    """A merchant's endpoint and the events it wants (``order.*``, ``inventory.stock_changed``, ``*``).

    Secrets follow the Standard Webhooks format (``whsec_`` + base64). During a rotation the previous secret still
    signs until ``previous_secret_expires_at``, so every delivery carries both signatures while the receiver moves.
    They are kept readable (not hashed) because signing needs them.
    """

    url = models.URLField(_("URL"), max_length=2000)
    event_types = models.JSONField(_("event types"), default=list)
    description = models.CharField(_("description"), max_length=500, blank=True)
    active = models.BooleanField(_("active"), default=True)
    secret = models.CharField(_("secret"), max_length=200)
    previous_secret = models.CharField(_("previous secret"), max_length=200, blank=True)
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
            # The sweep's question: which pending deliveries are due (few rows: the finished ones are left out).
            models.Index(fields=["next_attempt_at"], name="webhook_delivery_due_idx", condition=Q(status="pending")),
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
