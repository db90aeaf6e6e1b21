"""A Saleor on 127.0.0.1: its GraphQL API (the operations the connector uses), its JWKS, and signed webhooks.

Reproduced from Saleor's source and docs: ``POST /graphql/`` with ``Authorization: Bearer <app token>``; an unknown
token is anonymous, so protected fields answer ``PermissionDenied`` in ``errors`` with ``data`` null; mutation
payloads carry ``errors [{field, code, message}]``; ``stockBulkUpdate`` only updates existing stock rows (``NOT_FOUND``
otherwise, REJECT_FAILED_ROWS keeps the others); ``productVariantStocksUpdate`` creates the row; ``orderFulfill``
checks remaining quantities; ``/.well-known/jwks.json`` serves the RSA key with its kid; ``deliver`` builds a webhook
request as saleor/webhook/transport does: the body bytes, ``Saleor-Signature`` = PyJWT ``api_jws.encode(body,
is_payload_detached=True)`` (saleor/core/jwt_manager.py) or hex HMAC with a secret key, ``Saleor-Event`` in lower
case, ``Saleor-Domain``, ``Saleor-Api-Url``. The GraphQL text is not parsed: the root field is found by name and
the arguments read from the variables. Faults to inject: ``fail_next``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import api_jws
from jwt.algorithms import RSAAlgorithm

from quai.integrations.tests.fake_shops.prestashop import Answer, LoopbackServer, Request

ROOT_FIELD = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)")
PERMISSION_DENIED = {
    "message": "To access this path, you need one of the following permissions: MANAGE_ORDERS",
    "extensions": {"exception": {"code": "PermissionDenied"}},
}


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class FakeSaleor:
    token: str = "app-token-7f3a"
    warehouse_id: str = "V2FyZWhvdXNlOjE="  # Warehouse:1
    domain: str = "boutique.example"
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    kid: str = "k1"
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # sku -> variant
    notes: list[tuple[str, str]] = field(default_factory=list)
    refund_requests: list[tuple[str, str]] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    permissions: tuple[str, ...] = ("MANAGE_ORDERS", "MANAGE_PRODUCTS", "HANDLE_PAYMENTS")
    jwks_fetches: int = 0
    clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.http = LoopbackServer(self.handle)
        self._ids = itertools.count(1)

    def start(self) -> FakeSaleor:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    @property
    def api_url(self) -> str:
        return self.http.root + "/graphql/"

    @property
    def requests(self) -> list[Request]:
        return self.http.requests

    @property
    def fail_next(self) -> list[Answer]:
        return self.http.fail_next

    def rotate_key(self, kid: str) -> None:
        self.key, self.kid = new_key(), kid

    def _now(self) -> str:
        return f"2025-06-02T10:00:{next(self.clock):02d}.000000+00:00"

    # --- Test set-up ----------------------------------------------------------------------------------------------

    def add_variant(self, sku: str, quantity: int | None, allocated: int = 0) -> str:
        variant_id = f"UHJvZHVjdFZhcmlhbnQ6{len(self.variants) + 1}"
        stocks = []
        if quantity is not None:
            stocks.append(
                {"warehouse": {"id": self.warehouse_id}, "quantity": quantity, "quantityAllocated": allocated}
            )
        self.variants[sku] = {"id": variant_id, "sku": sku, "trackInventory": True, "stocks": stocks}
        return variant_id

    def stock(self, sku: str) -> dict[str, Any]:
        return next(s for s in self.variants[sku]["stocks"] if s["warehouse"]["id"] == self.warehouse_id)

    def add_order(
        self,
        number: str,
        lines: list[tuple[str, int]],
        *,
        status: str = "UNFULFILLED",
        charge: str = "FULL",
        updated: str | None = None,
    ) -> dict[str, Any]:
        order_id = f"T3JkZXI6{number}"
        order = {
            "id": order_id,
            "number": number,
            "status": status,
            "created": "2025-06-02T09:59:00+00:00",
            "updatedAt": updated or self._now(),
            "userEmail": "zoe@example.fr",
            "chargeStatus": charge,
            "isPaid": charge == "FULL",
            "customerNote": "Sonnez deux fois 🔔",
            "shippingMethodName": "Colissimo Domicile",
            "total": {"gross": {"amount": 42.0, "currency": "EUR"}},
            "shippingPrice": {"gross": {"amount": 4.9}},
            "shippingAddress": {
                "firstName": "Zoé",
                "lastName": "Lefèvre",
                "companyName": "",
                "streetAddress1": "12 rue de l'Église",
                "streetAddress2": "Bât. B/2",
                "postalCode": "42000",
                "city": "SAINT-ÉTIENNE",
                "countryArea": "",
                "country": {"code": "FR"},
                "phone": "+33612345678",
            },
            "lines": [
                {
                    "id": f"T3JkZXJMaW5lOj{number}{index}",
                    "productSku": sku,
                    "productName": f"Tasse « {sku} » ☕",
                    "quantity": quantity,
                    "quantityFulfilled": 0,
                    "unitPrice": {"gross": {"amount": 15.0}},
                    "variant": {"id": self.variants.get(sku, {}).get("id"), "sku": sku},
                }
                for index, (sku, quantity) in enumerate(lines)
            ],
            "fulfillments": [],
            "transactions": [{"id": f"VHJhbnNhY3Rpb25JdGVtOj{number}"}],
            "grantedRefunds": [],
        }
        self.orders[order_id] = order
        return order

    def deliver(
        self, event: str, payload: Any, *, secret: str | None = None, raw: bytes | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The headers and body of a webhook request as Saleor sends it (``payload`` serialised, or ``raw``)."""
        body = raw if raw is not None else json.dumps(payload).encode("utf-8")
        if secret:
            signature = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        else:
            signature = api_jws.encode(
                body, key=self.key, algorithm="RS256", headers={"kid": self.kid}, is_payload_detached=True
            )
        headers = {
            "Content-Type": "application/json",
            "X-Saleor-Event": event.lower(),
            "X-Saleor-Domain": self.domain,
            "X-Saleor-Signature": signature,
            "Saleor-Event": event.lower(),
            "Saleor-Domain": self.domain,
            "Saleor-Signature": signature,
            "Saleor-Api-Url": f"https://{self.domain}/graphql/",
        }
        return headers, body

    # --- Protocol -------------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer:
        if request.method == "GET" and request.path == "/.well-known/jwks.json":
            self.jwks_fetches += 1
            jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            jwk.update({"use": "sig", "kid": self.kid, "alg": "RS256"})
            return 200, {"Content-Type": "application/json"}, json.dumps({"keys": [jwk]}).encode()
        if request.method != "POST" or request.path != "/graphql/":
            return 404, {}, b""
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, {}, b'{"errors":[{"message":"Unable to parse query."}]}'
        query, variables = body.get("query", ""), body.get("variables") or {}
        match = ROOT_FIELD.search(query)
        if match is None:
            return 400, {}, b'{"errors":[{"message":"Syntax Error"}]}'
        root = match.group(1)
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._json({"data": None, "errors": [PERMISSION_DENIED]})
        handler = getattr(self, f"_op_{root}", None)
        if handler is None:
            return self._json({"errors": [{"message": f'Cannot query field "{root}" on type "Query".'}]}, 400)
        return self._json({"data": {root: handler(variables)}})

    def _json(self, data: Any, status: int = 200) -> Answer:
        return status, {"Content-Type": "application/json"}, json.dumps(data).encode("utf-8")

    @staticmethod
    def _error(code: str, message: str, field_name: str | None = None) -> dict[str, Any]:
        return {"field": field_name, "code": code, "message": message}

    def _op_order(self, v: dict[str, Any]) -> Any:
        return self.orders.get(v["id"])

    def _op_orders(self, v: dict[str, Any]) -> Any:
        rows = list(self.orders.values())
        since = ((v.get("filter") or {}).get("updatedAt") or {}).get("gte")
        if since:
            rows = [o for o in rows if o["updatedAt"] >= since]
        assert v["sortBy"] == {"field": "LAST_MODIFIED_AT", "direction": "ASC"}
        rows.sort(key=lambda o: (o["updatedAt"], o["id"]))
        return {"edges": [{"node": o} for o in rows[: int(v["first"])]]}

    def _op_orderConfirm(self, v: dict[str, Any]) -> Any:
        order = self.orders[v["id"]]
        if order["status"] != "UNCONFIRMED":
            return {
                "order": None,
                "errors": [self._error("INVALID", "Provided order id belongs to non-unconfirmed order")],
            }
        order["status"] = "UNFULFILLED"
        order["updatedAt"] = self._now()
        return {"order": {"id": order["id"], "status": order["status"]}, "errors": []}

    def _op_orderFulfill(self, v: dict[str, Any]) -> Any:
        order = self.orders[v["order"]]
        lines = {line["id"]: line for line in order["lines"]}
        for wanted in v["input"]["lines"]:
            line = lines.get(wanted["orderLineId"])
            quantity = sum(s["quantity"] for s in wanted["stocks"])
            if line is None or quantity > line["quantity"] - line["quantityFulfilled"]:
                return {"fulfillments": None, "errors": [self._error("FULFILL_ORDER_LINE", "Only 0 items remaining")]}
            if any(s["warehouse"] != self.warehouse_id for s in wanted["stocks"]):
                return {"fulfillments": None, "errors": [self._error("NOT_FOUND", "Couldn't resolve warehouse")]}
        for wanted in v["input"]["lines"]:
            lines[wanted["orderLineId"]]["quantityFulfilled"] += sum(s["quantity"] for s in wanted["stocks"])
        fulfillment = {
            "id": f"RnVsZmlsbG1lbnQ6{next(self._ids)}",
            "status": "FULFILLED",
            "trackingNumber": v["input"].get("trackingNumber") or "",
            "notifyCustomer": v["input"].get("notifyCustomer"),
        }
        order["fulfillments"].append(fulfillment)
        done = all(line["quantityFulfilled"] >= line["quantity"] for line in order["lines"])
        order["status"] = "FULFILLED" if done else "PARTIALLY_FULFILLED"
        order["updatedAt"] = self._now()
        return {"fulfillments": [fulfillment], "errors": []}

    def _op_orderFulfillmentUpdateTracking(self, v: dict[str, Any]) -> Any:
        for order in self.orders.values():
            for fulfillment in order["fulfillments"]:
                if fulfillment["id"] == v["id"]:
                    fulfillment["trackingNumber"] = v["input"]["trackingNumber"]
                    return {"fulfillment": fulfillment, "errors": []}
        return {"fulfillment": None, "errors": [self._error("NOT_FOUND", "Couldn't resolve id")]}

    def _op_orderNoteAdd(self, v: dict[str, Any]) -> Any:
        if not v["input"].get("message"):
            return {"event": None, "errors": [self._error("REQUIRED", "Message can't be empty.", "message")]}
        self.notes.append((v["order"], v["input"]["message"]))
        return {"event": {"id": f"T3JkZXJFdmVudDo{len(self.notes)}"}, "errors": []}

    def _op_orderGrantRefundCreate(self, v: dict[str, Any]) -> Any:
        order = self.orders[v["id"]]
        if not v["input"].get("transactionId"):
            return {"grantedRefund": None, "errors": [self._error("REQUIRED", "transactionId", "transactionId")]}
        granted = {
            "id": f"T3JkZXJHcmFudGVkUmVmdW5kOj{next(self._ids)}",
            "reason": v["input"].get("reason"),
            "status": "NONE",
        }
        order["grantedRefunds"].append(granted)
        return {"grantedRefund": granted, "errors": []}

    def _op_transactionRequestRefundForGrantedRefund(self, v: dict[str, Any]) -> Any:
        for order in self.orders.values():
            for granted in order["grantedRefunds"]:
                if granted["id"] == v["grantedRefundId"]:
                    granted["status"] = "PENDING"
                    self.refund_requests.append((v["id"], v["grantedRefundId"]))
                    return {"transaction": {"id": v["id"]}, "errors": []}
        return {"transaction": None, "errors": [self._error("NOT_FOUND", "granted refund not found")]}

    def _op_productVariants(self, v: dict[str, Any]) -> Any:
        skus = (v.get("filter") or {}).get("sku") or []
        nodes = [self.variants[s] for s in skus if s in self.variants][: int(v["first"])]
        return {"edges": [{"node": n} for n in nodes]}

    def _variant_by_id(self, variant_id: str) -> dict[str, Any] | None:
        return next((x for x in self.variants.values() if x["id"] == variant_id), None)

    def _op_stockBulkUpdate(self, v: dict[str, Any]) -> Any:
        results: list[dict[str, Any]] = []
        count = 0
        for row in v["stocks"]:
            variant = self._variant_by_id(row["variantId"])
            stock = None
            if variant is not None:
                stock = next((s for s in variant["stocks"] if s["warehouse"]["id"] == row["warehouseId"]), None)
            if row["quantity"] < 0:
                results.append(
                    {"stock": None, "errors": [self._error("INVALID", "Quantity should not be less than 0.")]}
                )
            elif stock is None:
                results.append({"stock": None, "errors": [self._error("NOT_FOUND", "Stock was not found.")]})
            else:
                stock["quantity"] = row["quantity"]
                count += 1
                results.append({"stock": {"id": "U3RvY2s6MQ==", "quantity": row["quantity"]}, "errors": []})
        assert v.get("errorPolicy") == "REJECT_FAILED_ROWS"
        return {"count": count, "results": results, "errors": []}

    def _op_productVariantStocksUpdate(self, v: dict[str, Any]) -> Any:
        variant = self._variant_by_id(v["variantId"])
        if variant is None:
            return {"productVariant": None, "errors": [self._error("NOT_FOUND", "Couldn't resolve variant")]}
        for wanted in v["stocks"]:
            stock = next((s for s in variant["stocks"] if s["warehouse"]["id"] == wanted["warehouse"]), None)
            if stock is None:
                variant["stocks"].append(
                    {"warehouse": {"id": wanted["warehouse"]}, "quantity": wanted["quantity"], "quantityAllocated": 0}
                )
            else:
                stock["quantity"] = wanted["quantity"]
        return {"productVariant": {"id": variant["id"]}, "errors": []}

    def _op_app(self, v: dict[str, Any]) -> Any:
        return {
            "id": "QXBwOjE=",
            "name": "Quai",
            "permissions": [{"code": code} for code in self.permissions],
            "webhooks": self.webhooks,
        }

    def _op_webhookCreate(self, v: dict[str, Any]) -> Any:
        webhook = {"id": f"V2ViaG9vazo{len(self.webhooks) + 1}", "name": v["input"]["name"], **v["input"]}
        self.webhooks.append(webhook)
        return {"webhook": {"id": webhook["id"]}, "errors": []}
