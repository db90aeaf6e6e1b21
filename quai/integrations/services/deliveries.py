"""Webhook deliveries: written by the outbox relay, sent by Celery workers, each attempt logged.

The path of an event to a merchant's endpoint, and why each step is where it is:

1. ``webhook_fan_out_rest`` is an outbox handler (subscribed to ``*``). It runs inside the relay's transaction, so
   it only writes: one ``WebhookDelivery`` per matching active subscription, with the body to send. It is
   unrecorded (``subscribe(..., recorded=False)``): a retried event runs it again, and the unique (subscription,
   event) constraint makes that second run write nothing. So is the availability lane's handler (point 5), which
   writes its row only where the outbox's priority pass needs it (``quai.core.outbox.recorded_keys``). After the
   commit it nudges the delivery task.
2. ``webhook_deliveries_send_due`` (the nudged task and beat's sweep) claims due deliveries in a short transaction
   (``SKIP LOCKED`` on PostgreSQL, so several workers share the work; a lease in ``locked_until``), sends them with
   httpx (its transport's connection pool, one a run) outside any transaction, several at once from threads that
   only do HTTP (``QUAI_WEBHOOKS_CONCURRENCY``, 16), and
   records the attempts that finished in another short transaction, together. A worker that dies after the claim
   leaves the lease to expire and another sends the delivery again (at-least-once; receivers deduplicate on
   ``webhook-id``, the event id). One at a time, a sale outran the sender (91 deliveries/s, 3 ms of CPU each, in
   ``BENCH_ONLY=webhooks``): the requests waited on each other and each attempt had its own transaction.
3. Order per resource: a delivery is due only when no older delivery of the same subscription and resource
   (``aggregate:aggregate_id``) is still pending, so an order's ``accepted`` never arrives after its ``shipped``.
   The price: while one delivery waits for its retries, the later ones about the same resource wait behind it
   (others resources are not held up).
4. Retries: exponential backoff with jitter for 24 hours from the delivery's creation, then ``dead``; a 4xx other
   than 408/429 is final (``failed``); ``Retry-After`` is honoured. A redirect is never followed: it is a failed
   attempt, retried, and its ``Location`` is logged, so correcting the subscription's URL gets the delivery through.
5. The availability lane: the events of the stock and of the catalogue (``FIRST_PREFIXES``: what a shop shows)
   are fanned out by a handler of their own, relayed first (``quai.core.outbox.relay_first``: the outbox's priority
   pass runs it on pending events however many older events wait ahead of them), the ``*`` handler fans out the
   rest. Why: in a sale the relay falls behind the intake (four or five events per order), and a reservation's
   webhook waited behind every order event recorded before it: 42.8 s at p99 in the intake bench, for a target of
   1 s. Order per resource still holds: no aggregate has events on both sides (a test walks the registry), and
   the lane sees its events in id order, as the relay did.
6. A subscription gets the events that happened from its creation on (``occurred_at`` ≥ its ``created_at``), not
   those still in the outbox when it was made; a replay sends an older one on purpose.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from queue import Empty, SimpleQueue
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict
from quai.core.events import Envelope, Event, event_payload
from quai.core.marks import mark_clear, mark_renew, mark_take
from quai.core.rows import ids_in, ids_param, instances_read, rows_insert
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
    for subscription in _subscriptions_active(merchant_ids):
        of_merchant.setdefault(subscription.merchant_id, []).append(subscription)
    now = clock.now()
    deliveries: list[dict[str, Any]] = []
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
        resource_key = f"{envelope.aggregate}:{envelope.aggregate_id}"[:210]
        deliveries.extend(
            {
                "merchant_id": envelope.merchant_id,
                "subscription_id": subscription.pk,
                "event_id": envelope.event_id,
                "event_name": envelope.name,
                "resource_key": resource_key,
                "payload": body,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for subscription in subscriptions
        )
    if not deliveries:
        return
    # The rows ``bulk_create(..., ignore_conflicts=True)`` of ``WebhookDelivery`` instances wrote (the other columns
    # their defaults), as one raw insert (``quai.core.rows``): in a sale the availability lane's fan-out runs in the
    # outbox's priority pass on the shop_push worker, and building a model per delivery, then the ORM's compiling
    # and binding of its insert (arrays of each column, escaped value by value), was half of that pass's CPU.
    # ON CONFLICT DO NOTHING: the same event fanned out twice (a retried event, a relay retried by hand) is still
    # one delivery (the unique subscription and event of ``webhook_delivery_once``).
    rows_insert(WebhookDelivery, deliveries, skip_conflicts=True)
    webhook_deliveries_nudge()


_SUBSCRIPTION_COLUMNS = ("id", "merchant_id", "event_types", "created_at")


def _subscriptions_active(merchant_ids: Iterable[int]) -> list[WebhookSubscription]:
    """The active subscriptions of ``merchant_ids`` by id, as ``WebhookSubscription.objects.filter(merchant_id__in=…,
    active=True).only("id", "merchant_id", "event_types", "created_at")`` gives them (the same model instances, the
    other fields deferred), by a statement written once (``quai.core.rows.instances_read``, the ids one parameter):
    the fan-out reads them once per relay batch for each of its two handlers, and the ORM's compiling of that query
    was most of their time (nearly all in a day without subscriptions)."""
    active = connection.ops.quote_name(str(WebhookSubscription._meta.get_field("active").column))
    merchant = connection.ops.quote_name(str(WebhookSubscription._meta.get_field("merchant").column))
    return instances_read(
        WebhookSubscription,
        f"{active} = %s AND {merchant} {ids_in(connection.vendor)}",
        [True, ids_param(sorted(merchant_ids))],
        fields=_SUBSCRIPTION_COLUMNS,
    )


# The availability lane (point 5 of the module's docstring): these events' fan-out is relayed first.
FIRST_PREFIXES = ("inventory.", "catalog.")


def webhook_fan_out_rest(event: Event, envelope: Envelope) -> None:
    """The ``*`` handler: ``webhook_fan_out`` for every event but the availability lane's (fanned out by its own)."""
    if not envelope.name.startswith(FIRST_PREFIXES):
        webhook_fan_out(event, envelope)


def webhook_fan_out_rest_many(items: Sequence[tuple[Event, Envelope]]) -> None:
    """Batch form of ``webhook_fan_out_rest``."""
    webhook_fan_out_many(
        [(event, envelope) for event, envelope in items if not envelope.name.startswith(FIRST_PREFIXES)]
    )


def webhook_deliveries_nudge() -> None:
    """Ask a worker to send after the commit — once per transaction, however many deliveries it wrote, and not at
    all while a send task is queued or running (it will claim these deliveries too)."""
    if connection.in_atomic_block and any(getattr(entry[1], _NUDGE_MARK, False) for entry in connection.run_on_commit):
        return

    def nudge() -> None:
        from quai.integrations.tasks import webhook_deliveries_send

        try:
            if _send_task_mark():
                try:
                    webhook_deliveries_send.delay()
                except Exception:
                    _send_task_mark_clear()  # nothing queued after all: the next nudge must queue one
                    raise
        except Exception:  # a nudge is a hint: beat's sweep sends whatever it missed
            logger.exception("webhook nudge failed; the sweep will send the deliveries")

    setattr(nudge, _NUDGE_MARK, True)
    transaction.on_commit(nudge, robust=True)


# The mark "a send task is queued or running", shared by every process through Redis (the broker). During a sale the
# relay commits hundreds of times a second: without the mark each commit queued a task, most of which found nothing
# left to claim (a task's overhead per commit), and a new delivery waited in the queue behind the relay's own tasks.
# With it, one task runs through the sale: it keeps claiming while deliveries come (``linger``: it waits a little
# for the next one before it stops), then removes the mark and claims once more, so a delivery committed before the
# mark was removed is claimed by that last pass, and one committed after it nudges a new task: none waits for the
# sweep. The running task renews the mark; it expires on its own if the task dies. Without Redis (the embedded
# default, the tests) every nudge queues a task, as before.
_SEND_QUEUED_KEY = "quai:webhooks:send-queued"
_SEND_QUEUED_SECONDS = 30


def _send_task_mark() -> bool:
    """True if the caller should queue a send task (the mark was not there and is now set, or there is no mark)."""
    return mark_take(_SEND_QUEUED_KEY, _SEND_QUEUED_SECONDS)


def _send_task_mark_renew() -> None:
    mark_renew(_SEND_QUEUED_KEY, _SEND_QUEUED_SECONDS)


def _send_task_mark_clear() -> None:
    mark_clear(_SEND_QUEUED_KEY)


def linger_seconds() -> float:
    """How long the nudged task waits for a next delivery once none is due, before it stops. Only with the mark:
    without it every commit queues its own task, and a task that lingered would only hold the worker."""
    if not getattr(settings, "REDIS_URL", ""):
        return 0.0
    return float(getattr(settings, "QUAI_WEBHOOKS_LINGER_SECONDS", 2.0))


def webhook_deliveries_send_nudged() -> int:
    """The nudged task's run: send until nothing came for ``linger_seconds``, give the mark up, then send what was
    committed meanwhile (its nudge found the mark still there)."""
    try:
        sent = webhook_deliveries_send_due(linger=linger_seconds(), renew=_send_task_mark_renew)
    finally:
        _send_task_mark_clear()  # a run that failed must not keep the next nudges from queueing one
    return sent + webhook_deliveries_send_due()


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


# A lingering sender looks for new deliveries this often (a claim that finds nothing costs well under a millisecond),
# and renews its mark this often.
LINGER_POLL_SECONDS = 0.02
RENEW_SECONDS = 5.0
# The longest an answer waits to be recorded while other requests are in flight. Recording each round of answers
# as it came back (one or two at a time with four requests in flight to one endpoint) cost a transaction, three
# statements and a claim per one or two deliveries: ~1 statement and ~60 % of the sender's CPU per delivery. A
# delivery's lease (60 s) covers the wait; what it delays is only the next delivery about the same resource, which
# the claim takes once this one's success is recorded.
RECORD_SECONDS = 0.05


def concurrency() -> int:
    """How many requests one sender keeps in flight at once: its threads, and its client's pooled connections."""
    return max(1, int(getattr(settings, "QUAI_WEBHOOKS_CONCURRENCY", 16)))


def concurrency_per_subscription() -> int:
    """How many of them may go to one subscription's endpoint at once. A merchant's server is not ours to flood:
    one that accepts few connections at a time (Python's socketserver listens with a backlog of 5) resets the
    others, and each reset is a failed attempt whose retry holds its resource's later deliveries back."""
    return max(1, int(getattr(settings, "QUAI_WEBHOOKS_CONCURRENCY_PER_SUBSCRIPTION", 4)))


# For the claim's transaction only (``set_config(…, true)`` is ``SET LOCAL``), in one round trip.
_INDEX_WALK_SETTINGS = "SELECT " + ", ".join(
    f"set_config('{name}', 'off', true)"
    for name in ("enable_sort", "enable_seqscan", "enable_bitmapscan", "enable_hashjoin", "enable_mergejoin")
)


# The claim's statement, written once rather than built by the ORM on every claim: compiling the filter, the
# ``Exists`` and the join was ~4 of a claim's ~5 ms of CPU, and a lingering sender claims every
# ``LINGER_POLL_SECONDS`` (a sale keeps it claiming, mostly finding a few deliveries or none). The same statement as
# the ORM's form it replaces (``test_deliveries_claim_sql.py`` checks both take the same rows).
_D = "integrations_webhookdelivery"
_CLAIM_COLUMNS = ", ".join(f'"{_D}"."{field.column}"' for field in WebhookDelivery._meta.concrete_fields)
_CLAIM_SQL = (
    f'SELECT {_CLAIM_COLUMNS} FROM "{_D}" INNER JOIN "integrations_webhooksubscription" '
    f'ON ("{_D}"."subscription_id" = "integrations_webhooksubscription"."id") '
    f'WHERE ("{_D}"."next_attempt_at" <= %s AND "{_D}"."status" = %s '
    f'AND ("{_D}"."locked_until" IS NULL OR "{_D}"."locked_until" <= %s) '
    f'AND "integrations_webhooksubscription"."active" '
    f'AND NOT (EXISTS(SELECT 1 AS "a" FROM "{_D}" U0 WHERE (U0."id" < ("{_D}"."id") '
    f'AND U0."resource_key" = ("{_D}"."resource_key") AND U0."status" = %s '
    f'AND U0."subscription_id" = ("{_D}"."subscription_id")) LIMIT 1))) '
    f'ORDER BY "{_D}"."next_attempt_at" ASC, "{_D}"."id" ASC LIMIT %s'  # webhook_delivery_due_idx's order
)
# The subscription's ``updated_at`` and ``version`` come with each row (the join is there anyway): the sender does
# not read a subscription (nor decrypt its secret) again for each claim while both are those it was read with. Every
# change to a subscription is a ``save()`` through its services (or the admin's, which calls them): ``updated_at``
# and ``version`` move.
_CLAIM_SQL = _CLAIM_SQL.replace(
    " FROM ",
    ', "integrations_webhooksubscription"."updated_at" AS "subscription_updated_at", '
    '"integrations_webhooksubscription"."version" AS "subscription_version" FROM ',
    1,
)
_CLAIM_LOCKING = f' FOR UPDATE OF "{_D}" SKIP LOCKED'


def _utc_naive(moment: datetime) -> datetime:
    """A column read by ``raw()`` beside the model's own is not converted: SQLite gives it naive, in UTC."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


def webhook_deliveries_claim(
    *, batch: int = 50, subscriptions: dict[int, WebhookSubscription] | None = None
) -> list[WebhookDelivery]:
    """Take up to ``batch`` due deliveries for this worker (a lease), the longest due first (for deliveries never
    tried yet, the oldest first), one transaction.

    Due: pending, its time has come, no live lease, its subscription active, and no older pending delivery of the
    same subscription and resource (order per resource). So one claim holds at most one delivery per subscription
    and resource, and none of a resource whose older delivery is in flight (leased, still pending): the claimed
    deliveries can be sent together. On PostgreSQL the rows are locked ``SKIP LOCKED``, so workers claiming at the
    same moment take different rows instead of waiting on each other.

    ``subscriptions``: those a sender read at its previous claims (by id), kept up to date here; one not saved
    since is not read again.
    """
    now = clock.now()
    at = connection.ops.adapt_datetimefield_value(now)
    sql = _CLAIM_SQL
    if connection.features.has_select_for_update_skip_locked:
        sql += _CLAIM_LOCKING
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The claim must walk webhook_delivery_due_idx in its order, stop at its batch, and look each
            # delivery's older one up in webhook_delivery_order_idx. Planned on the statistics of an empty table (a
            # new site, a new merchant's first sale: the intake bench's clone), the planner read every pending
            # delivery and sorted them, or scanned every pending delivery again for each one claimed: 33-55 ms a
            # claim at 2,700-3,000 pending (0.4 ms as intended), and the sender claimed after each answer. With
            # index scans and nested loops the only plans left, this one is chosen whatever the statistics say.
            with connection.cursor() as cursor:
                cursor.execute(_INDEX_WALK_SETTINGS)
        pending = DeliveryStatus.PENDING.value
        claimed = list(WebhookDelivery.objects.raw(sql, [at, pending, at, pending, batch]))
        if claimed:
            until = connection.ops.adapt_datetimefield_value(now + lease())
            ids = [d.pk for d in claimed]
            with connection.cursor() as cursor:
                cursor.execute(f'UPDATE "{_D}" SET "locked_until" = %s' + _where_ids(), [until, _ids_param(ids)])
    # Each subscription read (and its secret decrypted) once, not once per delivery as a join would, and not again
    # at the sender's next claims while it is not saved.
    kept = {} if subscriptions is None else subscriptions
    stale = {
        d.subscription_id
        for d in claimed
        if (subscription := kept.get(d.subscription_id)) is None
        or subscription.version != d.subscription_version  # type: ignore[attr-defined]
        or _utc_naive(subscription.updated_at) != _utc_naive(d.subscription_updated_at)  # type: ignore[attr-defined]
    }
    if stale:
        kept.update(WebhookSubscription.objects.in_bulk(stale))
    for delivery in claimed:
        delivery.subscription = kept[delivery.subscription_id]
    return claimed


_DUE_SQL = (
    f'SELECT 1 FROM "{_D}" WHERE "status" = %s AND "next_attempt_at" <= %s '
    'AND ("locked_until" IS NULL OR "locked_until" <= %s) ORDER BY "next_attempt_at" LIMIT 1'  # the due index's walk
)


def webhook_deliveries_due() -> bool:
    """Whether some delivery may be due (a claim may find one): pending, its time come, no live lease. It does not
    look at the subscription nor at an older pending delivery of the resource, which the claim then does."""
    at = connection.ops.adapt_datetimefield_value(clock.now())
    with connection.cursor() as cursor:
        cursor.execute(_DUE_SQL, [DeliveryStatus.PENDING.value, at, at])
        return cursor.fetchone() is not None


def _outside_transactions() -> None:
    """A request to a merchant's server may take seconds: never while holding a transaction (and its locks).
    The test suite's own wrapping transaction is the one exception."""
    if any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
        raise RuntimeError("webhooks are sent outside any database transaction")


@dataclass(frozen=True)
class _Request:
    """A claimed delivery ready to go: everything its request needs, so the thread that sends it reads nothing."""

    delivery: WebhookDelivery
    url: str
    body: bytes
    headers: list[tuple[str, str]]
    now: datetime


@dataclass(frozen=True)
class AttemptOutcome:
    """What one request of a delivery gave, as ``webhook_attempts_record`` logs it."""

    delivery: WebhookDelivery
    status_code: int | None
    latency_ms: int
    response_excerpt: str = ""
    error: str = ""
    retry_after: float | None = None
    final: bool = False  # a refusal of ours (a private address): failed at once, never retried


# What every request carries besides its signature: the client's defaults that the receivers saw before the requests
# went through its transport (``_transport``), without the ``accept-encoding`` (we read an excerpt of the answer, not
# a compressed body), and ours.
_HEADERS = [("accept", "*/*"), ("content-type", "application/json"), ("user-agent", USER_AGENT)]
# ``json.dumps(payload, separators=(",", ":"), ensure_ascii=False)``, with its encoder made once, not once a body.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _prepared(delivery: WebhookDelivery) -> _Request:
    subscription = delivery.subscription
    now = clock.now()
    body = _ENCODER.encode(delivery.payload)
    headers = [
        *_HEADERS,
        *signed_headers(
            secrets=webhook_subscription_secrets(subscription, now),
            msg_id=str(delivery.event_id),
            timestamp=int(now.timestamp()),
            body=body,
        ).items(),
    ]
    return _Request(delivery=delivery, url=subscription.url, body=body.encode(), headers=headers, now=now)


@lru_cache(maxsize=1024)
def _url(text: str) -> httpx.URL:
    """A subscription's URL parsed once (``httpx.URL`` is immutable), not once a request."""
    return httpx.URL(text)


def _response(prepared: _Request, client: httpx.Client | httpx.BaseTransport) -> AbstractContextManager[httpx.Response]:
    """The answer to the delivery's POST, streamed. Through a client (``webhook_delivery_send``'s caller may give
    one), or straight through an httpx transport (the sender's): the client's layers around it (merging its
    defaults into each request, cookies, auth, redirects to follow, event hooks) were a third of the request's CPU
    and none of them is used here."""
    if isinstance(client, httpx.Client):
        return client.stream("POST", prepared.url, content=prepared.body, headers=prepared.headers)
    request = httpx.Request(
        "POST", _url(prepared.url), content=prepared.body, headers=prepared.headers, extensions=_extensions()
    )
    return closing(client.handle_request(request))


def _extensions() -> dict[str, Any]:
    """What the client put on each request: its timeouts."""
    return {"timeout": httpx.Timeout(timeout_seconds()).as_dict()}


def _request(prepared: _Request, client: httpx.Client | httpx.BaseTransport, *, check_public: bool) -> AttemptOutcome:
    """The HTTP request of one delivery and what came back. No database: it runs in the sender's threads."""
    status_code: int | None = None
    excerpt = ""
    error = ""
    retry_after: float | None = None
    final = False
    started = time.monotonic()
    try:
        if check_public:
            webhook_url_check(prepared.url, resolve=True)  # the host's address may have changed since it was saved
        with _response(prepared, client) as response:
            status_code = response.status_code
            excerpt = domain.response_excerpt(_read_at_most(response, domain.RESPONSE_EXCERPT_BYTES))
            retry_after = domain.retry_after_seconds(response.headers.get("retry-after"), prepared.now)
            if 300 <= status_code < 400:
                # Not followed (see ``domain.verdict``): the log tells where the receiver wants its events.
                error = domain.redirect_note(response.headers.get("location"))
    except WebhookUrlNotPublic as exc:
        error, final = f"{exc.code}: {exc.message}", True  # the code reads the same in every language
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
    except Exception as exc:  # a URL the check let through but the client cannot use: logged, retried, never lost
        logger.exception("webhook delivery %s failed unexpectedly", prepared.delivery.pk)
        error = f"{type(exc).__name__}: {exc}"[:2000]
    return AttemptOutcome(
        delivery=prepared.delivery,
        status_code=status_code,
        latency_ms=int((time.monotonic() - started) * 1000),
        response_excerpt=excerpt,
        error=error,
        retry_after=retry_after,
        final=final,
    )


def webhook_delivery_send(*, delivery: WebhookDelivery, client: httpx.Client | None = None) -> WebhookDelivery:
    """Send one claimed delivery (one HTTP request), then record the attempt and what follows from it."""
    _outside_transactions()
    prepared = _prepared(delivery)
    if client is not None:
        outcome = _request(prepared, client, check_public=not private_urls_allowed())
    else:
        with _client() as own:
            outcome = _request(prepared, own, check_public=not private_urls_allowed())
    return webhook_attempts_record(outcomes=[outcome])[0]


def _client(connections: int = 1) -> httpx.Client:
    # No redirects (a 3xx is a failed attempt, the URL should be updated), no proxy settings from the environment.
    return httpx.Client(
        timeout=timeout_seconds(),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


def _transport(connections: int = 1) -> httpx.HTTPTransport:
    """The sender's connection pool: httpx's transport, as ``_client`` makes it, without the client around it (so
    nothing follows a redirect, reads a proxy from the environment or keeps a cookie)."""
    return httpx.HTTPTransport(
        trust_env=False, limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    )


def _read_at_most(response: httpx.Response, limit: int) -> bytes:
    """The start of the answer only: a receiver answering a gigabyte costs us ``limit`` bytes."""
    data = b""
    for chunk in response.iter_bytes():
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit]


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
    """Log one attempt and move the delivery on (``webhook_attempts_record`` of one)."""
    outcome = AttemptOutcome(
        delivery=delivery,
        status_code=status_code,
        latency_ms=latency_ms,
        response_excerpt=response_excerpt,
        error=error,
        retry_after=retry_after,
        final=final,
    )
    return webhook_attempts_record(outcomes=[outcome])[0]


# What recording an attempt reads of its delivery, under the row's lock: the state it moves on, not the payload.
_RECORD_COLUMNS = ("id", "status", "attempts", "created_at", "next_attempt_at", "finished_at", "locked_until")


_RECORD_TIMES = ("created_at", "next_attempt_at", "finished_at", "locked_until")
_IN_JSON = ' WHERE "id" IN (SELECT value FROM json_each(%s))'  # SQLite's form of ``= ANY(%s)``
_RECORD_LOCK_SQL = {
    False: f'SELECT {", ".join(_RECORD_COLUMNS)} FROM "{_D}"{_IN_JSON} ORDER BY "id"',
    True: f'SELECT {", ".join(_RECORD_COLUMNS)} FROM "{_D}" WHERE "id" = ANY(%s) ORDER BY "id" FOR UPDATE',
}


def _where_ids() -> str:
    return ' WHERE "id" = ANY(%s)' if connection.vendor == "postgresql" else _IN_JSON


def _ids_param(ids: Iterable[int]) -> Any:
    """The distinct ids in order, as one parameter (``quai.core.rows.ids_param``)."""
    return ids_param(sorted(set(ids)))


def _aware(moment: datetime | None) -> datetime | None:
    """A time read by a plain cursor as the ORM gives it: aware, in UTC (SQLite's are naive UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@transaction.atomic
def webhook_attempts_record(*, outcomes: Sequence[AttemptOutcome]) -> list[WebhookDelivery]:
    """Log each attempt and move its delivery on: succeeded, failed (refused for good), pending again (with its next
    attempt) or dead (24 hours of retries are over); one transaction for them all, the deliveries locked in id
    order, the attempts written in one insert, the deliveries in one update per outcome. Returns the deliveries as
    recorded, in the outcomes' order: each outcome's own delivery object, its state columns set to what was written
    (its row's, as locked here, when another worker had already finished it)."""
    if not outcomes:
        return []
    now = clock.now()
    # Only the state columns, by a written statement: the ORM's form (compiled each round, each delivery built again
    # with its decoded payload) was most of the recording's CPU.
    locked: dict[int, dict[str, Any]] = {}
    with connection.cursor() as cursor:
        postgres = connection.vendor == "postgresql"
        cursor.execute(_RECORD_LOCK_SQL[postgres], [_ids_param(o.delivery.pk for o in outcomes)])
        for row in cursor.fetchall():
            state = dict(zip(_RECORD_COLUMNS, row, strict=True))
            for name in _RECORD_TIMES:
                state[name] = _aware(state[name])
            locked[state["id"]] = state
    window = _setting_seconds("QUAI_WEBHOOKS_RETRY_SECONDS", domain.RETRY_WINDOW.total_seconds())
    base = _setting_seconds("QUAI_WEBHOOKS_BACKOFF_SECONDS", domain.BACKOFF_BASE.total_seconds())
    attempts: list[dict[str, Any]] = []
    changes: dict[int, dict[str, Any]] = {pk: {} for pk in locked}  # what each delivery's update sets besides counts
    for outcome in outcomes:
        pk = outcome.delivery.pk
        state = locked[pk]
        attempts.append(
            {
                "delivery_id": pk,
                "status_code": outcome.status_code,
                "latency_ms": outcome.latency_ms,
                "response_excerpt": outcome.response_excerpt,
                "error": outcome.error,
                "at": now,
            }
        )
        state["attempts"] += 1
        state["updated_at"] = now
        if state["status"] == DeliveryStatus.PENDING:
            # Another worker may have finished it while this one's lease had expired: its answer stands.
            verdict = "failed" if outcome.final else domain.verdict(outcome.status_code)
            state["locked_until"] = None
            if verdict == "succeeded":
                state["status"], state["finished_at"] = DeliveryStatus.SUCCEEDED, now
            elif verdict == "failed":
                state["status"], state["finished_at"] = DeliveryStatus.FAILED, now
            else:
                schedule = domain.schedule_retry(
                    attempts=state["attempts"],
                    now=now,
                    started_at=state["created_at"],
                    retry_after=outcome.retry_after,
                    window=window,
                    base=base,
                    key=str(pk),
                )
                if schedule.next_attempt_at is None:
                    state["status"], state["finished_at"] = DeliveryStatus.DEAD, now
                else:
                    state["next_attempt_at"] = schedule.next_attempt_at
            changes[pk] = {
                "status": state["status"],
                "locked_until": None,
                "next_attempt_at": state["next_attempt_at"],
                "finished_at": state["finished_at"],
            }
            if state["status"] != DeliveryStatus.PENDING:
                del changes[pk]["next_attempt_at"]  # left as it was: the successes of a round share one
    # The attempts' insert statement is the same text for any number of rows on PostgreSQL (one JSON parameter),
    # where bulk_create compiled it and prepared each value through the ORM on every round.
    rows_insert(WebhookAttempt, attempts)
    # One UPDATE per distinct change (all the successes of a round share one; a retry has its own time) rather than
    # ``bulk_update``, whose CASE per row and field cost more CPU than the requests. A delivery that another worker
    # had already finished only counts the attempt.
    counts = Counter(o.delivery.pk for o in outcomes)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for pk, change in changes.items():
        groups.setdefault((counts[pk], *sorted(change.items())), []).append(pk)
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for (count, *fields), pks in groups.items():
            sets = dict(fields)
            assignments = ['"attempts" = "attempts" + %s', '"updated_at" = %s', *(f'"{name}" = %s' for name in sets)]
            sql = f'UPDATE "{_D}" SET {", ".join(assignments)}{_where_ids()}'
            values = [adapt(value) if isinstance(value, datetime) else value for value in sets.values()]
            cursor.execute(sql, [count, adapt(now), *values, _ids_param(pks)])
    recorded: list[WebhookDelivery] = []
    for outcome in outcomes:
        delivery, state = outcome.delivery, locked[outcome.delivery.pk]
        delivery.status, delivery.attempts, delivery.updated_at = state["status"], state["attempts"], now
        delivery.next_attempt_at, delivery.finished_at = state["next_attempt_at"], state["finished_at"]
        delivery.locked_until = state["locked_until"]
        recorded.append(delivery)
    return recorded


class _Senders:
    """The sender's HTTP threads, up to ``width``, started as requests need them: each takes a prepared request from
    ``jobs`` and puts what came back on ``answers`` (two C ``SimpleQueue``s). Before, a ``ThreadPoolExecutor``: a
    future per request, and ``wait(FIRST_COMPLETED)`` took and released the lock of every future in flight on each
    call and woke the sender through each future's condition, ~15 % of the sender's CPU in ``BENCH_ONLY=webhooks``."""

    def __init__(self, *, width: int, client: httpx.BaseTransport, check_public: bool) -> None:
        self.width, self.client, self.check_public = width, client, check_public
        self.jobs: SimpleQueue[_Request | None] = SimpleQueue()
        self.answers: SimpleQueue[AttemptOutcome | BaseException] = SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.in_flight = 0

    def start(self, prepared: _Request) -> None:
        self.in_flight += 1
        if len(self.threads) < min(self.in_flight, self.width):
            thread = threading.Thread(target=self._run, name=f"webhook-{len(self.threads)}", daemon=True)
            self.threads.append(thread)
            thread.start()
        self.jobs.put(prepared)

    def _run(self) -> None:
        while (prepared := self.jobs.get()) is not None:
            try:
                answer: AttemptOutcome | BaseException = _request(prepared, self.client, check_public=self.check_public)
            except BaseException as exc:  # raised in the sender's thread, as a future's result was
                answer = exc
            self.answers.put(answer)

    def finished(self, timeout: float | None) -> list[AttemptOutcome]:
        """The answers that came back: waits up to ``timeout`` for the first (``None``: until one comes), then takes
        every one already there."""
        try:
            answers = [self.answers.get(timeout=timeout)]
        except Empty:
            return []
        while True:
            try:
                answers.append(self.answers.get_nowait())
            except Empty:
                break
        self.in_flight -= len(answers)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers  # type: ignore[return-value]

    def close(self) -> None:
        """Wait for the requests in flight (as the executor's shutdown did), then stop the threads."""
        for _thread in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()


def webhook_deliveries_send_due(
    *,
    batch: int = 50,
    max_batches: int = 100,
    on_claimed: Callable[[list[WebhookDelivery]], None] | None = None,
    linger: float = 0.0,
    renew: Callable[[], None] | None = None,
) -> int:
    """Claim and send due deliveries until none is due (or ``batch`` × ``max_batches`` were claimed); returns how
    many were sent.

    Up to ``concurrency()`` requests are in flight at once (``concurrency_per_subscription()`` to one endpoint),
    each in a thread of a pool that only does HTTP: a slow receiver holds its own threads, not the others'. The
    database work stays in this thread: the requests that finished are recorded together (one transaction a
    round), and a claim tops the pool up as they finish (to twice its width, so no thread idles while a claim runs;
    a claimed delivery not started well within its lease is left to it). Order per resource holds as before: a
    claim takes at most one delivery per subscription and resource, none while an older one is pending (in flight
    included), and a success is committed before the next claim can take the delivery after it.

    ``linger``: once nothing is due, keep looking (every ``LINGER_POLL_SECONDS``) for that long before returning;
    ``renew`` is called every few seconds meanwhile (the nudged task keeps its mark).
    """
    _outside_transactions()
    width, per_endpoint = concurrency(), concurrency_per_subscription()
    limit = batch * max_batches
    check_public = not private_urls_allowed()
    # Past this age a claimed delivery still waiting for its subscription's turn is left to its lease (another run
    # claims it once the lease is over): started now, it might outlive the lease and be sent twice.
    too_old = max(0.0, lease().total_seconds() - timeout_seconds() - 5)
    claimed_count = sent = 0
    active: Counter[int] = Counter()  # requests in flight per subscription
    waiting: dict[int, deque[tuple[WebhookDelivery, float]]] = {}  # claimed, behind their subscription's requests
    more = backlog = True
    idle_since = renewed = unrecorded_since = time.monotonic()
    # Answers not recorded yet: a round is recorded once the pool's worth came back, RECORD_SECONDS after its first
    # answer, or when nothing is in flight, in one transaction (see RECORD_SECONDS).
    unrecorded: list[AttemptOutcome] = []
    subscriptions: dict[int, WebhookSubscription] = {}  # read by this run's claims

    def start(delivery: WebhookDelivery) -> None:
        active[delivery.subscription_id] += 1
        senders.start(_prepared(delivery))

    def start_waiting(subscription_id: int) -> None:
        queue = waiting.get(subscription_id)
        while queue and active[subscription_id] < per_endpoint:
            delivery, claimed_at = queue.popleft()
            if time.monotonic() - claimed_at <= too_old:
                start(delivery)
        if not queue:
            waiting.pop(subscription_id, None)

    with _transport(connections=width) as client:
        senders = _Senders(width=width, client=client, check_public=check_public)
        try:
            while True:
                held = senders.in_flight + sum(len(queue) for queue in waiting.values())
                room = min(batch, limit - claimed_count)
                # Topped up once the pool's worth is left, not after each answer: a claim per delivery sent was most of
                # the sender's time in a sale (one subscription, 4 in flight, ~30 waiting: each answer freed one place).
                # Nor recorded after each answer (see RECORD_SECONDS).
                # Recorded when the pool wants topping up from a backlog (the last claim was full: the record comes
                # with the claim, as often as before), when nothing is in flight, or after RECORD_SECONDS.
                if unrecorded and (
                    (backlog and held <= width)
                    or not senders.in_flight
                    or len(unrecorded) >= width
                    or time.monotonic() - unrecorded_since >= RECORD_SECONDS
                ):
                    webhook_attempts_record(outcomes=unrecorded)
                    sent += len(unrecorded)
                    unrecorded = []
                # No claim while answers wait to be recorded: a success recorded first makes its resource's next
                # delivery due to the same claim, and the claim comes with the record, not after every answer.
                if more and room > 0 and held <= width and not unrecorded:
                    claimed = webhook_deliveries_claim(batch=room, subscriptions=subscriptions)
                    claimed_count += len(claimed)
                    more = backlog = len(claimed) == room
                    if claimed and on_claimed is not None:
                        on_claimed(claimed)
                    now = time.monotonic()
                    for delivery in claimed:
                        waiting.setdefault(delivery.subscription_id, deque()).append((delivery, now))
                    for subscription_id in list(waiting):
                        start_waiting(subscription_id)
                if renew is not None and time.monotonic() - renewed > RENEW_SECONDS:
                    renew()
                    renewed = time.monotonic()
                if not senders.in_flight:
                    if unrecorded:
                        continue  # recorded at the top of the loop, before anything else is claimed
                    if claimed_count >= limit or time.monotonic() - idle_since >= linger:
                        break
                    time.sleep(LINGER_POLL_SECONDS)
                    # While it lingers, a one-statement look (no transaction, no lock) before the claim's four: in a
                    # sale that runs below the sender's pace most of its claims found nothing, ~2 ms of CPU each, 50 a
                    # second.
                    more = webhook_deliveries_due()
                    continue
                # A slow endpoint's answer does not hold the others' record back longer than RECORD_SECONDS.
                timeout = RECORD_SECONDS - (time.monotonic() - unrecorded_since) if unrecorded else None
                done = senders.finished(None if timeout is None else max(0.0, timeout))
                if not done:
                    continue
                finished = [outcome.delivery for outcome in done]
                for delivery in finished:
                    active[delivery.subscription_id] -= 1
                # The freed places are taken before the round is recorded, so an endpoint's requests do not wait for the
                # database: a waiting delivery is about another resource than any in flight (a claim takes none behind
                # a pending one), so its order does not depend on this round's record.
                for subscription_id in {delivery.subscription_id for delivery in finished}:
                    start_waiting(subscription_id)
                if not unrecorded:
                    unrecorded_since = time.monotonic()
                unrecorded.extend(done)
                more = claimed_count < limit  # a success may have made the next delivery of its resource due
                idle_since = time.monotonic()
        finally:
            senders.close()
    return sent
