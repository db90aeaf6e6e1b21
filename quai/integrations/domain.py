"""Pure rules of outbound webhooks (which events a subscription wants, what an answer means, when to try again) and
of shop connections (what a shop is told it may sell, a shop order in intake's words, the stored shapes).

No Django here: these are tested in milliseconds and used by the services and the delivery worker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

from quai.integrations.connectors.base import (
    Address,
    ExternalLine,
    ExternalOrder,
    Parcel,
    Refund,
    RefundLine,
    Shipment,
    ShipmentLine,
)

# The same forms ``quai.core.events.subscribe`` accepts: an event name, a prefix ending in ".*", or "*".
EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$")

RESPONSE_EXCERPT_BYTES = 2048
RETRY_WINDOW = timedelta(hours=24)
BACKOFF_BASE = timedelta(seconds=5)
BACKOFF_CAP = timedelta(hours=1)
# Statuses that say "not now" rather than "no": the request timed out at the receiver, or it is rate-limiting us.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})

Verdict = Literal["succeeded", "retry", "failed"]


def pattern_is_exact(pattern: str) -> bool:
    """An exact event name (not ``*`` nor a prefix ``order.*``)."""
    return pattern != "*" and not pattern.endswith(".*")


def pattern_matches(pattern: str, name: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def patterns_match(patterns: Iterable[str], name: str) -> bool:
    return any(pattern_matches(pattern, name) for pattern in patterns)


def verdict(status_code: int | None) -> Verdict:
    """What an answer means for the delivery (``None``: no answer at all — a timeout, a refused connection).

    2xx is delivered. A 4xx is the receiver saying no for good, except 408 (it timed out) and 429 (rate limited).
    A 3xx is a failed attempt, retried like a 5xx or a missing answer: Standard Webhooks counts a redirect as a
    failure and advises updating the URL rather than following it (following would also let a receiver point our
    workers at an address the URL check never saw). Retrying, not giving up, lets a merchant who corrects the URL
    within the retry window receive every pending delivery, since a delivery goes to the URL of the moment it is sent.
    """
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "succeeded"
    if 400 <= status_code < 500 and status_code not in RETRYABLE_CLIENT_ERRORS:
        return "failed"
    return "retry"


def redirect_note(location: str | None) -> str:
    """What the attempt log says of a redirect: a stable code, then where the receiver pointed (not followed)."""
    return f"redirect_not_followed: {(location or '').strip()[:1900]}".rstrip(": ")


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now``: a number of seconds or an HTTP date; None if unreadable."""
    if not header:
        return None
    value = header.strip()
    if value.isdecimal():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())


def backoff(attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP, key: str = "") -> timedelta:
    """The wait after the ``attempts``-th failure: base, 2×base, 4×base, … capped, with up to 10 % of jitter.

    The jitter spreads the retries of many deliveries that failed together (a receiver that was down), so they do
    not all come back at the same second; it is derived from ``key`` (the delivery) so a test can predict it.
    """
    delay = min(cap.total_seconds(), base.total_seconds() * 2 ** max(0, attempts - 1))
    spread = int.from_bytes(hashlib.sha256(f"{key}:{attempts}".encode()).digest()[:2], "big") / 65535
    return timedelta(seconds=delay * (1 + 0.1 * spread))


@dataclass(frozen=True)
class Schedule:
    """After a failed attempt: when to try again, or ``None`` when the retry window is over (the delivery dies)."""

    next_attempt_at: datetime | None


def schedule_retry(
    *,
    attempts: int,
    now: datetime,
    started_at: datetime,
    retry_after: float | None = None,
    window: timedelta = RETRY_WINDOW,
    base: timedelta = BACKOFF_BASE,
    cap: timedelta = BACKOFF_CAP,
    key: str = "",
) -> Schedule:
    """Exponential backoff inside a window that starts with the delivery; a ``Retry-After`` longer than the backoff
    is honoured. The last try happens at the end of the window; after it, there is none."""
    deadline = started_at + window
    if now >= deadline:
        return Schedule(next_attempt_at=None)
    delay = backoff(attempts, base=base, cap=cap, key=key)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return Schedule(next_attempt_at=min(now + delay, deadline))


def response_excerpt(body: bytes, limit: int = RESPONSE_EXCERPT_BYTES) -> str:
    """At most ``limit`` bytes of what the receiver answered, as text (undecodable bytes replaced, NUL removed)."""
    return body[:limit].decode("utf-8", errors="replace").replace("\x00", "")


# --- Shop connections: pure rules --------------------------------------------------------------------------------


def availability_for_shop(*, available_to_sell: int, connection_buffer: int) -> int:
    """What one shop is told: what the reservation guard still allows minus the inventory's safety buffer (already
    out of ``available_to_sell``) minus this connection's own buffer, never below zero."""
    return max(0, available_to_sell - connection_buffer)


def order_intake_data(order: ExternalOrder, *, channel: str) -> dict[str, Any]:
    """A shop's order in the words of ``quai.orders`` intake (``order_intake``'s ``data``)."""
    ship_to = order.ship_to
    return {
        "channel": channel,
        "external_id": order.external_id,
        "currency": order.currency,
        "shopper": {
            "name": ship_to.name or ship_to.company,
            "email": order.customer_email or ship_to.email,
            "phone": ship_to.phone or order.customer_phone,
        },
        "shipping_address": {
            "company": ship_to.company,
            "line1": ship_to.line1,
            "line2": ship_to.line2,
            "postcode": ship_to.postcode,
            "city": ship_to.city,
            "region": ship_to.region,
            "country": ship_to.country,
        },
        "lines": [
            {"sku": line.sku, "quantity": line.quantity, "unit_price": str(line.unit_price)} for line in order.lines
        ],
        "shipping_total": str(order.shipping_total),
        "notes": order.notes,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def order_to_json(order: ExternalOrder) -> dict[str, Any]:
    """The order as stored on its ``ShopOrder`` (without ``raw``: the platform's payload is not needed later)."""
    data = {f.name: getattr(order, f.name) for f in fields(order) if f.name != "raw"}
    data["ship_to"] = asdict(order.ship_to)
    data["lines"] = [asdict(line) for line in order.lines]
    result: dict[str, Any] = _jsonable(data)
    return result


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def order_from_json(data: Mapping[str, Any]) -> ExternalOrder:
    values = dict(data)
    values["ship_to"] = Address(**values.get("ship_to", {}))
    values["lines"] = tuple(
        ExternalLine(**{**line, "unit_price": Decimal(str(line.get("unit_price", "0")))})
        for line in values.get("lines", [])
    )
    values["shipping_total"] = Decimal(str(values.get("shipping_total", "0")))
    values["created_at"] = _moment(values.get("created_at"))
    values["updated_at"] = _moment(values.get("updated_at"))
    known = {f.name for f in fields(ExternalOrder)}
    return ExternalOrder(**{k: v for k, v in values.items() if k in known})


def shipment_to_json(shipment: Shipment) -> dict[str, Any]:
    result: dict[str, Any] = _jsonable(asdict(shipment))
    return result


def shipment_from_json(data: Mapping[str, Any]) -> Shipment:
    return Shipment(
        lines=tuple(ShipmentLine(**line) for line in data.get("lines", [])),
        parcels=tuple(Parcel(**parcel) for parcel in data.get("parcels", [])),
        shipped_at=_moment(data.get("shipped_at")),
        notify_customer=bool(data.get("notify_customer", True)),
    )


def refund_to_json(refund: Refund) -> dict[str, Any]:
    result: dict[str, Any] = _jsonable(asdict(refund))
    return result


def refund_from_json(data: Mapping[str, Any]) -> Refund:
    return Refund(
        lines=tuple(
            RefundLine(
                external_line_id=str(line["external_line_id"]),
                quantity=int(line["quantity"]),
                amount=Decimal(str(line.get("amount", "0"))),
            )
            for line in data.get("lines", [])
        ),
        amount=Decimal(str(data["amount"])),
        currency=str(data.get("currency", "")),
        reason=str(data.get("reason", "")),
        restock=bool(data.get("restock", False)),
    )


# --- The poll's high-water mark -----------------------------------------------------------------------------------

Key = TypeVar("Key", int, str)


def advance_cursor(since: str, seen: set[Key], rows: Sequence[tuple[Key, str]]) -> tuple[str, set[Key], list[Key]]:
    """The high-water mark after a page of ``(id, updated)`` rows sorted by ``updated`` then a stable tie-break.

    A shop's modification time has one-second resolution (PrestaShop's ``date_upd``), so several orders share a
    second and a page may end inside one: the window starts *at* the mark (inclusive) and the cursor remembers the
    ids already taken at that exact second. An order taken at the mark and updated again later has a later time, so
    it is not among the forgotten ones. Returns the new mark, its seen ids, and the ids of the page that are new.
    (PrestaShop's and Saleor's polls use it; WooCommerce's keeps the same rule across its pages.)"""
    new_ids = [order_id for order_id, updated in rows if not (updated == since and order_id in seen)]
    if not rows:
        return since, set(seen), []
    last = max(updated for _, updated in rows)
    at_last = {order_id for order_id, updated in rows if updated == last}
    if last == since:
        at_last |= seen
    return last, at_last, new_ids
