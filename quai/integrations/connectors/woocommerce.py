"""WooCommerce REST API v3 (``/wp-json/wc/v3``): order webhooks in, orders polled, stock, completion with tracking,
refunds.

Sources, cited where each behaviour is used:
- [WC_Webhook] woocommerce/woocommerce ``plugins/woocommerce/includes/class-wc-webhook.php``: ``deliver()`` sends
  the body ``trim(wp_json_encode($payload))`` with headers ``X-WC-Webhook-Source/Topic/Resource/Event/Signature/ID/
  Delivery-ID``; ``generate_signature()`` is ``base64_encode(hash_hmac('sha256', $payload,
  wp_specialchars_decode($secret, ENT_QUOTES), true))``; ``get_new_delivery_id()`` is ``wp_hash($id .
  strtotime('now'))`` (one per webhook and *second*); ``deliver_ping()`` POSTs the form body ``webhook_id=<id>``
  with no signature and wants exactly 200.
- [WP formatting] WordPress ``wp-includes/formatting.php`` ``wp_specialchars_decode``: with ENT_QUOTES it turns
  only ``&amp; &lt; &gt; &quot; &#039;`` (and their numeric forms ``&#038; &#x26; &#060; &#062; &#034; &#x22;
  &#x27;``, zero-padded too) back into characters, in one pass; every other entity stays as written.
- [REST docs] woocommerce/woocommerce-rest-api-docs ``source/includes/wp-api-v3/``: ``_orders.md`` (order
  properties, list parameters ``status``, ``page``, ``per_page`` ≤ 100, ``orderby``/``order``,
  ``modified_after`` with ``dates_are_gmt``), ``_order-notes.md`` (``POST /orders/{id}/notes`` ``note``,
  ``customer_note``), ``_order-refunds.md`` (``POST /orders/{id}/refunds`` ``amount``, ``reason``,
  ``line_items[{id, quantity, refund_total}]``, ``api_refund``, ``api_restock``), ``_products.md`` and
  ``_product-variations.md`` (``GET /products?sku=``, ``POST /products/batch`` ``{"update": [...]}`` at most 100
  objects, ``PUT /products/{id}/variations/{vid}``), ``_webhooks.md`` (``POST /webhooks`` ``name, topic,
  delivery_url, secret, status``), ``_introduction.md`` (pagination headers ``X-WP-Total``, ``X-WP-TotalPages``),
  ``_authentication.md`` (HTTP Basic with the consumer key and secret over HTTPS).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from quai.core import clock
from quai.integrations.connectors.base import (
    Address,
    ConnectorError,
    ExternalLine,
    ExternalOrder,
    HealthReport,
    InboundEvent,
    Page,
    PlatformAdapter,
    Refund,
    Shipment,
    SignatureInvalid,
    StockLevel,
    StockPushReport,
    Throttled,
    register,
)

API_PREFIX = "/wp-json/wc/v3"
PER_PAGE = 100  # the REST API's maximum page size [REST docs _introduction.md]
BATCH_MAX = 100  # objects per batch request [REST docs _products.md, "Batch update products"]
FULFILMENT_META = "_quai_fulfilment"  # order meta recording which of our shipments completed it (idempotency)
REFUND_META = "_quai_refund"
WEBHOOK_TOPICS = ("order.created", "order.updated", "order.deleted")

# [WC_Webhook] deliver_ping(): the form body, unsigned.
_PING = re.compile(rb"webhook_id=\d{1,20}")

# [WP formatting] wp_specialchars_decode( $text, ENT_QUOTES ): the named and numeric forms it decodes, nothing else.
_ENTITY = re.compile(r"&(?:amp|lt|gt|quot|#0*(?:38|60|62|34|39)|#[xX]0*(?:26|22|27));")
_ENTITY_CHAR = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "38": "&", "60": "<", "62": ">", "34": '"', "39": "'"}


def wp_specialchars_decode(text: str) -> str:
    """WordPress's ``wp_specialchars_decode($text, ENT_QUOTES)``, which WooCommerce applies to a webhook's secret
    before signing: a secret typed as ``a&amp;b`` signs with ``a&b``; ``&eacute;`` stays as it is."""
    if "&" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        entity = match.group(0)[1:-1]
        if entity.startswith(("#x", "#X")):
            return chr(int(entity[2:], 16))
        if entity.startswith("#"):
            return _ENTITY_CHAR[str(int(entity[1:]))]
        return _ENTITY_CHAR[entity]

    return _ENTITY.sub(one, text)


def signature_for(secret: str, raw_body: bytes) -> str:
    """[WC_Webhook] generate_signature(): base64 HMAC-SHA256 of the body as sent, keyed by the decoded secret."""
    key = wp_specialchars_decode(secret).encode()
    return base64.b64encode(hmac.new(key, raw_body, hashlib.sha256).digest()).decode("ascii")


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else "0"))
    except InvalidOperation:
        return Decimal("0")


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # the *_gmt fields carry no offset


@register
class WooCommerceAdapter(PlatformAdapter):
    platform = "woocommerce"
    capabilities = frozenset(
        {"push_orders", "poll_orders", "stock_push", "tracking_push", "refunds", "notes", "webhook_registration"}
    )

    # --- HTTP ---------------------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        base = self.config.base_url.rstrip("/")
        return base if base.endswith(API_PREFIX) else base + API_PREFIX

    def _auth(self) -> tuple[str, str]:
        # [REST docs _authentication.md] HTTP Basic with the consumer key and secret (over HTTPS in production).
        credentials = self.config.credentials
        return credentials.get("consumer_key", ""), credentials.get("consumer_secret", "")

    def _request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> httpx.Response:
        try:
            response = self.client.request(
                method,
                self.api_url + path,
                params=params,
                json=body,
                auth=self._auth(),
                headers={"accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ConnectorError(f"WooCommerce unreachable: {type(exc).__name__}: {exc}", retryable=True) from exc
        status = response.status_code
        if status < 300:
            return response
        detail = self._error_text(response)
        if status == 429:
            raise Throttled(f"WooCommerce throttled the call: {detail}", retry_after=_retry_after(response))
        if status in (401, 403):
            raise ConnectorError(f"WooCommerce refused the credentials ({status}): {detail}", code="shop_unauthorized")
        if status == 404:
            raise ConnectorError(f"WooCommerce has no {path} ({detail})", code="shop_not_found")
        if status >= 500 or status == 408:
            raise ConnectorError(
                f"WooCommerce answered {status}: {detail}", retryable=True, retry_after=_retry_after(response)
            )
        raise ConnectorError(f"WooCommerce refused the call ({status}): {detail}", code="shop_refused")

    @staticmethod
    def _error_text(response: httpx.Response) -> str:
        # [REST docs _introduction.md "Errors"]: {"code": "...", "message": "...", "data": {"status": N}}
        try:
            data = response.json()
        except ValueError:
            return response.text[:200]
        if isinstance(data, dict):
            return f"{data.get('code', '')}: {data.get('message', '')}"[:300]
        return str(data)[:200]

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ConnectorError("WooCommerce answered something that is not JSON", retryable=True) from exc

    # --- Inbound ------------------------------------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        signature = headers.get("X-WC-Webhook-Signature") or headers.get("x-wc-webhook-signature")
        if not signature:
            # [WC_Webhook] deliver_ping(): the one unsigned call, recognised by its whole body; it carries nothing.
            if _PING.fullmatch(raw_body):
                return
            raise SignatureInvalid("X-WC-Webhook-Signature is missing")
        secret = self.config.credentials.get("webhook_secret", "")
        if not secret:
            raise SignatureInvalid("this connection has no webhook secret to check the signature with")
        expected = signature_for(secret, raw_body)
        if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
            raise SignatureInvalid("X-WC-Webhook-Signature does not match the body")

    def delivery_id(self, headers: Mapping[str, str], raw_body: bytes) -> str:
        # [WC_Webhook] get_new_delivery_id() is wp_hash(webhook id . current second): two different deliveries of
        # one webhook in the same second share it, so the body's digest is part of the key. A re-sent delivery
        # (same id, same bytes) is still one.
        delivery = headers.get("X-WC-Webhook-Delivery-ID", "")
        webhook = headers.get("X-WC-Webhook-ID", "")
        digest = hashlib.sha256(raw_body).hexdigest()[:32]
        return f"wc:{webhook}:{delivery}:{digest}"

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundEvent]:
        if not headers.get("X-WC-Webhook-Signature") and _PING.fullmatch(raw_body):
            return [InboundEvent(kind="ping")]
        topic = headers.get("X-WC-Webhook-Topic", "")
        try:
            payload = json.loads(raw_body)
        except ValueError as exc:
            raise ConnectorError("the webhook body is not JSON", code="payload_invalid") from exc
        if not isinstance(payload, dict) or "id" not in payload:
            raise ConnectorError("the webhook body has no order id", code="payload_invalid")
        external_id = str(payload["id"])
        if topic == "order.deleted":
            return [InboundEvent(kind="order_cancelled", external_id=external_id)]
        if not topic.startswith("order."):
            raise ConnectorError(f"unexpected topic {topic!r}", code="topic_unsupported")
        order = self.order_from(payload)
        if order.cancelled:
            return [InboundEvent(kind="order_cancelled", external_id=external_id, order=order)]
        if self._ready(payload):
            return [InboundEvent(kind="order_ready", external_id=external_id, order=order)]
        return [InboundEvent(kind="order_changed", external_id=external_id, order=order)]

    def _ready_statuses(self) -> tuple[str, ...]:
        # The warehouse takes paid orders: "processing" [INTEGRATIONS.md §2.2]; a merchant may add others.
        return tuple(self.config.settings.get("ready_statuses") or ("processing",))

    def _ready(self, payload: Mapping[str, Any]) -> bool:
        return str(payload.get("status", "")) in self._ready_statuses()

    def order_from(self, data: Mapping[str, Any]) -> ExternalOrder:
        """An order resource of the REST API (the webhook's body is the same resource) [REST docs _orders.md]."""
        try:
            shipping = data.get("shipping") or {}
            billing = data.get("billing") or {}
            lines = tuple(
                ExternalLine(
                    external_line_id=str(item["id"]),
                    sku=str(item.get("sku") or ""),
                    quantity=int(item.get("quantity") or 0),
                    unit_price=_decimal(item.get("price")),
                    name=str(item.get("name") or ""),
                )
                for item in data.get("line_items") or []
            )
            name = " ".join(
                part for part in (shipping.get("first_name"), shipping.get("last_name")) if part
            ) or " ".join(part for part in (billing.get("first_name"), billing.get("last_name")) if part)
            status = str(data.get("status") or "")
            shipping_lines = data.get("shipping_lines") or []
            return ExternalOrder(
                external_id=str(data["id"]),
                external_number=str(data.get("number") or data["id"]),
                currency=str(data.get("currency") or ""),
                ship_to=Address(
                    name=name,
                    company=str(shipping.get("company") or ""),
                    line1=str(shipping.get("address_1") or ""),
                    line2=str(shipping.get("address_2") or ""),
                    postcode=str(shipping.get("postcode") or ""),
                    city=str(shipping.get("city") or ""),
                    region=str(shipping.get("state") or ""),
                    country=str(shipping.get("country") or ""),
                    phone=str(shipping.get("phone") or billing.get("phone") or ""),
                    email=str(billing.get("email") or ""),
                ),
                lines=lines,
                created_at=_moment(data.get("date_created_gmt")),
                updated_at=_moment(data.get("date_modified_gmt")),
                paid=bool(data.get("date_paid_gmt") or data.get("date_paid")) or status in ("processing", "completed"),
                status_raw=status,
                customer_email=str(billing.get("email") or ""),
                customer_phone=str(billing.get("phone") or ""),
                service_hint=str(shipping_lines[0].get("method_id") or "") if shipping_lines else "",
                notes=str(data.get("customer_note") or ""),
                shipping_total=_decimal(data.get("shipping_total")),
                cancelled=status in ("cancelled", "refunded", "failed", "trash"),
                platform_refs={
                    "order_id": data["id"],
                    "line_items": {str(i["id"]): i.get("sku") for i in data.get("line_items") or []},
                },
                raw=dict(data),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConnectorError(f"the order is missing a field: {exc}", code="payload_invalid") from exc

    # --- Pull ---------------------------------------------------------------------------------------------------

    def fetch_orders(self, cursor: str | None) -> Page:
        """Ready orders modified since the cursor, one page of up to 100 per call.

        What the list endpoint documents [REST docs _orders.md "List all orders"]: ``modified_after`` ("limit
        response to resources modified after a given ISO8601 compliant date", so strictly after, at the second) with
        ``dates_are_gmt``, and ``orderby`` among ``date``, ``id``, ``include``, ``title``, ``slug`` only: sorting by
        modification date is not documented (older stores answer 400 ``rest_invalid_param``), so a pass pages by
        creation date, where an order modified between two pages keeps its place (sorted by modification, it would
        jump to the end and push an unread one back onto a page already read). The pass's high-water mark is the
        latest ``date_modified_gmt`` it saw; the next pass asks from one second before it, since orders modified in
        that same second may land after the pass, and drops the ids already taken at that second (the rule
        PrestaShop's and Saleor's polls share). Cursor ``{"since", "seen", "page", "mark", "mark_seen"}``; None:
        caught up."""
        since, seen, page, mark, mark_seen = _cursor_decode(cursor)
        params: dict[str, Any] = {
            "status": ",".join(self._ready_statuses()),
            "orderby": "date",
            "order": "asc",
            "per_page": PER_PAGE,
            "page": page,
        }
        if since:
            params["modified_after"] = _second_before(since)
            params["dates_are_gmt"] = "true"
        response = self._request("GET", "/orders", params=params)
        rows = self._json(response)
        if not isinstance(rows, list):
            raise ConnectorError("the orders list is not a list", code="payload_invalid")
        fresh = [row for row in rows if not (_modified(row) == since and _id(row) in seen)]
        for row in rows:
            stamp = _modified(row)
            if stamp > mark:
                mark, mark_seen = stamp, {_id(row)}
            elif stamp == mark:
                mark_seen.add(_id(row))
        orders = tuple(self.order_from(row) for row in fresh)
        total_pages = int(response.headers.get("X-WP-TotalPages") or 1)
        if page < total_pages:
            next_cursor: str | None = _cursor_encode(since, seen, page + 1, mark, mark_seen)
        elif mark > since or (mark == since and not mark_seen <= seen):
            next_cursor = _cursor_encode(mark, mark_seen | (seen if mark == since else set()), 1, "", set())
        else:
            next_cursor = None
        return Page(orders=orders, cursor=next_cursor)

    def fetch_order(self, external_id: str) -> ExternalOrder:
        return self.order_from(self._json(self._request("GET", f"/orders/{int(external_id)}")))

    # --- The order's life ---------------------------------------------------------------------------------------

    def accept(self, order: ExternalOrder, message: str = "") -> None:
        # WooCommerce has no fulfilment request: accepting is a private note on the order [INTEGRATIONS.md §6.2].
        self.add_note(order, message or "Received by the warehouse.", customer_visible=False)

    def add_note(self, order: ExternalOrder, text: str, customer_visible: bool = False) -> None:
        # [REST docs _order-notes.md] customer_note=true shows the note to the customer and emails it.
        self._request(
            "POST", f"/orders/{int(order.external_id)}/notes", body={"note": text, "customer_note": customer_visible}
        )

    def push_fulfilment(self, order: ExternalOrder, shipment: Shipment, idempotency_key: str) -> str:
        """Status ``completed`` with our shipment's key in the order's meta, then a customer note with the tracking.
        A retry after a lost answer finds the key in the meta and does not complete or notify twice."""
        path = f"/orders/{int(order.external_id)}"
        current = self._json(self._request("GET", path))
        done = any(
            meta.get("key") == FULFILMENT_META and meta.get("value") == idempotency_key
            for meta in current.get("meta_data") or []
        )
        if not done:
            self._request(
                "PUT",
                path,
                body={"status": "completed", "meta_data": [{"key": FULFILMENT_META, "value": idempotency_key}]},
            )
            lines = [
                " ".join(part for part in (parcel.carrier_code, parcel.tracking_number, parcel.tracking_url) if part)
                for parcel in shipment.parcels
            ]
            if lines:
                self.add_note(order, "Shipped: " + "; ".join(lines), customer_visible=shipment.notify_customer)
        return f"{order.external_id}:{idempotency_key}"

    def push_refund(self, order: ExternalOrder, refund: Refund, idempotency_key: str) -> str:
        """[REST docs _order-refunds.md] A refund recorded on the order; ``api_refund`` false: the merchant moves the
        money (``settings.refund_through_gateway`` to let WooCommerce call the gateway). Idempotent through the
        refund's meta: an existing refund with our key is answered instead of a second one."""
        path = f"/orders/{int(order.external_id)}/refunds"
        for existing in self._json(self._request("GET", path)) or []:
            for meta in existing.get("meta_data") or []:
                if meta.get("key") == REFUND_META and meta.get("value") == idempotency_key:
                    return str(existing["id"])
        body: dict[str, Any] = {
            "amount": str(refund.amount),
            "reason": refund.reason,
            "api_refund": bool(self.config.settings.get("refund_through_gateway", False)),
            "api_restock": refund.restock,
            "meta_data": [{"key": REFUND_META, "value": idempotency_key}],
        }
        if refund.lines:
            body["line_items"] = [
                {"id": int(line.external_line_id), "quantity": line.quantity, "refund_total": str(line.amount)}
                for line in refund.lines
            ]
        created = self._json(self._request("POST", path, body=body))
        return str(created.get("id", ""))

    # --- Stock --------------------------------------------------------------------------------------------------

    def _products_by_sku(self, skus: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each SKU's product (or variation: ``parent_id`` set) — [REST docs _products.md] ``GET /products?sku=``
        takes a comma-separated list of SKUs."""
        found: dict[str, dict[str, Any]] = {}
        wanted = list(dict.fromkeys(skus))
        for start in range(0, len(wanted), PER_PAGE):
            chunk = wanted[start : start + PER_PAGE]
            page = 1
            while True:
                response = self._request(
                    "GET", "/products", params={"sku": ",".join(chunk), "per_page": PER_PAGE, "page": page}
                )
                for product in self._json(response) or []:
                    if product.get("sku"):
                        found[str(product["sku"])] = product
                if page >= int(response.headers.get("X-WP-TotalPages") or 1):
                    break
                page += 1
        return found

    def push_stock(self, levels: Sequence[StockLevel], snapshot_id: str) -> StockPushReport:
        """Absolute ``stock_quantity`` per SKU with ``manage_stock`` on: products through ``POST /products/batch``
        (100 per request), variations through ``POST /products/{parent}/variations/batch``."""
        products = self._products_by_sku([level.sku for level in levels])
        unknown = tuple(level.sku for level in levels if level.sku not in products)
        groups: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        for level in levels:
            product = products.get(level.sku)
            if product is None:
                continue
            parent = int(product.get("parent_id") or 0)
            groups.setdefault(parent, []).append(
                (level.sku, {"id": product["id"], "manage_stock": True, "stock_quantity": max(0, level.available)})
            )
        updated: list[str] = []
        failed: dict[str, str] = {}
        for parent, items in groups.items():
            path = "/products/batch" if parent == 0 else f"/products/{parent}/variations/batch"
            for start in range(0, len(items), BATCH_MAX):
                chunk = items[start : start + BATCH_MAX]
                answer = self._json(self._request("POST", path, body={"update": [body for _sku, body in chunk]}))
                results = {str(row.get("id")): row for row in (answer or {}).get("update") or []}
                for sku, body in chunk:
                    row = results.get(str(body["id"]))
                    if row is None:
                        failed[sku] = "missing from the batch answer"
                    elif row.get("error"):
                        failed[sku] = str(row["error"].get("message", row["error"]))[:300]
                    else:
                        updated.append(sku)
        return StockPushReport(updated=tuple(updated), unknown=unknown, failed=failed)

    def stock_levels(self, skus: Sequence[str]) -> dict[str, int | None]:
        """What the shop shows now for each SKU (None: not managed there) — the reconcile's read."""
        products = self._products_by_sku(skus)
        return {
            sku: (
                int(products[sku]["stock_quantity"])
                if sku in products and products[sku].get("stock_quantity") is not None
                else None
            )
            for sku in skus
            if sku in products
        }

    # --- Set-up and health --------------------------------------------------------------------------------------

    def ensure_subscriptions(self, public_base_url: str) -> None:
        """One webhook per order topic pointing at this connection's URL, active, with our secret
        [REST docs _webhooks.md]; a disabled one (five failed deliveries) is turned active again."""
        secret = self.config.credentials.get("webhook_secret", "")
        if not secret:
            raise ConnectorError("set a webhook secret on the connection first", code="webhook_secret_missing")
        existing = self._json(self._request("GET", "/webhooks", params={"per_page": PER_PAGE})) or []
        for topic in WEBHOOK_TOPICS:
            url = f"{public_base_url.rstrip('/')}/{topic}"
            mine = [hook for hook in existing if hook.get("topic") == topic and hook.get("delivery_url") == url]
            if not mine:
                self._request(
                    "POST",
                    "/webhooks",
                    body={
                        "name": f"Quai {topic}",
                        "topic": topic,
                        "delivery_url": url,
                        "secret": secret,
                        "status": "active",
                    },
                )
            elif mine[0].get("status") != "active":
                self._request("PUT", f"/webhooks/{int(mine[0]['id'])}", body={"status": "active", "secret": secret})

    def health(self) -> HealthReport:
        checks: dict[str, bool] = {}
        details: list[str] = []
        try:
            self._request("GET", "/orders", params={"per_page": 1})
            checks["credentials"] = True
        except ConnectorError as exc:
            checks["credentials"] = False
            details.append(str(exc))
            return HealthReport(ok=False, detail="; ".join(details), checks=checks)
        try:
            hooks = self._json(self._request("GET", "/webhooks", params={"per_page": PER_PAGE})) or []
            inactive = [hook.get("topic") for hook in hooks if hook.get("status") != "active"]
            checks["webhooks_active"] = bool(hooks) and not inactive
            if inactive:
                details.append(f"inactive webhooks: {', '.join(map(str, inactive))}")
            elif not hooks:
                details.append("no webhook registered")
        except ConnectorError as exc:
            checks["webhooks_active"] = False
            details.append(str(exc))
        return HealthReport(ok=all(checks.values()), detail="; ".join(details), checks=checks)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (moment - clock.now()).total_seconds())


# --- The poll's cursor ------------------------------------------------------------------------------------------


def _modified(row: Mapping[str, Any]) -> str:
    return str(row.get("date_modified_gmt") or "")


def _id(row: Mapping[str, Any]) -> int:
    try:
        return int(row.get("id") or 0)
    except (TypeError, ValueError):
        return 0


def _second_before(stamp: str) -> str:
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        raise ConnectorError(f"unreadable date in the poll cursor: {stamp!r}", code="cursor_invalid") from None
    return (moment - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")


def _cursor_encode(since: str, seen: set[int], page: int, mark: str, mark_seen: set[int]) -> str:
    return json.dumps(
        {"since": since, "seen": sorted(seen), "page": page, "mark": mark, "mark_seen": sorted(mark_seen)},
        separators=(",", ":"),
    )


def _cursor_decode(cursor: str | None) -> tuple[str, set[int], int, str, set[int]]:
    if not cursor:
        return "", set(), 1, "", set()
    try:
        data = json.loads(cursor)
        return (
            str(data["since"]),
            {int(i) for i in data.get("seen", [])},
            max(1, int(data.get("page", 1))),
            str(data.get("mark", "")),
            {int(i) for i in data.get("mark_seen", [])},
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    # A cursor of the earlier form ``<modified_gmt>|<page>``: start again from its date.
    since, _sep, _page = cursor.partition("|")
    if since:
        try:
            datetime.fromisoformat(since)
        except ValueError:
            raise ConnectorError(f"unreadable WooCommerce cursor {cursor!r}", code="cursor_invalid") from None
    return since, set(), 1, "", set()
