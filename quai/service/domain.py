"""Customer-service rules that need no database: ticket and return state tables, categories suggested from a
shopper's words (French and English), SLA clocks on business hours, order references found in a text, and the
"where is my order" decision.

Everything here works on plain values, so ``tests/test_domain.py`` runs in milliseconds (hypothesis included).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

# --- Tickets ------------------------------------------------------------------------------------------------------

NEW: Final = "new"
OPEN: Final = "open"
PENDING: Final = "pending"
RESOLVED: Final = "resolved"
CLOSED: Final = "closed"

#: A ticket's one transition table. ``pending`` waits for the shopper (an agent answered); a shopper's reply
#: reopens a pending or resolved ticket; ``closed`` is final (a later mail opens a new ticket).
TICKET_TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    NEW: (OPEN, PENDING, RESOLVED),
    OPEN: (PENDING, RESOLVED),
    PENDING: (OPEN, RESOLVED),
    RESOLVED: (OPEN, CLOSED),
    CLOSED: (),
}

TICKET_TRANSITION_NAMES: Final[dict[tuple[str, str], str]] = {
    (NEW, OPEN): "take",
    (NEW, PENDING): "answer",
    (OPEN, PENDING): "answer",
    (NEW, RESOLVED): "resolve",
    (OPEN, RESOLVED): "resolve",
    (PENDING, RESOLVED): "resolve",
    (PENDING, OPEN): "reopen",
    (RESOLVED, OPEN): "reopen",
    (RESOLVED, CLOSED): "close",
}

#: Statuses whose SLA clocks still run (a resolved ticket's resolution is met; a pending one still counts).
SLA_RUNNING: Final = frozenset({NEW, OPEN, PENDING})


def status_after_shopper_message(status: str) -> str | None:
    """Where a ticket goes when the shopper writes again: back to ``open`` unless it is already waiting for us."""
    if status in (PENDING, RESOLVED):
        return OPEN
    return None


# --- Returns (RMA) ------------------------------------------------------------------------------------------------

RMA_REQUESTED: Final = "requested"
RMA_LABEL_REQUESTED: Final = "label_requested"
RMA_IN_TRANSIT: Final = "in_transit"
RMA_RECEIVED: Final = "received"
RMA_CLOSED: Final = "closed"
RMA_CANCELLED: Final = "cancelled"

RMA_TRANSITIONS: Final[dict[str, tuple[str, ...]]] = {
    RMA_REQUESTED: (RMA_LABEL_REQUESTED, RMA_IN_TRANSIT, RMA_RECEIVED, RMA_CANCELLED),
    RMA_LABEL_REQUESTED: (RMA_IN_TRANSIT, RMA_RECEIVED, RMA_CANCELLED),
    RMA_IN_TRANSIT: (RMA_RECEIVED,),
    RMA_RECEIVED: (RMA_CLOSED,),
    RMA_CLOSED: (),
    RMA_CANCELLED: (),
}

RMA_TRANSITION_NAMES: Final[dict[tuple[str, str], str]] = {
    (RMA_REQUESTED, RMA_LABEL_REQUESTED): "request_label",
    (RMA_REQUESTED, RMA_IN_TRANSIT): "ship",
    (RMA_LABEL_REQUESTED, RMA_IN_TRANSIT): "ship",
    (RMA_REQUESTED, RMA_RECEIVED): "receive",
    (RMA_LABEL_REQUESTED, RMA_RECEIVED): "receive",
    (RMA_IN_TRANSIT, RMA_RECEIVED): "receive",
    (RMA_RECEIVED, RMA_CLOSED): "close",
    (RMA_REQUESTED, RMA_CANCELLED): "cancel",
    (RMA_LABEL_REQUESTED, RMA_CANCELLED): "cancel",
}


# --- Returns desk ---------------------------------------------------------------------------------------------------

GRADE_A: Final = "A"
GRADE_B: Final = "B"
GRADE_C: Final = "C"
GRADES: Final = (GRADE_A, GRADE_B, GRADE_C)

UNIT_RECEIVED: Final = "received"
UNIT_TO_RESTOCK: Final = "to_restock"
UNIT_RESTOCKED: Final = "restocked"
UNIT_QUARANTINED: Final = "quarantined"

#: Where a graded unit goes: (zone kind, stock status). A is resold (storage, sellable, after a restock scan);
#: B waits for repair and C for destruction in the quarantine zone, never counted as available.
GRADE_DESTINATIONS: Final[dict[str, tuple[str, str]]] = {
    GRADE_A: ("storage", "sellable"),
    GRADE_B: ("quarantine", "quarantine"),
    GRADE_C: ("quarantine", "damaged"),
}

#: RMA statuses in which a parcel may still be scanned in at the desk.
RMA_OPEN: Final = frozenset({RMA_REQUESTED, RMA_LABEL_REQUESTED, RMA_IN_TRANSIT})

_RMA_REFERENCE = re.compile(r"^\s*RMA\s*-?\s*(\d{1,12})\s*$", re.IGNORECASE)


def rma_reference_id(code: str) -> int | None:
    """The RMA id in a scanned ``RMA12`` (the label's and the portal's reference), else None."""
    found = _RMA_REFERENCE.match(code)
    return int(found.group(1)) if found else None


def grade_check(grade: str) -> str:
    """The grade as stored (upper case), or ValueError for anything but A, B or C."""
    value = grade.strip().upper()
    if value not in GRADES:
        raise ValueError(grade)
    return value


def return_window_open(*, since: date | None, today: date, days: int) -> bool:
    """A shopper may open a return from the day the order left (``since``: delivered, else shipped) for ``days``
    days, that day included. An order not yet gone has no window."""
    return since is not None and since <= today <= since + timedelta(days=days)


def return_refund_amount(*, unit_prices: list[Decimal], left: Decimal) -> Decimal:
    """What a received return refunds: each unit received at its line's price, never more than is left to refund."""
    total = sum(unit_prices, Decimal("0")).quantize(Decimal("0.01"))
    return max(Decimal("0"), min(total, left))


# --- Categories ---------------------------------------------------------------------------------------------------

WHERE_IS_MY_ORDER: Final = "where_is_my_order"
LATE: Final = "late"
DAMAGED: Final = "damaged"
MISSING_ITEM: Final = "missing_item"
WRONG_ITEM: Final = "wrong_item"
RETURN: Final = "return"
EXCHANGE: Final = "exchange"
ADDRESS_CHANGE: Final = "address_change"
CANCEL: Final = "cancel"
OTHER: Final = "other"

CATEGORIES: Final = (
    WHERE_IS_MY_ORDER,
    LATE,
    DAMAGED,
    MISSING_ITEM,
    WRONG_ITEM,
    RETURN,
    EXCHANGE,
    ADDRESS_CHANGE,
    CANCEL,
    OTHER,
)

# Phrases as a shopper writes them, accents and case folded (see ``fold``). A phrase of several words scores
# more than a single word, so "pas reçu le bon article" (wrong item) beats "pas reçu" (where is my order).
_PHRASES: Final[dict[str, tuple[str, ...]]] = {
    WHERE_IS_MY_ORDER: (
        "where is my order",
        "where is my parcel",
        "where is my package",
        "track my order",
        "tracking",
        "not received",
        "haven't received",
        "have not received",
        "not arrived",
        "order status",
        "ou est ma commande",
        "ou en est ma commande",
        "ou est mon colis",
        "suivi",
        "pas recu",
        "jamais recu",
        "toujours pas recu",
        "pas encore recu",
        "statut de ma commande",
    ),
    LATE: (
        "late",
        "delay",
        "delayed",
        "still waiting",
        "should have arrived",
        "overdue",
        "retard",
        "en retard",
        "toujours rien",
        "aurait du arriver",
        "delai depasse",
        "j'attends toujours",
    ),
    DAMAGED: (
        "damaged",
        "broken",
        "cracked",
        "crushed",
        "smashed",
        "torn",
        "leaking",
        "abime",
        "casse",
        "cassee",
        "endommage",
        "brise",
        "ecrase",
        "dechire",
        "fuite",
    ),
    MISSING_ITEM: (
        "missing",
        "item missing",
        "not in the box",
        "not in the parcel",
        "incomplete",
        "only received",
        "manque",
        "manquant",
        "manquante",
        "il manque",
        "incomplet",
        "incomplete commande",
        "pas dans le colis",
    ),
    WRONG_ITEM: (
        "wrong item",
        "wrong size",
        "wrong colour",
        "wrong color",
        "wrong product",
        "not what i ordered",
        "received the wrong",
        "mauvais article",
        "mauvaise taille",
        "mauvaise couleur",
        "mauvais produit",
        "pas le bon",
        "pas la bonne",
        "erreur de produit",
        "ce n'est pas ce que j'ai commande",
    ),
    RETURN: (
        "return",
        "send back",
        "refund",
        "money back",
        "retour",
        "retourner",
        "renvoyer",
        "rembourser",
        "remboursement",
        "retractation",
    ),
    EXCHANGE: (
        "exchange",
        "swap",
        "replace it",
        "another size",
        "echange",
        "echanger",
        "autre taille",
        "remplacer",
    ),
    ADDRESS_CHANGE: (
        "change address",
        "change my address",
        "change the address",
        "wrong address",
        "new address",
        "delivery address",
        "changer d'adresse",
        "changer l'adresse",
        "changement d'adresse",
        "modifier l'adresse",
        "mauvaise adresse",
        "nouvelle adresse",
        "adresse de livraison",
    ),
    CANCEL: (
        "cancel",
        "cancellation",
        "don't want it anymore",
        "annuler",
        "annulation",
        "annulez",
    ),
}

_WORD = re.compile(r"[a-z0-9']+")


def fold(text: str) -> str:
    """Lower case without accents, typographic apostrophes made plain, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(plain.lower().split())


def _contains(haystack_words: list[str], phrase: str) -> bool:
    needle = _WORD.findall(phrase)
    if not needle:
        return False
    size = len(needle)
    return any(haystack_words[i : i + size] == needle for i in range(len(haystack_words) - size + 1))


@dataclass(frozen=True)
class CategoryGuess:
    """The suggested category and the score of each category that matched (for the agent to see why)."""

    category: str
    scores: Mapping[str, int] = field(default_factory=dict)


def category_suggest(text: str) -> CategoryGuess:
    """The category a shopper's message most likely belongs to, from its words in French or English.

    Each phrase found scores its number of words (a longer phrase is stronger evidence); the best score wins, ties
    going to the category listed first in ``CATEGORIES`` except that a concrete problem (damaged, missing, wrong
    item) beats a generic "where is my order". Nothing found: ``other``.
    """
    words = _WORD.findall(fold(text))
    scores: dict[str, int] = {}
    for category, phrases in _PHRASES.items():
        score = sum(len(_WORD.findall(phrase)) for phrase in phrases if _contains(words, phrase))
        if score:
            scores[category] = score
    if not scores:
        return CategoryGuess(OTHER, {})
    # Concrete problems first on ties: "my parcel arrived broken, where is the replacement" is damaged.
    tie_order = (DAMAGED, MISSING_ITEM, WRONG_ITEM, EXCHANGE, RETURN, ADDRESS_CHANGE, CANCEL, LATE, WHERE_IS_MY_ORDER)
    best = max(scores.values())
    winner = next(category for category in tie_order if scores.get(category) == best)
    return CategoryGuess(winner, scores)


# --- References in a text -----------------------------------------------------------------------------------------

_REFERENCE = re.compile(r"#?\b([A-Za-z0-9][A-Za-z0-9\-_/]{2,62}[A-Za-z0-9])\b")


def reference_candidates(text: str, *, limit: int = 50) -> list[str]:
    """Words of ``text`` that could be an order number or a tracking number: at least four characters holding a
    digit ("#1001", "SHOP-1001", "6A12345678901"), in the order they appear, each once."""
    found: list[str] = []
    for match in _REFERENCE.finditer(text):
        word = match.group(1)
        if any(char.isdecimal() for char in word) and word not in found:
            found.append(word)
            if len(found) >= limit:
                break
    return found


# --- Business hours and SLA ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessHours:
    """When the contact centre works: weekdays (Monday 0), opening and closing time in ``timezone``, closed days."""

    timezone: str = "Europe/Paris"
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    opens: time = time(9, 0)
    closes: time = time(18, 0)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= set(range(7)):
            raise ValueError("business hours need at least one weekday among 0-6")
        if self.opens >= self.closes:
            raise ValueError("business hours must open before they close")

    def is_open_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays


def _window(hours: BusinessHours, day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(hours.timezone)
    return datetime.combine(day, hours.opens, zone), datetime.combine(day, hours.closes, zone)


def business_add(start: datetime, minutes: int, hours: BusinessHours) -> datetime:
    """The moment ``minutes`` of business time after ``start`` (aware), in UTC.

    Time outside the opening hours does not count: a message at 17:30 with a 60-minute first-response target is
    due at 09:30 on the next open day. Zero minutes from a closed moment is the next opening.
    """
    if start.tzinfo is None:
        raise ValueError("business_add takes an aware datetime")
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    zone = ZoneInfo(hours.timezone)
    moment = start.astimezone(zone)
    remaining = timedelta(minutes=minutes)
    day = moment.date()
    for _ in range(3660):  # ten years of days: more means the calendar has no open day at all
        if hours.is_open_day(day):
            opens, closes = _window(hours, day)
            begin = max(moment, opens)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(ZoneInfo("UTC"))
                remaining -= available
        day += timedelta(days=1)
        moment = datetime.combine(day, time(0, 0), zone)
    raise ValueError("no open business day within ten years")


def business_minutes_between(start: datetime, end: datetime, hours: BusinessHours) -> int:
    """Whole minutes of business time from ``start`` to ``end`` (0 when ``end`` is not after ``start``)."""
    if end <= start:
        return 0
    zone = ZoneInfo(hours.timezone)
    first, last = start.astimezone(zone), end.astimezone(zone)
    total = timedelta(0)
    day = first.date()
    while day <= last.date():
        if hours.is_open_day(day):
            opens, closes = _window(hours, day)
            begin, finish = max(first, opens), min(last, closes)
            if finish > begin:
                total += finish - begin
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)


@dataclass(frozen=True)
class SlaTargets:
    """Business minutes to the first answer and to the resolution, and how early to warn before a breach."""

    first_response_minutes: int = 4 * 60
    resolution_minutes: int = 3 * 9 * 60
    warn_before_minutes: int = 60


def sla_due(received_at: datetime, targets: SlaTargets, hours: BusinessHours) -> tuple[datetime, datetime]:
    """(first response due, resolution due) for a ticket received at ``received_at``."""
    return (
        business_add(received_at, targets.first_response_minutes, hours),
        business_add(received_at, targets.resolution_minutes, hours),
    )


#: SLA states a clock can be in, as the queue shows them.
SLA_MET: Final = "met"
SLA_OK: Final = "ok"
SLA_AT_RISK: Final = "at_risk"
SLA_BREACHED: Final = "breached"


def sla_state(*, due: datetime | None, done_at: datetime | None, now: datetime, warn_before: timedelta) -> str:
    """Where one SLA clock stands: met (done in time), breached (done late or overdue), at risk, or ok."""
    if due is None:
        return SLA_OK
    if done_at is not None:
        return SLA_MET if done_at <= due else SLA_BREACHED
    if now >= due:
        return SLA_BREACHED
    if now >= due - warn_before:
        return SLA_AT_RISK
    return SLA_OK


# --- Where is my order ------------------------------------------------------------------------------------------

#: Order statuses that are on their way (the parcel exists or has left): a WISMO answer can give tracking.
_MOVING: Final = frozenset({"packed", "partially_shipped", "shipped"})
#: Order statuses that mean trouble for the shopper, whatever the date.
_STUCK: Final = frozenset({"on_hold", "backordered", "cancelled"})


@dataclass(frozen=True)
class WismoDecision:
    """``automatic``: answer the shopper at once with the live status; else ``reason`` says why an agent takes it."""

    automatic: bool
    reason: str


def wismo_decide(
    *,
    status: str,
    promised_to: date | None,
    today: date,
    last_event_at: datetime | None = None,
    now: datetime | None = None,
    stale_after: timedelta = timedelta(days=3),
) -> WismoDecision:
    """Whether "where is my order" can be answered automatically.

    Automatic only when the order is on time: delivered, or not past its promised date and not held, backordered
    or cancelled; a shipped parcel with no tracking news for ``stale_after`` is at risk too. Without a promised
    date, only a delivered or moving order is answered automatically.
    """
    if status == "delivered":
        return WismoDecision(True, "delivered")
    if status in _STUCK:
        return WismoDecision(False, status)
    if promised_to is not None and today > promised_to:
        return WismoDecision(False, "late")
    if status in _MOVING and last_event_at is not None and now is not None and now - last_event_at > stale_after:
        return WismoDecision(False, "no_tracking_news")
    if promised_to is None and status not in _MOVING:
        return WismoDecision(False, "no_promise")
    return WismoDecision(True, "on_time")


# --- Macros -------------------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def macro_render(body: str, values: Mapping[str, str]) -> str:
    """``body`` with each ``{{ name }}`` replaced by its value; an unknown or empty placeholder becomes "—" so a
    shopper never reads template syntax."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1)) or "—", body)


def macro_placeholders(body: str) -> list[str]:
    return sorted(set(_PLACEHOLDER.findall(body)))


# --- Language -----------------------------------------------------------------------------------------------------

_FRENCH_WORDS: Final = frozenset(
    [
        "le",
        "la",
        "les",
        "un",
        "une",
        "des",
        "du",
        "de",
        "je",
        "j'ai",
        "mon",
        "ma",
        "mes",
        "est",
        "et",
        "pas",
        "ne",
        "commande",
        "colis",
        "bonjour",
        "merci",
        "vous",
        "votre",
        "avec",
        "pour",
        "recu",
        "toujours",
        "quand",
        "ou",
        "suis",
        "avez",
    ]
)
_ENGLISH_WORDS: Final = frozenset(
    [
        "the",
        "a",
        "an",
        "my",
        "i",
        "i'm",
        "is",
        "and",
        "not",
        "order",
        "parcel",
        "package",
        "hello",
        "hi",
        "thanks",
        "thank",
        "you",
        "your",
        "with",
        "for",
        "received",
        "still",
        "when",
        "where",
        "have",
        "has",
        "please",
    ]
)


def language_guess(text: str, *, default: str = "fr") -> str:
    """ "fr" or "en", whichever language's common words the text holds more of; ``default`` on a tie."""
    words = _WORD.findall(fold(text))
    french = sum(1 for word in words if word in _FRENCH_WORDS)
    english = sum(1 for word in words if word in _ENGLISH_WORDS)
    if french == english:
        return default
    return "fr" if french > english else "en"
