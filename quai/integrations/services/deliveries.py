"""Webhook deliveries: written by the outbox relay, sent by Celery workers, each attempt logged.

The path of an event to a merchant's endpoint, and why each step is where it is:

1. ``webhook_fan_out`` is an outbox handler (subscribed to ``*``). It runs inside the relay's transaction, so it
   only writes: one ``WebhookDelivery`` per matching active subscription, with the body to send. The relay records
   the handler's success in the same savepoint, so a retried relay does not write them twice (and the unique
   constraint would refuse it anyway). After the commit it nudges the delivery task.
2. ``webhook_deliveries_send_due`` (the nudged task and beat's sweep) claims due deliveries in a short transaction
   (``SKIP LOCKED`` on PostgreSQL, so several workers share the work; a lease in ``locked_until``), then sends each
   one with httpx outside any transaction, then records the attempt in another short transaction. A worker that
   dies after the claim leaves the lease to expire and another sends the delivery again (at-least-once; receivers
   deduplicate on ``webhook-id``, the event id).
3. Order per resource: a delivery is due only when no older delivery of the same subscription and resource
   (``aggregate:aggregate_id``) is still pending, so an order's ``accepted`` never arrives after its ``shipped``.
   The price: while one delivery waits for its retries, the later ones about the same resource wait behind it
   (others resources are not held up).
4. Retries: exponential backoff with jitter for 24 hours from the delivery's creation, then ``dead``; a 4xx other
   than 408/429 is final (``failed``); ``Retry-After`` is honoured. A redirect is never followed: it is a failed
   attempt, retried, and its ``Location`` is logged, so correcting the subscription's URL gets the delivery through.
5. A subscription gets the events that happened from its creation on (``occurred_at`` ≥ its ``created_at``), not
   those still in the outbox when it was made; a replay sends an older one on purpose.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict
from quai.core.events import Envelope, Event, event_payload
from quai.integrations import domain
from quai.integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookSubscription
from quai.integrations.services.subscriptions import (
    WebhookUrlNotPublic,
    private_urls_allowed,
    webhook_subscription_secrets,
    webhook_url_check,
)
from quai.integrations.signing import signed_headers

logger = logging.getLogger(__name__)

PING_EVENT = "webhook.ping"
USER_AGENT = "Quai-Webhooks/1"
_NUDGE_MARK = "_quai_webhook_nudge"


def _setting_seconds(name: str, default: float) -> timedelta:
    return timedelta(seconds=float(getattr(settings, name, default)))


def timeout_seconds() -> float:
    return float(getattr(settings, "QUAI_WEBHOOKS_TIMEOUT_SECONDS", 10))


def lease() -> timedelta:
    """How long a claimed delivery stays with its worker: longer than a request's timeout plus the writes."""
    return _setting_seconds("QUAI_WEBHOOKS_LEASE_SECONDS", 60)


# --- writing deliveries -----------------------------------------------------------------------------------------


def _body(
    *,
    event_id: uuid.UUID,
    name: str,
    occurred_at: Any,
    schema_version: int,
    merchant_id: int,
    aggregate: str,
    aggregate_id: str,
    data: dict[str, Any],
) -> dict[str, Any]:
    """What a receiver gets: the Standard Webhooks shape (type, timestamp, data) plus the ids it keys on."""
    return {
        "id": str(event_id),
        "type": name,
        "timestamp": occurred_at.isoformat(),
        "schema_version": schema_version,
        "merchant_id": merchant_id,
        "resource": {"type": aggregate, "id": aggregate_id},
        "data": data,
    }


def webhook_fan_out(event: Event, envelope: Envelope) -> None:
    """Outbox handler: one pending delivery per active subscription of the event's merchant that wants it.

    Database writes only (it runs inside the relay's transaction); the sending is nudged after the commit.
    """
    webhook_fan_out_many([(event, envelope)])


def webhook_fan_out_many(items: Sequence[tuple[Event, Envelope]]) -> None:
    """``webhook_fan_out`` over several events (the relay's batch form): the subscriptions of all their merchants
    read in ONE query, the deliveries written in ONE insert, in the events' order (so per resource too)."""
    merchant_ids = {envelope.merchant_id for _event, envelope in items if envelope.merchant_id is not None}
    if not merchant_ids:
        return
    of_merchant: dict[int, list[WebhookSubscription]] = {}
    for subscription in WebhookSubscription.objects.filter(merchant_id__in=merchant_ids, active=True).only(
        "id", "merchant_id", "event_types", "created_at"
    ):
        of_merchant.setdefault(subscription.merchant_id, []).append(subscription)
    now = clock.now()
    deliveries: list[WebhookDelivery] = []
    for event, envelope in items:
        if envelope.merchant_id is None:
            continue
        # Matched now, when the relay passes the event on, but only by subscriptions that existed when it happened:
        # a subscription made while the relay lagged (or retried a failed handler) must not get the past it never
        # asked for. An older event can still be sent to it on purpose, by replaying a delivery.
        subscriptions = [
            subscription
            for subscription in of_merchant.get(envelope.merchant_id, ())
            if subscription.created_at <= envelope.occurred_at
            and domain.patterns_match(subscription.event_types, envelope.name)
        ]
        if not subscriptions:
            continue
        body = _body(
            event_id=envelope.event_id,
            name=envelope.name,
            occurred_at=envelope.occurred_at,
            schema_version=envelope.schema_version,
            merchant_id=envelope.merchant_id,
            aggregate=envelope.aggregate,
            aggregate_id=envelope.aggregate_id,
            data=event_payload(event),
        )
        deliveries.extend(
            WebhookDelivery(
                merchant_id=envelope.merchant_id,
                subscription=subscription,
                event_id=envelope.event_id,
                event_name=envelope.name,
                resource_key=f"{envelope.aggregate}:{envelope.aggregate_id}"[:210],
                payload=body,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for subscription in subscriptions
        )
    if not deliveries:
        return
    # ignore_conflicts: the same event fanned out twice (a relay retried by hand) is still one delivery.
    WebhookDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    webhook_deliveries_nudge()


def webhook_deliveries_nudge() -> None:
    """Ask a worker to send after the commit — once per transaction, however many deliveries it wrote."""
    if connection.in_atomic_block and any(getattr(entry[1], _NUDGE_MARK, False) for entry in connection.run_on_commit):
        return

    def nudge() -> None:
        from quai.integrations.tasks import webhook_deliveries_send

        try:
            webhook_deliveries_send.delay()
        except Exception:  # a nudge is a hint: beat's sweep sends whatever it missed
            logger.exception("webhook nudge failed; the sweep will send the deliveries")

    setattr(nudge, _NUDGE_MARK, True)
    transaction.on_commit(nudge, robust=True)


def _require_active(subscription: WebhookSubscription) -> None:
    if not subscription.active:
        raise Conflict(
            _("This subscription is inactive: activate it first."),
            code="webhook_subscription_inactive",
            details={"subscription_id": subscription.pk},
        )


@transaction.atomic
def webhook_delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """A new delivery of the same event to the same subscription, with the same body and ``webhook-id`` (a
    receiver that already processed it can recognise it), sent after any older pending one of its resource."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=delivery.subscription_id)
    _require_active(subscription)
    now = clock.now()
    replay = WebhookDelivery.objects.create(
        merchant_id=delivery.merchant_id,
        subscription=subscription,
        event_id=delivery.event_id,
        event_name=delivery.event_name,
        resource_key=delivery.resource_key,
        payload=delivery.payload,
        next_attempt_at=now,
        replay_of=delivery,
    )
    webhook_deliveries_nudge()
    return replay


@transaction.atomic
def webhook_subscription_ping(*, subscription: WebhookSubscription) -> WebhookDelivery:
    """A ``webhook.ping`` delivery, signed and logged like any other, to test an endpoint."""
    subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
    _require_active(subscription)
    now = clock.now()
    event_id = uuid.uuid4()
    delivery = WebhookDelivery.objects.create(
        merchant_id=subscription.merchant_id,
        subscription=subscription,
        event_id=event_id,
        event_name=PING_EVENT,
        resource_key=f"subscription:{subscription.pk}",
        payload=_body(
            event_id=event_id,
            name=PING_EVENT,
            occurred_at=now,
            schema_version=1,
            merchant_id=subscription.merchant_id,
            aggregate="subscription",
            aggregate_id=str(subscription.pk),
            data={"subscription_id": subscription.pk, "url": subscription.url},
        ),
        next_attempt_at=now,
    )
    webhook_deliveries_nudge()
    return delivery


# --- sending ----------------------------------------------------------------------------------------------------


def webhook_deliveries_claim(*, batch: int = 50) -> list[WebhookDelivery]:
    """Take up to ``batch`` due deliveries for this worker (a lease), the oldest first, one transaction.

    Due: pending, its time has come, no live lease, its subscription active, and no older pending delivery of the
    same subscription and resource (order per resource). On PostgreSQL the rows are locked ``SKIP LOCKED``, so
    workers claiming at the same moment take different rows instead of waiting on each other.
    """
    now = clock.now()
    older_pending = WebhookDelivery.objects.filter(
        subscription_id=OuterRef("subscription_id"),
        resource_key=OuterRef("resource_key"),
        status=DeliveryStatus.PENDING,
        id__lt=OuterRef("id"),
    )
    with transaction.atomic():
        due = (
            WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(locked_until=None) | Q(locked_until__lte=now))
            .filter(subscription__active=True)
            .exclude(Exists(older_pending))
            .order_by("id")
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        claimed = list(due.select_related("subscription")[:batch])
        if claimed:
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in claimed]).update(locked_until=now + lease())
    return claimed


def _outside_transactions() -> None:
    """A request to a merchant's server may take seconds: never while holding a transaction (and its locks).
    The test suite's own wrapping transaction is the one exception."""
    if any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
        raise RuntimeError("webhooks are sent outside any database transaction")


def webhook_delivery_send(*, delivery: WebhookDelivery, client: httpx.Client | None = None) -> WebhookDelivery:
    """Send one claimed delivery (one HTTP request), then record the attempt and what follows from it."""
    _outside_transactions()
    subscription = delivery.subscription
    now = clock.now()
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signed_headers(
            secrets=webhook_subscription_secrets(subscription, now),
            msg_id=str(delivery.event_id),
            timestamp=int(now.timestamp()),
            body=body,
        ),
    }
    status_code: int | None = None
    excerpt = ""
    error = ""
    retry_after: float | None = None
    final = False
    started = time.monotonic()
    try:
        if not private_urls_allowed():
            webhook_url_check(subscription.url, resolve=True)  # the host's address may have changed since it was saved
        own_client = client is None
        http = client or _client()
        try:
            with http.stream("POST", subscription.url, content=body.encode(), headers=headers) as response:
                status_code = response.status_code
                excerpt = domain.response_excerpt(_read_at_most(response, domain.RESPONSE_EXCERPT_BYTES))
                retry_after = domain.retry_after_seconds(response.headers.get("retry-after"), now)
                if 300 <= status_code < 400:
                    # Not followed (see ``domain.verdict``): the log tells where the receiver wants its events.
                    error = domain.redirect_note(response.headers.get("location"))
        finally:
            if own_client:
                http.close()
    except WebhookUrlNotPublic as exc:
        error, final = f"{exc.code}: {exc.message}", True  # the code reads the same in every language
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
    except Exception as exc:  # a URL the check let through but the client cannot use: logged, retried, never lost
        logger.exception("webhook delivery %s failed unexpectedly", delivery.pk)
        error = f"{type(exc).__name__}: {exc}"[:2000]
    latency_ms = int((time.monotonic() - started) * 1000)
    return webhook_attempt_record(
        delivery=delivery,
        status_code=status_code,
        latency_ms=latency_ms,
        response_excerpt=excerpt,
        error=error,
        retry_after=retry_after,
        final=final,
    )


def _client() -> httpx.Client:
    # No redirects (a 3xx is a failed attempt, the URL should be updated), no proxy settings from the environment.
    return httpx.Client(timeout=timeout_seconds(), follow_redirects=False, trust_env=False)


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The start of the answer only: a receiver answering a gigabyte costs us ``limit`` bytes."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit]


@transaction.atomic
def webhook_attempt_record(
    *,
    delivery: WebhookDelivery,
    status_code: int | None,
    latency_ms: int,
    response_excerpt: str = "",
    error: str = "",
    retry_after: float | None = None,
    final: bool = False,
) -> WebhookDelivery:
    """Log one attempt and move the delivery on: succeeded, failed (refused for good), pending again (with its next
    attempt) or dead (24 hours of retries are over). ``final`` marks a refusal of ours (a private address)."""
    now = clock.now()
    locked = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    WebhookAttempt.objects.create(
        delivery=locked,
        status_code=status_code,
        latency_ms=latency_ms,
        response_excerpt=response_excerpt,
        error=error,
        at=now,
    )
    locked.attempts += 1
    fields = ["attempts", "updated_at"]
    if locked.status == DeliveryStatus.PENDING:
        # Another worker may have finished it while this one's lease had expired: its answer stands.
        outcome = "failed" if final else domain.verdict(status_code)
        locked.locked_until = None
        fields += ["status", "locked_until", "next_attempt_at", "finished_at"]
        if outcome == "succeeded":
            locked.status, locked.finished_at = DeliveryStatus.SUCCEEDED, now
        elif outcome == "failed":
            locked.status, locked.finished_at = DeliveryStatus.FAILED, now
        else:
            schedule = domain.schedule_retry(
                attempts=locked.attempts,
                now=now,
                started_at=locked.created_at,
                retry_after=retry_after,
                window=_setting_seconds("QUAI_WEBHOOKS_RETRY_SECONDS", domain.RETRY_WINDOW.total_seconds()),
                base=_setting_seconds("QUAI_WEBHOOKS_BACKOFF_SECONDS", domain.BACKOFF_BASE.total_seconds()),
                key=str(locked.pk),
            )
            if schedule.next_attempt_at is None:
                locked.status, locked.finished_at = DeliveryStatus.DEAD, now
            else:
                locked.next_attempt_at = schedule.next_attempt_at
    locked.save(update_fields=fields)
    return locked


def webhook_deliveries_send_due(
    *, batch: int = 50, max_batches: int = 100, on_claimed: Callable[[list[WebhookDelivery]], None] | None = None
) -> int:
    """Claim and send due deliveries until none is due (or ``max_batches`` ran); returns how many were sent.

    Each success may make the next delivery of its resource due, which the next claim picks up.
    """
    sent = 0
    with _client() as client:
        for _ in range(max_batches):
            claimed = webhook_deliveries_claim(batch=batch)
            if not claimed:
                break
            if on_claimed is not None:
                on_claimed(claimed)
            for delivery in claimed:
                webhook_delivery_send(delivery=delivery, client=client)
                sent += 1
    return sent
