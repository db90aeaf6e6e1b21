"""PrestaShop through its classic webservice (``/api/``), the API every 1.7 / 8 / 9 shop has.

What the webservice gives and what it does not (each call below names the document it follows):

- **No webhooks.** PrestaShop pushes nothing (../shared/reference/INTEGRATIONS.md §3.2): ``verify`` refuses every
  inbound call and ``parse`` is never reached; orders come in by polling ``fetch_orders`` on ``date_upd``.
- **Auth**: the webservice key as the HTTP Basic user name, empty password (PrestaShop/docs
  webservice/getting-started.md, "Accessing the webservice" and "Using JSON instead of XML").
- **Reads in JSON** (``output_format=JSON``), **writes in XML**: the webservice validates a PUT exactly like a POST,
  so an update is GET the full resource → change it → PUT the whole document back; a ``display=`` listing cannot be
  PUT (getting-started.md, "Update a resource" and the note under "Control returned fields with display").
- **Order states** are rows of ``order_histories`` (POST one, PrestaShop moves ``current_state`` and, with
  ``sendemail=1``, mails the customer: classes/order/OrderHistory.php ``addWs``); their ids differ per shop, so the
  flags of ``order_states`` decide which are "ready", and each id the connector writes can be set per connection.
- **Tracking** is ``order_carriers.tracking_number`` (PUT the full row; ``sendemail=1`` sends the "in transit"
  mail with the carrier's tracking link: getting-started.md "Special parameters", classes/order/OrderCarrier.php
  ``updateWs``). One number per order carrier row: further parcels of one order are not representable.
- **Stock** is ``stock_availables.quantity`` for (id_product, id_product_attribute); a SKU is a combination's or a
  product's ``reference`` (devdocs 8/9 webservice/resources/stock_availables).
- **Refunds**: credit slips (``order_slip``) are made in the back office; the webservice can only move the order to
  the "Refunded" state. So a full refund sets that state; a partial one is refused with ``not_supported`` (the
  merchant refunds it by hand) rather than marking a partly refunded order as refunded.
- **Notes**: ``messages`` rows (id_order, message, private) — the order's private messages in the back office.
- **No partial shipments**: PrestaShop has one shipped state per order, so the first shipment marks it shipped.

Settings (``ConnectionConfig.settings``), all optional: ``poll_since`` (shop-local "YYYY-MM-DD HH:MM:SS", where the
first poll starts; default: every order), ``page_size`` (50), ``ready_state_ids`` (default: every state flagged
``paid`` and neither ``shipped`` nor ``delivery``, except the cancelled and refunded ones),
``preparation_state_id`` (3), ``shipped_state_id`` (4), ``cancelled_state_id`` (6), ``refunded_state_id`` (7),
``id_shop`` (multistore), ``notify_on_accept`` (False). Credentials: ``api_key``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import httpx

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
    PlatformAdapter,
    Refund,
    Shipment,
    SignatureInvalid,
    StockLevel,
    StockPushReport,
    Throttled,
    register,
)

# PrestaShop's default state ids (install data; a shop may have changed them, hence the settings).
DEFAULT_PREPARATION_STATE = 3  # "Processing in progress" (PS_OS_PREPARATION)
DEFAULT_SHIPPED_STATE = 4  # "Shipped" (PS_OS_SHIPPING)
DEFAULT_CANCELLED_STATE = 6  # "Canceled" (PS_OS_CANCELED)
DEFAULT_REFUNDED_STATE = 7  # "Refunded" (PS_OS_REFUND)

# The interval filter needs both ends (getting-started.md: "date=1 ... filter[date_add]=[from,to]"); the far end is a
# date no shop reaches, so the window is "from the cursor on".
FAR_END = "2999-12-31 23:59:59"
EPOCH = "1970-01-01 00:00:00"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _raise_for_status(response: httpx.Response, what: str) -> None:
    """Turn a webservice answer that is not 2xx into the connector's errors (retryable or not)."""
    status = response.status_code
    if status < 300:
        return
    detail = _error_text(response)
    if status == 429:
        # PrestaShop itself does not throttle, but the hosts and proxies in front of shops do.
        raise Throttled(f"{what}: throttled by the shop (429){detail}", retry_after=_retry_after(response))
    if status in (401, 403):
        raise ConnectorError(
            f"{what}: the webservice key was refused ({status}){detail}", code="auth_failed", retryable=False
        )
    if status == 404:
        raise ConnectorError(f"{what}: not found (404){detail}", code="not_found", retryable=False)
    if status >= 500 or status == 408:
        raise ConnectorError(
            f"{what}: the shop answered {status}{detail}",
            code="platform_unavailable",
            retryable=True,
            retry_after=_retry_after(response),
        )
    raise ConnectorError(f"{what}: the shop refused the request ({status}){detail}", code="platform_refused")


def _error_text(response: httpx.Response) -> str:
    """PrestaShop's own error text, from ``{"errors":[{code,message}]}`` (WebserviceOutputJSON::renderErrors) or the
    XML ``<errors><error><message>``."""
    try:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            return ": " + "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))
    except ValueError:
        pass
    if response.content.lstrip().startswith(b"<"):
        try:
            root = _parse_xml(response.content)
        except ConnectorError:
            return ""
        messages = [m.text or "" for m in root.iter("message")]
        if messages:
            return ": " + "; ".join(messages)
    return ""


def _parse_xml(content: bytes) -> ET.Element:
    # The webservice never sends a DTD; refusing one keeps entity tricks out (no defusedxml in the lock).
    if b"<!DOCTYPE" in content[:2048] or b"<!ENTITY" in content:
        raise ConnectorError("the shop sent XML with a DTD; refused", code="payload_invalid")
    try:
        return ET.fromstring(content)
    except ET.ParseError as exc:
        raise ConnectorError(f"the shop sent unreadable XML: {exc}", code="payload_invalid") from exc


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal("0")
    except InvalidOperation:
        return Decimal("0")


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _flag(value: Any) -> bool:
    return _text(value) in ("1", "true", "True")


def _date(value: Any) -> datetime | None:
    text = _text(value)
    if not text or text.startswith("0000"):
        return None
    try:
        return datetime.strptime(text, DATE_FORMAT)
    except ValueError:
        return None


def _list(body: Any, key: str) -> list[dict[str, Any]]:
    """A JSON listing: ``{"orders": [...]}``; an empty one is ``[]`` (WebserviceOutputJSON::overrideContent encodes
    an empty content array)."""
    if isinstance(body, dict):
        rows = body.get(key) or []
        return [row for row in rows if isinstance(row, dict)]
    return []


def encode_cursor(since: str, seen: Iterable[int]) -> str:
    return json.dumps({"since": since, "seen": sorted(set(seen))}, separators=(",", ":"))


def decode_cursor(cursor: str) -> tuple[str, set[int]]:
    try:
        data = json.loads(cursor)
        since = str(data["since"])
        datetime.strptime(since, DATE_FORMAT)
        seen = {int(i) for i in data.get("seen", [])}
    except (ValueError, KeyError, TypeError) as exc:
        raise ConnectorError(f"unreadable PrestaShop cursor {cursor!r}", code="cursor_invalid") from exc
    return since, seen


@register
class PrestaShopAdapter(PlatformAdapter):
    platform: ClassVar[str] = "prestashop"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"poll_orders", "stock_push", "tracking_push", "refunds", "notes", "accept"}
    )

    def __init__(self, config: Any, client: httpx.Client | None = None) -> None:
        super().__init__(config, client)
        base = config.base_url.rstrip("/")
        self.api_url = base if base.endswith("/api") else base + "/api"
        self._states: dict[int, dict[str, Any]] | None = None
        self._countries: dict[int, str] = {}
        self._currencies: dict[int, str] = {}
        self._carriers: dict[int, str] = {}

    # --- HTTP ----------------------------------------------------------------------------------------------------

    def _auth(self) -> tuple[str, str]:
        key = self.config.credentials.get("api_key", "")
        if not key:
            raise ConnectorError("no webservice key on this connection", code="credentials_missing")
        # getting-started.md: "The username is the authentication key you created and there is no password".
        return (key, "")

    def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        headers = {"Content-Type": "text/xml; charset=utf-8"} if content is not None else {}
        try:
            response = self.client.request(
                method,
                f"{self.api_url}/{path}",
                params=dict(params or {}),
                content=content,
                headers=headers,
                auth=self._auth(),
            )
        except httpx.TimeoutException as exc:
            raise ConnectorError(f"{what}: the shop did not answer in time", code="timeout", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ConnectorError(f"{what}: {exc}", code="unreachable", retryable=True) from exc
        _raise_for_status(response, what)
        return response

    def _get_json(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Any:
        # getting-started.md "Using JSON instead of XML": output_format=JSON.
        query = {"output_format": "JSON", **(params or {})}
        response = self._request("GET", path, what, params=query)
        if not response.content.strip():
            return []
        try:
            return response.json()
        except ValueError as exc:
            raise ConnectorError(f"{what}: the shop sent unreadable JSON", code="payload_invalid") from exc

    def _get_xml(self, path: str, what: str) -> ET.Element:
        return _parse_xml(self._request("GET", path, what).content)

    def _put_xml(self, path: str, document: ET.Element, what: str, params: Mapping[str, str] | None = None) -> None:
        body = ET.tostring(document, encoding="utf-8", xml_declaration=True)
        self._request("PUT", path, what, params=params, content=body)

    def _post_xml(self, path: str, document: ET.Element, what: str, params: Mapping[str, str] | None = None) -> str:
        body = ET.tostring(document, encoding="utf-8", xml_declaration=True)
        response = self._request("POST", path, what, params=params, content=body)
        # The answer is the created resource; its id is what the caller may keep.
        if response.content.strip().startswith(b"<"):
            created = _parse_xml(response.content)
            node = created.find("./*/id")
            return _text(node.text if node is not None else "")
        return ""

    def _shop_filter(self) -> dict[str, str]:
        id_shop = self.config.settings.get("id_shop")
        return {"filter[id_shop]": f"[{int(id_shop)}]"} if id_shop else {}

    # --- Inbound: PrestaShop sends nothing -------------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> None:
        # No webhooks in PrestaShop (INTEGRATIONS.md §3.2): any call claiming to come from it is refused.
        raise SignatureInvalid("PrestaShop sends no webhooks; inbound calls are refused", code="not_supported")

    def delivery_id(self, headers: Mapping[str, str], raw_body: bytes) -> str:
        raise NotSupported("PrestaShop sends no webhooks")

    def parse(self, headers: Mapping[str, str], raw_body: bytes) -> list[InboundEvent]:
        raise NotSupported("PrestaShop sends no webhooks")

    # --- Order states ---------------------------------------------------------------------------------------------

    def _state_setting(self, name: str, default: int) -> int:
        return _int(self.config.settings.get(name), default)

    def order_states(self) -> dict[int, dict[str, Any]]:
        """``order_states`` with their flags (PrestaShop/docs webservice/resources/order_states.md), read once."""
        if self._states is None:
            body = self._get_json("order_states", "order states", {"display": "full"})
            self._states = {_int(row.get("id")): row for row in _list(body, "order_states")}
        return self._states

    def cancelled_state_ids(self) -> set[int]:
        return {
            self._state_setting("cancelled_state_id", DEFAULT_CANCELLED_STATE),
            self._state_setting("refunded_state_id", DEFAULT_REFUNDED_STATE),
        }

    def ready_state_ids(self) -> set[int]:
        configured = self.config.settings.get("ready_state_ids")
        if configured:
            return {int(s) for s in configured}
        cancelled = self.cancelled_state_ids()
        return {
            state_id
            for state_id, state in self.order_states().items()
            if _flag(state.get("paid"))
            and not _flag(state.get("shipped"))
            and not _flag(state.get("delivery"))
            and not _flag(state.get("deleted"))
            and state_id not in cancelled
        }

    # --- Pull -----------------------------------------------------------------------------------------------------

    def fetch_orders(self, cursor: str | None) -> Page:
        """One page of orders in a ready or cancelled state whose ``date_upd`` is at or after the cursor's mark.

        ``GET /api/orders?display=full&date=1&filter[date_upd]=[mark,FAR_END]&filter[current_state]=[a|b]
        &sort=[date_upd_ASC,id_ASC]&limit=0,N`` (getting-started.md "Control returned items with filter": date
        filtering needs ``date=1``; additional-list-parameters.md: OR filter ``[1|5]``, ``sort``, ``limit``).
        The page asks for N more rows than the ids already taken at the mark, which come first, so it always holds
        up to N orders not yet taken. Cursor ``None`` in the answer: caught up (nothing new in this page)."""
        if cursor is None:
            since = _text(self.config.settings.get("poll_since")) or EPOCH
            seen: set[int] = set()
        else:
            since, seen = decode_cursor(cursor)
        page_size = _int(self.config.settings.get("page_size"), 50)
        ready = self.ready_state_ids()
        cancelled = self.cancelled_state_ids()
        wanted = sorted(ready | cancelled)
        params = {
            "display": "full",
            "date": "1",
            "filter[date_upd]": f"[{since},{FAR_END}]",
            "filter[current_state]": "[" + "|".join(str(s) for s in wanted) + "]",
            "sort": "[date_upd_ASC,id_ASC]",
            "limit": f"0,{page_size + len(seen)}",
            **self._shop_filter(),
        }
        rows = _list(self._get_json("orders", "orders", params), "orders")
        keyed = [(_int(row.get("id")), _text(row.get("date_upd"))) for row in rows]
        mark, mark_seen, new_ids = domain.advance_cursor(since, seen, keyed)
        if not new_ids:
            return Page(orders=(), cursor=None)
        new = [row for row in rows if _int(row.get("id")) in set(new_ids)]
        orders = self._to_external(new, ready=ready, cancelled=cancelled)
        return Page(orders=tuple(orders), cursor=encode_cursor(mark, mark_seen))

    def fetch_order(self, external_id: str) -> ExternalOrder:
        # GET /api/orders/{id} (PrestaShop/docs webservice/resources/orders.md).
        body = self._get_json(f"orders/{int(external_id)}", f"order {external_id}")
        row = body.get("order") if isinstance(body, dict) else None
        if not isinstance(row, dict):
            raise ConnectorError(f"order {external_id}: the shop sent no order", code="payload_invalid")
        return self._to_external([row], ready=self.ready_state_ids(), cancelled=self.cancelled_state_ids())[0]

    def _by_ids(self, resource: str, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        wanted = sorted({i for i in ids if i})
        if not wanted:
            return {}
        # One listing for the page: filter[id]=[1|5] (additional-list-parameters.md, OR operator).
        body = self._get_json(
            resource, resource, {"display": "full", "filter[id]": "[" + "|".join(map(str, wanted)) + "]"}
        )
        return {_int(row.get("id")): row for row in _list(body, resource)}

    def _cached_field(self, cache: dict[int, str], resource: str, singular: str, item_id: int, field: str) -> str:
        if not item_id:
            return ""
        if item_id not in cache:
            body = self._get_json(f"{resource}/{item_id}", f"{singular} {item_id}")
            row = body.get(singular) if isinstance(body, dict) else None
            value = row.get(field) if isinstance(row, dict) else ""
            if isinstance(value, list):  # a multilingual field: [{"id": lang, "value": ...}]
                value = value[0].get("value", "") if value and isinstance(value[0], dict) else ""
            cache[item_id] = _text(value)
        return cache[item_id]

    def _to_external(
        self, rows: Sequence[Mapping[str, Any]], *, ready: set[int], cancelled: set[int]
    ) -> list[ExternalOrder]:
        """Orders with their delivery address (``addresses``), customer e-mail (``customers``), country ISO code
        (``countries``), currency ISO code (``currencies``) and carrier name (``carriers``): orders.md "Resolve the
        related resources" in INTEGRATIONS.md §3.3."""
        addresses = self._by_ids("addresses", (_int(r.get("id_address_delivery")) for r in rows))
        customers = self._by_ids("customers", (_int(r.get("id_customer")) for r in rows))
        orders = []
        for row in rows:
            address = addresses.get(_int(row.get("id_address_delivery")), {})
            customer = customers.get(_int(row.get("id_customer")), {})
            country = self._cached_field(
                self._countries, "countries", "country", _int(address.get("id_country")), "iso_code"
            )
            currency = self._cached_field(
                self._currencies, "currencies", "currency", _int(row.get("id_currency")), "iso_code"
            )
            carrier = self._cached_field(self._carriers, "carriers", "carrier", _int(row.get("id_carrier")), "name")
            state = _int(row.get("current_state"))
            name = " ".join(p for p in (_text(address.get("firstname")), _text(address.get("lastname"))) if p)
            email = _text(customer.get("email"))
            phone = _text(address.get("phone_mobile")) or _text(address.get("phone"))
            associations = row.get("associations") or {}
            order_rows = associations.get("order_rows") if isinstance(associations, dict) else None
            lines = tuple(
                ExternalLine(
                    external_line_id=_text(line.get("id")),
                    sku=_text(line.get("product_reference")),
                    quantity=_int(line.get("product_quantity")),
                    unit_price=_decimal(line.get("unit_price_tax_incl") or line.get("product_price")),
                    name=_text(line.get("product_name")),
                    gtin=_text(line.get("product_ean13")),
                )
                for line in (order_rows or [])
                if isinstance(line, dict)
            )
            orders.append(
                ExternalOrder(
                    external_id=_text(row.get("id")),
                    external_number=_text(row.get("reference")) or _text(row.get("id")),
                    currency=currency,
                    ship_to=Address(
                        name=name,
                        company=_text(address.get("company")),
                        line1=_text(address.get("address1")),
                        line2=_text(address.get("address2")),
                        postcode=_text(address.get("postcode")),
                        city=_text(address.get("city")),
                        country=country.upper(),
                        phone=phone,
                        email=email,
                    ),
                    lines=lines,
                    created_at=_date(row.get("date_add")),
                    updated_at=_date(row.get("date_upd")),
                    paid=state in ready or _flag(self.order_states().get(state, {}).get("paid")),
                    status_raw=str(state),
                    customer_email=email,
                    customer_phone=phone,
                    carrier_hint=carrier,
                    notes=_text(row.get("gift_message")),
                    shipping_total=_decimal(row.get("total_shipping_tax_incl") or row.get("total_shipping")),
                    cancelled=state in cancelled,
                    platform_refs={
                        "id_carrier": _int(row.get("id_carrier")),
                        "id_address_delivery": _int(row.get("id_address_delivery")),
                        "current_state": state,
                    },
                    raw=dict(row),
                )
            )
        return orders

    # --- The order's life -----------------------------------------------------------------------------------------

    def _current_state(self, external_id: str) -> int:
        body = self._get_json(f"orders/{int(external_id)}", f"order {external_id}")
        row = body.get("order") if isinstance(body, dict) else None
        return _int(row.get("current_state")) if isinstance(row, dict) else 0

    def _add_history(self, external_id: str, state_id: int, *, send_email: bool) -> str:
        """``POST /api/order_histories[?sendemail=1]`` with ``<order_history><id_order/><id_order_state/>``
        (INTEGRATIONS.md §3.4; classes/order/OrderHistory.php ``addWs``: sendemail=1 mails the state's template)."""
        root = ET.Element("prestashop")
        history = ET.SubElement(root, "order_history")
        ET.SubElement(history, "id_order").text = str(int(external_id))
        ET.SubElement(history, "id_order_state").text = str(state_id)
        params = {"sendemail": "1"} if send_email else {}
        return self._post_xml("order_histories", root, f"order {external_id} state {state_id}", params)

    def _move_to(self, external_id: str, state_id: int, *, send_email: bool) -> str:
        # Idempotent: a retried call finds the order already in the state and adds no second history row.
        if self._current_state(external_id) == state_id:
            return ""
        return self._add_history(external_id, state_id, send_email=send_email)

    def accept(self, order: ExternalOrder, message: str = "") -> None:
        """The "Processing in progress" state (INTEGRATIONS.md §6.2 mapping notes)."""
        state = self._state_setting("preparation_state_id", DEFAULT_PREPARATION_STATE)
        notify = bool(self.config.settings.get("notify_on_accept", False))
        self._move_to(order.external_id, state, send_email=notify)
        if message:
            self.add_note(order, message)

    def push_fulfilment(self, order: ExternalOrder, shipment: Shipment, idempotency_key: str) -> str:
        """Tracking on the order's carrier row, then the "Shipped" state; returns the ``order_carriers`` id.

        ``GET /api/order_carriers?filter[id_order]=[id]`` → ``GET /api/order_carriers/{id}`` (full XML) → set
        ``tracking_number`` → ``PUT /api/order_carriers/{id}?sendemail=1`` (getting-started.md "Special parameters":
        sendemail on order_carriers sends the in-transit mail with the tracking number). The state change goes without
        sendemail so the customer gets one mail, the one with the tracking link (INTEGRATIONS.md §3.4)."""
        if not shipment.parcels:
            raise ConnectorError("a shipment without a parcel has no tracking number to send", code="payload_invalid")
        number = shipment.parcels[0].tracking_number
        listing = self._get_json(
            "order_carriers",
            f"order {order.external_id} carriers",
            {"display": "[id]", "filter[id_order]": f"[{int(order.external_id)}]", "sort": "[id_ASC]"},
        )
        carriers = _list(listing, "order_carriers")
        if not carriers:
            raise ConnectorError(
                f"order {order.external_id} has no carrier row to hold a tracking number", code="not_found"
            )
        carrier_id = _int(carriers[0].get("id"))
        document = self._get_xml(f"order_carriers/{carrier_id}", f"order carrier {carrier_id}")
        node = document.find("./order_carrier/tracking_number")
        if node is None:
            raise ConnectorError(f"order carrier {carrier_id}: no tracking_number field", code="payload_invalid")
        if _text(node.text) != number:
            node.text = number
            params = {"sendemail": "1"} if shipment.notify_customer else {}
            self._put_xml(f"order_carriers/{carrier_id}", document, f"order carrier {carrier_id}", params)
        self._move_to(
            order.external_id, self._state_setting("shipped_state_id", DEFAULT_SHIPPED_STATE), send_email=False
        )
        if len(shipment.parcels) > 1:
            others = ", ".join(p.tracking_number for p in shipment.parcels[1:])
            self.add_note(order, f"Other parcels of this shipment: {others}")
        return str(carrier_id)

    def push_refund(self, order: ExternalOrder, refund: Refund, idempotency_key: str) -> str:
        """The "Refunded" state for a full refund; partial refunds are the back office's (credit slips).

        The webservice has no credit-slip creation (INTEGRATIONS.md §3.6; order_slip.md lists the resource for
        reading), so only a refund of every unit of every line can be told to the shop, as a state."""
        refunded = {line.external_line_id: line.quantity for line in refund.lines}
        whole = bool(order.lines) and all(
            refunded.get(line.external_line_id, 0) >= line.quantity for line in order.lines
        )
        if not whole:
            raise NotSupported(
                "PrestaShop's webservice cannot create a partial refund (credit slip); "
                "the merchant makes it in the back office",
            )
        state = self._state_setting("refunded_state_id", DEFAULT_REFUNDED_STATE)
        history_id = self._move_to(order.external_id, state, send_email=True)
        if refund.reason:
            self.add_note(order, f"Refund: {refund.reason}")
        return history_id or f"state:{state}"

    def add_note(self, order: ExternalOrder, text: str, customer_visible: bool = False) -> None:
        """``POST /api/messages`` with id_order, message and private (the order's messages in the back office)."""
        root = ET.Element("prestashop")
        message = ET.SubElement(root, "message")
        ET.SubElement(message, "id_order").text = str(int(order.external_id))
        ET.SubElement(message, "message").text = text
        ET.SubElement(message, "private").text = "0" if customer_visible else "1"
        self._post_xml("messages", root, f"order {order.external_id} note")

    # --- Stock ----------------------------------------------------------------------------------------------------

    def _product_for_sku(self, sku: str) -> tuple[int, int] | None:
        """(id_product, id_product_attribute) for a SKU: a combination's ``reference`` first, then a product's
        (INTEGRATIONS.md §3.5 "SKU mapping"; literal filter ``[value]``: additional-list-parameters.md)."""
        literal = f"[{sku}]"
        combinations = _list(
            self._get_json("combinations", f"SKU {sku}", {"display": "[id,id_product]", "filter[reference]": literal}),
            "combinations",
        )
        if combinations:
            return _int(combinations[0].get("id_product")), _int(combinations[0].get("id"))
        products = _list(
            self._get_json("products", f"SKU {sku}", {"display": "[id]", "filter[reference]": literal}), "products"
        )
        if products:
            return _int(products[0].get("id")), 0
        return None

    def _stock_row(self, sku: str) -> int | None:
        """The ``stock_availables`` id of a SKU: ``GET /api/stock_availables?filter[id_product]=[p]
        &filter[id_product_attribute]=[a]`` (devdocs webservice/resources/stock_availables)."""
        ids = self._product_for_sku(sku)
        if ids is None:
            return None
        id_product, id_attribute = ids
        rows = _list(
            self._get_json(
                "stock_availables",
                f"stock of {sku}",
                {
                    "display": "[id]",
                    "filter[id_product]": f"[{id_product}]",
                    "filter[id_product_attribute]": f"[{id_attribute}]",
                    **self._shop_filter(),
                },
            ),
            "stock_availables",
        )
        return _int(rows[0].get("id")) if rows else None

    def push_stock(self, levels: Sequence[StockLevel], snapshot_id: str) -> StockPushReport:
        """For each SKU: find its ``stock_availables`` row, GET it whole, set ``quantity``, PUT it back (devdocs
        webservice/resources/stock_availables; getting-started.md "Update a resource"). An unchanged quantity is not
        written. Throttling and outages raise (the whole push is retried, the numbers being absolute); a refusal for
        one SKU is reported for that SKU."""
        updated: list[str] = []
        unknown: list[str] = []
        failed: dict[str, str] = {}
        for level in levels:
            quantity = max(0, int(level.available))
            try:
                stock_id = self._stock_row(level.sku)
                if stock_id is None:
                    unknown.append(level.sku)
                    continue
                document = self._get_xml(f"stock_availables/{stock_id}", f"stock {stock_id}")
                node = document.find("./stock_available/quantity")
                if node is None:
                    failed[level.sku] = "the stock row has no quantity field"
                    continue
                if _int(node.text, -1) != quantity:
                    node.text = str(quantity)
                    self._put_xml(f"stock_availables/{stock_id}", document, f"stock of {level.sku}")
                updated.append(level.sku)
            except ConnectorError as exc:
                if exc.retryable or exc.code == "auth_failed":
                    raise
                failed[level.sku] = str(exc)
        return StockPushReport(updated=tuple(updated), unknown=tuple(unknown), failed=failed)

    def stock_levels(self, skus: Sequence[str]) -> dict[str, int | None]:
        """The ``quantity`` of each SKU's stock row, for the reconcile; SKUs the shop does not have are left out."""
        levels: dict[str, int | None] = {}
        for sku in skus:
            stock_id = self._stock_row(sku)
            if stock_id is None:
                continue
            body = self._get_json(f"stock_availables/{stock_id}", f"stock of {sku}")
            row = body.get("stock_available") if isinstance(body, dict) else None
            levels[sku] = _int(row.get("quantity")) if isinstance(row, dict) else None
        return levels

    # --- Health ---------------------------------------------------------------------------------------------------

    # Resource -> the HTTP methods the connector needs on it.
    NEEDED: ClassVar[dict[str, tuple[str, ...]]] = {
        "orders": ("get",),
        "order_states": ("get",),
        "order_histories": ("post",),
        "order_carriers": ("get", "put"),
        "addresses": ("get",),
        "customers": ("get",),
        "countries": ("get",),
        "currencies": ("get",),
        "carriers": ("get",),
        "products": ("get",),
        "combinations": ("get",),
        "stock_availables": ("get", "put"),
        "messages": ("post",),
    }

    def health(self) -> HealthReport:
        """``GET /api/`` lists the key's resources with get/put/post attributes (getting-started.md "Describe a
        resource"); each permission the connector needs is checked."""
        try:
            root = self._get_xml("", "webservice root")
        except ConnectorError as exc:
            return HealthReport(ok=False, detail=str(exc), checks={"credentials": False})
        api = root.find("api")
        granted = {child.tag: child.attrib for child in (api if api is not None else [])}
        checks = {"credentials": True}
        for resource, methods in self.NEEDED.items():
            attrs = granted.get(resource, {})
            checks[resource] = all(attrs.get(method) == "true" for method in methods)
        missing = sorted(name for name, ok in checks.items() if not ok)
        detail = "" if not missing else "missing webservice permissions: " + ", ".join(missing)
        return HealthReport(ok=not missing, detail=detail, checks=checks)
