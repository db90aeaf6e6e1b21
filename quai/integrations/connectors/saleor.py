"""Saleor: signed webhooks in, GraphQL out (Authorization: Bearer <app token>).

Inbound (each behaviour from Saleor's source, repository saleor/saleor):

- Headers ``Saleor-Event`` (the event in lower case), ``Saleor-Domain``, ``Saleor-Signature``, ``Saleor-Api-Url``,
  and the deprecated ``X-Saleor-*`` twins (saleor/app/headers.py; saleor/webhook/transport/utils.py
  ``send_webhook_using_http``). Saleor sends no delivery id: a retry re-sends the stored payload, so the hash of the
  event and the body de-duplicates.
- ``Saleor-Signature`` (saleor/webhook/transport/__init__.py ``signature_for_payload``): without a secret key, a JWS
  RS256 with a detached, unencoded payload (RFC 7797: ``b64: false``, ``crit: ["b64"]``), compact form
  ``header..signature``, made by saleor/core/jwt_manager.py ``jws_encode`` with PyJWT; the key is the one whose
  ``kid`` is in the shop's ``/.well-known/jwks.json``. The JWKS is cached per URL and re-fetched once when a ``kid``
  is unknown (Saleor rotated its key). With a secret key (deprecated ``secretKey``): lower-case hex
  HMAC-SHA256 of the body. Keys are fetched only from the connection's configured address, never from a header.
- The body is the JSON of the subscription query's ``event`` selection (saleor/graphql/webhook/
  subscription_payload.py), e.g. ``{"__typename": "OrderCreated", "order": {...}}``; the connector registers its own
  query (``ensure_subscriptions``) so the fields it reads are there.

Outbound (signatures from saleor/saleor-docs docs/api-reference, each named beside its call): ``order``/``orders``,
``orderConfirm``, ``orderFulfill`` (with ``trackingNumber``), ``orderFulfillmentUpdateTracking``, ``orderNoteAdd``,
``stockBulkUpdate`` (falls back to ``productVariantStocksUpdate`` for a variant with no stock row in the warehouse:
the bulk mutation only updates existing rows, saleor/graphql/warehouse/bulk_mutations/stock_bulk_update.py
"Stock was not found"), ``orderGrantRefundCreate`` + ``transactionRequestRefundForGrantedRefund``.

Stock: Saleor's ``Stock.quantity`` is the warehouse's on-hand count and Saleor subtracts its own allocations (orders
not yet fulfilled, which Quai has already reserved); so the quantity written is Quai's sellable level plus Saleor's
current allocation in that warehouse, and what the shop shows is ``quantity - quantityAllocated``.

Settings: ``warehouse_id`` (the Saleor Warehouse ID of Quai's warehouse; needed for stock and fulfilment),
``channel_id`` (restrict the poll), ``poll_since`` (ISO time of the first poll), ``page_size`` (50),
``require_paid`` (True: only fully paid orders are ready), ``jwks_url`` (default: the API host's
``/.well-known/jwks.json``), ``domains`` (if set, the ``Saleor-Domain`` values accepted). Credentials: ``app_token``,
``webhook_secret`` (only for a legacy webhook with a secret key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import jwt
from jwt import api_jws
from jwt.algorithms import RSAAlgorithm

from quai.integrations import domain
from quai.integrations.connectors.base import (
    Address,
    ConnectorError,
    ExternalLine,
    ExternalOrder,
    HealthReport,
    InboundEvent,
    NotSupported,
    Page,
    Parcel,
    PlatformAdapter,
    Refund,
    Shipment,
    SignatureInvalid,
    StockLevel,
    StockPushReport,
    Throttled,
    register,
)

# --- JWKS cache ----------------------------------------------------------------------------------------------------

JWKS_TTL_SECONDS = 3600.0
# An unknown kid triggers one refetch; a flood of forged kids triggers at most one per this many seconds.
JWKS_MIN_REFETCH_SECONDS = 5.0


@dataclass
class _KeySet:
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> RSA public key
    fetched_at: float = 0.0
    forced_at: float | None = None


_jwks: dict[str, _KeySet] = {}
_jwks_lock = threading.Lock()


def jwks_cache_clear() -> None:
    with _jwks_lock:
        _jwks.clear()


# --- GraphQL documents ---------------------------------------------------------------------------------------------

ORDER_FIELDS = """
fragment QuaiOrder on Order {
  id number status created updatedAt userEmail chargeStatus isPaid customerNote shippingMethodName
  total { gross { amount currency } }
  shippingPrice { gross { amount } }
  shippingAddress {
    firstName lastName companyName streetAddress1 streetAddress2 postalCode city countryArea country { code } phone
  }
  lines { id productSku productName quantity quantityFulfilled unitPrice { gross { amount } } variant { id sku } }
  fulfillments { id status trackingNumber }
  transactions { id }
  grantedRefunds { id reason status }
}
"""

# docs/api-reference/orders/queries/order: order(id: ID!)
ORDER_QUERY = "query QuaiOrder($id: ID!) { order(id: $id) { ...QuaiOrder } }" + ORDER_FIELDS

# orders(first, filter: OrderFilterInput{updatedAt: DateTimeRangeInput, channels}, sortBy: OrderSortingInput
# {field: LAST_MODIFIED_AT, direction}) — docs/api-reference/orders/inputs/order-filter-input, enums/order-sort-field.
ORDERS_QUERY = (
    "query QuaiOrders($first: Int!, $filter: OrderFilterInput, $sortBy: OrderSortingInput) {"
    " orders(first: $first, filter: $filter, sortBy: $sortBy) { edges { node { ...QuaiOrder } } } }" + ORDER_FIELDS
)

# orderConfirm(id: ID!): "Confirms an unconfirmed order by changing status to unfulfilled" (order-confirm.mdx).
ORDER_CONFIRM = (
    "mutation QuaiConfirm($id: ID!) { orderConfirm(id: $id) { order { id status } errors { field code message } } }"
)

# orderFulfill(order: ID, input: OrderFulfillInput!{lines[{orderLineId, stocks[{quantity, warehouse}]}],
# notifyCustomer, allowStockToBeExceeded, trackingNumber}) — order-fulfill.mdx, inputs/order-fulfill-input.
ORDER_FULFILL = (
    "mutation QuaiFulfill($order: ID, $input: OrderFulfillInput!) { orderFulfill(order: $order, input: $input) {"
    " fulfillments { id status trackingNumber } errors { field code message } } }"
)

# orderFulfillmentUpdateTracking(id: ID!, input: FulfillmentUpdateTrackingInput!{trackingNumber, notifyCustomer})
# — order-fulfillment-update-tracking.mdx.
ORDER_FULFILLMENT_UPDATE_TRACKING = (
    "mutation QuaiTracking($id: ID!, $input: FulfillmentUpdateTrackingInput!) {"
    " orderFulfillmentUpdateTracking(id: $id, input: $input) { fulfillment { id trackingNumber }"
    " errors { field code message } } }"
)

# orderNoteAdd(order: ID!, input: OrderNoteInput!{message}) — order-note-add.mdx.
ORDER_NOTE_ADD = (
    "mutation QuaiNote($order: ID!, $input: OrderNoteInput!) { orderNoteAdd(order: $order, input: $input) {"
    " event { id } errors { field code message } } }"
)

# productVariants(first, filter: ProductVariantFilterInput{sku: [String!]}) — inputs/product-variant-filter-input.
VARIANTS_QUERY = (
    "query QuaiVariants($first: Int!, $filter: ProductVariantFilterInput) {"
    " productVariants(first: $first, filter: $filter) { edges { node { id sku trackInventory"
    " stocks { warehouse { id } quantity quantityAllocated } } } } }"
)

# stockBulkUpdate(stocks: [StockBulkUpdateInput!]!{variantId, warehouseId, quantity}, errorPolicy: ErrorPolicyEnum)
# — saleor/graphql/warehouse/bulk_mutations/stock_bulk_update.py (MANAGE_PRODUCTS; same selectors for every row).
STOCK_BULK_UPDATE = (
    "mutation QuaiStock($stocks: [StockBulkUpdateInput!]!, $errorPolicy: ErrorPolicyEnum) {"
    " stockBulkUpdate(stocks: $stocks, errorPolicy: $errorPolicy) { count"
    " results { stock { id quantity } errors { field code message } } errors { field code message } } }"
)

# productVariantStocksUpdate(variantId: ID, stocks: [StockInput!]!{warehouse, quantity}) creates the missing row
# (saleor/graphql/product/bulk_mutations/product_variant_stocks_update.py extends ProductVariantStocksCreate).
VARIANT_STOCKS_UPDATE = (
    "mutation QuaiVariantStock($variantId: ID, $stocks: [StockInput!]!) {"
    " productVariantStocksUpdate(variantId: $variantId, stocks: $stocks) { productVariant { id }"
    " errors { field code message } } }"
)

# orderGrantRefundCreate(id: ID!, input: OrderGrantRefundCreateInput!{amount, reason, lines[{id, quantity}],
# grantRefundForShipping, transactionId: ID!}) — order-grant-refund-create.mdx, inputs/order-grant-refund-create-input.
ORDER_GRANT_REFUND_CREATE = (
    "mutation QuaiGrantRefund($id: ID!, $input: OrderGrantRefundCreateInput!) {"
    " orderGrantRefundCreate(id: $id, input: $input) { grantedRefund { id status } errors { field code message } } }"
)

# transactionRequestRefundForGrantedRefund(grantedRefundId: ID!, id: ID) — the transaction action for a granted
# refund (Saleor 3.15+, HANDLE_PAYMENTS; docs transaction-request-refund-for-granted-refund).
TRANSACTION_REQUEST_REFUND = (
    "mutation QuaiRequestRefund($id: ID, $grantedRefundId: ID!) {"
    " transactionRequestRefundForGrantedRefund(id: $id, grantedRefundId: $grantedRefundId) {"
    " transaction { id } errors { field code message } } }"
)

APP_QUERY = "query QuaiApp { app { id name permissions { code } webhooks { id name targetUrl isActive } } }"

# webhookCreate(input: WebhookCreateInput{name, targetUrl, asyncEvents, query, isActive}) — INTEGRATIONS.md §4.1
# (schema.graphql). No secretKey: Saleor then signs with its JWS.
WEBHOOK_CREATE = (
    "mutation QuaiWebhook($input: WebhookCreateInput!) { webhookCreate(input: $input) {"
    " webhook { id } errors { field code message } } }"
)

SUBSCRIBED_EVENTS = ("ORDER_CREATED", "ORDER_CONFIRMED", "ORDER_FULLY_PAID", "ORDER_CANCELLED")
SUBSCRIPTION_QUERY = (
    "subscription { event { __typename"
    " ... on OrderCreated { order { ...QuaiOrder } }"
    " ... on OrderConfirmed { order { ...QuaiOrder } }"
    " ... on OrderFullyPaid { order { ...QuaiOrder } }"
    " ... on OrderCancelled { order { ...QuaiOrder } } } }" + ORDER_FIELDS
)
WEBHOOK_NAME = "Quai"

READY_EVENTS = frozenset({"order_created", "order_confirmed", "order_fully_paid", "order_paid"})
READY_STATUSES = frozenset({"UNCONFIRMED", "UNFULFILLED", "PARTIALLY_FULFILLED"})
PAID_CHARGE = frozenset({"FULL", "OVERCHARGED"})
NEEDED_PERMISSIONS = ("MANAGE_ORDERS", "MANAGE_PRODUCTS")


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal("0")
    except InvalidOperation:
        return Decimal("0")


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _money(node: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


@register
class SaleorAdapter(PlatformAdapter):
    platform: ClassVar[str] = "saleor"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            "push_orders",
            "poll_orders",
            "accept",
            "stock_push",
            "tracking_push",
            "refunds",
            "notes",
            "webhook_registration",
        }
    )

    # --- Inbound --------------------------------------------------------------------------------------------------

    def jwks_url(self) -> str:
        configured = self.config.settings.get("jwks_url")
        if configured:
            return str(configured)
        parts = urlsplit(self.config.base_url)
        return f"{parts.scheme}://{parts.netloc}/.well-known/jwks.json"

    def _fetch_jwks(self, url: str) -> dict[str, Any]:
        try:
            response = self.client.get(url)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"JWKS {url}: {exc}", code="unreachable", retryable=True) from exc
        if response.status_code != 200:
            raise ConnectorError(
                f"JWKS {url}: the shop answered {response.status_code}",
                code="platform_unavailable",
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        try:
            keys = response.json().get("keys", [])
        except (ValueError, AttributeError) as exc:
            raise ConnectorError(f"JWKS {url}: unreadable", code="payload_invalid") from exc
        found: dict[str, Any] = {}
        for jwk in keys:
            if isinstance(jwk, dict) and jwk.get("kty") == "RSA":
                try:
                    found[str(jwk.get("kid", ""))] = RSAAlgorithm.from_jwk(jwk)
                except (jwt.PyJWTError, ValueError, KeyError):
                    continue
        return found

    def _key(self, kid: str) -> Any:
        url = self.jwks_url()
        now = time.monotonic()
        with _jwks_lock:
            cached = _jwks.get(url)
        if cached is None or now - cached.fetched_at > JWKS_TTL_SECONDS:
            cached = _KeySet(keys=self._fetch_jwks(url), fetched_at=now)
            with _jwks_lock:
                _jwks[url] = cached
        if kid in cached.keys:
            return cached.keys[kid]
        # An unknown kid: Saleor may have rotated its key; fetch once more (but not at every forged kid).
        if cached.forced_at is None or now - cached.forced_at >= JWKS_MIN_REFETCH_SECONDS:
            refreshed = _KeySet(keys=self._fetch_jwks(url), fetched_at=now, forced_at=now)
            with _jwks_lock:
                _jwks[url] = refreshed
            if kid in refreshed.keys:
                return refreshed.keys[kid]
        raise SignatureInvalid(f"no key {kid!r} in the shop's JWKS")

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        lowered = _lower(headers)
        signature = (lowered.get("saleor-signature") or lowered.get("x-saleor-signature") or "").strip()
        if not signature:
            raise SignatureInvalid("missing Saleor-Signature")
        domains = self.config.settings.get("domains")
        if domains:
            domain = lowered.get("saleor-domain") or lowered.get("x-saleor-domain") or ""
            if domain not in domains:
                raise SignatureInvalid(f"Saleor-Domain {domain!r} is not this connection's shop")
        secret = self.config.credentials.get("webhook_secret")
        if secret:
            # Legacy secretKey: hex, not base64 (saleor/webhook/transport/__init__.py signature_for_payload).
            expected = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8")):
                raise SignatureInvalid("Saleor-Signature does not match the body")
            return
        try:
            header = jwt.get_unverified_header(signature)
        except jwt.PyJWTError as exc:
            raise SignatureInvalid("Saleor-Signature is not a JWS") from exc
        if header.get("alg") != "RS256":
            raise SignatureInvalid(f"Saleor-Signature must be RS256, not {header.get('alg')!r}")
        segments = signature.split(".")
        if len(segments) != 3 or segments[1] != "" or header.get("b64") is not False:
            raise SignatureInvalid("Saleor-Signature must be a detached JWS with an unencoded payload (RFC 7797)")
        key = self._key(str(header.get("kid", "")))
        try:
            api_jws.decode_complete(signature, key=key, algorithms=["RS256"], detached_payload=raw_body)
        except jwt.PyJWTError as exc:
            raise SignatureInvalid("Saleor-Signature does not match the body") from exc

    def delivery_id(self, headers: Mapping[str, str], raw_body: bytes) -> str:
        lowered = _lower(headers)
        event = (lowered.get("saleor-event") or lowered.get("x-saleor-event") or "").lower()
        return hashlib.sha256(event.encode("utf-8") + b"\n" + raw_body).hexdigest()

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundEvent]:
        lowered = _lower(headers)
        event = (lowered.get("saleor-event") or lowered.get("x-saleor-event") or "").lower()
        try:
            payload = json.loads(raw_body)
        except ValueError as exc:
            raise ConnectorError("Saleor sent a body that is not JSON", code="payload_invalid") from exc
        if not isinstance(payload, dict):
            raise ConnectorError(
                "Saleor sent a legacy payload (a list); the webhook needs Quai's subscription query",
                code="payload_unsupported",
            )
        node = payload.get("order")
        if not isinstance(node, dict) or not node.get("id"):
            if event in READY_EVENTS or event in ("order_cancelled", "order_updated"):
                raise ConnectorError(f"Saleor {event}: the payload names no order", code="payload_invalid")
            return []
        external_id = str(node["id"])
        if event == "order_cancelled":
            order = self._to_external(node) if "lines" in node else None
            return [InboundEvent(kind="order_cancelled", external_id=external_id, order=order)]
        if event in READY_EVENTS:
            if "lines" not in node or "status" not in node:
                # A trimmed payload (another subscription query): re-read the order.
                return [InboundEvent(kind="order_changed", external_id=external_id)]
            order = self._to_external(node)
            if self.is_ready(order):
                return [InboundEvent(kind="order_ready", external_id=external_id, order=order)]
            if order.cancelled:
                return [InboundEvent(kind="order_cancelled", external_id=external_id, order=order)]
            return []  # not paid yet: ORDER_FULLY_PAID will say when
        if event == "order_updated":
            return [InboundEvent(kind="order_changed", external_id=external_id)]
        return []

    # --- GraphQL --------------------------------------------------------------------------------------------------

    def _gql(self, document: str, variables: Mapping[str, Any], what: str) -> dict[str, Any]:
        token = self.config.credentials.get("app_token", "")
        if not token:
            raise ConnectorError("no app token on this connection", code="credentials_missing")
        try:
            response = self.client.post(
                self.config.base_url,
                json={"query": document, "variables": dict(variables)},
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.TimeoutException as exc:
            raise ConnectorError(f"{what}: Saleor did not answer in time", code="timeout", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ConnectorError(f"{what}: {exc}", code="unreachable", retryable=True) from exc
        status = response.status_code
        if status == 429:
            raise Throttled(f"{what}: throttled by Saleor (429)", retry_after=_retry_after(response))
        if status in (401, 403):
            raise ConnectorError(f"{what}: the app token was refused ({status})", code="auth_failed")
        if status >= 500 or status == 408:
            raise ConnectorError(
                f"{what}: Saleor answered {status}",
                code="platform_unavailable",
                retryable=True,
                retry_after=_retry_after(response),
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise ConnectorError(f"{what}: Saleor answered {status} without JSON", code="payload_invalid") from exc
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            codes = {str(_money(e, "extensions", "exception", "code") or "") for e in errors if isinstance(e, dict)}
            message = "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
            if "PermissionDenied" in codes or "InvalidTokenError" in codes or "ExpiredSignatureError" in codes:
                raise ConnectorError(f"{what}: {message}", code="auth_failed")
            raise ConnectorError(f"{what}: {message}", code="graphql_error")
        if status >= 400:
            raise ConnectorError(f"{what}: Saleor refused the request ({status})", code="platform_refused")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ConnectorError(f"{what}: Saleor answered no data", code="payload_invalid")
        return data

    def _mutate(self, document: str, variables: Mapping[str, Any], root: str, what: str) -> dict[str, Any]:
        result = self._gql(document, variables, what).get(root)
        if not isinstance(result, dict):
            raise ConnectorError(f"{what}: Saleor answered no {root}", code="payload_invalid")
        errors = result.get("errors") or []
        if errors:
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
            raise ConnectorError(f"{what}: {detail}", code="platform_refused")
        return result

    def _warehouse(self) -> str:
        warehouse = self.config.settings.get("warehouse_id")
        if not warehouse:
            raise ConnectorError("no Saleor warehouse_id on this connection", code="settings_missing")
        return str(warehouse)

    # --- Orders ---------------------------------------------------------------------------------------------------

    def is_ready(self, order: ExternalOrder) -> bool:
        require_paid = bool(self.config.settings.get("require_paid", True))
        return order.status_raw in READY_STATUSES and (order.paid or not require_paid)

    def _to_external(self, node: Mapping[str, Any]) -> ExternalOrder:
        address = node.get("shippingAddress") or {}
        name = " ".join(p for p in (address.get("firstName") or "", address.get("lastName") or "") if p)
        email = str(node.get("userEmail") or "")
        lines = tuple(
            ExternalLine(
                external_line_id=str(line.get("id")),
                sku=str(line.get("productSku") or _money(line, "variant", "sku") or ""),
                quantity=int(line.get("quantity") or 0) - int(line.get("quantityFulfilled") or 0),
                unit_price=_decimal(_money(line, "unitPrice", "gross", "amount")),
                name=str(line.get("productName") or ""),
            )
            for line in node.get("lines") or []
            if isinstance(line, dict)
        )
        status = str(node.get("status") or "")
        return ExternalOrder(
            external_id=str(node["id"]),
            external_number=str(node.get("number") or ""),
            currency=str(_money(node, "total", "gross", "currency") or ""),
            ship_to=Address(
                name=name,
                company=str(address.get("companyName") or ""),
                line1=str(address.get("streetAddress1") or ""),
                line2=str(address.get("streetAddress2") or ""),
                postcode=str(address.get("postalCode") or ""),
                city=str(address.get("city") or ""),
                region=str(address.get("countryArea") or ""),
                country=str(_money(address, "country", "code") or ""),
                phone=str(address.get("phone") or ""),
                email=email,
            ),
            lines=lines,
            created_at=_date(node.get("created")),
            updated_at=_date(node.get("updatedAt")),
            paid=bool(node.get("isPaid")) or node.get("chargeStatus") in PAID_CHARGE,
            status_raw=status,
            customer_email=email,
            customer_phone=str(address.get("phone") or ""),
            service_hint=str(node.get("shippingMethodName") or ""),
            notes=str(node.get("customerNote") or ""),
            shipping_total=_decimal(_money(node, "shippingPrice", "gross", "amount")),
            cancelled=status == "CANCELED",
            platform_refs={
                "fulfillments": list(node.get("fulfillments") or []),
                "transactions": [t.get("id") for t in node.get("transactions") or [] if isinstance(t, dict)],
                "granted_refunds": list(node.get("grantedRefunds") or []),
            },
            raw=dict(node),
        )

    def fetch_order(self, external_id: str) -> ExternalOrder:
        node = self._gql(ORDER_QUERY, {"id": external_id}, f"order {external_id}").get("order")
        if not isinstance(node, dict):
            raise ConnectorError(f"order {external_id}: not found", code="not_found")
        return self._to_external(node)

    def fetch_orders(self, cursor: str | None) -> Page:
        """Orders changed at or after the cursor's mark, oldest change first (``orders`` sorted by
        ``LAST_MODIFIED_AT``); the cursor keeps the ids taken at its exact ``updatedAt`` (the rule of
        ``domain.advance_cursor``). Ready and cancelled orders are answered; cursor ``None``: caught up."""
        if cursor is None:
            since = str(self.config.settings.get("poll_since") or "")
            seen: set[str] = set()
        else:
            try:
                data = json.loads(cursor)
                since, seen = str(data["since"]), {str(i) for i in data.get("seen", [])}
            except (ValueError, KeyError, TypeError) as exc:
                raise ConnectorError(f"unreadable Saleor cursor {cursor!r}", code="cursor_invalid") from exc
        page_size = int(self.config.settings.get("page_size") or 50)
        filters: dict[str, Any] = {}
        if since:
            filters["updatedAt"] = {"gte": since}
        if self.config.settings.get("channel_id"):
            filters["channels"] = [self.config.settings["channel_id"]]
        variables = {
            "first": min(100, page_size + len(seen)),  # Saleor caps `first` at 100
            "filter": filters or None,
            "sortBy": {"field": "LAST_MODIFIED_AT", "direction": "ASC"},
        }
        edges = _money(self._gql(ORDERS_QUERY, variables, "orders"), "orders", "edges") or []
        nodes = [e["node"] for e in edges if isinstance(e, dict) and isinstance(e.get("node"), dict)]
        keyed = [(str(n["id"]), str(n.get("updatedAt") or "")) for n in nodes]
        mark, mark_seen, new_ids = domain.advance_cursor(since, seen, keyed)
        if not new_ids:
            return Page(orders=(), cursor=None)
        wanted = set(new_ids)
        orders = [self._to_external(n) for n in nodes if str(n["id"]) in wanted]
        kept = tuple(o for o in orders if self.is_ready(o) or o.cancelled)
        return Page(orders=kept, cursor=json.dumps({"since": mark, "seen": sorted(mark_seen)}))

    def accept(self, order: ExternalOrder, message: str = "") -> None:
        """``orderConfirm`` when the order is still unconfirmed, nothing otherwise (INTEGRATIONS.md §6.2)."""
        current = self.fetch_order(order.external_id)
        if current.status_raw == "UNCONFIRMED":
            self._mutate(ORDER_CONFIRM, {"id": order.external_id}, "orderConfirm", f"confirm {order.external_id}")
        if message:
            self.add_note(order, message)

    def push_fulfilment(self, order: ExternalOrder, shipment: Shipment, idempotency_key: str) -> str:
        """``orderFulfill`` from Quai's warehouse with the first parcel's ``trackingNumber``; returns the
        fulfillment's id. A retried push finds the fulfillment it made (same tracking number) and makes no other."""
        if not shipment.parcels:
            raise ConnectorError("a shipment without a parcel has no tracking number to send", code="payload_invalid")
        number = shipment.parcels[0].tracking_number
        current = self.fetch_order(order.external_id)
        for existing in current.platform_refs.get("fulfillments", []):
            if existing.get("trackingNumber") == number and existing.get("status") != "CANCELED":
                return str(existing["id"])
        warehouse = self._warehouse()
        # No lines named: the whole remaining order (each line's quantity is what is left to fulfil).
        shipped = [(line.external_line_id, line.quantity) for line in shipment.lines] or [
            (line.external_line_id, line.quantity) for line in current.lines
        ]
        lines = [
            {"orderLineId": line_id, "stocks": [{"quantity": quantity, "warehouse": warehouse}]}
            for line_id, quantity in shipped
            if quantity > 0
        ]
        result = self._mutate(
            ORDER_FULFILL,
            {
                "order": order.external_id,
                "input": {"lines": lines, "notifyCustomer": shipment.notify_customer, "trackingNumber": number},
            },
            "orderFulfill",
            f"fulfil {order.external_id}",
        )
        fulfillments = result.get("fulfillments") or []
        if not fulfillments:
            raise ConnectorError(f"fulfil {order.external_id}: Saleor made no fulfillment", code="payload_invalid")
        if len(shipment.parcels) > 1:
            others = ", ".join(p.tracking_number for p in shipment.parcels[1:])
            self.add_note(order, f"Other parcels of this shipment: {others}")
        return str(fulfillments[0]["id"])

    def update_tracking(self, order: ExternalOrder, fulfilment_id: str, parcels: Sequence[Parcel]) -> None:
        """A later tracking number for a fulfillment already pushed (``orderFulfillmentUpdateTracking``)."""
        if not parcels:
            return
        self._mutate(
            ORDER_FULFILLMENT_UPDATE_TRACKING,
            {"id": fulfilment_id, "input": {"trackingNumber": parcels[0].tracking_number, "notifyCustomer": True}},
            "orderFulfillmentUpdateTracking",
            f"tracking of {fulfilment_id}",
        )

    def add_note(self, order: ExternalOrder, text: str, customer_visible: bool = False) -> None:
        """``orderNoteAdd``; Saleor's notes are staff-only, so ``customer_visible`` changes nothing."""
        self._mutate(ORDER_NOTE_ADD, {"order": order.external_id, "input": {"message": text}}, "orderNoteAdd", "note")

    def push_refund(self, order: ExternalOrder, refund: Refund, idempotency_key: str) -> str:
        """A granted refund on the order's payment transaction, then the refund request to the payment app.

        ``orderGrantRefundCreate`` records what is owed; ``transactionRequestRefundForGrantedRefund`` asks the app
        that holds the transaction to pay it back. The key is written in the granted refund's reason, so a retry
        finds the one it made and does not grant twice. Orders paid through the legacy payments API (no transaction)
        cannot be refunded this way."""
        tag = f"[quai:{idempotency_key}]"
        current = self.fetch_order(order.external_id)
        transactions = [t for t in current.platform_refs.get("transactions", []) if t]
        if not transactions:
            raise NotSupported(
                f"order {order.external_id} has no Transactions API payment; the merchant refunds it in Saleor"
            )
        transaction_id = str(transactions[0])
        granted = next(
            (g for g in current.platform_refs.get("granted_refunds", []) if tag in str(g.get("reason") or "")), None
        )
        if granted is None:
            result = self._mutate(
                ORDER_GRANT_REFUND_CREATE,
                {
                    "id": order.external_id,
                    "input": {
                        "amount": str(refund.amount),
                        "reason": f"{refund.reason} {tag}".strip(),
                        "lines": [{"id": line.external_line_id, "quantity": line.quantity} for line in refund.lines],
                        "transactionId": transaction_id,
                    },
                },
                "orderGrantRefundCreate",
                f"refund {order.external_id}",
            )
            granted = result.get("grantedRefund") or {}
        granted_id = str(granted.get("id") or "")
        if not granted_id:
            raise ConnectorError(f"refund {order.external_id}: Saleor granted nothing", code="payload_invalid")
        if granted.get("status") not in ("PENDING", "SUCCESS"):
            self._mutate(
                TRANSACTION_REQUEST_REFUND,
                {"id": transaction_id, "grantedRefundId": granted_id},
                "transactionRequestRefundForGrantedRefund",
                f"refund {order.external_id}",
            )
        return granted_id

    # --- Stock ----------------------------------------------------------------------------------------------------

    def _variants(self, skus: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(skus))
        for start in range(0, len(unique), 100):
            chunk = unique[start : start + 100]
            data = self._gql(VARIANTS_QUERY, {"first": 100, "filter": {"sku": chunk}}, "variants")
            for edge in _money(data, "productVariants", "edges") or []:
                node = edge.get("node") if isinstance(edge, dict) else None
                if isinstance(node, dict) and node.get("sku") in chunk:
                    found[str(node["sku"])] = node
        return found

    def _stock_in(self, variant: Mapping[str, Any], warehouse: str) -> dict[str, Any] | None:
        for stock in variant.get("stocks") or []:
            if isinstance(stock, dict) and _money(stock, "warehouse", "id") == warehouse:
                return stock
        return None

    def push_stock(self, levels: Sequence[StockLevel], snapshot_id: str) -> StockPushReport:
        warehouse = self._warehouse()
        variants = self._variants([level.sku for level in levels])
        unknown = tuple(level.sku for level in levels if level.sku not in variants)
        rows: list[tuple[str, str, int]] = []
        for level in levels:
            variant = variants.get(level.sku)
            if variant is None:
                continue
            stock = self._stock_in(variant, warehouse)
            allocated = int(stock.get("quantityAllocated") or 0) if stock else 0
            rows.append((level.sku, str(variant["id"]), max(0, int(level.available)) + allocated))
        updated: list[str] = []
        failed: dict[str, str] = {}
        if rows:
            result = self._mutate(
                STOCK_BULK_UPDATE,
                {
                    "stocks": [{"variantId": v, "warehouseId": warehouse, "quantity": q} for _, v, q in rows],
                    "errorPolicy": "REJECT_FAILED_ROWS",
                },
                "stockBulkUpdate",
                "stock",
            )
            results = result.get("results") or []
            for index, (sku, variant_id, quantity) in enumerate(rows):
                errors = (results[index].get("errors") if index < len(results) else None) or []
                if not errors:
                    updated.append(sku)
                elif all(e.get("code") == "NOT_FOUND" for e in errors):
                    # No stock row for this variant in our warehouse yet: this mutation creates it.
                    try:
                        self._mutate(
                            VARIANT_STOCKS_UPDATE,
                            {"variantId": variant_id, "stocks": [{"warehouse": warehouse, "quantity": quantity}]},
                            "productVariantStocksUpdate",
                            f"stock of {sku}",
                        )
                        updated.append(sku)
                    except ConnectorError as exc:
                        if exc.retryable:
                            raise
                        failed[sku] = str(exc)
                else:
                    failed[sku] = "; ".join(str(e.get("message")) for e in errors)
        return StockPushReport(updated=tuple(updated), unknown=unknown, failed=failed)

    def stock_levels(self, skus: Sequence[str]) -> dict[str, int | None]:
        """What the shop can sell from Quai's warehouse: quantity − quantityAllocated; None when Saleor does not
        track the variant's inventory."""
        warehouse = self._warehouse()
        levels: dict[str, int | None] = {}
        for sku, variant in self._variants(skus).items():
            if variant.get("trackInventory") is False:
                levels[sku] = None
                continue
            stock = self._stock_in(variant, warehouse)
            levels[sku] = int(stock.get("quantity") or 0) - int(stock.get("quantityAllocated") or 0) if stock else 0
        return levels

    # --- Set-up and health ----------------------------------------------------------------------------------------

    def ensure_subscriptions(self, public_base_url: str) -> None:
        """One webhook for the four order events, with Quai's subscription query, unless the app already has one
        pointing at this URL. ``public_base_url`` is the connection's inbound prefix (``.../hooks``); Saleor names the
        event in ``Saleor-Event``, so one topic path serves all four."""
        target = public_base_url.rstrip("/") + "/orders"
        app = self._gql(APP_QUERY, {}, "app").get("app") or {}
        if any(w.get("targetUrl") == target for w in app.get("webhooks") or [] if isinstance(w, dict)):
            return
        self._mutate(
            WEBHOOK_CREATE,
            {
                "input": {
                    "name": WEBHOOK_NAME,
                    "targetUrl": target,
                    "asyncEvents": list(SUBSCRIBED_EVENTS),
                    "query": SUBSCRIPTION_QUERY,
                    "isActive": True,
                }
            },
            "webhookCreate",
            "webhook",
        )

    def health(self) -> HealthReport:
        try:
            app = self._gql(APP_QUERY, {}, "app").get("app")
        except ConnectorError as exc:
            return HealthReport(ok=False, detail=str(exc), checks={"credentials": False})
        if not isinstance(app, dict):
            return HealthReport(ok=False, detail="the token is not an app token", checks={"credentials": False})
        granted = {p.get("code") for p in app.get("permissions") or [] if isinstance(p, dict)}
        checks = {"credentials": True, **{code: code in granted for code in NEEDED_PERMISSIONS}}
        checks["webhooks"] = any(isinstance(w, dict) and w.get("isActive") for w in app.get("webhooks") or [])
        missing = sorted(name for name, ok in checks.items() if not ok)
        return HealthReport(ok=not missing, detail=", ".join(f"missing {m}" for m in missing), checks=checks)
