"""Base models shared by every app. ``core`` imports no app."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from quai.core import clock


def _now():  # type: ignore[no-untyped-def]
    return clock.now()


class TimeStampedModel(models.Model):
    """Created and updated times, read from Quai's clock so simulations stay consistent."""

    created_at = models.DateTimeField(_("created at"), default=_now, editable=False, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), default=_now, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.updated_at = clock.now()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "updated_at"}
        super().save(*args, **kwargs)


class VersionedModel(models.Model):
    """Records that people edit by hand carry a version: an edit made on a stale copy gets a 409."""

    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        abstract = True


class OutboxEvent(models.Model):
    """A past-tense domain event, written in the same transaction as the change it reports.

    The outbox is the source of truth for everything that must reach someone else (handlers, webhooks): a dead
    worker loses nothing, another one picks the rows up.
    """

    # The bigint key gives the relay its order; the uuid is the id handlers and webhook receivers key on.
    # Indexed only where a read needs it: every index costs each insert and each non-HOT update (the relay's two
    # per event) an entry. ``merchant_id`` (an order's story, ``quai.service.warehouse``), ``occurred_at`` (the back
    # office's date drill-down, its first and last day) and the pending index (the relay's claim, the priority pass,
    # the back office's "pending" and "failing" filters). Not ``name`` nor ``relayed_at``: no query reads by them
    # but over pending rows, which the pending index holds. Not ``event_id``: no read finds a row by it (the back
    # office's search compares it case-blind, beside ``name`` contains, which no index serves), and its unique index,
    # a random uuid4 per insert, put each event in a random leaf page (a page read and written per insert once the
    # index outgrew the cache: docs/OUTBOX.md, "The outbox's indexes"). Every event id is a fresh ``uuid4``.
    # On PostgreSQL the table leaves half of each page free (migration 0004's fillfactor) so the claim's UPDATE,
    # which changes no indexed column, stays on its page (HOT) and writes no index entry at all.
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, editable=False)
    name = models.CharField(_("event"), max_length=100)
    # The shape the payload was written in (``Event.schema_version``): older rows are upcast when read back. The
    # database default keeps hand-written inserts (the one-statement reservation) at version 1.
    schema_version = models.PositiveSmallIntegerField(_("schema version"), default=1, db_default=1)
    merchant_id = models.BigIntegerField(_("merchant"), null=True, blank=True, db_index=True)
    aggregate = models.CharField(_("aggregate"), max_length=100, blank=True)
    aggregate_id = models.CharField(_("aggregate id"), max_length=100, blank=True)
    payload = models.JSONField(_("payload"), default=dict)
    occurred_at = models.DateTimeField(_("occurred at"), default=_now, db_index=True)
    relayed_at = models.DateTimeField(_("relayed at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    # A failed relay waits before its next try (exponential backoff); None means "as soon as possible".
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox event")
        verbose_name_plural = _("outbox events")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["id"], name="outbox_pending_idx", condition=models.Q(relayed_at=None)),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.aggregate}:{self.aggregate_id}"


class HandledEvent(models.Model):
    """Which handler has already processed which event: handlers are idempotent, keyed by event id."""

    # No foreign-key constraint, and no index of its own: only the relay writes these rows, for events it read from
    # the outbox, and the database's check of each (a ``SELECT … FOR KEY SHARE`` of the event per row, locking it)
    # was 41,776 statements in a 1,000-order day. Deleting an event through the ORM still deletes its rows (the
    # ``CASCADE`` is Django's); the unique constraint below, led by ``event``, is the index every read by event uses.
    event = models.ForeignKey(
        OutboxEvent, on_delete=models.CASCADE, related_name="handled_by", db_constraint=False, db_index=False
    )
    handler = models.CharField(_("handler"), max_length=200)
    handled_at = models.DateTimeField(_("handled at"), default=_now)

    class Meta:
        verbose_name = _("handled event")
        verbose_name_plural = _("handled events")
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="handled_event_once")]

    def __str__(self) -> str:
        return f"{self.handler} handled {self.event_id}"


class StateTransition(models.Model):
    """One step of a state machine: who moved what from which status to which, when and why.

    Written by ``quai.core.states.transition`` in the transaction that changes the status and records the event,
    so the history of a status is exactly the list of its rows. ``core`` imports no app, so the aggregate, its id,
    the merchant and the actor are plain values (as in ``OutboxEvent``): the aggregate names the state machine
    ("asn", "count_task"), ``actor_id`` is the staff or merchant user who asked (None for an API key or the system)
    and ``actor_label`` says who it was in words ("alice", "api key quai_ab12", "system").
    """

    aggregate = models.CharField(_("aggregate"), max_length=100)
    aggregate_id = models.CharField(_("aggregate id"), max_length=100)
    merchant_id = models.BigIntegerField(_("merchant"), null=True, blank=True, db_index=True)
    transition = models.CharField(_("transition"), max_length=100, blank=True)
    from_status = models.CharField(_("from"), max_length=40)
    to_status = models.CharField(_("to"), max_length=40)
    actor_id = models.BigIntegerField(_("actor"), null=True, blank=True)
    actor_label = models.CharField(_("actor label"), max_length=150, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    event_id = models.UUIDField(_("event id"), null=True, blank=True)
    at = models.DateTimeField(_("at"), default=_now, db_index=True)

    class Meta:
        verbose_name = _("state transition")
        verbose_name_plural = _("state transitions")
        ordering = ["id"]
        indexes = [models.Index(fields=["aggregate", "aggregate_id", "id"], name="state_transition_history_idx")]

    def __str__(self) -> str:
        return f"{self.aggregate}:{self.aggregate_id} {self.from_status} → {self.to_status}"
