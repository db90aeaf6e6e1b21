"""A PrestaShop webservice on 127.0.0.1, speaking the documented protocol over real HTTP.

What it reproduces, each from PrestaShop's docs or source: Basic auth with the key as user name and an empty
password (401 otherwise, webservice/getting-started.md); ``output_format=JSON`` listings ``{"orders":[...]}`` with
``display=full`` / ``display=[a,b]``, and ``[]`` for an empty one (classes/webservice/WebserviceOutputJSON.php); PHP's
``json_encode`` escaping (``\\/`` and ``\\uXXXX``); XML for single resources and writes; filters ``[v]``, ``[a|b]``,
``[from,to]`` (dates only with ``date=1``), ``sort=[f_ASC,g_DESC]``, ``limit=offset,count``
(tutorials/advanced-use/additional-list-parameters.md); PUT of a full document only (a partial one is refused, as the
webservice validates a PUT like a POST); ``order_histories`` POST moving ``current_state`` (OrderHistory::addWs) and
``sendemail``; ``order_carriers`` PUT with ``sendemail`` (OrderCarrier::updateWs). Faults to inject: ``fail_next``.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 (random port) handing each request to ``handle``."""

    def __init__(self, handle: Callable[[Request], Answer]) -> None:
        self.handle = handle
        self.requests: list[Request] = []
        self.fail_next: list[Answer] = []  # answered before the protocol, one per request, in order
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                request = Request(
                    self.command, parts.path, query, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with server._lock:
                    server.requests.append(request)
                    forced = server.fail_next.pop(0) if server.fail_next else None
                status, headers, payload = forced if forced is not None else server.handle(request)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LoopbackServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def php_json(data: Any) -> bytes:
    """JSON as PHP's json_encode writes it by default: non-ASCII as \\uXXXX (emoji as a surrogate pair) and every
    slash escaped."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode("ascii")


# Each resource: its singular node name and the fields of its full document (blank schemas of PrestaShop/docs).
SCHEMAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "orders": (
        "order",
        (
            "id",
            "id_address_delivery",
            "id_address_invoice",
            "id_cart",
            "id_currency",
            "id_lang",
            "id_customer",
            "id_carrier",
            "current_state",
            "module",
            "date_add",
            "date_upd",
            "payment",
            "reference",
            "gift_message",
            "total_paid",
            "total_shipping",
            "total_shipping_tax_incl",
        ),
    ),
    "order_states": ("order_state", ("id", "paid", "shipped", "delivery", "deleted", "send_email", "name")),
    "order_histories": ("order_history", ("id", "id_order", "id_order_state", "id_employee", "date_add")),
    "order_carriers": (
        "order_carrier",
        (
            "id",
            "id_order",
            "id_carrier",
            "id_order_invoice",
            "weight",
            "shipping_cost_tax_excl",
            "shipping_cost_tax_incl",
            "tracking_number",
            "date_add",
        ),
    ),
    "addresses": (
        "address",
        (
            "id",
            "id_customer",
            "id_country",
            "id_state",
            "alias",
            "company",
            "lastname",
            "firstname",
            "address1",
            "address2",
            "postcode",
            "city",
            "phone",
            "phone_mobile",
        ),
    ),
    "customers": ("customer", ("id", "firstname", "lastname", "email")),
    "countries": ("country", ("id", "iso_code", "name")),
    "currencies": ("currency", ("id", "iso_code", "name")),
    "carriers": ("carrier", ("id", "name", "url")),
    "products": ("product", ("id", "reference", "name")),
    "combinations": ("combination", ("id", "id_product", "reference")),
    "stock_availables": (
        "stock_available",
        (
            "id",
            "id_product",
            "id_product_attribute",
            "id_shop",
            "id_shop_group",
            "quantity",
            "depends_on_stock",
            "out_of_stock",
            "location",
        ),
    ),
    "messages": ("message", ("id", "id_order", "message", "private")),
}
# Fields the webservice requires on a write (the synopsis' required="true"); a partial PUT misses them.
REQUIRED = {
    "stock_availables": ("id_product", "id_product_attribute", "quantity", "depends_on_stock", "out_of_stock"),
    "order_carriers": ("id_order", "id_carrier"),
    "order_histories": ("id_order", "id_order_state"),
    "messages": ("message",),
}
WRITABLE = {"order_histories": "POST", "messages": "POST", "order_carriers": "PUT", "stock_availables": "PUT"}


def _sort_key(field_name: str, row: dict[str, Any]) -> Any:
    value = row.get(field_name)
    return int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else str(value)


@dataclass
class FakePrestaShop:
    api_key: str = "UCCLLQ9N2ARSHWCXLT74KUKSSK34BFKX"
    now: str = "2025-06-02 10:00:00"  # the shop's clock (date_upd of every change), set by the tests
    tables: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    order_rows: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    emails: list[tuple[str, int]] = field(default_factory=list)  # ("order_history" | "in_transit", order id)
    writes: list[tuple[str, str, bytes]] = field(default_factory=list)  # (method, path, body)

    def __post_init__(self) -> None:
        for resource in SCHEMAS:
            self.tables.setdefault(resource, {})
        self.http = LoopbackServer(self.handle)
        self._seed_states()

    # --- Test set-up ----------------------------------------------------------------------------------------------

    def start(self) -> FakePrestaShop:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    @property
    def url(self) -> str:
        return self.http.root

    @property
    def requests(self) -> list[Request]:
        return self.http.requests

    @property
    def fail_next(self) -> list[Answer]:
        return self.http.fail_next

    def _seed_states(self) -> None:
        # PrestaShop's install data: 2 payment accepted, 3 processing in progress, 4 shipped, 6 canceled, 7 refunded,
        # 10 awaiting bank wire.
        for state_id, paid, shipped, name in (
            (2, 1, 0, "Paiement accepté"),
            (3, 1, 0, "En cours de préparation"),
            (4, 1, 1, "Expédié"),
            (5, 1, 1, "Livré"),
            (6, 0, 0, "Annulé"),
            (7, 1, 0, "Remboursé"),
            (10, 0, 0, "En attente de virement bancaire"),
        ):
            self.tables["order_states"][state_id] = {
                "id": state_id,
                "paid": paid,
                "shipped": shipped,
                "delivery": 1 if state_id == 5 else 0,
                "deleted": 0,
                "send_email": 1,
                "name": name,
            }
        self.tables["countries"][8] = {"id": 8, "iso_code": "FR", "name": "France"}
        self.tables["currencies"][1] = {"id": 1, "iso_code": "EUR", "name": "Euro"}
        self.tables["carriers"][2] = {"id": 2, "name": "Colissimo", "url": "https://laposte.fr/suivi?code=@"}

    def add_product(self, product_id: int, sku: str, quantity: int, *, attribute: int = 0) -> int:
        """A product (``attribute`` 0) or a combination with ``reference`` = sku, and its stock row."""
        if attribute:
            self.tables["combinations"][attribute] = {"id": attribute, "id_product": product_id, "reference": sku}
            self.tables["products"].setdefault(product_id, {"id": product_id, "reference": "", "name": "Parent"})
        else:
            self.tables["products"][product_id] = {"id": product_id, "reference": sku, "name": sku}
        stock_id = len(self.tables["stock_availables"]) + 1
        self.tables["stock_availables"][stock_id] = {
            "id": stock_id,
            "id_product": product_id,
            "id_product_attribute": attribute,
            "id_shop": 1,
            "id_shop_group": 0,
            "quantity": quantity,
            "depends_on_stock": 0,
            "out_of_stock": 2,
            "location": "",
        }
        return stock_id

    def stock_of(self, product_id: int, attribute: int = 0) -> int:
        for row in self.tables["stock_availables"].values():
            if row["id_product"] == product_id and row["id_product_attribute"] == attribute:
                return int(row["quantity"])
        raise KeyError((product_id, attribute))

    def add_order(
        self,
        order_id: int,
        *,
        lines: list[tuple[str, int]],
        state: int = 2,
        updated: str | None = None,
        firstname: str = "Zoé",
        lastname: str = "Lefèvre",
        city: str = "Saint-Étienne",
        address1: str = "12 rue de l'Église",
        email: str = "zoe@example.fr",
    ) -> None:
        customer_id = 100 + order_id
        address_id = 200 + order_id
        self.tables["customers"][customer_id] = {
            "id": customer_id,
            "firstname": firstname,
            "lastname": lastname,
            "email": email,
        }
        self.tables["addresses"][address_id] = {
            "id": address_id,
            "id_customer": customer_id,
            "id_country": 8,
            "id_state": 0,
            "alias": "Maison",
            "company": "",
            "lastname": lastname,
            "firstname": firstname,
            "address1": address1,
            "address2": "Bât. B 🏠",
            "postcode": "42000",
            "city": city,
            "phone": "0477000000",
            "phone_mobile": "0612345678",
        }
        when = updated or self.now
        self.tables["orders"][order_id] = {
            "id": order_id,
            "id_address_delivery": address_id,
            "id_address_invoice": address_id,
            "id_cart": order_id,
            "id_currency": 1,
            "id_lang": 1,
            "id_customer": customer_id,
            "id_carrier": 2,
            "current_state": state,
            "module": "ps_wirepayment",
            "date_add": when,
            "date_upd": when,
            "payment": "Virement bancaire",
            "reference": f"XKBKNABJ{order_id}",
            "gift_message": "",
            "total_paid": "42.00",
            "total_shipping": "4.90",
            "total_shipping_tax_incl": "4.90",
        }
        self.order_rows[order_id] = [
            {
                "id": order_id * 10 + index,
                "product_id": 1,
                "product_attribute_id": 0,
                "product_quantity": quantity,
                "product_name": f"Tasse « {sku} » ☕🎁",
                "product_reference": sku,
                "product_ean13": "",
                "product_price": "12.500000",
                "unit_price_tax_incl": "15.000000",
                "unit_price_tax_excl": "12.500000",
            }
            for index, (sku, quantity) in enumerate(lines)
        ]
        carrier_row = len(self.tables["order_carriers"]) + 1
        self.tables["order_carriers"][carrier_row] = {
            "id": carrier_row,
            "id_order": order_id,
            "id_carrier": 2,
            "id_order_invoice": 0,
            "weight": "0.5",
            "shipping_cost_tax_excl": "4.08",
            "shipping_cost_tax_incl": "4.90",
            "tracking_number": "",
            "date_add": when,
        }

    def touch(self, order_id: int, when: str) -> None:
        self.tables["orders"][order_id]["date_upd"] = when

    def order(self, order_id: int) -> dict[str, Any]:
        return self.tables["orders"][order_id]

    def carrier_row_of(self, order_id: int) -> dict[str, Any]:
        return next(r for r in self.tables["order_carriers"].values() if r["id_order"] == order_id)

    # --- Protocol -------------------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer:
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.api_key}:".encode()).decode()
        if auth != expected:
            return 401, {"WWW-Authenticate": 'Basic realm="Welcome to PrestaShop Webservice"'}, b""
        parts = [p for p in request.path.split("/") if p]
        if not parts or parts[0] != "api":
            return 404, {}, b""
        parts = parts[1:]
        json_out = request.query.get("output_format") == "JSON" or request.query.get("io_format") == "JSON"
        if not parts:
            return self._root()
        resource = parts[0]
        if resource not in SCHEMAS:
            return self._error(400, f'Resource of type "{resource}" does not exists', json_out)
        if request.method == "GET" and len(parts) == 1:
            return self._list(resource, request.query, json_out)
        if request.method == "GET" and len(parts) == 2:
            return self._one(resource, int(parts[1]), json_out)
        if request.method == "PUT" and len(parts) == 2 and WRITABLE.get(resource) == "PUT":
            return self._put(resource, int(parts[1]), request)
        if request.method == "POST" and len(parts) == 1 and WRITABLE.get(resource) == "POST":
            return self._post(resource, request)
        return self._error(405, f"Method {request.method} is not valid", json_out)

    def _error(self, status: int, message: str, json_out: bool) -> Answer:
        if json_out:
            return status, {"Content-Type": "application/json"}, php_json({"errors": [{"code": 0, "message": message}]})
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><prestashop><errors><error><code><![CDATA[0]]></code>'
            f"<message><![CDATA[{message}]]></message></error></errors></prestashop>"
        )
        return status, {"Content-Type": "text/xml;charset=utf-8"}, body.encode()

    def _root(self) -> Answer:
        attrs = 'get="true" put="true" post="true" delete="false" head="true"'
        nodes = "".join(f'<{name} xlink:href="{self.url}/api/{name}" {attrs}/>' for name in SCHEMAS)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><prestashop xmlns:xlink="http://www.w3.org/1999/xlink">'
            f'<api shopName="Boutique">{nodes}</api></prestashop>'
        )
        return 200, {"Content-Type": "text/xml;charset=utf-8"}, body.encode()

    def _full(self, resource: str, row: dict[str, Any]) -> dict[str, Any]:
        fields = SCHEMAS[resource][1]
        out: dict[str, Any] = {name: "" if row.get(name) is None else str(row.get(name)) for name in fields}
        if resource == "orders":
            out["associations"] = {
                "order_rows": [{k: str(v) for k, v in line.items()} for line in self.order_rows.get(row["id"], [])]
            }
        return out

    def _matches(self, row: dict[str, Any], name: str, expression: str, dates: bool) -> bool:
        value = "" if row.get(name) is None else str(row.get(name))
        if not (expression.startswith("[") and expression.endswith("]")):
            return value == expression
        inner = expression[1:-1]
        if "|" in inner:
            return value in inner.split("|")
        if "," in inner:
            low, high = inner.split(",", 1)
            if name.startswith("date_") and not dates:
                raise ValueError("date filter without date=1")
            if name.startswith("date_"):
                return low <= value <= high
            return int(low) <= int(value) <= int(high)
        return value.lower() == inner.lower()

    def _list(self, resource: str, query: dict[str, str], json_out: bool) -> Answer:
        rows = list(self.tables[resource].values())
        dates = query.get("date") == "1"
        try:
            for key, expression in query.items():
                if key.startswith("filter[") and key.endswith("]"):
                    name = key[len("filter[") : -1]
                    rows = [r for r in rows if self._matches(r, name, expression, dates)]
        except ValueError as exc:
            return self._error(400, str(exc), json_out)
        sort = query.get("sort", "[id_ASC]").strip("[]")
        for clause in reversed(sort.split(",")):
            field_name, _, direction = clause.rpartition("_")
            rows.sort(key=functools.partial(_sort_key, field_name), reverse=direction == "DESC")
        if "limit" in query:
            spec = query["limit"].split(",")
            offset, count = (int(spec[0]), int(spec[1])) if len(spec) == 2 else (0, int(spec[0]))
            rows = rows[offset : offset + count]
        display = query.get("display")
        if display == "full":
            out = [self._full(resource, r) for r in rows]
        elif display:
            names = display.strip("[]").split(",")
            out = [{n: str(self._full(resource, r).get(n, "")) for n in names} for r in rows]
        else:
            out = [{"id": r["id"]} for r in rows]
        if not json_out:
            return self._error(400, "this fake answers listings in JSON only", False)
        # An empty listing is [] (WebserviceOutputJSON encodes an empty content array).
        return 200, {"Content-Type": "application/json"}, php_json({resource: out} if out else [])

    def _one(self, resource: str, item_id: int, json_out: bool) -> Answer:
        row = self.tables[resource].get(item_id)
        if row is None:
            return self._error(404, f"Id({item_id}) not exists", json_out)
        singular = SCHEMAS[resource][0]
        full = self._full(resource, row)
        if json_out:
            return 200, {"Content-Type": "application/json"}, php_json({singular: full})
        fields = "".join(
            f"<{name}><![CDATA[{value}]]></{name}>" for name, value in full.items() if name != "associations"
        )
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n<{singular}>{fields}</{singular}>\n</prestashop>'
        return 200, {"Content-Type": "text/xml;charset=utf-8"}, body.encode("utf-8")

    def _document(self, resource: str, body: bytes) -> dict[str, str] | None:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return None
        node = root.find(SCHEMAS[resource][0])
        if node is None:
            return None
        return {child.tag: (child.text or "") for child in node}

    def _put(self, resource: str, item_id: int, request: Request) -> Answer:
        self.writes.append((request.method, request.path, request.body))
        if item_id not in self.tables[resource]:
            return self._error(404, f"Id({item_id}) not exists", False)
        document = self._document(resource, request.body)
        if document is None:
            return self._error(400, "Invalid XML", False)
        missing = [name for name in REQUIRED.get(resource, ()) if not document.get(name)]
        if missing or document.get("id") != str(item_id):
            return self._error(400, f"parameter {missing[0] if missing else 'id'} required", False)
        row = self.tables[resource][item_id]
        for name in SCHEMAS[resource][1]:
            if name in document and name != "id":
                row[name] = int(document[name]) if isinstance(row.get(name), int) else document[name]
        if resource == "order_carriers" and request.query.get("sendemail") == "1":
            self.emails.append(("in_transit", int(row["id_order"])))
        return self._one(resource, item_id, False)

    def _post(self, resource: str, request: Request) -> Answer:
        self.writes.append((request.method, request.path, request.body))
        document = self._document(resource, request.body)
        if document is None:
            return self._error(400, "Invalid XML", False)
        missing = [name for name in REQUIRED.get(resource, ()) if not document.get(name)]
        if missing:
            return self._error(400, f"parameter {missing[0]} required", False)
        new_id = len(self.tables[resource]) + 1
        row: dict[str, Any] = {name: document.get(name, "") for name in SCHEMAS[resource][1]}
        row["id"] = new_id
        if resource == "order_histories":
            order_id = int(document["id_order"])
            if order_id not in self.tables["orders"]:
                return self._error(400, "order not found", False)
            row["date_add"] = self.now
            self.tables["orders"][order_id]["current_state"] = int(document["id_order_state"])
            self.tables["orders"][order_id]["date_upd"] = self.now
            if request.query.get("sendemail") == "1":
                self.emails.append(("order_history", order_id))
        self.tables[resource][new_id] = row
        return 201, {"Content-Type": "text/xml;charset=utf-8"}, self._one(resource, new_id, False)[2]
