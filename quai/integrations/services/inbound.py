"""Inbound calls from shops (``connection_receive``, called by the API's hook route with the raw request).

The adapter verifies the call first, on its raw bytes (a bad or missing signature: 401, nothing stored); then the call
is parsed (a ping is answered and stored nowhere), de-duplicated on the adapter's delivery key (unique per connection:
a replay is answered 200 and not stored twice), stored raw, answered at once, and processed by a task after the
commit (``processing``). A GET is a callback (Shopify's ``fetch_stock``, ``fetch_tracking_numbers``), verified by
the adapter's ``verify_callback`` (Shopify signs the query string) and answered from Quai's current state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import NotFound, QuaiError
from quai.integrations.connectors.base import (
    ConnectorError,
    NotSupported,
    SignatureInvalid,
)
from quai.integrations.models import (
    CallKind,
    Connection,
    ConnectionStatus,
    ConnectorCall,
    InboundDelivery,
    InboundStatus,
)
from quai.integrations.services.connections import connection_adapter
from quai.integrations.services.processing import deliveries_process_after_commit
from quai.integrations.services.stock_out import connection_stock_levels

logger = logging.getLogger(__name__)
_KEPT_HEADERS = ("content-type", "user-agent")
_KEPT_PREFIXES = ("x-wc-webhook-", "x-shopify-", "saleor-", "x-saleor-")
_DROPPED = ("signature", "hmac")


class Unauthorised(QuaiError):
    status = 401
    code = "signature_invalid"


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
    raw_query: str = "",
) -> Answer:
    """One call from a shop, verified on its raw bytes before anything else. Raises ``Unauthorised`` (401) on a
    missing or wrong signature, having stored nothing. A POST is stored once per delivery key and answered 202
    (200 for a ping or a delivery already received); a GET answers a callback (Shopify's ``fetch_stock``…)."""
    connection = _active_connection(connection_id)
    adapter = connection_adapter(connection)
    try:
        adapter.verify_callback(method, headers, query, raw_body, raw_query)
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
                deliveries_process_after_commit([delivery.pk])
    except IntegrityError:
        return Answer(200, {"received": True, "duplicate": True})
    Connection.objects.filter(pk=connection.pk).update(last_sync_at=now)
    return Answer(202, {"received": True, "delivery_id": delivery.pk})
