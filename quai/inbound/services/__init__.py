"""Inbound writes, one module per sub-domain; every public name is re-exported here.

``asns`` (announce, cancel, the ASN transition table), ``receiving`` (receiving by scan, discrepancy report),
``putaway`` (tasks, suggestion, confirmation), ``replenishment`` (pick faces and their replenishment), ``csv_import``
(ASNs from a CSV file). Reads the services decide with live in ``quai.inbound.selectors``.
"""

from quai.inbound.services._shared import DOCUMENT_ASN, DOCUMENT_PUTAWAY
from quai.inbound.services.asns import AsnLineInput, HandlingUnitInput, asn_cancel, asn_create, asn_transition
from quai.inbound.services.csv_import import (
    IMPORT_ASN_COLUMNS,
    IMPORT_REQUIRED_COLUMNS,
    AsnImported,
    asn_csv_rows,
    asn_import,
)
from quai.inbound.services.putaway import (
    PUTAWAY_ZONES,
    putaway_check,
    putaway_confirm,
    putaway_suggest,
    putaway_task_add,
)
from quai.inbound.services.receiving import (
    ReceivingStarted,
    ScanOutcome,
    receiving_close,
    receiving_scan,
    receiving_start,
)
from quai.inbound.services.replenishment import pick_face_set, replenishment_check

__all__ = [
    "DOCUMENT_ASN",
    "DOCUMENT_PUTAWAY",
    "IMPORT_ASN_COLUMNS",
    "IMPORT_REQUIRED_COLUMNS",
    "PUTAWAY_ZONES",
    "AsnImported",
    "AsnLineInput",
    "HandlingUnitInput",
    "ReceivingStarted",
    "ScanOutcome",
    "asn_cancel",
    "asn_create",
    "asn_csv_rows",
    "asn_import",
    "asn_transition",
    "pick_face_set",
    "putaway_check",
    "putaway_confirm",
    "putaway_suggest",
    "putaway_task_add",
    "receiving_close",
    "receiving_scan",
    "receiving_start",
    "replenishment_check",
]
