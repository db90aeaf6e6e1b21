"""A fake Shopify shop for tests: the GraphQL Admin API over real HTTP on 127.0.0.1, a fulfilment service's view.

It speaks the documented protocol the adapter relies on, not the adapter's code: ``POST /admin/api/<version>/
graphql.json`` with ``X-Shopify-Access-Token``; answers ``{"data", "errors", "extensions": {"cost": {...,
"throttleStatus": {maximumAvailable, currentlyAvailable, restoreRate}}}}`` with a real leaky bucket (a query dearer
than what is left is answered ``THROTTLED`` with ``data`` null); cursor pagination with ``pageInfo``; the fulfilment
order request states and their transitions; ``inventorySetQuantities`` with the 2026-04 rules (``@idempotent`` key
and ``changeFromQuantity`` on every quantity, ``CHANGE_FROM_QUANTITY_STALE``); ``fulfillmentCreate`` against the
remaining quantities. Canned failures (401, 429 with Retry-After, 5xx) are queued with ``fail_next``.

It does not parse GraphQL: it finds the operation's root field and reads the variables, so the adapter must pass
every argument as a variable (it does) and the fake checks that each argument it reads is named in the document.
Self-contained (the shared base for fake shops did not exist yet when this was written).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import httpx

ROOTS = (
    "assignedFulfillmentOrders",
    "fulfillmentOrderAcceptFulfillmentRequest",
    "fulfillmentOrderRejectFulfillmentRequest",
    "fulfillmentOrderAcceptCancellationRequest",
    "fulfillmentOrderRejectCancellationRequest",
    "fulfillmentOrder",
    "fulfillmentCreate",
    "productVariants",
    "inventorySetQuantities",
    "fulfillmentServiceCreate",
    "fulfillmentServiceUpdate",
    "shop",
)
REQUEST_STATUS_FOR = {"FULFILLMENT_REQUESTED": "SUBMITTED", "CANCELLATION_REQUESTED": "CANCELLATION_REQUESTED"}


def sign(secret: str, body: bytes) -> str:
    """What Shopify puts in X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int = 0
    root: str = ""


@dataclass
class FakeShopify:
    shop_domain: str = "quai-test.myshopify.com"
    access_token: str = "shpat_test"
    client_secret: str = "hush"
    api_version: str = "2026-10"
    bucket_size: float = 1000.0
    restore_rate: float = 100.0
    costs: dict[str, float] = field(default_factory=dict)  # root field -> requested cost (default 10)
    scopes: set[str] = field(
        default_factory=lambda: {
            "write_fulfillments",
            "read_assigned_fulfillment_orders",
            "write_assigned_fulfillment_orders",
            "write_inventory",
            "read_inventory",
        }
    )
    calls: list[Call] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    fulfillment_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    fulfillments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    variants: list[dict[str, str]] = field(default_factory=list)  # {"sku", "inventory_item_id"}
    levels: dict[tuple[str, str], int] = field(default_factory=dict)  # (inventory item, location) -> available
    services: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    # Moved by "someone else" right before the next inventorySetQuantities applies: (item, location) -> new level.
    concurrent_change: dict[tuple[str, str], int] = field(default_factory=dict)
    throttled: int = 0
    inventory_writes: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._available = self.bucket_size
        self._read_at = time.monotonic()

    # --- Server ------------------------------------------------------------------------------------------------------

    def start(self) -> FakeShopify:
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                status, headers, body = shop.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    # --- Test set-up -----------------------------------------------------------------------------------------------

    def gid(self, kind: str) -> str:
        return f"gid://shopify/{kind}/{next(self._ids)}"

    def add_service(self, name: str = "Quai", callback_url: str | None = None) -> dict[str, Any]:
        service = {
            "id": self.gid("FulfillmentService"),
            "serviceName": name,
            "callbackUrl": callback_url,
            "inventoryManagement": True,
            "trackingSupport": True,
            "location": {"id": self.gid("Location")},
        }
        self.services.append(service)
        return service

    def add_variant(self, sku: str, location_id: str | None = None, available: int | None = 0) -> str:
        item = self.gid("InventoryItem")
        self.variants.append({"sku": sku, "inventory_item_id": item})
        if location_id is not None and available is not None:
            self.levels[(item, location_id)] = available
        return item

    def request_fulfillment(
        self,
        location_id: str,
        lines: list[tuple[str, int]],
        name: str | None = None,
        prices: dict[str, str] | None = None,
        **destination: Any,
    ) -> dict[str, Any]:
        """A merchant's order whose fulfilment order is assigned to ``location_id`` and submitted to us."""
        number = next(self._ids)
        order = {
            "id": f"gid://shopify/Order/{number}",
            "name": name or f"#{number}",
            "createdAt": "2026-12-01T09:30:00Z",
            "currencyCode": "EUR",
            "note": None,
            "shippingLine": {"title": "Colissimo Domicile", "code": "colissimo_home"},
        }
        fulfillment_order = {
            "id": self.gid("FulfillmentOrder"),
            "status": "OPEN",
            "requestStatus": "SUBMITTED",
            "createdAt": "2026-12-01T09:31:00Z",
            "updatedAt": "2026-12-01T09:31:00Z",
            "assignedLocation": {"location": {"id": location_id}},
            "order": order,
            "destination": {
                "firstName": "Zoé",
                "lastName": "Lefèvre",
                "company": None,
                "address1": "12 rue de l'Église",
                "address2": None,
                "zip": "69007",
                "city": "Lyon",
                "province": None,
                "countryCode": "FR",
                "phone": "+33 6 12 34 56 78",
                "email": "zoe@example.fr",
                **destination,
            },
            "merchantRequests": {
                "nodes": [{"kind": "FULFILLMENT_REQUEST", "message": "Fragile", "sentAt": "2026-12-01T09:31:00Z"}]
            },
            "lineItems": {
                "nodes": [
                    {
                        "id": self.gid("FulfillmentOrderLineItem"),
                        "sku": sku,
                        "totalQuantity": quantity,
                        "remainingQuantity": quantity,
                        "productTitle": f"Product {sku}",
                        "variantTitle": None,
                        "inventoryItemId": next(
                            (v["inventory_item_id"] for v in self.variants if v["sku"] == sku), None
                        ),
                        "lineItem": {"id": self.gid("LineItem")},
                        "financialSummaries": [
                            {
                                "quantity": quantity,
                                "approximateDiscountedUnitPriceSet": {
                                    "shopMoney": {"amount": (prices or {}).get(sku, "0.0"), "currencyCode": "EUR"}
                                },
                            }
                        ],
                    }
                    for sku, quantity in lines
                ]
            },
        }
        with self._lock:
            self.fulfillment_orders[fulfillment_order["id"]] = fulfillment_order
        return fulfillment_order

    def request_cancellation(self, fulfillment_order_id: str) -> None:
        with self._lock:
            self.fulfillment_orders[fulfillment_order_id]["requestStatus"] = "CANCELLATION_REQUESTED"

    def notify(self, callback_url: str, kind: str = "FULFILLMENT_REQUEST", timeout: float = 5.0) -> httpx.Response:
        """What Shopify does on a merchant's request: POST <callbackUrl>/fulfillment_order_notification, signed."""
        body = json.dumps({"kind": kind}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Hmac-Sha256": sign(self.client_secret, body),
            "X-Shopify-Shop-Domain": self.shop_domain,
        }
        return httpx.post(f"{callback_url.rstrip('/')}/fulfillment_order_notification", content=body, headers=headers)

    def callback(
        self, name: str, params: list[tuple[str, str]] | None = None, timestamp: int | None = None
    ) -> tuple[str, dict[str, str]]:
        """What Shopify sends for ``fetch_stock`` / ``fetch_tracking_numbers``: ``GET <callbackUrl>/<name>.json?...``
        with ``max_retries``, ``shop``, ``timestamp`` (and ``sku`` or ``order_names[]``) in alphabetical order, the
        query string percent-encoded and signed as sent in ``X-Shopify-Hmac-Sha256``. Returns the path under the
        callback URL (with its query string) and the headers, for any HTTP client to send."""
        pairs = [("max_retries", "3"), ("shop", self.shop_domain), ("timestamp", str(timestamp or int(time.time())))]
        pairs += list(params or [])
        query = "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in sorted(pairs, key=lambda p: p[0]))
        headers = {
            "X-Shopify-Hmac-Sha256": sign(self.client_secret, query.encode()),
            "X-Shopify-Shop-Domain": self.shop_domain,
        }
        return f"{name}.json?{query}", headers

    def level(self, sku: str, location_id: str) -> int | None:
        item = next(v["inventory_item_id"] for v in self.variants if v["sku"] == sku)
        return self.levels.get((item, location_id))

    # --- The protocol ----------------------------------------------------------------------------------------------

    def _bucket_take(self, cost: float) -> tuple[bool, dict[str, float]]:
        now = time.monotonic()
        self._available = min(self.bucket_size, self._available + (now - self._read_at) * self.restore_rate)
        self._read_at = now
        allowed = cost <= self._available
        if allowed:
            self._available -= cost
        status = {
            "maximumAvailable": self.bucket_size,
            "currentlyAvailable": round(self._available, 2),
            "restoreRate": self.restore_rate,
        }
        return allowed, status

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            call = Call(path=path, headers=headers, body=body)
            self.calls.append(call)
            if self.fail_next:
                call.status, extra, answer = self.fail_next.pop(0)
                return call.status, extra, answer
            if path != f"/admin/api/{self.api_version}/graphql.json":
                call.status = 404
                return 404, {}, b'{"errors":"Not Found"}'
            if headers.get("x-shopify-access-token") != self.access_token:
                call.status = 401
                return (
                    401,
                    {},
                    b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}',
                )
            query = str(body.get("query", ""))
            variables = body.get("variables") or {}
            root = self._root(query)
            call.root = root
            cost = self.costs.get(root, 10.0)
            allowed, throttle = self._bucket_take(cost)
            extensions = {
                "cost": {
                    "requestedQueryCost": cost,
                    "actualQueryCost": cost if allowed else None,
                    "throttleStatus": throttle,
                }
            }
            if not allowed:
                self.throttled += 1
                call.status = 200
                answer = {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/limits",
                            },
                        }
                    ],
                    "extensions": extensions,
                }
                return 200, {}, json.dumps(answer).encode()
            try:
                data = getattr(self, f"_op_{root}")(query, variables)
            except GraphQLError as exc:
                call.status = 200
                answer = {"errors": [{"message": str(exc), "extensions": {"code": exc.code}}], "extensions": extensions}
                return 200, {}, json.dumps(answer).encode()
            call.status = 200
            return 200, {}, json.dumps({"data": data, "extensions": extensions}).encode()

    @staticmethod
    def _root(query: str) -> str:
        body = query.split("fragment ", 1)[0]
        found = []
        for name in ROOTS:
            match = re.search(rf"(?<![A-Za-z]){name}\s*[({{]", body)
            if match:
                found.append((match.start(), name))
        if not found:
            raise AssertionError(f"the fake Shopify does not know this operation: {query[:200]}")
        return min(found)[1]

    @staticmethod
    def _argument(query: str, root: str, name: str) -> None:
        """Each argument the fake reads must be passed by name to the root field, as the docs spell it."""
        call = re.search(rf"{root}\s*\(([^)]*)\)", query)
        if not call or not re.search(rf"(?<![A-Za-z]){name}\s*:", call.group(1)):
            raise GraphQLError(f"Field '{root}' is missing argument '{name}'", "argumentNotAccepted")

    def _fo(self, fulfillment_order_id: str) -> dict[str, Any]:
        found = self.fulfillment_orders.get(fulfillment_order_id)
        if found is None:
            raise GraphQLError(f"Invalid id: {fulfillment_order_id}", "RESOURCE_NOT_FOUND")
        return found

    def _with_fulfillments(self, node: dict[str, Any]) -> dict[str, Any]:
        return {**node, "fulfillments": {"nodes": self.fulfillments.get(node["id"], [])}}

    def _op_assignedFulfillmentOrders(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        for name in ("first", "after", "assignmentStatus"):
            self._argument(query, "assignedFulfillmentOrders", name)
        wanted = REQUEST_STATUS_FOR.get(variables.get("status") or "")
        locations = variables.get("locationIds")
        nodes = [
            node
            for node in self.fulfillment_orders.values()
            if (wanted is None or node["requestStatus"] == wanted)
            and node["status"] != "CLOSED"
            and (not locations or node["assignedLocation"]["location"]["id"] in locations)
        ]
        start = int(base64.b64decode(variables["after"]).decode()) if variables.get("after") else 0
        page = nodes[start : start + int(variables["first"])]
        end = start + len(page)
        return {
            "assignedFulfillmentOrders": {
                "nodes": page,
                "pageInfo": {
                    "hasNextPage": end < len(nodes),
                    "endCursor": base64.b64encode(str(end).encode()).decode(),
                },
            }
        }

    def _op_fulfillmentOrder(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        self._argument(query, "fulfillmentOrder", "id")
        node = self.fulfillment_orders.get(variables["id"])
        return {"fulfillmentOrder": self._with_fulfillments(node) if node else None}

    def _transition(self, root: str, variables: dict[str, Any], query: str, want: str, to: str, status: str) -> Any:
        self._argument(query, root, "id")
        self._argument(query, root, "message")
        node = self._fo(variables["id"])
        if node["requestStatus"] != want:
            return {root: {"fulfillmentOrder": None, "userErrors": [{"field": ["id"], "message": f"Cannot {root}"}]}}
        node["requestStatus"] = to
        node["status"] = status
        node["lastMessage"] = variables.get("message")
        return {root: {"fulfillmentOrder": {k: node[k] for k in ("id", "status", "requestStatus")}, "userErrors": []}}

    def _op_fulfillmentOrderAcceptFulfillmentRequest(self, query: str, variables: dict[str, Any]) -> Any:
        return self._transition(
            "fulfillmentOrderAcceptFulfillmentRequest", variables, query, "SUBMITTED", "ACCEPTED", "IN_PROGRESS"
        )

    def _op_fulfillmentOrderRejectFulfillmentRequest(self, query: str, variables: dict[str, Any]) -> Any:
        self._argument(query, "fulfillmentOrderRejectFulfillmentRequest", "reason")
        self._argument(query, "fulfillmentOrderRejectFulfillmentRequest", "lineItems")
        if variables.get("reason") not in (None, *REJECTION_REASONS):
            raise GraphQLError(
                "Variable $reason of type FulfillmentOrderRejectionReason was invalid", "INVALID_VARIABLE"
            )
        node = self._fo(variables["id"])
        node["rejection"] = {"reason": variables.get("reason"), "lineItems": variables.get("lineItems")}
        return self._transition(
            "fulfillmentOrderRejectFulfillmentRequest", variables, query, "SUBMITTED", "REJECTED", "OPEN"
        )

    def _op_fulfillmentOrderAcceptCancellationRequest(self, query: str, variables: dict[str, Any]) -> Any:
        return self._transition(
            "fulfillmentOrderAcceptCancellationRequest",
            variables,
            query,
            "CANCELLATION_REQUESTED",
            "CANCELLATION_ACCEPTED",
            "CANCELLED",
        )

    def _op_fulfillmentOrderRejectCancellationRequest(self, query: str, variables: dict[str, Any]) -> Any:
        return self._transition(
            "fulfillmentOrderRejectCancellationRequest",
            variables,
            query,
            "CANCELLATION_REQUESTED",
            "CANCELLATION_REJECTED",
            "IN_PROGRESS",
        )

    def _op_fulfillmentCreate(self, query: str, variables: dict[str, Any]) -> Any:
        self._argument(query, "fulfillmentCreate", "fulfillment")
        fulfillment = variables["fulfillment"]
        errors: list[dict[str, Any]] = []
        plan: list[tuple[dict[str, Any], int]] = []
        for group in fulfillment["lineItemsByFulfillmentOrder"]:
            node = self._fo(group["fulfillmentOrderId"])
            if node["requestStatus"] != "ACCEPTED":
                errors.append({"field": ["fulfillment"], "message": "Fulfillment order is not accepted"})
                continue
            items = {item["id"]: item for item in node["lineItems"]["nodes"]}
            wanted = group.get("fulfillmentOrderLineItems")
            pairs = (
                [(items.get(line["id"]), int(line["quantity"])) for line in wanted]
                if wanted
                else [(item, item["remainingQuantity"]) for item in items.values()]
            )
            for item, quantity in pairs:
                if item is None or quantity > item["remainingQuantity"]:
                    errors.append({"field": ["fulfillment"], "message": "Invalid fulfillment order line item quantity"})
                else:
                    plan.append((item, quantity))
        if errors:
            return {"fulfillmentCreate": {"fulfillment": None, "userErrors": errors}}
        for item, quantity in plan:
            item["remainingQuantity"] -= quantity
        info = fulfillment.get("trackingInfo") or {}
        numbers = info.get("numbers") or ([info["number"]] if info.get("number") else [])
        urls = info.get("urls") or ([info["url"]] if info.get("url") else [])
        created = {
            "id": self.gid("Fulfillment"),
            "status": "SUCCESS",
            "notifyCustomer": fulfillment.get("notifyCustomer", False),
            "trackingInfo": [
                {"company": info.get("company"), "number": number, "url": urls[i] if i < len(urls) else None}
                for i, number in enumerate(numbers)
            ],
        }
        for group in fulfillment["lineItemsByFulfillmentOrder"]:
            node = self._fo(group["fulfillmentOrderId"])
            self.fulfillments.setdefault(node["id"], []).append(created)
            if all(item["remainingQuantity"] == 0 for item in node["lineItems"]["nodes"]):
                node["status"] = "CLOSED"
                node["requestStatus"] = "CLOSED"
        return {"fulfillmentCreate": {"fulfillment": created, "userErrors": []}}

    def _op_productVariants(self, query: str, variables: dict[str, Any]) -> Any:
        self._argument(query, "productVariants", "query")
        self._argument(query, "inventoryLevel", "locationId")
        terms = [
            term.replace('\\"', '"').replace("\\\\", "\\")
            for term in re.findall(r'sku:"((?:[^"\\]|\\.)*)"', variables["query"])
        ]
        location = variables["locationId"]
        nodes = []
        for variant in self.variants:
            if variant["sku"] not in terms:
                continue
            item = variant["inventory_item_id"]
            level = self.levels.get((item, location))
            nodes.append(
                {
                    "sku": variant["sku"],
                    "inventoryItem": {
                        "id": item,
                        "inventoryLevel": None
                        if level is None
                        else {"quantities": [{"name": "available", "quantity": level}]},
                    },
                }
            )
        return {"productVariants": {"nodes": nodes[: int(variables["first"])]}}

    def _op_inventorySetQuantities(self, query: str, variables: dict[str, Any]) -> Any:
        self._argument(query, "inventorySetQuantities", "input")
        given = variables["input"]
        key_match = re.search(r'@idempotent\(\s*key:\s*"([^"]+)"\s*\)', query)
        if self.api_version >= "2026-04" and not key_match:
            raise GraphQLError("The @idempotent directive is required for this mutation", "BAD_REQUEST")
        key = key_match.group(1) if key_match else None
        if key is not None and key in self.idempotency:
            previous_variables, previous = self.idempotency[key]
            if previous_variables != json.dumps(variables, sort_keys=True):
                raise GraphQLError("Idempotency key reused with different parameters", "IDEMPOTENCY_CONFLICT")
            return previous
        if given.get("name") not in ("available", "on_hand") or not given.get("reason"):
            raise GraphQLError("name must be available or on_hand, and a reason is required", "BAD_REQUEST")
        if "ignoreCompareQuantity" in given:
            raise GraphQLError(
                "Field 'ignoreCompareQuantity' doesn't exist on InventorySetQuantitiesInput", "BAD_REQUEST"
            )
        for (item, location), level in self.concurrent_change.items():
            self.levels[(item, location)] = level
        self.concurrent_change = {}
        errors = []
        for index, quantity in enumerate(given["quantities"]):
            if "compareQuantity" in quantity or "changeFromQuantity" not in quantity:
                raise GraphQLError("changeFromQuantity must be given (null to opt out)", "BAD_REQUEST")
            current = self.levels.get((quantity["inventoryItemId"], quantity["locationId"]))
            if current is None:
                errors.append(
                    {
                        "field": ["input", "quantities", str(index), "locationId"],
                        "message": "The specified inventory item is not stocked at the location.",
                        "code": "ITEM_NOT_STOCKED_AT_LOCATION",
                    }
                )
            elif quantity["changeFromQuantity"] is not None and quantity["changeFromQuantity"] != current:
                errors.append(
                    {
                        "field": ["input", "quantities", str(index), "changeFromQuantity"],
                        "message": "The specified compare quantity does not match the current quantity.",
                        "code": "CHANGE_FROM_QUANTITY_STALE",
                    }
                )
        if errors:
            answer = {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": errors}}
        else:
            for quantity in given["quantities"]:
                self.levels[(quantity["inventoryItemId"], quantity["locationId"])] = int(quantity["quantity"])
            self.inventory_writes.append(given)
            answer = {
                "inventorySetQuantities": {
                    "inventoryAdjustmentGroup": {"id": self.gid("InventoryAdjustmentGroup")},
                    "userErrors": [],
                }
            }
        if key is not None:
            self.idempotency[key] = (json.dumps(variables, sort_keys=True), answer)
        return answer

    def _op_shop(self, query: str, variables: dict[str, Any]) -> Any:
        return {
            "shop": {"myshopifyDomain": self.shop_domain, "fulfillmentServices": self.services},
            "currentAppInstallation": {"accessScopes": [{"handle": scope} for scope in sorted(self.scopes)]},
        }

    def _op_fulfillmentServiceCreate(self, query: str, variables: dict[str, Any]) -> Any:
        for name in ("name", "callbackUrl", "inventoryManagement", "trackingSupport"):
            self._argument(query, "fulfillmentServiceCreate", name)
        service = self.add_service(variables["name"], variables.get("callbackUrl"))
        service["inventoryManagement"] = bool(variables.get("inventoryManagement"))
        service["trackingSupport"] = bool(variables.get("trackingSupport"))
        return {"fulfillmentServiceCreate": {"fulfillmentService": service, "userErrors": []}}

    def _op_fulfillmentServiceUpdate(self, query: str, variables: dict[str, Any]) -> Any:
        for name in ("id", "callbackUrl", "inventoryManagement", "trackingSupport"):
            self._argument(query, "fulfillmentServiceUpdate", name)
        service = next((s for s in self.services if s["id"] == variables["id"]), None)
        if service is None:
            return {
                "fulfillmentServiceUpdate": {
                    "fulfillmentService": None,
                    "userErrors": [{"field": ["id"], "message": "Fulfillment service not found"}],
                }
            }
        for name in ("callbackUrl", "inventoryManagement", "trackingSupport"):
            if name in variables:
                service[name] = variables[name]
        return {"fulfillmentServiceUpdate": {"fulfillmentService": service, "userErrors": []}}


REJECTION_REASONS = (
    "INCORRECT_ADDRESS",
    "INELIGIBLE_PRODUCT",
    "INVENTORY_OUT_OF_STOCK",
    "UNDELIVERABLE_DESTINATION",
    "OTHER",
)


class GraphQLError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code
