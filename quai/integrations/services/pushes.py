"""Writes to the shop: accept, fulfilment with tracking, refund, note. Each is a ``ConnectorCall`` row, unique per
idempotency key, run by a task outside any transaction, retried with backoff for 24 hours (``Retry-After``
honoured). The later shipping and service issues call ``connection_push_fulfilment`` / ``connection_push_refund``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import httpx
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Q

from quai.core import clock
from quai.integrations import domain
from quai.integrations.connectors.base import (
    ConnectorError,
    NotSupported,
    Refund,
    Shipment,
)
from quai.integrations.models import (
    CallKind,
    CallStatus,
    Connection,
    ConnectorCall,
    ShopOrder,
)
from quai.integrations.services.connections import (
    LEASE,
    connection_adapter,
    connection_failure_record,
    connection_success_record,
)

logger = logging.getLogger(__name__)
CALL_WINDOW = timedelta(hours=24)


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
        connection_failure_record(connection.pk, exc, retry_after=exc.retry_after)
    else:
        values.update(status=CallStatus.SUCCEEDED, finished_at=now, result=str(result)[:200], last_error="")
        connection_success_record(connection.pk, last_sync_at=now)
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
