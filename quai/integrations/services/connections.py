"""Shop connections: the sync engine between a merchant's shop and Quai, over one ``PlatformAdapter`` per platform.

Where each step runs, and why:

1. Inbound (``connection_receive``, called by the API's hook route with the raw request): the adapter verifies the
   signature on the raw bytes first (a bad or missing one: 401, nothing stored), then the call is parsed (a ping is
   answered and stored nowhere), de-duplicated on the adapter's delivery key (unique per connection: a replay is
   answered 200 and not stored twice), stored raw, answered at once, and processed by a task after the commit.
2. Processing (``inbound_delivery_process``, a task): an order ready for the warehouse goes through
   ``quai.orders`` intake (channel = the connection's platform, or its ``settings.channel``; the shop's order id as
   external id), which reserves its stock; then the shop is told (``accept``) by a ``ConnectorCall``.
   **Unknown SKU**: intake refuses an order naming a SKU the merchant does not have (404 ``sku_not_found``: an order
   line must point at a SKU). The delivery is then ``held`` with the reason and the missing SKUs, visible in the
   back office and the API, and taken again as soon as one of those SKUs is created (``catalog.sku_created``) or
   by hand: the order is never dropped, and no half order is made.
3. Polling (``connection_poll``, beat): ``fetch_orders(cursor)`` as a safety net under webhooks; each order found
   is stored as a delivery keyed by its id and modification time, so a webhook's order and the poll's are one.
4. Stock out (``on_stock_event`` → ``connection_stock_push``): a stock or reservation event marks (connection, SKU)
   dirty in the relay's transaction; after the commit a task pushes, per connection, the *current* availability of
   every dirty SKU (latest level wins: ten changes in a burst are one number), one push at a time per shop (a lease
   on the connection) and at most one per ``settings.stock_interval_ms``. A change during a push is pushed next.
5. Writes to the shop (accept, fulfilment with tracking, refund): ``ConnectorCall`` rows, unique per idempotency
   key, run by a task outside any transaction, retried with backoff for 24 hours (``Retry-After`` honoured).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, NotFound, QuaiError, ValidationFailed
from quai.integrations import domain
from quai.integrations.connectors.base import (
    ConnectionConfig,
    ConnectorError,
    ExternalOrder,
    HealthReport,
    InboundEvent,
    NotSupported,
    Refund,
    Shipment,
    SignatureInvalid,
    StockLevel,
    adapter_for,
    platforms,
)
from quai.integrations.models import (
    CallKind,
    CallStatus,
    Connection,
    ConnectionStatus,
    ConnectorCall,
    InboundDelivery,
    InboundStatus,
    ShopOrder,
    StockSync,
)
from quai.integrations.services.subscriptions import webhook_url_check
from quai.tenants.models import Merchant
from quai.tenants.scope import Scope

logger = logging.getLogger(__name__)

CALL_WINDOW = timedelta(hours=24)
LEASE = timedelta(seconds=60)
DEFAULT_STOCK_INTERVAL_MS = 100
MAX_BODY_BYTES = 5 * 1024 * 1024
# Headers kept with a delivery (to parse it again later); never the signature or cookies.
_KEPT_HEADERS = ("content-type", "user-agent")
_KEPT_PREFIXES = ("x-wc-webhook-", "x-shopify-", "saleor-", "x-saleor-")
_DROPPED = ("signature", "hmac")


class Unauthorised(QuaiError):
    status = 401
    code = "signature_invalid"


# --- Connections: set-up ---------------------------------------------------------------------------------------


def _credentials_of(connection: Connection) -> dict[str, str]:
    if not connection.credentials:
        return {}
    value = json.loads(connection.credentials)
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def connection_config(connection: Connection) -> ConnectionConfig:
    """What the adapter is built from; the credentials decrypted for the time of the call."""
    return ConnectionConfig(
        platform=connection.platform,
        base_url=connection.base_url,
        credentials=_credentials_of(connection),
        settings=dict(connection.settings or {}),
        connection_id=connection.pk,
    )


def connection_adapter(connection: Connection, client: httpx.Client | None = None) -> Any:
    return adapter_for(connection_config(connection), client)


def public_base_url() -> str:
    return str(getattr(django_settings, "QUAI_PUBLIC_URL", "http://localhost:8000")).rstrip("/")


def connection_inbound_url(connection: Connection) -> str:
    """Where the shop calls Quai: ``<base>/{topic}`` (``order.created``, ``fulfillment_order_notification``…)."""
    return f"{public_base_url()}/api/v1/shops/{connection.pk}/hooks"


def _platform_check(platform: str) -> str:
    if platform not in platforms():
        raise ValidationFailed(
            _("Unknown platform '%(platform)s': one of %(known)s.")
            % {"platform": platform, "known": ", ".join(platforms())},
            code="platform_unknown",
            details={"platform": platform, "platforms": platforms()},
        )
    return platform


def _credentials_merge(current: Mapping[str, str], changes: Mapping[str, str | None]) -> str:
    merged = dict(current)
    for key, value in changes.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return json.dumps(merged, sort_keys=True)


def connection_create(
    *,
    merchant: Merchant | int,
    name: str,
    platform: str,
    base_url: str,
    credentials: Mapping[str, str] | None = None,
    settings: Mapping[str, Any] | None = None,
    safety_buffer: int = 0,
    push_stock: bool = True,
    poll_orders: bool = True,
) -> Connection:
    """A merchant's shop. The credentials are stored encrypted and never shown again."""
    merchant_id = merchant if isinstance(merchant, int) else merchant.pk
    return Connection.objects.create(
        merchant_id=merchant_id,
        name=name,
        platform=_platform_check(platform),
        base_url=webhook_url_check(base_url),
        credentials=_credentials_merge({}, credentials or {}),
        settings=dict(settings or {}),
        safety_buffer=safety_buffer,
        push_stock=push_stock,
        poll_orders=poll_orders,
    )


def _connection_locked(connection: Connection | int) -> Connection:
    pk = connection if isinstance(connection, int) else connection.pk
    locked = Connection.objects.select_for_update().filter(pk=pk).first()
    if locked is None:
        raise NotFound(_("Shop connection not found."), code="connection_not_found", details={"connection_id": pk})
    return locked


@transaction.atomic
def connection_update(
    *,
    connection: Connection,
    version: int,
    name: str | None = None,
    base_url: str | None = None,
    credentials: Mapping[str, str | None] | None = None,
    settings: Mapping[str, Any] | None = None,
    safety_buffer: int | None = None,
    push_stock: bool | None = None,
    poll_orders: bool | None = None,
    status: str | None = None,
) -> Connection:
    """Change what is given. ``credentials`` are merged key by key (an empty value removes the key): the current
    ones are never read back, so a form can change one key without knowing the others."""
    locked = _connection_locked(connection)
    if locked.version != version:
        raise Conflict(
            _("This connection was changed by someone else (version %(current)d): reload it and retry.")
            % {"current": locked.version},
            code="stale_version",
            details={"current_version": locked.version},
        )
    if name is not None:
        locked.name = name
    if base_url is not None:
        locked.base_url = webhook_url_check(base_url)
    if credentials:
        locked.credentials = _credentials_merge(_credentials_of(locked), credentials)
    if settings is not None:
        locked.settings = dict(settings)
    if safety_buffer is not None:
        locked.safety_buffer = safety_buffer
    if push_stock is not None:
        locked.push_stock = push_stock
    if poll_orders is not None:
        locked.poll_orders = poll_orders
    if status is not None:
        if status not in (ConnectionStatus.ACTIVE, ConnectionStatus.PAUSED):
            raise ValidationFailed(
                _("A connection can be set active or paused."), code="invalid_status", details={"status": status}
            )
        locked.status = status
        if status == ConnectionStatus.ACTIVE:
            locked.next_retry_at = None
            locked.consecutive_failures = 0
    locked.version += 1
    locked.updated_at = clock.now()
    locked.save()
    return locked


@transaction.atomic
def connection_delete(*, connection: Connection) -> None:
    """Delete a connection; refused while Quai orders came from it (they keep their link to the shop)."""
    locked = _connection_locked(connection)
    if ShopOrder.objects.filter(connection=locked, order__isnull=False).exists():
        raise Conflict(
            _("Orders came from this shop: pause the connection instead of deleting it."),
            code="connection_in_use",
            details={"connection_id": locked.pk},
        )
    locked.delete()


def _failure_record(connection_id: int, exc: Exception, *, retry_after: float | None = None) -> None:
    now = clock.now()
    row = Connection.objects.filter(pk=connection_id).values("consecutive_failures").first()
    failures = (row["consecutive_failures"] if row else 0) + 1
    delay = domain.backoff(failures, key=str(connection_id))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    Connection.objects.filter(pk=connection_id).exclude(status=ConnectionStatus.PAUSED).update(
        status=ConnectionStatus.FAILING
    )
    Connection.objects.filter(pk=connection_id).update(
        last_error=f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"[:2000],
        last_error_at=now,
        consecutive_failures=failures,
        next_retry_at=now + delay,
    )
    logger.warning("shop connection %s failed: %s", connection_id, exc)


def _success_record(connection_id: int, **values: Any) -> None:
    Connection.objects.filter(pk=connection_id, status=ConnectionStatus.FAILING).update(status=ConnectionStatus.ACTIVE)
    Connection.objects.filter(pk=connection_id).update(consecutive_failures=0, next_retry_at=None, **values)


def connection_health(*, connection: Connection, client: httpx.Client | None = None) -> HealthReport:
    """Ask the shop (credentials, subscriptions); the answer is recorded on the connection. Outside transactions."""
    try:
        report = connection_adapter(connection, client).health()
    except ConnectorError as exc:
        report = HealthReport(ok=False, detail=str(exc))
    Connection.objects.filter(pk=connection.pk).update(
        last_health={
            "ok": report.ok,
            "detail": report.detail,
            "checks": dict(report.checks),
            "at": clock.now().isoformat(),
        }
    )
    if report.ok:
        _success_record(connection.pk, last_sync_at=clock.now())
    else:
        _failure_record(connection.pk, ConnectorError(report.detail or "health check failed", code="health_failed"))
    return report


def connection_subscribe(*, connection: Connection, client: httpx.Client | None = None) -> None:
    """Register (idempotently) the shop's webhooks or fulfilment service pointing at this connection's URL."""
    connection_adapter(connection, client).ensure_subscriptions(connection_inbound_url(connection))


# --- Inbound -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if any(word in lowered for word in _DROPPED):
            continue
        if lowered in _KEPT_HEADERS or lowered.startswith(_KEPT_PREFIXES):
            kept[name] = value
    return kept


class _HeaderView(dict[str, str]):
    """Headers read without regard to case, as HTTP means them (stored deliveries are parsed again with these)."""

    def get(self, key: str, default: Any = None) -> Any:
        lowered = key.lower()
        for name, value in self.items():
            if name.lower() == lowered:
                return value
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return str(value)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None


def _active_connection(connection_id: int) -> Connection:
    found = Connection.objects.filter(pk=connection_id).first()
    if found is None or found.status == ConnectionStatus.PAUSED:
        raise NotFound(
            _("Shop connection not found."), code="connection_not_found", details={"connection_id": connection_id}
        )
    return found


def _stock_answer_levels(connection: Connection, skus: Sequence[str] | None) -> dict[str, int]:
    return {level.sku: level.available for level in connection_stock_levels(connection=connection, sku_codes=skus)}


def _tracking_by_order(connection: Connection) -> dict[str, list[str]]:
    tracking: dict[str, list[str]] = {}
    calls = ConnectorCall.objects.filter(connection=connection, kind=CallKind.FULFILMENT).select_related("shop_order")
    for call in calls:
        if call.shop_order is None:
            continue
        numbers = [p.get("tracking_number", "") for p in call.payload.get("shipment", {}).get("parcels", [])]
        names = {call.shop_order.external_number, call.shop_order.external_id}
        names.update(str(v) for k, v in call.shop_order.snapshot.get("platform_refs", {}).items() if k == "name")
        for name in names:
            if name:
                tracking.setdefault(name, []).extend(n for n in numbers if n)
    return tracking


def connection_receive(
    *,
    connection_id: int,
    topic: str,
    method: str,
    headers: Mapping[str, str],
    raw_body: bytes,
    query: Mapping[str, Any],
) -> Answer:
    """One call from a shop, verified on its raw bytes before anything else. Raises ``Unauthorised`` (401) on a
    missing or wrong signature, having stored nothing. A POST is stored once per delivery key and answered 202
    (200 for a ping or a delivery already received); a GET answers a callback (Shopify's ``fetch_stock``…)."""
    connection = _active_connection(connection_id)
    adapter = connection_adapter(connection)
    try:
        adapter.verify(headers, raw_body)
    except SignatureInvalid as exc:
        raise Unauthorised(_("The signature of this call is missing or wrong."), details={"reason": str(exc)}) from None

    if method == "GET":
        name = topic.removesuffix(".json")
        try:
            if name == "fetch_stock":
                sku = query.get("sku")
                skus = [str(sku)] if sku else None
                return Answer(200, adapter.answer_stock_query(_stock_answer_levels(connection, skus), query))
            if name == "fetch_tracking_numbers":
                return Answer(200, adapter.answer_tracking_query(_tracking_by_order(connection), query))
        except NotSupported:
            pass
        raise NotFound(_("This shop makes no such call."), code="hook_not_found", details={"topic": topic})

    key = adapter.delivery_id(headers, raw_body)
    reason = ""
    try:
        events = adapter.parse(headers, raw_body)
    except ConnectorError as exc:
        events, reason = [], f"{exc.code}: {exc}"
    if events and all(event.kind == "ping" for event in events):
        return Answer(200, {"received": True})
    now = clock.now()
    try:
        with transaction.atomic():
            delivery = InboundDelivery.objects.create(
                merchant_id=connection.merchant_id,
                connection=connection,
                delivery_key=key[:300],
                topic=topic[:100],
                headers=_kept_headers(headers),
                body=raw_body,
                status=InboundStatus.FAILED if reason else InboundStatus.RECEIVED,
                reason=reason,
                error_code=reason.split(":", 1)[0] if reason else "",
                external_id=next((e.external_id for e in events if e.external_id), "")[:100],
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            if not reason:
                _process_after_commit([delivery.pk])
    except IntegrityError:
        return Answer(200, {"received": True, "duplicate": True})
    Connection.objects.filter(pk=connection.pk).update(last_sync_at=now)
    return Answer(202, {"received": True, "delivery_id": delivery.pk})


def _process_after_commit(delivery_ids: Sequence[int]) -> None:
    ids = list(delivery_ids)

    def enqueue() -> None:
        from quai.integrations.tasks import inbound_delivery_process

        for pk in ids:
            try:
                inbound_delivery_process.delay(pk)
            except Exception:  # a lost message is found again by the sweep
                logger.exception("could not enqueue shop delivery %s", pk)

    transaction.on_commit(enqueue, robust=True)


class _Held(Exception):
    def __init__(self, message: str, skus: list[str]) -> None:
        super().__init__(message)
        self.skus = skus


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _channel(connection: Connection) -> str:
    return str((connection.settings or {}).get("channel") or connection.platform)[:50]


def _order_take(connection: Connection, order: ExternalOrder) -> ShopOrder:
    """Intake of one shop order (stock reserved there); the link to it; the shop told by an ``accept`` call."""
    from quai.orders.services.intake_batched import order_intake

    existing = ShopOrder.objects.filter(connection=connection, external_id=order.external_id).first()
    if existing is not None and existing.order_id is not None:
        return existing
    data = domain.order_intake_data(order, channel=_channel(connection))
    try:
        created = order_intake(merchant=connection.merchant_id, data=data)
        quai_order = created.order
    except NotFound as exc:
        if exc.code != "sku_not_found":
            raise _Refused(exc.code, exc.message) from None
        skus = [str(s) for s in exc.details.get("skus", [])]
        raise _Held(
            _("Held: SKU %(skus)s unknown in Quai for this merchant; the order is taken as soon as it is created.")
            % {"skus": ", ".join(skus)},
            skus,
        ) from None
    except Conflict as exc:
        if exc.code != "order_external_id_reused":
            raise _Refused(exc.code, exc.message) from None
        # The shop changed an order already taken in: it stays as taken (changes go through the order's services).
        from quai.orders.selectors import order_get

        quai_order = order_get(scope=Scope.merchant(connection.merchant_id), order_id=exc.details["order_id"])
    except ValidationFailed as exc:
        raise _Refused(exc.code, exc.message) from None
    with transaction.atomic():
        shop_order, made = ShopOrder.objects.get_or_create(
            connection=connection,
            external_id=order.external_id,
            defaults={
                "merchant_id": connection.merchant_id,
                "external_number": order.external_number[:100],
                "order": quai_order,
                "snapshot": domain.order_to_json(order),
            },
        )
        if not made and shop_order.order_id is None:
            shop_order.order = quai_order
            shop_order.snapshot = domain.order_to_json(order)
            shop_order.save(update_fields=["order", "snapshot", "updated_at"])
        call_create(
            connection=connection,
            kind=CallKind.ACCEPT,
            shop_order=shop_order,
            key=f"accept:{order.external_id}",
            payload={"message": ""},
        )
    return shop_order


def _order_cancel(connection: Connection, external_id: str, reason: str) -> bool:
    """Cancel the Quai order made of this shop order; False when there is none (nothing to cancel)."""
    from quai.orders.services import order_cancel

    shop_order = ShopOrder.objects.filter(connection=connection, external_id=external_id).first()
    if shop_order is None or shop_order.order_id is None:
        return False
    try:
        order_cancel(order=shop_order.order_id, reason=reason)
    except Conflict as exc:
        if exc.code == "invalid_transition":  # cancelled already (or delivered): nothing more to do
            return True
        raise _Refused(exc.code, exc.message) from None
    return True


def _events_of(delivery: InboundDelivery, adapter: Any) -> list[InboundEvent]:
    if delivery.topic == "poll":
        return [InboundEvent(kind="order_ready", external_id=delivery.external_id)]
    return list(adapter.parse(_HeaderView(delivery.headers), bytes(delivery.body)))


def _event_apply(connection: Connection, adapter: Any, event: InboundEvent) -> None:
    kind = event.kind
    if kind == "ping":
        return
    if kind in ("order_ready", "order_changed"):
        # Re-read what the call only hints at; a webhook's body is the order as it was when sent.
        order = event.order if event.order is not None and kind == "order_ready" else None
        if order is None:
            order = adapter.fetch_order(event.external_id)
        if order.cancelled:
            _order_cancel(connection, order.external_id, _("Cancelled in the shop."))
            return
        ready = kind == "order_ready" or order.status_raw in (connection.settings or {}).get(
            "ready_statuses", ["processing"]
        )
        if ready and order.paid:
            _order_take(connection, order)
        return
    if kind == "order_cancelled":
        _order_cancel(connection, event.external_id, _("Cancelled in the shop."))
        return
    if kind == "fulfilment_requested":
        cursor: str | None = None
        for _page in range(50):
            page = adapter.fetch_orders(cursor)
            for order in page.orders:
                _order_take(connection, order)
            cursor = page.cursor
            if not page.orders or cursor is None:
                break
        return
    if kind == "cancellation_requested":
        order = event.order or adapter.fetch_order(event.external_id)
        try:
            done = _order_cancel(connection, order.external_id, _("Cancellation asked by the shop."))
            accepted, message = True, "" if done else _("Not in the warehouse yet.")
        except _Refused as exc:
            accepted, message = False, str(exc)
        adapter.answer_cancellation(order, accepted, message)
        return
    raise _Refused("event_unknown", f"unknown inbound event {kind!r}")


def _delivery_claim(delivery_id: int) -> InboundDelivery | None:
    now = clock.now()
    claimed = (
        InboundDelivery.objects.filter(pk=delivery_id, status__in=[InboundStatus.RECEIVED, InboundStatus.HELD])
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(next_attempt_at=now + LEASE, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return InboundDelivery.objects.select_related("connection").get(pk=delivery_id)


def inbound_delivery_process(*, delivery_id: int, client: httpx.Client | None = None) -> InboundDelivery | None:
    """Act on one stored delivery (a task; outside any transaction: the adapter may call the shop)."""
    delivery = _delivery_claim(delivery_id)
    if delivery is None:
        return None
    connection = delivery.connection
    adapter = connection_adapter(connection, client)
    now = clock.now()
    values: dict[str, Any] = {"updated_at": now}
    try:
        for event in _events_of(delivery, adapter):
            _event_apply(connection, adapter, event)
    except _Held as held:
        values.update(
            status=InboundStatus.HELD,
            reason=str(held),
            error_code="sku_not_found",
            missing_skus=held.skus,
            next_attempt_at=None,
        )
    except _Refused as refused:
        values.update(status=InboundStatus.FAILED, reason=str(refused), error_code=refused.code, next_attempt_at=None)
    except ConnectorError as exc:
        if exc.retryable:
            delay = domain.backoff(delivery.attempts, key=str(delivery.pk))
            if exc.retry_after is not None:
                delay = max(delay, timedelta(seconds=exc.retry_after))
            values.update(
                status=InboundStatus.RECEIVED,
                reason=f"{exc.code}: {exc}",
                error_code=exc.code,
                next_attempt_at=now + delay,
            )
            _failure_record(connection.pk, exc, retry_after=exc.retry_after)
        else:
            values.update(
                status=InboundStatus.FAILED, reason=f"{exc.code}: {exc}", error_code=exc.code, next_attempt_at=None
            )
    else:
        values.update(
            status=InboundStatus.PROCESSED,
            reason="",
            error_code="",
            missing_skus=[],
            processed_at=now,
            next_attempt_at=None,
        )
        _success_record(connection.pk, last_sync_at=now)
    InboundDelivery.objects.filter(pk=delivery.pk).update(**values)
    delivery.refresh_from_db()
    return delivery


def inbound_delivery_retry(*, delivery: InboundDelivery) -> InboundDelivery:
    """Take a held or failed delivery again (after the missing SKU was created, or the shop fixed)."""
    if delivery.status == InboundStatus.PROCESSED:
        raise Conflict(
            _("This delivery was processed already."), code="invalid_transition", details={"delivery_id": delivery.pk}
        )
    with transaction.atomic():
        InboundDelivery.objects.filter(pk=delivery.pk).update(
            status=InboundStatus.RECEIVED, next_attempt_at=clock.now(), updated_at=clock.now()
        )
        _process_after_commit([delivery.pk])
    delivery.refresh_from_db()
    return delivery


def on_sku_created(event: Any, envelope: Any) -> None:
    """Outbox handler (``catalog.sku_created``): deliveries held for this SKU are taken again after the commit."""
    code = str(getattr(event, "code", "")).lower()
    if not code or envelope.merchant_id is None:
        return
    held = [
        delivery.pk
        for delivery in InboundDelivery.objects.filter(
            merchant_id=envelope.merchant_id, status=InboundStatus.HELD
        ).only("pk", "missing_skus")
        if code in {str(sku).lower() for sku in delivery.missing_skus}
    ]
    if held:
        InboundDelivery.objects.filter(pk__in=held).update(status=InboundStatus.RECEIVED, next_attempt_at=clock.now())
        _process_after_commit(held)


def connection_poll(*, connection: Connection, client: httpx.Client | None = None, max_pages: int = 20) -> int:
    """Orders ready on the shop since the cursor, stored as deliveries (one per order and modification time, so a
    webhook's order and the poll's are one); returns how many were new. Outside transactions."""
    adapter = connection_adapter(connection, client)
    cursor = connection.cursor or None
    found = 0
    try:
        for _page in range(max_pages):
            page = adapter.fetch_orders(cursor)
            new_ids: list[int] = []
            now = clock.now()
            with transaction.atomic():
                for order in page.orders:
                    stamp = order.updated_at.isoformat() if order.updated_at else ""
                    key = f"poll:{order.external_id}:{stamp}"
                    if InboundDelivery.objects.filter(connection=connection, delivery_key=key).exists():
                        continue
                    if ShopOrder.objects.filter(
                        connection=connection, external_id=order.external_id, order__isnull=False
                    ).exists():
                        continue
                    delivery = InboundDelivery.objects.create(
                        merchant_id=connection.merchant_id,
                        connection=connection,
                        delivery_key=key,
                        topic="poll",
                        body=b"",
                        external_id=order.external_id[:100],
                        next_attempt_at=now,
                    )
                    new_ids.append(delivery.pk)
                if page.cursor:
                    Connection.objects.filter(pk=connection.pk).update(cursor=page.cursor[:500])
                _process_after_commit(new_ids)
            found += len(new_ids)
            if page.cursor is None or not page.orders or page.cursor == cursor:
                break
            cursor = page.cursor
    except ConnectorError as exc:
        _failure_record(connection.pk, exc, retry_after=exc.retry_after)
        return found
    _success_record(connection.pk, last_polled_at=clock.now(), last_sync_at=clock.now())
    return found


# --- Stock out ---------------------------------------------------------------------------------------------------


def connection_stock_levels(*, connection: Connection, sku_codes: Sequence[str] | None = None) -> list[StockLevel]:
    """What this shop may sell of each of the merchant's SKUs (all of them, or those named)."""
    from quai.inventory.selectors import AvailabilityPage, availability_list

    page = availability_list(scope=Scope.merchant(connection.merchant_id))
    queryset = page.queryset
    if sku_codes is not None:
        queryset = queryset.filter(code__in=list(sku_codes))
    return [
        StockLevel(
            sku=row.sku_code,
            available=domain.availability_for_shop(
                available_to_sell=row.available_to_sell, connection_buffer=connection.safety_buffer
            ),
        )
        for row in AvailabilityPage(queryset)
    ]


def _levels_by_sku_id(connection: Connection, sku_ids: Sequence[int]) -> dict[int, StockLevel]:
    from quai.inventory.selectors import AvailabilityPage, availability_list

    queryset = availability_list(scope=Scope.merchant(connection.merchant_id)).queryset.filter(pk__in=list(sku_ids))
    return {
        row.sku_id: StockLevel(
            sku=row.sku_code,
            available=domain.availability_for_shop(
                available_to_sell=row.available_to_sell, connection_buffer=connection.safety_buffer
            ),
        )
        for row in AvailabilityPage(queryset)
    }


def on_stock_event(event: Any, envelope: Any) -> None:
    """Outbox handler (stock and reservation events): mark the SKU dirty on each of the merchant's shops that take
    stock, in the relay's transaction; the push task runs after the commit."""
    sku_id = getattr(event, "sku_id", None)
    if sku_id is None or envelope.merchant_id is None:
        return
    connection_ids = list(
        Connection.objects.filter(merchant_id=envelope.merchant_id, push_stock=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .values_list("pk", flat=True)
    )
    if not connection_ids:
        return
    now = clock.now()
    StockSync.objects.bulk_create(
        [
            StockSync(
                merchant_id=envelope.merchant_id,
                connection_id=pk,
                sku_id=sku_id,
                sku_code=str(getattr(event, "sku_code", ""))[:64],
            )
            for pk in connection_ids
        ],
        ignore_conflicts=True,
    )
    StockSync.objects.filter(connection_id__in=connection_ids, sku_id=sku_id).update(
        generation=F("generation") + 1, changed_at=Coalesce(F("changed_at"), now)
    )
    _stock_push_after_commit(connection_ids)


def _stock_push_after_commit(connection_ids: Iterable[int]) -> None:
    ids = sorted(set(connection_ids))

    def enqueue() -> None:
        from quai.integrations.tasks import connection_stock_push as task

        for pk in ids:
            try:
                task.delay(pk)
            except Exception:
                logger.exception("could not enqueue the stock push of connection %s", pk)

    transaction.on_commit(enqueue, robust=True)


def _stock_lease(connection_id: int, now: datetime) -> bool:
    return bool(
        Connection.objects.filter(pk=connection_id, push_stock=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .filter(Q(stock_lease_until__isnull=True) | Q(stock_lease_until__lte=now))
        .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
        .update(stock_lease_until=now + LEASE)
    )


def _dirty(connection_id: int) -> list[tuple[int, int, int, datetime | None]]:
    return list(
        StockSync.objects.filter(connection_id=connection_id, generation__gt=F("pushed_generation"))
        .order_by("sku_id")
        .values_list("pk", "sku_id", "generation", "changed_at")[:500]
    )


def connection_stock_push(*, connection_id: int, client: httpx.Client | None = None, rounds: int = 20) -> int:
    """Push every dirty SKU's current level to one shop (one push at a time per shop); returns SKUs pushed."""
    import time

    pushed = 0
    for _round in range(rounds):
        now = clock.now()
        if not _dirty(connection_id) or not _stock_lease(connection_id, now):
            return pushed
        try:
            connection = Connection.objects.get(pk=connection_id)
            interval = int((connection.settings or {}).get("stock_interval_ms", DEFAULT_STOCK_INTERVAL_MS)) / 1000
            if connection.last_stock_push_at is not None:
                wait = interval - (clock.now() - connection.last_stock_push_at).total_seconds()
                if 0 < wait <= 5:
                    time.sleep(wait)  # the shop's rate limit: at most one push per interval
            pushed += _stock_push_once(connection, connection_adapter(connection, client))
        finally:
            Connection.objects.filter(pk=connection_id).update(stock_lease_until=None)
    return pushed


def _stock_push_once(connection: Connection, adapter: Any) -> int:
    rows = _dirty(connection.pk)
    if not rows:
        return 0
    levels = _levels_by_sku_id(connection, [sku_id for _pk, sku_id, _g, _c in rows])
    to_push = [levels[sku_id] for _pk, sku_id, _g, _c in rows if sku_id in levels]
    started = clock.now()
    try:
        report = adapter.push_stock(to_push, f"{connection.pk}:{started.timestamp()}")
    except ConnectorError as exc:
        _failure_record(connection.pk, exc, retry_after=exc.retry_after)
        return 0
    now = clock.now()
    oldest = min((changed for *_rest, changed in rows if changed is not None), default=None)
    for pk, sku_id, generation, _changed in rows:
        level = levels.get(sku_id)
        error = ""
        if level is None:
            error = "SKU not found in Quai"
        elif level.sku in report.unknown:
            error = "SKU not in the shop"
        elif level.sku in report.failed:
            error = report.failed[level.sku]
        values: dict[str, Any] = {"pushed_generation": generation, "pushed_at": now, "last_error": error[:2000]}
        if level is not None:
            values.update(sku_code=level.sku, pushed_quantity=None if error else level.available)
        # Clean only if no change landed meanwhile; otherwise it stays dirty and goes in the next round.
        StockSync.objects.filter(pk=pk, generation=generation).update(changed_at=None, **values)
        StockSync.objects.filter(pk=pk, generation__gt=generation).update(**values)
    lag = int((now - oldest).total_seconds() * 1000) if oldest is not None else None
    _success_record(connection.pk, last_stock_push_at=now, last_sync_at=now, lag_ms=lag)
    return len(report.updated)


@dataclass(frozen=True)
class ReconcileLine:
    sku: str
    quai: int
    shop: int | None
    repaired: bool


@dataclass(frozen=True)
class ReconcileReport:
    connection_id: int
    checked: int
    drift: tuple[ReconcileLine, ...]
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection_id": self.connection_id,
            "checked": self.checked,
            "drift": [line.__dict__ for line in self.drift],
            "error": self.error,
        }


def connection_stock_reconcile(
    *, connection: Connection, client: httpx.Client | None = None, repair: bool = True
) -> ReconcileReport:
    """Compare what the shop shows with what Quai allows; push the SKUs that drifted (when ``repair``)."""
    adapter = connection_adapter(connection, client)
    ours = {level.sku: level for level in connection_stock_levels(connection=connection)}
    try:
        theirs = adapter.stock_levels(list(ours))
    except ConnectorError as exc:
        failed = ReconcileReport(connection_id=connection.pk, checked=0, drift=(), error=f"{exc.code}: {exc}")
        Connection.objects.filter(pk=connection.pk).update(
            last_reconcile={**failed.as_dict(), "at": clock.now().isoformat()}
        )
        return failed
    drifted = [ours[sku] for sku, shown in theirs.items() if sku in ours and shown != ours[sku].available]
    repaired: set[str] = set()
    error = ""
    if drifted and repair:
        try:
            report = adapter.push_stock(drifted, f"reconcile:{connection.pk}:{clock.now().timestamp()}")
            repaired = set(report.updated)
        except ConnectorError as exc:
            error = f"{exc.code}: {exc}"
    lines = tuple(
        ReconcileLine(sku=level.sku, quai=level.available, shop=theirs.get(level.sku), repaired=level.sku in repaired)
        for level in drifted
    )
    result = ReconcileReport(connection_id=connection.pk, checked=len(theirs), drift=lines, error=error)
    Connection.objects.filter(pk=connection.pk).update(
        last_reconcile={**result.as_dict(), "at": clock.now().isoformat()}
    )
    return result


# --- Writes to the shop: accept, fulfilment, refund --------------------------------------------------------------


def call_create(
    *, connection: Connection, kind: str, shop_order: ShopOrder | None, key: str, payload: Mapping[str, Any]
) -> ConnectorCall:
    """A write to the shop, once per key; run by a task after the commit."""
    now = clock.now()
    call, made = ConnectorCall.objects.get_or_create(
        connection=connection,
        idempotency_key=key[:200],
        defaults={
            "merchant_id": connection.merchant_id,
            "kind": kind,
            "shop_order": shop_order,
            "payload": dict(payload),
            "next_attempt_at": now,
        },
    )
    if made:
        _call_after_commit(call.pk)
    return call


def _call_after_commit(call_id: int) -> None:
    def enqueue() -> None:
        from quai.integrations.tasks import connector_call_run

        try:
            connector_call_run.delay(call_id)
        except Exception:
            logger.exception("could not enqueue shop call %s", call_id)

    if db_connection.in_atomic_block:
        transaction.on_commit(enqueue, robust=True)
    else:
        enqueue()


def _call_claim(call_id: int) -> ConnectorCall | None:
    now = clock.now()
    claimed = (
        ConnectorCall.objects.filter(pk=call_id, status=CallStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(locked_until=now + LEASE)
    )
    if not claimed:
        return None
    return ConnectorCall.objects.select_related("connection", "shop_order").get(pk=call_id)


def connector_call_run(*, call_id: int, client: httpx.Client | None = None) -> ConnectorCall | None:
    """Make one write to the shop (outside any transaction) and record what came of it."""
    call = _call_claim(call_id)
    if call is None:
        return None
    connection = call.connection
    adapter = connection_adapter(connection, client)
    order = domain.order_from_json(call.shop_order.snapshot) if call.shop_order is not None else None
    now = clock.now()
    values: dict[str, Any] = {"locked_until": None, "attempts": call.attempts + 1, "updated_at": now}
    try:
        result = ""
        if order is None:
            raise ConnectorError("the call names no shop order", code="shop_order_missing")
        if call.kind == CallKind.ACCEPT:
            adapter.accept(order, call.payload.get("message", ""))
            ShopOrder.objects.filter(pk=call.shop_order_id or 0).update(accepted_at=now)
        elif call.kind == CallKind.FULFILMENT:
            result = adapter.push_fulfilment(
                order, domain.shipment_from_json(call.payload["shipment"]), call.idempotency_key
            )
        elif call.kind == CallKind.REFUND:
            result = adapter.push_refund(order, domain.refund_from_json(call.payload["refund"]), call.idempotency_key)
        elif call.kind == CallKind.NOTE:
            adapter.add_note(order, call.payload["text"], bool(call.payload.get("customer_visible", False)))
        else:
            raise ConnectorError(f"unknown call kind {call.kind!r}", code="call_kind_unknown")
    except NotSupported as exc:
        values.update(status=CallStatus.FAILED, finished_at=now, last_error=f"{exc.code}: {exc}")
    except ConnectorError as exc:
        values["last_error"] = f"{exc.code}: {exc}"[:2000]
        if not exc.retryable:
            values.update(status=CallStatus.FAILED, finished_at=now)
        else:
            schedule = domain.schedule_retry(
                attempts=values["attempts"],
                now=now,
                started_at=call.created_at,
                retry_after=exc.retry_after,
                window=CALL_WINDOW,
                key=str(call.pk),
            )
            if schedule.next_attempt_at is None:
                values.update(status=CallStatus.DEAD, finished_at=now)
            else:
                values["next_attempt_at"] = schedule.next_attempt_at
        _failure_record(connection.pk, exc, retry_after=exc.retry_after)
    else:
        values.update(status=CallStatus.SUCCEEDED, finished_at=now, result=str(result)[:200], last_error="")
        _success_record(connection.pk, last_sync_at=now)
    ConnectorCall.objects.filter(pk=call.pk).update(**values)
    call.refresh_from_db()
    return call


def _shop_orders_of(order: Any) -> list[ShopOrder]:
    pk = order if isinstance(order, int) else order.pk
    return list(ShopOrder.objects.filter(order_id=pk).select_related("connection"))


def connection_push_fulfilment(*, order: Any, shipment: Shipment, key: str = "") -> list[ConnectorCall]:
    """Tell the shop an order shipped, with its tracking (a task, retried). Nothing when the order came from no
    shop. ``key`` (default: a digest of the parcels) makes a repeated call one."""
    payload = {"shipment": domain.shipment_to_json(shipment)}
    key = key or hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
    with transaction.atomic():
        return [
            call_create(
                connection=shop_order.connection,
                kind=CallKind.FULFILMENT,
                shop_order=shop_order,
                key=f"fulfilment:{shop_order.external_id}:{key}",
                payload=payload,
            )
            for shop_order in _shop_orders_of(order)
        ]


def connection_push_refund(*, order: Any, refund: Refund, key: str = "") -> list[ConnectorCall]:
    """Record a refund on the shop's order (a task, retried); nothing when the order came from no shop."""
    payload = {"refund": domain.refund_to_json(refund)}
    key = key or hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
    with transaction.atomic():
        return [
            call_create(
                connection=shop_order.connection,
                kind=CallKind.REFUND,
                shop_order=shop_order,
                key=f"refund:{shop_order.external_id}:{key}",
                payload=payload,
            )
            for shop_order in _shop_orders_of(order)
        ]


# --- The sweep (beat) --------------------------------------------------------------------------------------------


def connections_sweep_due() -> dict[str, int]:
    """Enqueue whatever is due: deliveries waiting (lost nudge, retry after backoff), calls to retry, stock pushes
    of shops with dirty SKUs whose retry time has come."""
    from quai.integrations.tasks import connection_stock_push, connector_call_run, inbound_delivery_process

    now = clock.now()
    deliveries = list(
        InboundDelivery.objects.filter(status=InboundStatus.RECEIVED, next_attempt_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for pk in deliveries:
        inbound_delivery_process.delay(pk)
    calls = list(
        ConnectorCall.objects.filter(status=CallStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for pk in calls:
        connector_call_run.delay(pk)
    shops = list(
        StockSync.objects.filter(generation__gt=F("pushed_generation"))
        .values_list("connection_id", flat=True)
        .distinct()
    )
    for pk in shops:
        connection_stock_push.delay(pk)
    return {"deliveries": len(deliveries), "calls": len(calls), "stock": len(shops)}


def connections_pollable() -> list[Connection]:
    now = clock.now()
    return list(
        Connection.objects.filter(poll_orders=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .filter(Q(next_retry_at__isnull=True) | Q(next_retry_at__lte=now))
        .order_by("pk")
    )


def connections_stock_pushing() -> list[Connection]:
    return list(Connection.objects.filter(push_stock=True).exclude(status=ConnectionStatus.PAUSED).order_by("pk"))


def connections_get_any(connection_id: int) -> Connection | None:
    """A connection by id, whoever owns it: for tasks, which act on what a scoped caller asked for."""
    return Connection.objects.filter(pk=connection_id).first()


def connection_task(*, connection: Connection, action: str) -> None:
    """Ask a worker to check the shop's health or reconcile its stock (both call the shop: never in a request)."""
    from quai.integrations import tasks

    task = {"health": tasks.connection_health_check, "reconcile": tasks.connection_reconcile}[action]
    pk = connection.pk
    transaction.on_commit(lambda: task.delay(pk), robust=True)
