"""Order rules that need no database: the lifecycle table, what a label forbids, addresses, phones, priorities.

Everything here works on plain values (no Django), so ``tests/test_domain.py`` runs in milliseconds. Problems are
returned as codes with their parameters (``AddressProblem``), never as sentences: the services turn them into
translated messages, so this module stays free of Django's translation machinery too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import phonenumbers

# --- Lifecycle --------------------------------------------------------------------------------------------------

RECEIVED: Final = "received"
ALLOCATED: Final = "allocated"
BACKORDERED: Final = "backordered"
RELEASED: Final = "released"
PICKING: Final = "picking"
PACKED: Final = "packed"
PARTIALLY_SHIPPED: Final = "partially_shipped"
SHIPPED: Final = "shipped"
DELIVERED: Final = "delivered"
ON_HOLD: Final = "on_hold"
CANCELLED: Final = "cancelled"

#: The statuses a hold may interrupt, and so the statuses a released hold may return to.
HOLDABLE: Final = (RECEIVED, ALLOCATED, BACKORDERED, RELEASED, PICKING)

#: The one transition table of an order: from → the statuses it may move to. ``quai.orders.services`` builds the
#: order's ``StateMachine`` from it. ``backordered → released`` exists for merchants whose policy ships what is
#: covered first (split shipments); the service refuses it to the others. A hold goes back to where it was: the
#: table allows ``on_hold`` → every holdable status, and the service picks the one the order was held from
#: (``status_after_hold``).
ORDER_TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    RECEIVED: (ALLOCATED, BACKORDERED, ON_HOLD, CANCELLED),
    BACKORDERED: (ALLOCATED, RELEASED, ON_HOLD, CANCELLED),
    ALLOCATED: (RELEASED, BACKORDERED, ON_HOLD, CANCELLED),
    RELEASED: (PICKING, ON_HOLD, CANCELLED),
    PICKING: (PACKED, ON_HOLD, CANCELLED),
    PACKED: (SHIPPED, PARTIALLY_SHIPPED),
    PARTIALLY_SHIPPED: (SHIPPED,),
    SHIPPED: (DELIVERED,),
    DELIVERED: (),
    ON_HOLD: (*HOLDABLE, CANCELLED),
    CANCELLED: (),
}

#: The steps' names, as the audit rows (``core.StateTransition.transition``) record them.
ORDER_TRANSITION_NAMES: Final[dict[tuple[str, str], str]] = {
    **{(source, CANCELLED): "cancel" for source in (*HOLDABLE, ON_HOLD)},
    **{(source, ON_HOLD): "hold" for source in HOLDABLE},
    **{(ON_HOLD, target): "release_hold" for target in HOLDABLE},
    (RECEIVED, ALLOCATED): "allocate",
    (BACKORDERED, ALLOCATED): "allocate",
    (RECEIVED, BACKORDERED): "backorder",
    (ALLOCATED, BACKORDERED): "backorder",
    (ALLOCATED, RELEASED): "release",
    (BACKORDERED, RELEASED): "release_split",
    (RELEASED, PICKING): "start_picking",
    (PICKING, PACKED): "pack",
    (PACKED, SHIPPED): "ship",
    (PACKED, PARTIALLY_SHIPPED): "ship_part",
    (PARTIALLY_SHIPPED, SHIPPED): "ship_rest",
    (SHIPPED, DELIVERED): "deliver",
}

FINAL: Final = frozenset(status for status, targets in ORDER_TRANSITIONS.items() if not targets)

#: Statuses at which a shipping label exists.
#:
#: No label model exists yet (shipping comes in a later issue), so "a label exists" is read from the status: a
#: parcel is labelled when it is packed, so from ``packed`` on the order is treated as labelled. When labels get
#: their own records, this is the one place to change.
LABELLED: Final = frozenset({PACKED, PARTIALLY_SHIPPED, SHIPPED, DELIVERED})

#: What a shopper or an agent may ask until a label exists, and is refused from then on.
LABEL_GUARDED_ACTIONS: Final = frozenset({"cancel", "hold", "address_change"})


def label_exists(status: str) -> bool:
    """Whether the order is labelled, read from its status (see ``LABELLED``: no label model exists yet)."""
    return status in LABELLED


def refused_once_labelled(action: str, status: str) -> bool:
    """Whether ``action`` (cancel, hold, address_change) is refused because the order at ``status`` is labelled."""
    if action not in LABEL_GUARDED_ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {sorted(LABEL_GUARDED_ACTIONS)}")
    return label_exists(status)


def status_after_allocation(*, lines_fully_covered: bool) -> str:
    """An order whose every line is covered is allocated; any line short makes it backordered."""
    return ALLOCATED if lines_fully_covered else BACKORDERED


def status_after_hold(held_from: str, *, lines_fully_covered: bool) -> str:
    """Where a released hold goes: back to where it was, unless stock arrived meanwhile for a backordered order.

    An order held while backordered whose lines were all covered during the hold (the backorder allocator does not
    skip held orders: stock it missed would go to the next in line) comes back allocated.
    """
    if held_from not in HOLDABLE:
        raise ValueError(f"an order cannot have been held from {held_from!r}")
    if held_from == BACKORDERED and lines_fully_covered:
        return ALLOCATED
    return held_from


class HoldReason:
    """Why an order is on hold (the codes stored and sent; the model's choices give them words)."""

    PAYMENT: Final = "payment"
    FRAUD: Final = "fraud"
    ADDRESS: Final = "address"
    CUSTOMER_SERVICE: Final = "customer_service"
    MERCHANT: Final = "merchant"

    ALL: Final = (PAYMENT, FRAUD, ADDRESS, CUSTOMER_SERVICE, MERCHANT)


# --- Priorities -------------------------------------------------------------------------------------------------


class Priority:
    """Priority classes: who gets short stock first. Lower rank first; same rank, older first."""

    EXPRESS: Final = "express"
    VIP: Final = "vip"
    MARKETPLACE: Final = "marketplace"
    STANDARD: Final = "standard"

    ALL: Final = (EXPRESS, VIP, MARKETPLACE, STANDARD)


#: Express first (a paid-for delivery date), then VIP customers, then marketplace orders (whose platforms penalise
#: late shipping), then the rest.
PRIORITY_RANK: Final[Mapping[str, int]] = {name: rank for rank, name in enumerate(Priority.ALL)}


def priority_rank(priority: str) -> int:
    """The rank of a priority class (0 first); an unknown class ranks last rather than jumping the queue."""
    return PRIORITY_RANK.get(priority, len(PRIORITY_RANK))


@dataclass(frozen=True)
class WaitingOrder:
    """A backordered order waiting for stock, as the allocator sorts it."""

    order_id: int
    priority: str
    received_at: datetime


def backorder_queue(orders: Iterable[WaitingOrder]) -> list[WaitingOrder]:
    """The order in which waiting orders get stock: priority class, then age (oldest first), then id (stable)."""
    return sorted(orders, key=lambda o: (priority_rank(o.priority), o.received_at, o.order_id))


# --- Addresses ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddressProblem:
    """Why an address cannot be shipped to: ``code`` for programs, ``field`` it is about, ``params`` for messages."""

    code: str
    field: str
    params: Mapping[str, str]


# Formats of common European postcodes, on the postcode once upper-cased and stripped of surrounding spaces. One
# space inside is kept where the country writes one (NL "1012 AB", GB "SW1A 1AA", …).
_POSTCODE_FORMATS: Final[dict[str, tuple[re.Pattern[str], str]]] = {
    "DE": (re.compile(r"^\d{5}$"), "12345"),
    "BE": (re.compile(r"^[1-9]\d{3}$"), "1234"),
    "LU": (re.compile(r"^(L-)?\d{4}$"), "1234"),
    "CH": (re.compile(r"^[1-9]\d{3}$"), "1234"),
    "AT": (re.compile(r"^[1-9]\d{3}$"), "1234"),
    "NL": (re.compile(r"^[1-9]\d{3} ?[A-Z]{2}$"), "1234 AB"),
    "ES": (re.compile(r"^(0[1-9]|[1-4]\d|5[0-2])\d{3}$"), "28001"),
    "IT": (re.compile(r"^\d{5}$"), "00184"),
    "PT": (re.compile(r"^\d{4}-\d{3}$"), "1000-001"),
    "PL": (re.compile(r"^\d{2}-\d{3}$"), "00-001"),
    "MC": (re.compile(r"^980\d{2}$"), "98000"),
    "GB": (re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$"), "SW1A 1AA"),
    "IE": (re.compile(r"^[A-Z]\d[\dW] ?[A-Z\d]{4}$"), "D02 X285"),
}

_FR_POSTCODE = re.compile(r"^\d{5}$")
_FR_CORSICA = re.compile(r"^2[AB]\d{3}$")
# Departments as the first two digits: 01–95 for metropolitan France (20 is Corsica), then 97/98 for overseas.
_FR_OVERSEAS_PREFIXES: Final = tuple(str(n) for n in range(971, 989))


def postcode_normalise(country: str, postcode: str) -> str | AddressProblem:
    """The postcode as it should be stored for ``country`` (ISO 3166-1 alpha-2), or why it cannot be shipped to.

    France: five digits, metropolitan departments 01–95 (Corsica is written 20xxx on mail: a postcode typed with
    its department code, 2A/2B, becomes 20xxx), overseas 971–988 (Guadeloupe … Wallis-et-Futuna, New Caledonia);
    97/98 followed by anything else is no French postcode. A few common European countries are checked against
    their format; any other country needs a postcode that is not empty, since we cannot know its rules.
    """
    value = " ".join(postcode.split()).upper()
    country = country.upper()
    if not value:
        return AddressProblem("postcode_required", "postcode", {"country": country})
    if country == "FR":
        if _FR_CORSICA.match(value):
            value = "20" + value[2:]
        if not _FR_POSTCODE.match(value):
            return AddressProblem("postcode_invalid", "postcode", {"country": country, "example": "75011"})
        department = int(value[:2])
        if department == 0 or department == 96:
            return AddressProblem("postcode_invalid", "postcode", {"country": country, "example": "75011"})
        if department in (97, 98) and not value.startswith(_FR_OVERSEAS_PREFIXES):
            return AddressProblem("postcode_invalid", "postcode", {"country": country, "example": "97400"})
        return value
    known = _POSTCODE_FORMATS.get(country)
    if known is not None:
        pattern, example = known
        if not pattern.match(value):
            return AddressProblem("postcode_invalid", "postcode", {"country": country, "example": example})
        if country == "LU" and value.startswith("L-"):
            value = value[2:]
    return value


_COUNTRY = re.compile(r"^[A-Z]{2}$")


def country_normalise(country: str) -> str | AddressProblem:
    """An ISO 3166-1 alpha-2 country code, upper-cased; one that phonenumbers does not know is refused too.

    phonenumbers knows every country and territory that has a telephone plan, which is every place a parcel
    goes; an unknown pair of letters ("ZZ", "XX") is a typo, not a destination.
    """
    value = country.strip().upper()
    if not _COUNTRY.match(value) or value not in phonenumbers.SUPPORTED_REGIONS:
        return AddressProblem("country_invalid", "country", {"country": country})
    return value


# --- Phones -------------------------------------------------------------------------------------------------------


def phone_normalise(phone: str, *, country: str) -> str | AddressProblem:
    """The phone number in E.164 (``+33612345678``), read as a number of ``country`` when it has no ``+`` prefix.

    An empty phone stays empty (a phone is optional); one that is not a possible, valid number is refused, since a
    carrier calls it to deliver.
    """
    value = phone.strip()
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, country.upper() or None)
    except phonenumbers.NumberParseException:
        return AddressProblem("phone_invalid", "phone", {"phone": phone})
    if not phonenumbers.is_valid_number(parsed):
        return AddressProblem("phone_invalid", "phone", {"phone": phone})
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
