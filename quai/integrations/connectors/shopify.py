"""Shopify, as a fulfilment-service app on the GraphQL Admin API.

The merchant's shop assigns fulfilment orders to the location our fulfilment service owns, then pings
``<callbackUrl>/fulfillment_order_notification``; we fetch the assigned fulfilment orders, accept or reject them,
answer cancellation requests, set the location's "available" quantities, and create fulfilments with tracking.
Shopify also GETs ``<callbackUrl>/fetch_stock`` and ``<callbackUrl>/fetch_tracking_numbers``; the engine answers them
through ``answer_stock_query`` / ``answer_tracking_query``.

Why GraphQL: "The REST Admin API is a legacy API as of October 1, 2024 … all new public apps must be built
exclusively with the GraphQL Admin API" (banner on every REST page, https://shopify.dev/docs/api/admin-rest).

Pinned API version: ``API_VERSION`` below (the stable release current when this was written; each version is
supported at least twelve months, https://shopify.dev/docs/api/usage/versioning). A connection may override it with
``settings["api_version"]``. Since 2026-04 two inventory rules apply and are followed here (see ``push_stock``):
``changeFromQuantity`` is mandatory on every quantity and the ``@idempotent`` directive is mandatory on
``inventorySetQuantities``.

Where ``../shared/reference/INTEGRATIONS.md`` §1 and the docs disagree, the docs win:
- §1.4 describes ``compareQuantity`` / ``ignoreCompareQuantity``: removed in 2026-04, replaced by
  ``changeFromQuantity`` (https://shopify.dev/changelog/finalizing-compare-and-swap-redesign-for-inventory-set-quantities).
- §1.4 says idempotency keys are "required in 2026-04" only for ``inventorySetOnHandQuantities``: the changelog makes
  ``@idempotent`` mandatory for ``inventorySetQuantities`` too
  (https://shopify.dev/changelog/making-idempotency-mandatory-for-inventory-adjustments-and-refund-mutations).
- §1.2 marks the cancellation mutations' names as unchecked [M]: both exist with ``(id: ID!, message: String)``
  (https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentOrderAcceptCancellationRequest,
  .../fulfillmentOrderRejectCancellationRequest).
- §1.2: ``callbackUrl`` is optional since 2026-01 (https://shopify.dev/changelog/fulfillment-service-callback-url-is-now-optional);
  we always give it, since we serve the callbacks.

Configuration (``ConnectionConfig``):
- ``base_url``: ``https://<shop>.myshopify.com`` (a loopback server in tests);
- ``credentials["access_token"]``: sent as ``X-Shopify-Access-Token``;
- ``credentials["client_secret"]``: the app's client secret, key of the ``X-Shopify-Hmac-Sha256`` HMAC;
- ``settings``: ``shop_domain`` (checked against ``X-Shopify-Shop-Domain`` and the callbacks' ``shop``),
  ``location_id`` (our fulfilment service's location; looked up from ``service_name`` when absent),
  ``service_name`` (default "Quai"), ``api_version``, ``max_throttle_wait`` (seconds a call may wait for the cost
  bucket before giving up with ``Throttled``; default 10).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from quai.integrations.connectors.base import (
    Address,
    ConnectionConfig,
    ConnectorError,
    ExternalLine,
    ExternalOrder,
    HealthReport,
    InboundEvent,
    Page,
    PlatformAdapter,
    Shipment,
    SignatureInvalid,
    StockLevel,
    StockPushReport,
    Throttled,
    register,
)

logger = logging.getLogger(__name__)

API_VERSION = "2026-10"
HMAC_HEADER = "x-shopify-hmac-sha256"
SHOP_HEADER = "x-shopify-shop-domain"
PAGE_SIZE = 25  # fulfilment orders per page: each costs its line items, so keep a page well under the bucket
LINES_PER_ORDER = 100
STOCK_BATCH = 50  # SKUs per look-up and per inventorySetQuantities call
# What this process last read or set of a SKU at a location: (shop URL, location id, SKU) -> ((inventory item id,
# quantity), ...), least recently used first, the oldest dropped beyond KNOWN_KEPT (``push_stock``).
_KNOWN: OrderedDict[tuple[str, str, str], tuple[tuple[str, int], ...]] = OrderedDict()
_KNOWN_LOCK = threading.Lock()
KNOWN_KEPT = 100_000
DEFAULT_COST = 50.0  # the cost assumed for a query not seen yet (Shopify refunds the difference afterwards)

# Shopify's carrier names, so Shopify builds the tracking link itself (FulfillmentTrackingInput.company,
# https://shopify.dev/docs/api/admin-graphql/latest/input-objects/FulfillmentTrackingInput); others pass through.
CARRIER_NAMES = {
    "colissimo": "Colissimo",
    "chronopost": "Chronopost",
    "mondial_relay": "Mondial Relay",
    "la_poste": "La Poste",
    "dhl": "DHL Express",
    "ups": "UPS",
    "dpd": "DPD",
    "gls": "GLS",
}

# FulfillmentOrderRejectionReason (https://shopify.dev/docs/api/admin-graphql/latest/enums/FulfillmentOrderRejectionReason).
REJECTION_REASONS = frozenset(
    {"INCORRECT_ADDRESS", "INELIGIBLE_PRODUCT", "INVENTORY_OUT_OF_STOCK", "UNDELIVERABLE_DESTINATION", "OTHER"}
)


# --- GraphQL documents -----------------------------------------------------------------------------------------------
# One fragment for a fulfilment order as we read it. Fields from FulfillmentOrder, FulfillmentOrderDestination and
# FulfillmentOrderLineItem (https://shopify.dev/docs/api/admin-graphql/latest/objects/FulfillmentOrder,
# .../objects/FulfillmentOrderDestination, .../objects/FulfillmentOrderLineItem); ``lineItem`` is read only for its
# id (the order line, which refunds need), never to decide what to ship, as the FulfillmentOrderLineItem doc asks.
# Unit prices: ``financialSummaries`` (FulfillmentOrderLineItemFinancialSummary: ``approximateDiscountedUnitPriceSet``,
# "the approximate split price of a line item unit ... doesn't include discounts applied to the entire order",
# https://shopify.dev/docs/api/admin-graphql/latest/objects/FulfillmentOrderLineItemFinancialSummary), in the shop's
# currency (``shopMoney``), which is the order's ``currencyCode``; the customs value and insurance read them.
FULFILLMENT_ORDER_FIELDS = """
fragment QuaiFulfillmentOrder on FulfillmentOrder {
  id
  status
  requestStatus
  createdAt
  updatedAt
  assignedLocation { location { id } }
  order { id name createdAt currencyCode note shippingLine { title code } }
  destination { firstName lastName company address1 address2 zip city province countryCode phone email }
  merchantRequests(first: 5) { nodes { kind message sentAt } }
  lineItems(first: LINES) {
    nodes {
      id sku totalQuantity remainingQuantity productTitle variantTitle inventoryItemId lineItem { id }
      financialSummaries { quantity approximateDiscountedUnitPriceSet { shopMoney { amount currencyCode } } }
    }
  }
}
""".replace("LINES", str(LINES_PER_ORDER))

# QueryRoot.assignedFulfillmentOrders(assignmentStatus, locationIds, first, after)
# https://shopify.dev/docs/api/admin-graphql/latest/queries/assignedFulfillmentOrders
# FulfillmentOrderAssignmentStatus: FULFILLMENT_REQUESTED | CANCELLATION_REQUESTED | FULFILLMENT_ACCEPTED |
# FULFILLMENT_UNSUBMITTED (https://shopify.dev/docs/api/admin-graphql/latest/enums/FulfillmentOrderAssignmentStatus).
ASSIGNED_QUERY = (
    """
query QuaiAssigned($first: Int!, $after: String, $status: FulfillmentOrderAssignmentStatus, $locationIds: [ID!]) {
  assignedFulfillmentOrders(first: $first, after: $after, assignmentStatus: $status, locationIds: $locationIds) {
    nodes { ...QuaiFulfillmentOrder }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + FULFILLMENT_ORDER_FIELDS
)

# QueryRoot.fulfillmentOrder(id: ID!) https://shopify.dev/docs/api/admin-graphql/latest/queries/fulfillmentOrder
FULFILLMENT_ORDER_QUERY = (
    """
query QuaiFulfillmentOrder($id: ID!) {
  fulfillmentOrder(id: $id) { ...QuaiFulfillmentOrder }
}
"""
    + FULFILLMENT_ORDER_FIELDS
)

# fulfillmentOrderAcceptFulfillmentRequest(id: ID!, message: String)
# https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentOrderAcceptFulfillmentRequest
ACCEPT_MUTATION = """
mutation QuaiAccept($id: ID!, $message: String) {
  fulfillmentOrderAcceptFulfillmentRequest(id: $id, message: $message) {
    fulfillmentOrder { id status requestStatus }
    userErrors { field message }
  }
}
"""

# fulfillmentOrderRejectFulfillmentRequest(id: ID!, message: String, reason: FulfillmentOrderRejectionReason,
# lineItems: [IncomingRequestLineItemInput!]) https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentOrderRejectFulfillmentRequest
REJECT_MUTATION = """
mutation QuaiReject($id: ID!, $message: String, $reason: FulfillmentOrderRejectionReason,
                    $lineItems: [IncomingRequestLineItemInput!]) {
  fulfillmentOrderRejectFulfillmentRequest(id: $id, message: $message, reason: $reason, lineItems: $lineItems) {
    fulfillmentOrder { id status requestStatus }
    userErrors { field message }
  }
}
"""

# fulfillmentOrderAcceptCancellationRequest(id: ID!, message: String)
# https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentOrderAcceptCancellationRequest
ACCEPT_CANCELLATION_MUTATION = """
mutation QuaiAcceptCancellation($id: ID!, $message: String) {
  fulfillmentOrderAcceptCancellationRequest(id: $id, message: $message) {
    fulfillmentOrder { id status requestStatus }
    userErrors { field message }
  }
}
"""

# fulfillmentOrderRejectCancellationRequest(id: ID!, message: String)
# https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentOrderRejectCancellationRequest
REJECT_CANCELLATION_MUTATION = """
mutation QuaiRejectCancellation($id: ID!, $message: String) {
  fulfillmentOrderRejectCancellationRequest(id: $id, message: $message) {
    fulfillmentOrder { id status requestStatus }
    userErrors { field message }
  }
}
"""

# FulfillmentOrder.fulfillments, read before creating one so a retried push does not ship twice.
FULFILLMENTS_QUERY = """
query QuaiFulfillments($id: ID!) {
  fulfillmentOrder(id: $id) {
    id
    fulfillments(first: 50) { nodes { id trackingInfo { number } } }
  }
}
"""

# fulfillmentCreate(fulfillment: FulfillmentInput!, message: String); FulfillmentInput = {lineItemsByFulfillmentOrder:
# [{fulfillmentOrderId, fulfillmentOrderLineItems: [{id, quantity}]}], trackingInfo: {company, number, numbers, url,
# urls}, notifyCustomer, originAddress}; omitting fulfillmentOrderLineItems fulfils the whole fulfilment order.
# https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentCreate,
# https://shopify.dev/docs/api/admin-graphql/latest/input-objects/FulfillmentInput
FULFILLMENT_CREATE_MUTATION = """
mutation QuaiFulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id status trackingInfo { company number url } }
    userErrors { field message }
  }
}
"""

# productVariants(first, query: "sku:…") with InventoryItem.inventoryLevel(locationId) and
# InventoryLevel.quantities(names: ["available"]) https://shopify.dev/docs/api/admin-graphql/latest/queries/productVariants,
# https://shopify.dev/docs/api/admin-graphql/latest/objects/InventoryLevel
VARIANTS_QUERY = """
query QuaiVariants($first: Int!, $query: String!, $locationId: ID!) {
  productVariants(first: $first, query: $query) {
    nodes {
      sku
      inventoryItem {
        id
        inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) { name quantity } }
      }
    }
  }
}
"""

# inventorySetQuantities(input: InventorySetQuantitiesInput!) with InventoryQuantityInput{inventoryItemId, locationId,
# quantity, changeFromQuantity}; name "available" or "on_hand"; reason from Shopify's list ("correction");
# referenceDocumentUri to trace the change. @idempotent(key:) mandatory from 2026-04; changeFromQuantity mandatory
# from 2026-04 (null opts out of the compare-and-swap; we always send the quantity we read, so a concurrent change
# makes the call fail with CHANGE_FROM_QUANTITY_STALE instead of being overwritten).
# https://shopify.dev/docs/api/admin-graphql/latest/mutations/inventorySetQuantities,
# https://shopify.dev/docs/api/admin-graphql/latest/input-objects/InventoryQuantityInput,
# https://shopify.dev/docs/api/usage/idempotent-requests
INVENTORY_SET_MUTATION = """
mutation QuaiInventorySet($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) @idempotent(key: "%s") {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}
"""

# Shop.fulfillmentServices https://shopify.dev/docs/api/admin-graphql/latest/objects/Shop,
# FulfillmentService fields https://shopify.dev/docs/api/admin-graphql/latest/objects/FulfillmentService
SERVICES_QUERY = """
query QuaiServices {
  shop {
    myshopifyDomain
    fulfillmentServices { id serviceName callbackUrl inventoryManagement trackingSupport location { id } }
  }
}
"""

# fulfillmentServiceCreate(name: String!, callbackUrl: URL, inventoryManagement: Boolean, trackingSupport: Boolean)
# https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentServiceCreate
SERVICE_CREATE_MUTATION = """
mutation QuaiServiceCreate($name: String!, $callbackUrl: URL, $inventoryManagement: Boolean,
                           $trackingSupport: Boolean) {
  fulfillmentServiceCreate(name: $name, callbackUrl: $callbackUrl, inventoryManagement: $inventoryManagement,
                           trackingSupport: $trackingSupport) {
    fulfillmentService { id serviceName callbackUrl location { id } }
    userErrors { field message }
  }
}
"""

# fulfillmentServiceUpdate(id: ID!, callbackUrl: URL, inventoryManagement: Boolean, trackingSupport: Boolean, …)
# https://shopify.dev/docs/api/admin-graphql/latest/mutations/fulfillmentServiceUpdate
SERVICE_UPDATE_MUTATION = """
mutation QuaiServiceUpdate($id: ID!, $callbackUrl: URL, $inventoryManagement: Boolean, $trackingSupport: Boolean) {
  fulfillmentServiceUpdate(id: $id, callbackUrl: $callbackUrl, inventoryManagement: $inventoryManagement,
                           trackingSupport: $trackingSupport) {
    fulfillmentService { id serviceName callbackUrl location { id } }
    userErrors { field message }
  }
}
"""

# AppInstallation.accessScopes https://shopify.dev/docs/api/admin-graphql/latest/objects/AppInstallation
HEALTH_QUERY = """
query QuaiHealth {
  shop { myshopifyDomain fulfillmentServices { id callbackUrl location { id } } }
  currentAppInstallation { accessScopes { handle } }
}
"""

# What a fulfilment-service app needs ("Manage fulfillments as a fulfillment service app", requirements:
# https://shopify.dev/docs/apps/fulfillment/fulfillment-service-apps/manage-fulfillments) plus inventory writes.
REQUIRED_SCOPES = frozenset(
    {"write_fulfillments", "read_assigned_fulfillment_orders", "write_assigned_fulfillment_orders", "write_inventory"}
)


# --- The cost bucket -------------------------------------------------------------------------------------------------


@dataclass
class _Bucket:
    """What the last answer said of our cost bucket (extensions.cost.throttleStatus), and when.

    GraphQL Admin API calls are limited by calculated query cost with a leaky bucket per app and shop: the bucket
    refills at ``restoreRate`` points a second up to ``maximumAvailable``; a query whose requested cost exceeds what is
    available is answered ``THROTTLED`` (https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits). We
    estimate the bucket now from the last reading and wait before sending a query it could not pay for."""

    maximum: float = 0.0
    available: float = 0.0
    restore_rate: float = 0.0
    read_at: float = 0.0

    def available_now(self, now: float) -> float:
        return min(self.maximum, self.available + self.restore_rate * max(0.0, now - self.read_at))

    def wait_for(self, cost: float, now: float) -> float:
        """Seconds until ``cost`` points are available (0 when they are, or when nothing is known yet)."""
        if self.restore_rate <= 0:
            return 0.0
        missing = min(cost, self.maximum) - self.available_now(now)
        return max(0.0, missing / self.restore_rate)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in headers.items()}


def _first(value: Any) -> str:
    """A query parameter as one string: Django's QueryDict.dict() gives str, a plain dict of lists gives lists."""
    if isinstance(value, (list, tuple)):
        return str(value[0]) if value else ""
    return "" if value is None else str(value)


def _many(query: Mapping[str, Any], *names: str) -> list[str]:
    values: list[str] = []
    for name in names:
        value = query.get(name)
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            values.extend(str(item) for item in value)
        else:
            values.append(str(value))
    return values


def _search_value(text: str) -> str:
    """A value for Shopify's search syntax, quoted so spaces, colons and parentheses in a SKU stay literal
    (https://shopify.dev/docs/api/usage/search-syntax)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unit_price(item: Mapping[str, Any]) -> Decimal:
    """The line's unit price after its own discounts (the first financial summary; 0 when Shopify gives none)."""
    for summary in item.get("financialSummaries") or []:
        money = ((summary or {}).get("approximateDiscountedUnitPriceSet") or {}).get("shopMoney") or {}
        try:
            return Decimal(str(money.get("amount")))
        except (InvalidOperation, ValueError):
            continue
    return Decimal("0")


def _parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@register
class ShopifyAdapter(PlatformAdapter):
    platform = "shopify"
    capabilities = frozenset(
        {
            "push_orders",
            "poll_orders",
            "accept_reject",
            "cancel_requests",
            "stock_push",
            "stock_callback",
            "tracking_push",
            "tracking_callback",
            "partial_fulfilment",
            "webhook_registration",
        }
    )
    # The poll reads queues of fulfilment orders by their current assignment status, not a history.
    restart_after_pass = True

    def __init__(self, config: ConnectionConfig, client: httpx.Client | None = None) -> None:
        super().__init__(config, client)
        self._bucket = _Bucket()
        self._bucket_lock = threading.Lock()
        self._costs: dict[str, float] = {}  # operation name -> last requested cost
        self._location_id: str | None = self.config.settings.get("location_id") or None

    # --- Inbound --------------------------------------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body, keyed with the app's client secret
        (https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook; the fulfilment
        notification is signed the same way: Shopify/shopify-app-js ``authenticate.fulfillmentService`` and its test).
        Compared in constant time over bytes; a hex digest, a digest of a re-serialised body or a missing header fail.
        """
        lowered = _lower(headers)
        received = lowered.get(HMAC_HEADER, "").strip()
        if not received:
            raise SignatureInvalid("X-Shopify-Hmac-Sha256 is missing")
        secret = self.config.credentials.get("client_secret", "")
        if not secret:
            raise SignatureInvalid("no client secret is configured for this Shopify connection")
        expected = base64.b64encode(hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, received.encode("utf-8", errors="replace")):
            raise SignatureInvalid("X-Shopify-Hmac-Sha256 does not match the body")
        # One app secret signs every shop's calls: a body signed for another shop is not this connection's.
        shop = self.config.settings.get("shop_domain")
        sender = lowered.get(SHOP_HEADER)
        if shop and sender and sender.lower() != str(shop).lower():
            raise SignatureInvalid(f"signed for {sender}, not for this connection's shop")

    def verify_callback(
        self, method: str, headers: Mapping[str, str], query: Mapping[str, Any], raw_body: bytes, raw_query: str = ""
    ) -> None:
        """A GET callback (``fetch_stock``, ``fetch_tracking_numbers``) has no body: its ``X-Shopify-Hmac-Sha256`` is
        the base64 HMAC-SHA256 of the **query string as sent**, keyed with the app's client secret. Shopify's reference
        pages describe no signature for these GETs (FulfillmentService, "Hosted endpoints"); this is what Shopify's
        staff answered ("take the query params along with your app's shared secret to calculate the HMAC ... the same
        hmac validation" as webhooks, https://community.shopify.com/c/Shopify-APIs-SDKs/Is-there-any-authentication-on-the-fetch-stock-callback-url/m-p/519454)
        and what developers confirmed working: the query string kept as-is, values not unescaped, not re-sorted
        (https://community.shopify.dev/t/authenticating-fetch-stock-json-webhook-request-in-remix-app/22156). Shopify
        sends its parameters already in alphabetical order (``max_retries``, ``shop``, ``sku``, ``timestamp``), which
        is why another thread reads "sorted": both readings are accepted, neither decodes anything.

        Then the ``shop`` parameter must name this connection's shop, and ``timestamp`` (seconds since the epoch,
        sent by Shopify) must be within ``settings["callback_max_age"]`` seconds (default 3600) of our clock: a
        captured URL and header cannot be replayed for ever. Shopify documents no window; an hour leaves room for its
        retries (``max_retries``) and for clock skew. A POST is a webhook: checked on its raw body (``verify``)."""
        if method.upper() != "GET":
            self.verify(headers, raw_body)
            return
        lowered = _lower(headers)
        received = lowered.get(HMAC_HEADER, "").strip()
        if not received:
            raise SignatureInvalid("X-Shopify-Hmac-Sha256 is missing")
        secret = self.config.credentials.get("client_secret", "")
        if not secret:
            raise SignatureInvalid("no client secret is configured for this Shopify connection")
        raw = raw_query.lstrip("?")
        candidates = [raw, "&".join(sorted(part for part in raw.split("&") if part))]
        received_bytes = received.encode("utf-8", errors="replace")
        if not any(
            hmac.compare_digest(
                base64.b64encode(hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()),
                received_bytes,
            )
            for text in candidates
        ):
            raise SignatureInvalid("X-Shopify-Hmac-Sha256 does not match the query string")
        self._check_shop_param(query)
        stamp = _first(query.get("timestamp"))
        if stamp:
            try:
                sent_at = float(stamp)
            except ValueError:
                raise SignatureInvalid("the callback's timestamp is not a number") from None
            from quai.core import clock

            max_age = float(self.config.settings.get("callback_max_age", 3600))
            if abs(clock.now().timestamp() - sent_at) > max_age:
                raise SignatureInvalid("the callback's timestamp is too old (or too far ahead): replay refused")

    def delivery_id(self, headers: Mapping[str, str], raw_body: bytes) -> str:
        """Webhooks carry ``X-Shopify-Webhook-Id`` (the same on every retry of a delivery,
        https://shopify.dev/docs/apps/build/webhooks/ignore-duplicates). The fulfilment notification is only a
        ping and may carry none: then the key is the body and the minute, so a burst of retries collapses while the
        next ping a few minutes later is still acted on (fetching assigned orders is idempotent anyway)."""
        lowered = _lower(headers)
        for name in ("x-shopify-webhook-id", "x-shopify-event-id"):
            if lowered.get(name):
                return f"shopify:{lowered[name]}"
        from quai.core import clock  # the adapter stays importable without settings for pure use

        minute = clock.now().strftime("%Y%m%d%H%M")
        digest = hashlib.sha256(raw_body).hexdigest()[:24]
        return f"shopify:ping:{lowered.get(SHOP_HEADER, '')}:{digest}:{minute}"

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundEvent]:
        """The notification's body is ``{"kind": "FULFILLMENT_REQUEST"}`` or ``{"kind": "CANCELLATION_REQUEST"}``
        and nothing else: it says "go and look" ("Receive fulfillment requests and cancellations",
        https://shopify.dev/docs/apps/fulfillment/fulfillment-service-apps/manage-fulfillments). An unknown or
        missing kind (a future value, an empty body) asks the engine to look at both queues, never to drop it."""
        lowered = _lower(headers)
        try:
            body = json.loads(raw_body.decode("utf-8")) if raw_body else {}
        except (UnicodeDecodeError, ValueError):
            body = {}
        kind = str(body.get("kind", "")) if isinstance(body, dict) else ""
        topic = lowered.get("x-shopify-topic", "")
        payload = {"kind": kind, "shop_domain": lowered.get(SHOP_HEADER, ""), "topic": topic}
        if kind == "FULFILLMENT_REQUEST" or topic.startswith("fulfillment_orders/fulfillment_request"):
            return [InboundEvent(kind="fulfilment_requested", payload=payload)]
        if kind == "CANCELLATION_REQUEST" or topic.startswith("fulfillment_orders/cancellation_request"):
            return [InboundEvent(kind="cancellation_requested", payload=payload)]
        logger.info("Shopify notification of unknown kind %r: looking at both queues", kind)
        return [
            InboundEvent(kind="fulfilment_requested", payload=payload),
            InboundEvent(kind="cancellation_requested", payload=payload),
        ]

    # --- Callbacks Shopify makes on us ----------------------------------------------------------------------------

    def _check_shop_param(self, query: Mapping[str, Any]) -> None:
        # ``verify_callback`` checked the signature; a ``shop`` naming another shop is refused all the same.
        shop = self.config.settings.get("shop_domain")
        asked = _first(query.get("shop"))
        if shop and asked and asked.lower() != str(shop).lower():
            raise SignatureInvalid(f"callback for {asked}, not for this connection's shop")

    def answer_stock_query(self, levels: Mapping[str, int], query: Mapping[str, Any]) -> dict[str, Any]:
        """``GET <callbackUrl>/fetch_stock[.json]?shop=…[&sku=…]`` answered with a flat ``{"SKU": quantity}`` map:
        one SKU when ``sku`` is given, every SKU otherwise (FulfillmentService, "Hosted endpoints",
        https://shopify.dev/docs/api/admin-graphql/latest/objects/FulfillmentService). Shopify takes the number as the
        location's available quantity, so it is never negative; a SKU asked for and unknown here is 0 (the warehouse
        holds none of it)."""
        self._check_shop_param(query)
        sku = _first(query.get("sku"))
        if sku:
            return {sku: max(0, int(levels.get(sku, 0)))}
        return {str(name): max(0, int(quantity)) for name, quantity in levels.items()}

    def answer_tracking_query(self, tracking: Mapping[str, Sequence[str]], query: Mapping[str, Any]) -> dict[str, Any]:
        """``GET <callbackUrl>/fetch_tracking_numbers[.json]?order_names[]=#1001.1&…&shop=…`` answered with
        ``{"tracking_numbers": {"#1001.1": "…"}, "message": "…", "success": true}`` (FulfillmentService, "Hosted
        endpoints"). Names are fulfilment names ("#1001.1"): ``tracking`` may be keyed by them or by the order name
        ("#1001"); a name with no tracking number yet is left out."""
        self._check_shop_param(query)
        answered: dict[str, str] = {}
        for name in _many(query, "order_names[]", "order_names"):
            numbers = tracking.get(name)
            if not numbers and "." in name:
                numbers = tracking.get(name.rsplit(".", 1)[0])
            first = next((number for number in numbers or () if number), None)
            if first:
                answered[name] = first
        return {"tracking_numbers": answered, "message": "Successfully received the tracking numbers", "success": True}

    # --- GraphQL transport ----------------------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        return str(self.config.settings.get("api_version") or API_VERSION)

    @property
    def endpoint(self) -> str:
        # POST https://{shop}.myshopify.com/admin/api/{version}/graphql.json (https://shopify.dev/docs/api/admin-graphql)
        return f"{self.config.base_url.rstrip('/')}/admin/api/{self.api_version}/graphql.json"

    def _max_wait(self) -> float:
        return float(self.config.settings.get("max_throttle_wait", 10.0))

    def _read_bucket(self, extensions: Any) -> None:
        cost = extensions.get("cost") if isinstance(extensions, dict) else None
        status = cost.get("throttleStatus") if isinstance(cost, dict) else None
        if not isinstance(status, dict):
            return
        with self._bucket_lock:
            self._bucket = _Bucket(
                maximum=float(status.get("maximumAvailable") or 0),
                available=float(status.get("currentlyAvailable") or 0),
                restore_rate=float(status.get("restoreRate") or 0),
                read_at=time.monotonic(),
            )

    def _pace(self, operation: str) -> None:
        """Wait until the bucket can pay for the query, as last costed; a wait longer than ``max_throttle_wait``
        is handed back to the task queue as ``Throttled`` rather than holding a worker."""
        cost = self._costs.get(operation, DEFAULT_COST)
        with self._bucket_lock:
            wait = self._bucket.wait_for(cost, time.monotonic())
        if wait <= 0:
            return
        if wait > self._max_wait():
            raise Throttled(f"Shopify's cost bucket needs {wait:.1f} s to pay for {operation}", retry_after=wait)
        time.sleep(wait)

    def _graphql(self, operation: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL call; answers ``data`` or raises a ``ConnectorError`` that says whether to retry.

        Status codes from "GraphQL Admin API" → "Status and error codes" (https://shopify.dev/docs/api/admin-graphql):
        200 with ``errors`` for query errors and throttling (``extensions.code == "THROTTLED"``), 401 bad token,
        402 shop frozen, 403 missing scope, 404 wrong shop or version, 423 shop locked, 429 rate limited, 5xx Shopify
        failing."""
        self._pace(operation)
        token = self.config.credentials.get("access_token", "")
        try:
            response = self.client.post(
                self.endpoint,
                json={"query": query, "variables": dict(variables or {}), "operationName": operation},
                headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json"},
            )
        except httpx.TimeoutException as exc:
            raise ConnectorError(f"Shopify did not answer in time: {exc}", code="timeout", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ConnectorError(f"Shopify is unreachable: {exc}", code="unreachable", retryable=True) from exc
        deprecated = response.headers.get("x-shopify-api-deprecated-reason")
        if deprecated:
            logger.warning("Shopify says %s uses a deprecated feature: %s", operation, deprecated)
        status = response.status_code
        if status == 429:
            retry_after = _retry_after(response.headers.get("retry-after"))
            raise Throttled("Shopify answered 429 Too Many Requests", retry_after=retry_after)
        if status == 401:
            raise ConnectorError("Shopify refused the access token (401)", code="unauthorized", retryable=False)
        if status == 402:
            raise ConnectorError("the Shopify shop is frozen (402)", code="shop_unavailable", retryable=False)
        if status == 403:
            raise ConnectorError("the access token lacks a scope (403)", code="forbidden", retryable=False)
        if status == 404:
            raise ConnectorError("no such Shopify shop or API version (404)", code="not_found", retryable=False)
        if status == 423:
            raise ConnectorError("the Shopify shop is locked (423)", code="shop_unavailable", retryable=False)
        if status >= 500:
            raise ConnectorError(f"Shopify failed ({status})", code="platform_error", retryable=True)
        if status != 200:
            raise ConnectorError(f"Shopify answered {status}", code="platform_error", retryable=False)
        try:
            body = response.json()
        except ValueError as exc:
            raise ConnectorError("Shopify answered something that is not JSON", retryable=True) from exc
        extensions = body.get("extensions") if isinstance(body, dict) else None
        self._read_bucket(extensions)
        cost = extensions.get("cost") if isinstance(extensions, dict) else None
        if isinstance(cost, dict) and cost.get("requestedQueryCost") is not None:
            self._costs[operation] = float(cost["requestedQueryCost"])
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            codes = {
                str((error.get("extensions") or {}).get("code", "")) for error in errors if isinstance(error, dict)
            }
            messages = "; ".join(str(error.get("message", error)) for error in errors if isinstance(error, dict))
            if "THROTTLED" in codes:
                requested = self._costs.get(operation, DEFAULT_COST)
                with self._bucket_lock:
                    wait = self._bucket.wait_for(requested, time.monotonic())
                raise Throttled(f"Shopify throttled {operation}", retry_after=max(wait, 1.0))
            if "INTERNAL_SERVER_ERROR" in codes:
                raise ConnectorError(f"Shopify failed: {messages}", code="platform_error", retryable=True)
            if "ACCESS_DENIED" in codes:
                raise ConnectorError(f"Shopify denied {operation}: {messages}", code="forbidden", retryable=False)
            raise ConnectorError(f"Shopify refused {operation}: {messages}", code="graphql_error", retryable=False)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ConnectorError(f"Shopify answered {operation} without data", retryable=True)
        return data

    # --- Location -------------------------------------------------------------------------------------------------

    def _services(self) -> list[dict[str, Any]]:
        data = self._graphql("QuaiServices", SERVICES_QUERY)
        return list((data.get("shop") or {}).get("fulfillmentServices") or [])

    def _service_name(self) -> str:
        return str(self.config.settings.get("service_name") or "Quai")

    def location_id(self) -> str:
        """Our fulfilment service's location (Shopify creates one per fulfilment service, FulfillmentService doc)."""
        if self._location_id:
            return self._location_id
        for service in self._services():
            if service.get("serviceName") == self._service_name() and (service.get("location") or {}).get("id"):
                self._location_id = str(service["location"]["id"])
                return self._location_id
        raise ConnectorError(
            f"no fulfilment service named {self._service_name()!r} on this shop: register it first",
            code="fulfillment_service_missing",
            retryable=False,
        )

    # --- Pull -----------------------------------------------------------------------------------------------------

    def fetch_orders(self, cursor: str | None) -> Page:
        """Fulfilment orders assigned to us and waiting for an answer: first those whose fulfilment is requested,
        then those whose cancellation is requested (``platform_refs["assignment_status"]`` tells which). The
        cursor is ``<status>:<GraphQL cursor>``; None once both queues are read, so the next poll starts afresh
        (the queues are states, not a history: an accepted order leaves the first one)."""
        statuses = ("FULFILLMENT_REQUESTED", "CANCELLATION_REQUESTED")
        status, after = statuses[0], None
        if cursor:
            head, _, tail = cursor.partition(":")
            if head not in statuses:
                raise ConnectorError(f"not a Shopify cursor: {cursor!r}", code="cursor_invalid")
            status, after = head, tail or None
        variables: dict[str, Any] = {"first": PAGE_SIZE, "after": after, "status": status}
        if self._location_id:
            variables["locationIds"] = [self._location_id]
        data = self._graphql("QuaiAssigned", ASSIGNED_QUERY, variables)
        connection = data.get("assignedFulfillmentOrders") or {}
        orders = tuple(self._to_order(node, status) for node in connection.get("nodes") or [])
        info = connection.get("pageInfo") or {}
        if info.get("hasNextPage") and info.get("endCursor"):
            return Page(orders=orders, cursor=f"{status}:{info['endCursor']}")
        if status == statuses[0]:
            return Page(orders=orders, cursor=f"{statuses[1]}:")
        return Page(orders=orders, cursor=None)

    def fetch_order(self, external_id: str) -> ExternalOrder:
        data = self._graphql("QuaiFulfillmentOrder", FULFILLMENT_ORDER_QUERY, {"id": external_id})
        node = data.get("fulfillmentOrder")
        if not node:
            raise ConnectorError(f"no fulfilment order {external_id} on the shop", code="order_not_found")
        request_status = str(node.get("requestStatus") or "")
        assignment = {
            "SUBMITTED": "FULFILLMENT_REQUESTED",
            "ACCEPTED": "FULFILLMENT_ACCEPTED",
            "CANCELLATION_REQUESTED": "CANCELLATION_REQUESTED",
        }.get(request_status, request_status)
        return self._to_order(node, assignment)

    def _to_order(self, node: Mapping[str, Any], assignment_status: str) -> ExternalOrder:
        order = node.get("order") or {}
        destination = node.get("destination") or {}
        lines: list[ExternalLine] = []
        refs_lines: dict[str, dict[str, Any]] = {}
        for item in (node.get("lineItems") or {}).get("nodes") or []:
            quantity = int(item.get("remainingQuantity") or 0)
            if quantity <= 0:
                continue  # already fulfilled or removed: nothing left for the warehouse
            name = " – ".join(part for part in (item.get("productTitle"), item.get("variantTitle")) if part)
            lines.append(
                ExternalLine(
                    external_line_id=str(item["id"]),
                    sku=str(item.get("sku") or ""),
                    quantity=quantity,
                    unit_price=_unit_price(item),
                    name=name,
                )
            )
            refs_lines[str(item["id"])] = {
                "sku": item.get("sku") or "",
                "quantity": quantity,
                "total_quantity": int(item.get("totalQuantity") or 0),
                "line_item_id": (item.get("lineItem") or {}).get("id"),
                "inventory_item_id": item.get("inventoryItemId"),
            }
        full_name = " ".join(part for part in (destination.get("firstName"), destination.get("lastName")) if part)
        requests = [r for r in (node.get("merchantRequests") or {}).get("nodes") or [] if r.get("message")]
        notes = "\n".join(part for part in [order.get("note") or ""] + [r["message"] for r in requests] if part)
        shipping = order.get("shippingLine") or {}
        status_raw = str(node.get("requestStatus") or "")
        return ExternalOrder(
            external_id=str(node["id"]),
            external_number=str(order.get("name") or node["id"]),
            currency=str(order.get("currencyCode") or ""),
            ship_to=Address(
                name=full_name,
                company=destination.get("company") or "",
                line1=destination.get("address1") or "",
                line2=destination.get("address2") or "",
                postcode=destination.get("zip") or "",
                city=destination.get("city") or "",
                region=destination.get("province") or "",
                country=destination.get("countryCode") or "",
                phone=destination.get("phone") or "",
                email=destination.get("email") or "",
            ),
            lines=tuple(lines),
            created_at=_parse_datetime(order.get("createdAt") or node.get("createdAt")),
            updated_at=_parse_datetime(node.get("updatedAt")),
            status_raw=status_raw,
            customer_email=destination.get("email") or "",
            customer_phone=destination.get("phone") or "",
            service_hint=str(shipping.get("code") or shipping.get("title") or ""),
            notes=notes,
            cancelled=str(node.get("status") or "") == "CANCELLED",
            platform_refs={
                "fulfillment_order_id": str(node["id"]),
                "order_id": order.get("id"),
                "order_name": order.get("name"),
                "assignment_status": assignment_status,
                "request_status": status_raw,
                "location_id": ((node.get("assignedLocation") or {}).get("location") or {}).get("id"),
                "line_items": refs_lines,
            },
            raw=dict(node),
        )

    # --- The fulfilment order's life ------------------------------------------------------------------------------

    @staticmethod
    def _fulfillment_order_id(order: ExternalOrder) -> str:
        return str(order.platform_refs.get("fulfillment_order_id") or order.external_id)

    def _mutate(
        self,
        operation: str,
        document: str,
        variables: Mapping[str, Any],
        root: str,
        already_done: Iterable[str] = (),
    ) -> dict[str, Any]:
        """A mutation whose userErrors are a refusal, unless a re-read shows the fulfilment order already in one of
        ``already_done`` request statuses (a retried accept after a lost answer is then a success, not an error)."""
        data = self._graphql(operation, document, variables)
        payload = data.get(root) or {}
        errors = payload.get("userErrors") or []
        if not errors:
            return dict(payload)
        done = frozenset(already_done)
        if done and "id" in variables:
            current = self._graphql("QuaiFulfillmentOrder", FULFILLMENT_ORDER_QUERY, {"id": variables["id"]})
            status = str((current.get("fulfillmentOrder") or {}).get("requestStatus") or "")
            if status in done:
                return {"fulfillmentOrder": current.get("fulfillmentOrder")}
        messages = "; ".join(str(error.get("message")) for error in errors)
        raise ConnectorError(f"Shopify refused {root}: {messages}", code="platform_refused", retryable=False)

    def accept(self, order: ExternalOrder, message: str = "") -> None:
        self._mutate(
            "QuaiAccept",
            ACCEPT_MUTATION,
            {"id": self._fulfillment_order_id(order), "message": message or None},
            "fulfillmentOrderAcceptFulfillmentRequest",
            already_done=("ACCEPTED",),
        )

    def reject(
        self,
        order: ExternalOrder,
        message: str,
        reason: str = "OTHER",
        lines: Mapping[str, str] | None = None,
    ) -> None:
        """Decline the fulfilment request. ``reason`` is a FulfillmentOrderRejectionReason; ``lines`` maps
        fulfilment order line item ids to why each cannot be shipped (an unknown SKU, out of stock)."""
        if reason not in REJECTION_REASONS:
            reason = "OTHER"
        variables: dict[str, Any] = {
            "id": self._fulfillment_order_id(order),
            "message": message or None,
            "reason": reason,
        }
        if lines:
            # IncomingRequestLineItemInput{fulfillmentOrderLineItemId, message}
            # https://shopify.dev/docs/api/admin-graphql/latest/input-objects/IncomingRequestLineItemInput
            variables["lineItems"] = [
                {"fulfillmentOrderLineItemId": line_id, "message": text} for line_id, text in lines.items()
            ]
        self._mutate(
            "QuaiReject",
            REJECT_MUTATION,
            variables,
            "fulfillmentOrderRejectFulfillmentRequest",
            already_done=("REJECTED",),
        )

    def answer_cancellation(self, order: ExternalOrder, accept: bool, message: str = "") -> None:
        variables = {"id": self._fulfillment_order_id(order), "message": message or None}
        if accept:
            self._mutate(
                "QuaiAcceptCancellation",
                ACCEPT_CANCELLATION_MUTATION,
                variables,
                "fulfillmentOrderAcceptCancellationRequest",
                already_done=("CANCELLATION_ACCEPTED", "CLOSED"),
            )
        else:
            self._mutate(
                "QuaiRejectCancellation",
                REJECT_CANCELLATION_MUTATION,
                variables,
                "fulfillmentOrderRejectCancellationRequest",
                already_done=("CANCELLATION_REJECTED",),
            )

    def push_fulfilment(self, order: ExternalOrder, shipment: Shipment, idempotency_key: str) -> str:
        """Create a fulfilment with its tracking. ``fulfillmentCreate`` takes no idempotency key, so a retry is
        made safe by reading the fulfilment order's fulfilments first: one already carrying these tracking numbers
        is the one a lost answer created, and its id is returned instead of shipping twice."""
        fulfillment_order_id = self._fulfillment_order_id(order)
        numbers = [parcel.tracking_number for parcel in shipment.parcels if parcel.tracking_number]
        if numbers:
            existing = self._graphql("QuaiFulfillments", FULFILLMENTS_QUERY, {"id": fulfillment_order_id})
            previous = ((existing.get("fulfillmentOrder") or {}).get("fulfillments") or {}).get("nodes") or []
            for done in previous:
                known = {info.get("number") for info in done.get("trackingInfo") or []}
                if set(numbers) <= known:
                    return str(done["id"])
        group: dict[str, Any] = {"fulfillmentOrderId": fulfillment_order_id}
        if shipment.lines:
            group["fulfillmentOrderLineItems"] = [
                {"id": line.external_line_id, "quantity": line.quantity} for line in shipment.lines if line.quantity > 0
            ]
        fulfillment: dict[str, Any] = {
            "lineItemsByFulfillmentOrder": [group],
            "notifyCustomer": shipment.notify_customer,
        }
        if numbers:
            first = next(parcel for parcel in shipment.parcels if parcel.tracking_number)
            carrier = first.carrier_code
            tracking: dict[str, Any] = {"company": CARRIER_NAMES.get(carrier.lower(), carrier) if carrier else None}
            if len(numbers) == 1:
                tracking["number"] = numbers[0]
                if first.tracking_url:
                    tracking["url"] = first.tracking_url
            else:
                tracking["numbers"] = numbers
                urls = [
                    parcel.tracking_url for parcel in shipment.parcels if parcel.tracking_number and parcel.tracking_url
                ]
                if urls:
                    tracking["urls"] = urls
            fulfillment["trackingInfo"] = {key: value for key, value in tracking.items() if value is not None}
        payload = self._mutate(
            "QuaiFulfillmentCreate",
            FULFILLMENT_CREATE_MUTATION,
            {"fulfillment": fulfillment, "message": None},
            "fulfillmentCreate",
        )
        created = payload.get("fulfillment") or {}
        if not created.get("id"):
            raise ConnectorError("Shopify created no fulfilment and said nothing", retryable=True)
        return str(created["id"])

    # --- Stock ----------------------------------------------------------------------------------------------------

    def _inventory(self, skus: Sequence[str], location_id: str) -> dict[str, list[tuple[str, int | None]]]:
        """SKU -> [(inventory item id, available at our location or None when not stocked there)]."""
        found: dict[str, list[tuple[str, int | None]]] = {}
        search = " OR ".join(f"sku:{_search_value(sku)}" for sku in skus)
        data = self._graphql(
            "QuaiVariants",
            VARIANTS_QUERY,
            {"first": min(250, 4 * len(skus)), "query": search, "locationId": location_id},
        )
        wanted = set(skus)
        for variant in (data.get("productVariants") or {}).get("nodes") or []:
            sku = variant.get("sku") or ""
            item = variant.get("inventoryItem") or {}
            if sku not in wanted or not item.get("id"):
                continue  # the search matches loosely; only the exact SKU counts
            level = item.get("inventoryLevel")
            available: int | None = None
            if level is not None:
                quantities = {q.get("name"): q.get("quantity") for q in level.get("quantities") or []}
                available = int(quantities.get("available") or 0)
            found.setdefault(sku, []).append((str(item["id"]), available))
        self._remember(found, location_id)
        for sku in wanted.difference(found):
            self._forget([sku], location_id)
        return found

    def push_stock(self, levels: Sequence[StockLevel], snapshot_id: str) -> StockPushReport:
        """Set "available" at our location to each SKU's level, compare-and-swap on what we last knew of it.

        What we last knew: the inventory item ids of each SKU at our location as this process last read them
        (``_KNOWN``) and the quantity Quai last set there (``StockLevel.shown``, kept per shop by Quai, whichever
        process pushed; else the one this process last read or set), so a push to SKUs pushed before is ONE call, the
        write, instead of a read and a write (the connectors bench measured the read as half of Shopify's part). The
        compare-and-swap keeps that safe: ``changeFromQuantity`` is the quantity we believe the shop has, and a shop
        whose quantity is not that any more (sold there, edited by hand, set by another process) answers
        ``CHANGE_FROM_QUANTITY_STALE`` for that SKU, which is then read and written again ("As of 2026-04, each quantity
        … must include a changeFromQuantity value. The mutation only updates the quantity if the persisted quantity
        matches, and otherwise returns a CHANGE_FROM_QUANTITY_STALE error",
        https://shopify.dev/docs/api/admin-graphql/latest/mutations/inventorySetQuantities). A SKU we know is
        written even when it already shows the level, so a level changed behind our back is still repaired.

        A SKU the shop does not have is ``unknown``; one not stocked at our location, or changed on the shop
        between our read and our write twice in a row, is ``failed`` with the reason (the next push repairs it).
        The idempotency key is derived from the snapshot and the exact variables: a retried task re-sends the same
        key (Shopify answers the first result), a different write gets a different key, as "Implementing
        idempotency" asks (https://shopify.dev/docs/api/usage/implementing-idempotency)."""
        location_id = self.location_id()
        targets: dict[str, int] = {}
        shown: dict[str, int] = {}  # what Quai last set on this shop (StockLevel.shown): fresher than _KNOWN's
        for level in levels:
            targets[level.sku] = max(0, int(level.available))  # the latest level of a SKU wins
            if level.shown is not None:
                shown[level.sku] = max(0, int(level.shown))
            else:
                shown.pop(level.sku, None)
        updated: list[str] = []
        unknown: list[str] = []
        failed: dict[str, str] = {}
        skus = list(targets)
        for start in range(0, len(skus), STOCK_BATCH):
            pending = skus[start : start + STOCK_BATCH]
            inventory = self._known(pending, location_id, shown)
            known = set(inventory)
            missing = [sku for sku in pending if sku not in known]
            if missing:
                inventory.update(self._inventory(missing, location_id))
            for attempt in range(3 if known else 2):
                last = attempt == (2 if known else 1)
                quantities: list[dict[str, Any]] = []
                owners: list[str] = []  # the SKU of each entry of ``quantities``
                for sku in pending:
                    items = inventory.get(sku)
                    if not items:
                        unknown.append(sku)
                    elif any(current is None for _, current in items):
                        failed[sku] = "not stocked at the fulfilment service's location"
                    elif sku not in known and all(current == targets[sku] for _, current in items):
                        updated.append(sku)  # just read and already right: no write
                    else:
                        for item_id, current in items:
                            if sku in known or current != targets[sku]:
                                quantities.append(
                                    {
                                        "inventoryItemId": item_id,
                                        "locationId": location_id,
                                        "quantity": targets[sku],
                                        "changeFromQuantity": current,
                                    }
                                )
                                owners.append(sku)
                if not quantities:
                    break
                try:
                    stale, applied = self._set_quantities(quantities, owners, snapshot_id, failed)
                except Exception:
                    self._forget(owners, location_id)  # written or not, we cannot tell: read them next time
                    raise
                sent = list(dict.fromkeys(owners))
                if applied:
                    written = {sku: [(item, targets[sku]) for item, _current in inventory[sku]] for sku in sent}
                    self._remember(written, location_id)
                    updated.extend(sent)
                    break
                # A refused call set nothing (its adjustment group is null): the stale SKUs are read again, the
                # others, refused for no fault of theirs, are sent again as they were.
                self._forget([sku for sku in sent if sku in stale or sku in failed], location_id)
                retry = [sku for sku in sent if sku not in failed]
                if not retry:
                    break
                if last:
                    for sku in retry:
                        failed[sku] = (
                            "changed on the shop while being set (CHANGE_FROM_QUANTITY_STALE)"
                            if sku in stale
                            else "not set: the shop refused the call it was in"
                        )
                    break
                reread = self._inventory([sku for sku in retry if sku in stale], location_id) if stale else {}
                inventory = {**{sku: inventory[sku] for sku in retry if sku not in stale}, **reread}
                known = {sku for sku in known if sku not in stale}
                pending = retry
        return StockPushReport(updated=tuple(dict.fromkeys(updated)), unknown=tuple(unknown), failed=failed)

    def _known(
        self, skus: Sequence[str], location_id: str, shown: Mapping[str, int]
    ) -> dict[str, list[tuple[str, int | None]]]:
        """The SKUs of ``skus`` whose items at our location this process knows (``_KNOWN``), each with the quantity
        Quai last set there (``shown``, kept by Quai for the shop: any process's push) or else the one this process
        last read or set."""
        base = self.config.base_url
        with _KNOWN_LOCK:
            found: dict[str, list[tuple[str, int | None]]] = {}
            for sku in skus:
                items = _KNOWN.get((base, location_id, sku))
                if items is not None:
                    _KNOWN.move_to_end((base, location_id, sku))
                    found[sku] = [(item, shown.get(sku, current)) for item, current in items]
            return found

    def _remember(self, inventory: Mapping[str, Sequence[tuple[str, int | None]]], location_id: str) -> None:
        base = self.config.base_url
        with _KNOWN_LOCK:
            for sku, items in inventory.items():
                if items and all(current is not None for _item, current in items):
                    _KNOWN[(base, location_id, sku)] = tuple((item, int(current or 0)) for item, current in items)
                    _KNOWN.move_to_end((base, location_id, sku))
                else:
                    _KNOWN.pop((base, location_id, sku), None)
            while len(_KNOWN) > KNOWN_KEPT:
                _KNOWN.popitem(last=False)

    def _forget(self, skus: Iterable[str], location_id: str) -> None:
        with _KNOWN_LOCK:
            for sku in skus:
                _KNOWN.pop((self.config.base_url, location_id, sku), None)

    def stock_levels(self, skus: Sequence[str]) -> dict[str, int | None]:
        """The "available" quantity at our location for each SKU the shop has (None: not stocked there), for the
        reconcile; SKUs the shop does not have are left out."""
        location_id = self.location_id()
        levels: dict[str, int | None] = {}
        unique = list(dict.fromkeys(skus))
        for start in range(0, len(unique), STOCK_BATCH):
            for sku, items in self._inventory(unique[start : start + STOCK_BATCH], location_id).items():
                levels[sku] = items[0][1]
        return levels

    def _set_quantities(
        self, quantities: list[dict[str, Any]], owners: list[str], snapshot_id: str, failed: dict[str, str]
    ) -> tuple[set[str], bool]:
        """One inventorySetQuantities call; answers the SKUs whose compare-and-swap failed (to re-read and retry) and
        whether the call set its quantities: a call with any user error sets none of them (it answers a null
        ``inventoryAdjustmentGroup``, the group of changes made, InventorySetQuantitiesPayload,
        https://shopify.dev/docs/api/admin-graphql/latest/payloads/InventorySetQuantitiesPayload), so its other SKUs
        must be sent again; one without errors set them all (no group when nothing had to change)."""
        variables = {
            "input": {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": f"gid://quai/StockSnapshot/{quote(snapshot_id, safe='')}",
                "quantities": quantities,
            }
        }
        canonical = json.dumps(variables, sort_keys=True, separators=(",", ":"))
        key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"quai:shopify:{snapshot_id}:{canonical}"))
        data = self._graphql("QuaiInventorySet", INVENTORY_SET_MUTATION % key, variables)
        payload = data.get("inventorySetQuantities") or {}
        errors = payload.get("userErrors") or []
        stale: set[str] = set()
        for error in errors:
            # field is the input path, e.g. ["input", "quantities", "3", "quantity"]: the entry that failed.
            field = [str(part) for part in error.get("field") or []]
            index = (
                int(field[2])
                if len(field) > 2 and field[:2] == ["input", "quantities"] and field[2].isdecimal()
                else None
            )
            concerned = [owners[index]] if index is not None and index < len(owners) else list(owners)
            for sku in concerned:
                if error.get("code") == "CHANGE_FROM_QUANTITY_STALE":
                    stale.add(sku)
                else:
                    failed[sku] = str(error.get("message") or error.get("code") or "refused")
        return stale - set(failed), not errors

    # --- Set-up and health ----------------------------------------------------------------------------------------

    def ensure_subscriptions(self, public_base_url: str) -> None:
        """Register our fulfilment service (or bring it up to date) with ``callbackUrl`` = ``public_base_url``:
        Shopify then POSTs ``<callbackUrl>/fulfillment_order_notification`` and GETs ``<callbackUrl>/fetch_stock``
        and ``<callbackUrl>/fetch_tracking_numbers`` (FulfillmentService doc, "Hosted endpoints"); inventory
        management and tracking support on so it asks for both."""
        callback = public_base_url.rstrip("/")
        name = self._service_name()
        mine = next((service for service in self._services() if service.get("serviceName") == name), None)
        if mine is None:
            payload = self._mutate(
                "QuaiServiceCreate",
                SERVICE_CREATE_MUTATION,
                {"name": name, "callbackUrl": callback, "inventoryManagement": True, "trackingSupport": True},
                "fulfillmentServiceCreate",
            )
            service = payload.get("fulfillmentService") or {}
        elif (
            mine.get("callbackUrl") != callback
            or mine.get("inventoryManagement") is not True
            or mine.get("trackingSupport") is not True
        ):
            payload = self._mutate(
                "QuaiServiceUpdate",
                SERVICE_UPDATE_MUTATION,
                {"id": mine["id"], "callbackUrl": callback, "inventoryManagement": True, "trackingSupport": True},
                "fulfillmentServiceUpdate",
            )
            service = payload.get("fulfillmentService") or mine
        else:
            service = mine
        location = (service.get("location") or {}).get("id")
        if location:
            self._location_id = str(location)

    def health(self) -> HealthReport:
        try:
            data = self._graphql("QuaiHealth", HEALTH_QUERY)
        except ConnectorError as exc:
            return HealthReport(ok=False, detail=str(exc), checks={"credentials": exc.code not in {"unauthorized"}})
        shop = data.get("shop") or {}
        scopes = {s.get("handle") for s in (data.get("currentAppInstallation") or {}).get("accessScopes") or []}
        missing = sorted(REQUIRED_SCOPES - scopes)
        services = shop.get("fulfillmentServices") or []
        checks = {"credentials": True, "scopes": not missing, "fulfillment_service": bool(services)}
        problems = []
        if missing:
            problems.append("missing scopes: " + ", ".join(missing))
        if not services:
            problems.append("no fulfilment service registered")
        return HealthReport(ok=all(checks.values()), detail="; ".join(problems) or "ok", checks=checks)


def _retry_after(value: str | None) -> float:
    try:
        return max(1.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0
