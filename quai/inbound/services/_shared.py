"""What the inbound service modules share: document types of the ledger, the locked ASN, the acting user."""

from __future__ import annotations

from typing import Any

from quai.inbound.models import Asn

# The ledger's document types: every movement inbound writes points back at its ASN or putaway task.
DOCUMENT_ASN = "inbound.asn"
DOCUMENT_PUTAWAY = "inbound.putaway"


def user_of(actor: Any) -> Any:
    """The Django user behind ``actor`` (a user, or nothing for API keys and system work)."""
    if actor is None or not getattr(actor, "is_authenticated", False):
        return None
    return actor


def asn_locked(asn: Asn | int) -> Asn:
    """The ASN row, locked for the rest of the transaction (scans and closing of one ASN queue up)."""
    asn_id = asn if isinstance(asn, int) else asn.pk
    return Asn.objects.select_for_update().get(pk=asn_id)
