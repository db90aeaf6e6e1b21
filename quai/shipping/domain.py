"""Pure shipping rules: SSCC numbers, carrier address lines, tracking statuses, the Mondial Relay signature.

No Django here (mypy strict): each rule is tested in milliseconds.

- SSCC (GS1 General Specifications §2.2.1, ../shared/reference/INTEGRATIONS.md §5.4): 18 digits, extension digit +
  company prefix + serial reference filling 17 digits, then the GS1 mod-10 check digit (weights 3,1,3,… from the
  rightmost data digit). ``stdnum.ean.calc_check_digit`` computes exactly that rule for any length.
- Tracking statuses: every carrier's events are folded onto one scale (``TRACKING_STATUSES``), so the shop, the
  shopper's page and the promise read one vocabulary whatever the carrier said.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Final

from stdnum import ean

LABEL_CREATED: Final = "label_created"
IN_TRANSIT: Final = "in_transit"
AT_PICKUP_POINT: Final = "at_pickup_point"
OUT_FOR_DELIVERY: Final = "out_for_delivery"
DELIVERED: Final = "delivered"
EXCEPTION: Final = "exception"
RETURNED: Final = "returned"

TRACKING_STATUSES: Final = (
    LABEL_CREATED,
    IN_TRANSIT,
    AT_PICKUP_POINT,
    OUT_FOR_DELIVERY,
    DELIVERED,
    EXCEPTION,
    RETURNED,
)
#: The carrier settings that are secrets (the adapters' passwords and API keys): kept in a carrier account's
#: encrypted ``credentials``, never in its ``settings``, and never shown back.
CARRIER_SECRET_KEYS: Final = frozenset({"password", "okapi_key", "private_key"})

#: A manifest is open while its truck is loaded, closed once handed over.
MANIFEST_OPEN: Final = "open"
MANIFEST_CLOSED: Final = "closed"

#: After these a parcel's tracking no longer changes: polling stops.
FINAL_TRACKING: Final = frozenset({DELIVERED, RETURNED})


def gs1_check_digit(data: str) -> int:
    """The GS1 mod-10 check digit of ``data`` (digits only): weights 3,1,3,… from the rightmost digit."""
    if not data.isdecimal():
        raise ValueError("GS1 data must be digits only")
    return int(ean.calc_check_digit(data))


def sscc_build(*, extension: int, company_prefix: str, serial: int) -> str:
    """An 18-digit SSCC from its parts; the serial must fit in what the prefix leaves of the 17 data digits."""
    if not 0 <= extension <= 9:
        raise ValueError("the extension digit is 0-9")
    if not company_prefix.isdecimal() or not 7 <= len(company_prefix) <= 10:
        raise ValueError("a GS1 company prefix has 7 to 10 digits")
    width = 16 - len(company_prefix)
    if serial < 0 or serial >= 10**width:
        raise ValueError(f"the serial reference must fit in {width} digits")
    data = f"{extension}{company_prefix}{serial:0{width}d}"
    return data + str(gs1_check_digit(data))


def sscc_is_valid(value: str) -> bool:
    """Whether ``value`` is 18 digits whose last is the GS1 check digit of the first 17."""
    return len(value) == 18 and value.isdecimal() and gs1_check_digit(value[:17]) == int(value[17])


def sscc_human(value: str) -> str:
    """The SSCC as printed under its barcode: ``(00) 1 0614141 123456789 7`` style grouping (AI, then digits)."""
    return f"(00) {value}"


def gs1_128_data(sscc: str) -> str:
    """The GS1-128 symbol's data for AI (00): FNC1 first (Code 128's ``\\xf1`` in reportlab), then 00 + SSCC."""
    if not sscc_is_valid(sscc):
        raise ValueError("not a valid SSCC")
    return "\xf1" + "00" + sscc


def unaccent(text: str) -> str:
    """Carriers' label printers take ASCII: accents dropped (é → e), other non-ASCII characters removed."""
    if text.isascii():  # NFKD leaves ASCII as it is: most addresses, and a label's twenty lines, skip the walk
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode("ascii")


def address_lines(parts: Sequence[str], *, width: int = 35, count: int = 4) -> list[str]:
    """Address parts as at most ``count`` unaccented upper-case lines of at most ``width`` characters (Colissimo
    and Mondial Relay both take four lines of 35), words kept whole where they fit; raises when it cannot fit."""
    lines: list[str] = []
    for part in parts:
        words = unaccent(part).upper().split()
        current = ""
        for word in words:
            while len(word) > width:  # a single over-long word is cut
                if current:
                    lines.append(current)
                    current = ""
                lines.append(word[:width])
                word = word[width:]
            candidate = f"{current} {word}".strip()
            if len(candidate) <= width:
                current = candidate
            else:
                lines.append(current)
                current = word
        if current:
            lines.append(current)
    if len(lines) > count:
        raise ValueError(f"the address needs {len(lines)} lines of {width} characters; the carrier takes {count}")
    return lines


def mondial_relay_security(values: Sequence[str], private_key: str) -> str:
    """Mondial Relay WSI ``Security``: upper-case hex MD5 of every parameter value in the documented order, then
    the private key; an empty parameter contributes "" (INTEGRATIONS.md §5.2)."""
    text = "".join(values) + private_key
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


# --- Tracking: each carrier's words onto one scale ------------------------------------------------------------

#: La Poste "Suivi" v2 event codes (the Colissimo tracking API), first letters = the step.
COLISSIMO_EVENT_STATUSES: Final[Mapping[str, str]] = {
    "DR1": LABEL_CREATED,  # déclaratif réceptionné
    "PC1": IN_TRANSIT,  # pris en charge
    "PC2": IN_TRANSIT,
    "ET1": IN_TRANSIT,  # en cours de traitement
    "ET2": IN_TRANSIT,
    "ET3": IN_TRANSIT,
    "ET4": IN_TRANSIT,
    "EP1": IN_TRANSIT,  # en attente de présentation
    "DO1": IN_TRANSIT,  # entrée en douane
    "DO2": IN_TRANSIT,  # sortie de douane
    "DO3": EXCEPTION,  # retenu en douane
    "PB1": EXCEPTION,  # problème en cours
    "PB2": EXCEPTION,
    "ND1": EXCEPTION,  # non distribuable
    "AG1": AT_PICKUP_POINT,  # en attente d'être retiré au guichet / point retrait
    "MD2": OUT_FOR_DELIVERY,  # mis en distribution
    "DI0": DELIVERED,
    "DI1": DELIVERED,  # distribué
    "DI2": RETURNED,  # distribué à l'expéditeur
    "RE1": RETURNED,  # retourné à l'expéditeur
}


def colissimo_status(code: str) -> str | None:
    """The normalised status of a La Poste "Suivi" event code (None: a code we do not know, kept but not mapped)."""
    return COLISSIMO_EVENT_STATUSES.get(code.strip().upper())


#: Mondial Relay's tracing gives free French labels; matched by the words they contain (first match wins).
MONDIAL_RELAY_LABEL_WORDS: Final[Sequence[tuple[str, str]]] = (
    ("RETOUR", RETURNED),
    ("ANOMALIE", EXCEPTION),
    ("INCIDENT", EXCEPTION),
    ("LIVRE", DELIVERED),  # COLIS LIVRÉ, LIVRÉ AU DESTINATAIRE (after unaccent)
    ("RECUPERE", DELIVERED),  # COLIS RÉCUPÉRÉ par le destinataire au point relais
    ("DISPONIBLE", AT_PICKUP_POINT),  # DISPONIBLE AU POINT RELAIS
    ("EN LIVRAISON", OUT_FOR_DELIVERY),
    ("PRISE EN CHARGE", IN_TRANSIT),
    ("EN COURS", IN_TRANSIT),
    ("RECEPTION DES DONNEES", LABEL_CREATED),
)


def mondial_relay_status(label: str) -> str | None:
    """The normalised status of a Mondial Relay tracing label (None when no known word is in it)."""
    text = unaccent(label).upper()
    for word, status in MONDIAL_RELAY_LABEL_WORDS:
        if word in text:
            return status
    return None


def weight_kg_text(weight_g: int) -> str:
    """Grams as kilograms with two decimals, as carriers print them ("1.25")."""
    if weight_g < 0:
        raise ValueError("a weight is never negative")
    return f"{weight_g / 1000:.2f}"
