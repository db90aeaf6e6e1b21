"""The one interface every shop platform's connector implements, and the canonical shapes it speaks.

An adapter is protocol code only: it is built from a ``ConnectionConfig`` (the shop's address, its decrypted
credentials, its settings) and an ``httpx.Client``, talks to the platform, and turns what the platform sends into the
canonical shapes below. It never touches Quai's tables: the sync engine (``quai.integrations.services``)
stores, de-duplicates and feeds orders to ``quai.orders.services``; the adapter neither knows nor imports them.
So each adapter is tested against a local server that speaks the platform's documented protocol, with the same code
that talks to the real shop (``ConnectionConfig.base_url`` points at the local server).

Shape of the interface after ``../shared/reference/INTEGRATIONS.md`` §6.2; each adapter cites, beside each call, the
platform document its behaviour comes from.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import httpx

# --- Errors an adapter raises --------------------------------------------------------------------------------------


class ConnectorError(Exception):
    """A call to or from the platform failed. ``code`` is machine-readable; ``retryable`` says whether a later
    attempt may succeed (timeouts, 5xx, throttling) or not (bad credentials, a refused request)."""

    code = "connector_error"
    retryable = False

    def __init__(
        self, message: str, *, code: str | None = None, retryable: bool | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.retry_after = retry_after


class SignatureInvalid(ConnectorError):
    """An inbound call whose signature is missing or does not match: answered 401, nothing stored."""

    code = "signature_invalid"


class NotSupported(ConnectorError):
    """The platform has no such operation (PrestaShop has no webhooks; only Shopify calls fetch_stock)."""

    code = "not_supported"


class Throttled(ConnectorError):
    """The platform asked us to slow down (429, Shopify's GraphQL cost budget); retry after ``retry_after`` s."""

    code = "throttled"
    retryable = True


# --- Canonical shapes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionConfig:
    """What an adapter is built from. ``credentials`` are decrypted only for the time of the call."""

    platform: str
    base_url: str  # the shop's own address (https://example.myshopify.com, https://shop.example/wp-json/wc/v3 …)
    credentials: Mapping[str, str] = field(default_factory=dict)  # access tokens, API keys, webhook secrets
    settings: Mapping[str, Any] = field(default_factory=dict)  # location id, channel, stock location…
    connection_id: int | None = None


@dataclass(frozen=True)
class Address:
    name: str = ""
    company: str = ""
    line1: str = ""
    line2: str = ""
    postcode: str = ""
    city: str = ""
    region: str = ""
    country: str = ""  # ISO 3166-1 alpha-2
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class ExternalLine:
    external_line_id: str
    sku: str
    quantity: int
    unit_price: Decimal = Decimal("0")
    name: str = ""
    gtin: str = ""


@dataclass(frozen=True)
class ExternalOrder:
    """An order as the shop holds it, in Quai's words. ``platform_refs`` keeps what later calls need (Shopify's
    fulfillment order id and its line item ids; Saleor's line ids; WooCommerce's line item ids)."""

    external_id: str
    external_number: str
    currency: str
    ship_to: Address
    lines: tuple[ExternalLine, ...]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    paid: bool = True
    status_raw: str = ""
    customer_email: str = ""
    customer_phone: str = ""
    carrier_hint: str = ""
    service_hint: str = ""
    pickup_point_id: str = ""
    notes: str = ""
    shipping_total: Decimal = Decimal("0")
    cancelled: bool = False
    platform_refs: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of a pull; ``cursor`` is what to pass to get the next (None: caught up)."""

    orders: tuple[ExternalOrder, ...]
    cursor: str | None = None


# What an inbound call means. An adapter's ``parse`` answers one or more of these; the engine acts on them.
INBOUND_KINDS = frozenset(
    {
        "ping",  # a test call (WooCommerce's creation ping): answer 2xx, store nothing
        "order_ready",  # an order to take in (created, paid, released to the warehouse)
        "order_changed",  # re-read it from the platform, apply what changed (address, hold)
        "order_cancelled",  # the shop cancelled it
        "fulfilment_requested",  # Shopify: fulfilment orders were assigned to our location: fetch and accept
        "cancellation_requested",  # Shopify: the merchant asks to cancel a fulfilment order: answer it
    }
)


@dataclass(frozen=True)
class InboundEvent:
    kind: str
    external_id: str = ""  # the order concerned, when the call names one
    order: ExternalOrder | None = None  # when the call carries the whole order
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StockLevel:
    sku: str
    available: int  # absolute units the shop may sell; never negative
    # What Quai last set this SKU to on this shop, when known (``StockSync.pushed_quantity``): an adapter whose write
    # is a compare-and-swap may write on it without reading the shop first (a stale one is refused, then read).
    shown: int | None = None


@dataclass(frozen=True)
class StockPushReport:
    updated: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # SKUs the shop does not have
    failed: Mapping[str, str] = field(default_factory=dict)  # sku -> reason


@dataclass(frozen=True)
class Parcel:
    tracking_number: str
    carrier_code: str = ""
    tracking_url: str = ""
    weight_g: int | None = None
    sscc: str = ""


@dataclass(frozen=True)
class ShipmentLine:
    external_line_id: str
    quantity: int


@dataclass(frozen=True)
class Shipment:
    lines: tuple[ShipmentLine, ...]
    parcels: tuple[Parcel, ...]
    shipped_at: datetime | None = None
    notify_customer: bool = True


@dataclass(frozen=True)
class RefundLine:
    external_line_id: str
    quantity: int
    amount: Decimal = Decimal("0")


@dataclass(frozen=True)
class Refund:
    lines: tuple[RefundLine, ...]
    amount: Decimal
    currency: str
    reason: str = ""
    restock: bool = False


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    detail: str = ""
    checks: Mapping[str, bool] = field(default_factory=dict)


# --- The interface ---------------------------------------------------------------------------------------------------


class PlatformAdapter(abc.ABC):
    """One subclass per platform. Stateless between calls: state (cursors, last sync) lives on the connection row
    and comes in through ``config.settings`` / the ``cursor`` arguments. Every write is idempotent on the key given."""

    platform: ClassVar[str]
    # e.g. {"push_orders", "poll_orders", "accept_reject", "cancel_requests", "stock_push", "stock_callback",
    #       "tracking_push", "tracking_callback", "refunds", "notes", "webhook_registration"}
    capabilities: ClassVar[frozenset[str]]
    # What a poll's cursor is. False: a high-water mark (a modification time and the ids taken at it), kept once the
    # poll is caught up, so the next poll starts where this one ended. True: a position in queues of current states
    # (Shopify's assigned fulfilment orders), dropped once a pass has read them all, so the next poll reads them
    # again from the start.
    restart_after_pass: ClassVar[bool] = False

    def __init__(self, config: ConnectionConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        self.client = client if client is not None else httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))

    # Inbound: pure functions of the call, checked against the raw body's bytes before any parsing.
    @abc.abstractmethod
    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        """Raise ``SignatureInvalid`` unless the call is signed by this shop (constant-time comparison)."""

    def verify_callback(
        self, method: str, headers: Mapping[str, str], query: Mapping[str, Any], raw_body: bytes, raw_query: str = ""
    ) -> None:
        """Verify any inbound call, a POST or a GET callback (Shopify's ``fetch_stock``). ``raw_query`` is the query
        string exactly as received (undecoded, unsorted), for platforms that sign it. By default the call is checked
        as a webhook, on its body."""
        self.verify(headers, raw_body)

    @abc.abstractmethod
    def delivery_id(self, headers: Mapping[str, str], raw_body: bytes) -> str:
        """The key that de-duplicates a re-delivered call (never used to verify it)."""

    @abc.abstractmethod
    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundEvent]:
        """What the verified call means."""

    # Pull.
    @abc.abstractmethod
    def fetch_orders(self, cursor: str | None) -> Page:
        """Orders ready for the warehouse changed since ``cursor`` (None: from the connection's start)."""

    @abc.abstractmethod
    def fetch_order(self, external_id: str) -> ExternalOrder:
        """One order as the platform holds it now (re-read before acting on anything destructive)."""

    # The order's life on the platform.
    @abc.abstractmethod
    def accept(self, order: ExternalOrder, message: str = "") -> None:
        """Tell the shop the warehouse takes the order (Shopify: accept the fulfilment request; WooCommerce: a
        note; PrestaShop: the "preparation in progress" state; Saleor: ``orderConfirm`` when unconfirmed)."""

    def reject(self, order: ExternalOrder, message: str) -> None:
        raise NotSupported(f"{self.platform} has no fulfilment request to reject")

    def answer_cancellation(self, order: ExternalOrder, accept: bool, message: str = "") -> None:
        raise NotSupported(f"{self.platform} sends no cancellation request")

    @abc.abstractmethod
    def push_fulfilment(self, order: ExternalOrder, shipment: Shipment, idempotency_key: str) -> str:
        """Mark the order (or its lines) shipped with tracking; return the platform's fulfilment id."""

    @abc.abstractmethod
    def push_stock(self, levels: Sequence[StockLevel], snapshot_id: str) -> StockPushReport:
        """Set each SKU's sellable quantity on the shop (absolute numbers, never deltas)."""

    def push_refund(self, order: ExternalOrder, refund: Refund, idempotency_key: str) -> str:
        raise NotSupported(f"{self.platform}: refunds are not supported by this connector")

    def add_note(self, order: ExternalOrder, text: str, customer_visible: bool = False) -> None:
        raise NotSupported(f"{self.platform}: notes are not supported by this connector")

    def stock_levels(self, skus: Sequence[str]) -> dict[str, int | None]:
        """What the shop shows now for each SKU it has (None: it does not manage that SKU's stock); SKUs the shop
        does not have are left out. Read by the stock reconcile, which repairs any drift."""
        raise NotSupported(f"{self.platform}: reading stock levels is not supported by this connector")

    # Callbacks some platforms make on us (Shopify's fulfilment-service fetch_stock / fetch_tracking_numbers).
    def answer_stock_query(self, levels: Mapping[str, int], query: Mapping[str, Any]) -> dict[str, Any]:
        raise NotSupported(f"{self.platform} does not query stock")

    def answer_tracking_query(self, tracking: Mapping[str, Sequence[str]], query: Mapping[str, Any]) -> dict[str, Any]:
        raise NotSupported(f"{self.platform} does not query tracking numbers")

    # Set-up and health.
    def ensure_subscriptions(self, public_base_url: str) -> None:
        """Register (idempotently) the webhooks / fulfilment service pointing at ``public_base_url``."""
        raise NotSupported(f"{self.platform} has no subscriptions to register")

    @abc.abstractmethod
    def health(self) -> HealthReport:
        """Credentials work, subscriptions are in place, scopes suffice."""


# --- Registry ----------------------------------------------------------------------------------------------------

_ADAPTERS: dict[str, type[PlatformAdapter]] = {}


def register(adapter: type[PlatformAdapter]) -> type[PlatformAdapter]:
    """Class decorator: make ``adapter`` the one for its platform."""
    if adapter.platform in _ADAPTERS and _ADAPTERS[adapter.platform] is not adapter:
        raise ValueError(f"two adapters for {adapter.platform!r}")
    _ADAPTERS[adapter.platform] = adapter
    return adapter


def adapter_for(config: ConnectionConfig, client: httpx.Client | None = None) -> PlatformAdapter:
    try:
        cls = _ADAPTERS[config.platform]
    except KeyError:
        raise NotSupported(f"no connector for platform {config.platform!r}", code="platform_unknown") from None
    return cls(config, client)


def platforms() -> list[str]:
    return sorted(_ADAPTERS)
