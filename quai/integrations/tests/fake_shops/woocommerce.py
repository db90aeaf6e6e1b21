"""A fake WooCommerce store speaking the REST API v3 the way the documentation and the plugin's source describe it
(see quai/integrations/connectors/woocommerce.py for the sources): Basic auth with a consumer key and secret,
pages of ``per_page`` with ``X-WP-Total`` / ``X-WP-TotalPages``, products and variations by SKU, batch updates,
orders, notes, refunds, webhooks; and webhook deliveries encoded and signed as ``WC_Webhook::deliver`` does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import math
from typing import Any

from quai.integrations.connectors.woocommerce import wp_specialchars_decode
from quai.integrations.tests.fake_shops.base import FakeShop, Request, Response

CONSUMER_KEY = "ck_test"
CONSUMER_SECRET = "cs_test"


def php_json_encode(value: Any) -> bytes:
    """``wp_json_encode`` with PHP's default flags: ``\\/`` for every slash and ``\\uXXXX`` for every non-ASCII
    character (an emoji as its UTF-16 surrogate pair), no spaces."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def woo_signature(secret: str, body: bytes) -> str:
    key = wp_specialchars_decode(secret).encode()
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


class FakeWooCommerce(FakeShop):
    def __init__(self, *, webhook_secret: str = "s3cret&amp;more") -> None:
        super().__init__()
        self.webhook_secret = webhook_secret
        self.products: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.refunds: dict[int, list[dict[str, Any]]] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(100)
        self._clock = itertools.count(1)
        p = "/wp-json/wc/v3"
        self.route("GET", f"{p}/products", self._products_list)
        self.route("POST", f"{p}/products/batch", self._products_batch)
        self.route("POST", rf"{p}/products/(?P<parent>\d+)/variations/batch", self._variations_batch)
        self.route("GET", f"{p}/orders", self._orders_list)
        self.route("GET", rf"{p}/orders/(?P<order_id>\d+)", self._order_get)
        self.route("PUT", rf"{p}/orders/(?P<order_id>\d+)", self._order_put)
        self.route("POST", rf"{p}/orders/(?P<order_id>\d+)/notes", self._note_add)
        self.route("GET", rf"{p}/orders/(?P<order_id>\d+)/refunds", self._refunds_list)
        self.route("POST", rf"{p}/orders/(?P<order_id>\d+)/refunds", self._refund_add)
        self.route("GET", f"{p}/webhooks", self._webhooks_list)
        self.route("POST", f"{p}/webhooks", self._webhook_add)
        self.route("PUT", rf"{p}/webhooks/(?P<hook_id>\d+)", self._webhook_put)

    def authorised(self, request: Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
        return request.headers.get("Authorization") == expected

    # --- the store's own data ---------------------------------------------------------------------------------

    def _stamp(self) -> str:
        tick = next(self._clock)
        return f"2026-12-01T{10 + tick // 3600:02d}:{tick // 60 % 60:02d}:{tick % 60:02d}"

    def add_product(self, sku: str, stock: int | None = 0, *, parent_id: int = 0) -> dict[str, Any]:
        with self.lock:
            product = {
                "id": next(self._ids),
                "sku": sku,
                "parent_id": parent_id,
                "manage_stock": stock is not None,
                "stock_quantity": stock,
                "name": sku,
            }
            self.products[product["id"]] = product
            return product

    def add_order(self, lines: list[tuple[str, int]], *, status: str = "processing", **extra: Any) -> dict[str, Any]:
        with self.lock:
            order_id = next(self._ids)
            stamp = self._stamp()
            order = {
                "id": order_id,
                "number": str(order_id),
                "status": status,
                "currency": "EUR",
                "date_created_gmt": stamp,
                "date_modified_gmt": stamp,
                "date_paid_gmt": stamp if status == "processing" else None,
                "shipping_total": "4.90",
                "customer_note": "",
                "billing": {
                    "first_name": "Zoé",
                    "last_name": "Lefèvre",
                    "email": "zoe@example.fr",
                    "phone": "+33612345678",
                },
                "shipping": {
                    "first_name": "Zoé",
                    "last_name": "Lefèvre",
                    "company": "",
                    "address_1": "3 rue de l'Été",
                    "address_2": "",
                    "city": "Lyon",
                    "state": "",
                    "postcode": "69007",
                    "country": "FR",
                    "phone": "",
                },
                "line_items": [
                    {"id": next(self._ids), "name": f"{sku} 🎁", "sku": sku, "quantity": qty, "price": 12.5}
                    for sku, qty in lines
                ],
                "shipping_lines": [{"id": 1, "method_id": "flat_rate", "method_title": "Colissimo"}],
                "meta_data": [],
                **extra,
            }
            self.orders[order_id] = order
            return order

    def set_status(self, order_id: int, status: str) -> dict[str, Any]:
        with self.lock:
            self.orders[order_id]["status"] = status
            self.orders[order_id]["date_modified_gmt"] = self._stamp()
            return self.orders[order_id]

    def delivery(
        self, topic: str, resource: dict[str, Any], *, webhook_id: int = 7, delivery_id: str = ""
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of a webhook delivery, as ``WC_Webhook::deliver`` builds them."""
        body = php_json_encode(resource).strip()
        resource_name, event = topic.split(".", 1)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)",
            "X-WC-Webhook-Source": "https://shop.example/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource_name,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": woo_signature(self.webhook_secret, body),
            "X-WC-Webhook-ID": str(webhook_id),
            "X-WC-Webhook-Delivery-ID": delivery_id
            or hashlib.md5(f"{webhook_id}{next(self._clock)}".encode()).hexdigest(),
        }
        return headers, body

    # --- REST handlers ------------------------------------------------------------------------------------------

    @staticmethod
    def _page(request: Request, rows: list[dict[str, Any]]) -> Response:
        per_page = min(int(request.param("per_page", "10")), 100)
        page = int(request.param("page", "1"))
        total = len(rows)
        pages = max(1, math.ceil(total / per_page))
        chunk = rows[(page - 1) * per_page : page * per_page]
        return Response(200, chunk, {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)})

    def _products_list(self, request: Request) -> Response:
        skus = [s for s in request.param("sku").split(",") if s]
        with self.lock:
            rows = [p for p in self.products.values() if not skus or p["sku"] in skus]
            return self._page(request, [dict(p) for p in rows])

    def _batch(self, request: Request, parent: int) -> Response:
        updates = (request.json() or {}).get("update", [])
        if len(updates) > 100:
            return Response(
                413,
                {
                    "code": "woocommerce_rest_request_entity_too_large",
                    "message": "Unable to accept more than 100 items for this request.",
                },
            )
        answer = []
        with self.lock:
            for item in updates:
                product = self.products.get(int(item["id"]))
                if product is None or product["parent_id"] != parent:
                    answer.append(
                        {
                            "id": item["id"],
                            "error": {
                                "code": "woocommerce_rest_product_invalid_id",
                                "message": "Invalid ID.",
                                "data": {"status": 400},
                            },
                        }
                    )
                    continue
                if "stock_quantity" in item:
                    product["stock_quantity"] = int(item["stock_quantity"])
                if "manage_stock" in item:
                    product["manage_stock"] = bool(item["manage_stock"])
                answer.append(dict(product))
        return Response(200, {"update": answer})

    def _products_batch(self, request: Request) -> Response:
        return self._batch(request, 0)

    def _variations_batch(self, request: Request, parent: str) -> Response:
        return self._batch(request, int(parent))

    def _orders_list(self, request: Request) -> Response:
        statuses = [s for s in request.param("status").split(",") if s]
        after = request.param("modified_after")  # strictly after, at the second [REST docs _orders.md]
        orderby = request.param("orderby", "date")
        if orderby not in ("date", "id", "include", "title", "slug"):  # the documented enum: anything else is a 400
            return Response(
                400,
                {
                    "code": "rest_invalid_param",
                    "message": "Invalid parameter(s): orderby",
                    "data": {"status": 400, "params": {"orderby": "orderby is not one of date, id, include, title"}},
                },
            )
        with self.lock:
            rows = [
                o
                for o in self.orders.values()
                if (not statuses or o["status"] in statuses) and (not after or o["date_modified_gmt"] > after)
            ]
            # WP_Query adds the id as tie-break to a date order; ``order`` defaults to desc for orders.
            if orderby == "id":
                rows.sort(key=lambda o: o["id"])
            else:
                rows.sort(key=lambda o: (o["date_created_gmt"], o["id"]))
            if request.param("order", "desc") == "desc":
                rows.reverse()
            return self._page(request, [dict(o) for o in rows])

    def _order(self, order_id: str) -> dict[str, Any] | None:
        return self.orders.get(int(order_id))

    def _missing(self) -> Response:
        return Response(
            404, {"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.", "data": {"status": 404}}
        )

    def _order_get(self, request: Request, order_id: str) -> Response:
        with self.lock:
            order = self._order(order_id)
            return Response(200, dict(order)) if order else self._missing()

    def _order_put(self, request: Request, order_id: str) -> Response:
        with self.lock:
            order = self._order(order_id)
            if order is None:
                return self._missing()
            changes = request.json() or {}
            if "status" in changes:
                order["status"] = changes["status"]
            for meta in changes.get("meta_data", []):
                order["meta_data"].append({"id": next(self._ids), **meta})
            order["date_modified_gmt"] = self._stamp()
            return Response(200, dict(order))

    def _note_add(self, request: Request, order_id: str) -> Response:
        with self.lock:
            if self._order(order_id) is None:
                return self._missing()
            note = {"id": next(self._ids), **(request.json() or {})}
            self.notes.setdefault(int(order_id), []).append(note)
            return Response(201, note)

    def _refunds_list(self, request: Request, order_id: str) -> Response:
        with self.lock:
            return Response(200, list(self.refunds.get(int(order_id), [])))

    def _refund_add(self, request: Request, order_id: str) -> Response:
        with self.lock:
            if self._order(order_id) is None:
                return self._missing()
            data = request.json() or {}
            refund = {
                "id": next(self._ids),
                **data,
                "meta_data": [{"id": next(self._ids), **m} for m in data.get("meta_data", [])],
            }
            self.refunds.setdefault(int(order_id), []).append(refund)
            return Response(201, refund)

    def _webhooks_list(self, request: Request) -> Response:
        with self.lock:
            return self._page(request, [dict(h) for h in self.webhooks.values()])

    def _webhook_add(self, request: Request) -> Response:
        with self.lock:
            hook = {"id": next(self._ids), "status": "active", **(request.json() or {})}
            self.webhooks[hook["id"]] = hook
            return Response(201, hook)

    def _webhook_put(self, request: Request, hook_id: str) -> Response:
        with self.lock:
            hook = self.webhooks.get(int(hook_id))
            if hook is None:
                return Response(404, {"code": "woocommerce_rest_webhook_invalid_id", "message": "Invalid ID."})
            hook.update(request.json() or {})
            return Response(200, dict(hook))
