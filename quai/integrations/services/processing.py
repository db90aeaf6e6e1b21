"""A stored shop call acted on (``inbound_delivery_process``, a task; outside any transaction: the adapter may call
the shop).

An order ready for the warehouse goes through ``quai.orders`` intake (channel = the connection's platform, or its
``settings.channel``; the shop's order id as external id), which reserves its stock; then the shop is told
(``accept``) by a ``ConnectorCall``. **Unknown SKU**: intake refuses an order naming a SKU the merchant does not have
(404 ``sku_not_found``). The delivery is then ``held`` with the reason and the missing SKUs, visible in the back office
and the API, and taken again as soon as one of those SKUs is created (``catalog.sku_created``) or by hand: the order
is never dropped, and no half order is made. One held order of a call naming several (Shopify's fulfilment request
lists every assigned fulfilment order) does not hold back the others: they are taken, the call stays held for the
rest. An order already in Quai that the shop changed is re-read and its address changed through
``quai.orders``' ``order_address_change`` (refused, with the reason, once a label exists).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import httpx
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.integrations import domain
from quai.integrations.connectors.base import (
    ConnectorError,
    ExternalOrder,
    InboundEvent,
)
from quai.integrations.models import (
    CallKind,
    Connection,
    InboundDelivery,
    InboundStatus,
    ShopOrder,
)
from quai.integrations.services.connections import (
    LEASE,
    connection_adapter,
    connection_failure_record,
    connection_success_record,
)
from quai.integrations.services.pushes import call_create
from quai.tenants.scope import Scope

logger = logging.getLogger(__name__)


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


def deliveries_process_after_commit(delivery_ids: Sequence[int]) -> None:
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


def _order_changed(connection: Connection, adapter: Any, shop_order: ShopOrder, order: ExternalOrder) -> None:
    """A shop order already in Quai changed on the shop: its shipping address is changed through the orders'
    service (the only change a shop may make to an order the warehouse holds; lines and quantities are not re-read:
    the stock is reserved for what was taken in). Refused, with the reason, once a label exists: the delivery fails
    with ``order_labelled`` and the shop gets a private note when it takes notes. The refused address is remembered so
    the shop's next updates (status, notes) do not repeat the refusal."""
    from quai.orders.services import order_address_change

    new_ship_to = domain.order_to_json(order)["ship_to"]
    snapshot = dict(shop_order.snapshot or {})
    if new_ship_to == snapshot.get("ship_to") or new_ship_to == snapshot.get("refused_ship_to"):
        return
    address = domain.order_intake_data(order, channel=_channel(connection))["shipping_address"]
    try:
        order_address_change(order=shop_order.order_id or 0, address=address)
    except (Conflict, ValidationFailed) as exc:
        ShopOrder.objects.filter(pk=shop_order.pk).update(
            snapshot={**snapshot, "refused_ship_to": new_ship_to}, updated_at=clock.now()
        )
        if "notes" in getattr(adapter, "capabilities", ()):
            call_create(
                connection=connection,
                kind=CallKind.NOTE,
                shop_order=shop_order,
                key=f"note:address-refused:{order.external_id}:{_digest(new_ship_to)}",
                payload={"text": str(exc.message), "customer_visible": False},
            )
        raise _Refused(exc.code, exc.message) from None
    snapshot.pop("refused_ship_to", None)
    ShopOrder.objects.filter(pk=shop_order.pk).update(
        snapshot={**snapshot, "ship_to": new_ship_to}, updated_at=clock.now()
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _assigned(adapter: Any, status: str) -> Iterator[ExternalOrder]:
    """The shop's orders waiting for the warehouse's answer, of one assignment status (Shopify lists fulfilment
    requests, then cancellation requests, through one cursor; other platforms have no status: all are requests)."""
    cursor: str | None = None
    for _page in range(50):
        page = adapter.fetch_orders(cursor)
        for order in page.orders:
            if str(order.platform_refs.get("assignment_status") or "FULFILLMENT_REQUESTED") == status:
                yield order
        if page.cursor is None or page.cursor == cursor:
            return
        cursor = page.cursor


def _cancellation_answer(connection: Connection, adapter: Any, order: ExternalOrder) -> None:
    try:
        done = _order_cancel(connection, order.external_id, _("Cancellation asked by the shop."))
        accepted, message = True, "" if done else _("Not in the warehouse yet.")
    except _Refused as exc:
        accepted, message = False, str(exc)
    adapter.answer_cancellation(order, accepted, message)


def _event_apply(connection: Connection, adapter: Any, event: InboundEvent) -> None:
    kind = event.kind
    if kind == "ping":
        return
    if kind in ("order_ready", "order_changed"):
        existing = ShopOrder.objects.filter(
            connection=connection, external_id=event.external_id, order__isnull=False
        ).first()
        # Re-read what the call only hints at; a webhook's body is the order as it was when sent (and an order
        # already in Quai is changed only from what the shop holds now, never from a late webhook's body).
        order = event.order if event.order is not None and kind == "order_ready" and existing is None else None
        if order is None:
            order = adapter.fetch_order(event.external_id)
        if order.cancelled:
            _order_cancel(connection, order.external_id, _("Cancelled in the shop."))
            return
        if existing is not None:
            _order_changed(connection, adapter, existing, order)
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
        # Each assigned order on its own: one held (unknown SKU) or refused does not hold back the others; the
        # delivery then stays held (or failed) for those alone, and taking it again skips what is in already.
        held: list[_Held] = []
        refused: list[_Refused] = []
        for order in _assigned(adapter, "FULFILLMENT_REQUESTED"):
            try:
                _order_take(connection, order)
            except _Held as exc:
                held.append(exc)
            except _Refused as exc:
                refused.append(exc)
        if held:
            skus = sorted({sku for exc in held for sku in exc.skus})
            raise _Held(
                _("Held: SKU %(skus)s unknown in Quai for this merchant; the order is taken as soon as it is created.")
                % {"skus": ", ".join(skus)},
                skus,
            )
        if refused:
            raise refused[0]
        return
    if kind == "cancellation_requested":
        if event.order is not None or event.external_id:
            _cancellation_answer(connection, adapter, event.order or adapter.fetch_order(event.external_id))
            return
        # Shopify's notification names no order: answer every cancellation request waiting.
        for order in _assigned(adapter, "CANCELLATION_REQUESTED"):
            _cancellation_answer(connection, adapter, order)
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
            connection_failure_record(connection.pk, exc, retry_after=exc.retry_after)
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
        connection_success_record(connection.pk, last_sync_at=now)
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
        deliveries_process_after_commit([delivery.pk])
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
        deliveries_process_after_commit(held)
