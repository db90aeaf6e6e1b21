"""ASNs (advance shipping notices): announcing one, its one transition table, cancelling it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from quai.catalog.models import Sku
from quai.core import clock
from quai.core.errors import Conflict, ValidationFailed
from quai.core.outbox import event_record
from quai.core.states import StateMachine, transition
from quai.inbound import domain
from quai.inbound.events import AsnAnnounced, AsnCancelled, AsnStatusChanged
from quai.inbound.models import Asn, AsnLine, AsnStatus, HandlingUnit, HandlingUnitKind
from quai.inbound.services._shared import asn_locked
from quai.tenants.models import Merchant
from quai.warehouse.models import Site


@dataclass(frozen=True)
class AsnLineInput:
    sku_code: str
    quantity: int
    lot: str = ""
    expiry: date | None = None
    sscc: str = ""


@dataclass(frozen=True)
class HandlingUnitInput:
    sscc: str
    kind: str = HandlingUnitKind.CARTON


def _line_error(index: int, field: str, code: str, message: str) -> dict[str, Any]:
    return {"line": index, "field": field, "code": code, "message": message}


def _handling_unit_errors(
    units_in: Sequence[HandlingUnitInput], merchant: Merchant
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The ASN's cartons and pallets by normalised SSCC, and what is wrong with them."""
    errors: list[dict[str, Any]] = []
    units: dict[str, str] = {}
    for index, unit in enumerate(units_in):
        sscc = domain.sscc_normalize(unit.sscc)
        if sscc is None:
            errors.append(
                _line_error(
                    index,
                    "handling_units.sscc",
                    "invalid_sscc",
                    _("'%(sscc)s' is not a valid SSCC.") % {"sscc": unit.sscc},
                )
            )
        elif sscc in units:
            errors.append(
                _line_error(
                    index, "handling_units.sscc", "duplicate_sscc", _("SSCC %(sscc)s is listed twice.") % {"sscc": sscc}
                )
            )
        else:
            units[sscc] = unit.kind
        if unit.kind not in HandlingUnitKind.values:
            errors.append(
                _line_error(
                    index,
                    "handling_units.kind",
                    "invalid_kind",
                    _("'%(kind)s' is not carton or pallet.") % {"kind": unit.kind},
                )
            )
    taken = set(HandlingUnit.objects.for_merchant(merchant).filter(sscc__in=units).values_list("sscc", flat=True))
    errors += [
        _line_error(
            0,
            "handling_units.sscc",
            "duplicate_sscc",
            _("SSCC %(sscc)s is already on another ASN.") % {"sscc": sscc},
        )
        for sscc in sorted(taken)
    ]
    return units, errors


def _line_errors(lines: Sequence[AsnLineInput], skus: dict[str, Sku], units: dict[str, str]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    today = clock.today()
    for index, line in enumerate(lines):
        sku = skus.get(line.sku_code)
        if sku is None:
            errors.append(
                _line_error(
                    index,
                    "sku",
                    "sku_not_found",
                    _("SKU '%(sku)s' is not in your catalogue.") % {"sku": line.sku_code},
                )
            )
        if line.quantity <= 0:
            errors.append(
                _line_error(index, "quantity", "invalid_quantity", _("The quantity must be a whole number above zero."))
            )
        if line.lot and sku is not None and not sku.lot_tracked:
            errors.append(
                _line_error(
                    index,
                    "lot",
                    "lot_not_tracked",
                    _("SKU '%(sku)s' is not lot-tracked: it takes no lot.") % {"sku": sku.code},
                )
            )
        if line.expiry is not None and sku is not None and not sku.expiry_tracked:
            errors.append(
                _line_error(
                    index,
                    "expiry",
                    "expiry_not_tracked",
                    _("SKU '%(sku)s' has no expiry date: leave it empty.") % {"sku": sku.code},
                )
            )
        if line.expiry is not None and line.expiry < today:
            errors.append(
                _line_error(
                    index,
                    "expiry",
                    "expiry_in_past",
                    _("The expiry date %(date)s is already past.") % {"date": line.expiry.isoformat()},
                )
            )
        if line.sscc:
            sscc = domain.sscc_normalize(line.sscc)
            if sscc is None or sscc not in units:
                errors.append(
                    _line_error(
                        index,
                        "sscc",
                        "unknown_sscc",
                        _("SSCC '%(sscc)s' is not one of this ASN's cartons or pallets.") % {"sscc": line.sscc},
                    )
                )
    return errors


@transaction.atomic
def asn_create(
    *,
    merchant: Merchant,
    reference: str,
    site: Site,
    lines: Sequence[AsnLineInput],
    supplier: str = "",
    expected_at: date | None = None,
    handling_units: Sequence[HandlingUnitInput] = (),
    notes: str = "",
    actor: Any = None,
) -> Asn:
    """Announce an ASN. Every line is checked and every problem reported at once (``details.errors``)."""
    reference = reference.strip()
    if not reference:
        raise ValidationFailed(
            _("An ASN needs a reference."), code="reference_required", details={"field": "reference"}
        )
    if Asn.objects.for_merchant(merchant).filter(reference=reference).exists():
        raise Conflict(
            _("An ASN with reference '%(reference)s' already exists.") % {"reference": reference},
            code="duplicate_asn_reference",
            details={"field": "reference", "value": reference},
        )
    if not lines:
        raise ValidationFailed(_("An ASN needs at least one line."), code="lines_required", details={"field": "lines"})

    units, errors = _handling_unit_errors(handling_units, merchant)
    skus = {sku.code: sku for sku in Sku.objects.for_merchant(merchant).filter(code__in={li.sku_code for li in lines})}
    errors += _line_errors(lines, skus, units)
    if errors:
        first = errors[0]
        message = _("Line %(line)s: %(problem)s") % {"line": first["line"] + 1, "problem": first["message"]}
        if len(errors) > 1:
            message += " " + _("(and %(count)s more problem(s))") % {"count": len(errors) - 1}
        raise ValidationFailed(message, code=first["code"], details={"errors": errors})

    asn = Asn.objects.create(
        merchant=merchant, reference=reference, site=site, supplier=supplier, expected_at=expected_at, notes=notes
    )
    unit_rows = {
        sscc: HandlingUnit.objects.create(merchant=merchant, asn=asn, sscc=sscc, kind=kind)
        for sscc, kind in units.items()
    }
    AsnLine.objects.bulk_create(
        AsnLine(
            asn=asn,
            sku=skus[line.sku_code],
            expected_quantity=line.quantity,
            lot=line.lot,
            expiry=line.expiry,
            handling_unit=unit_rows.get(domain.sscc_normalize(line.sscc) or "") if line.sscc else None,
        )
        for line in lines
    )
    event_record(
        AsnAnnounced(
            asn_id=asn.pk,
            reference=asn.reference,
            expected_at=expected_at.isoformat() if expected_at else None,
            line_count=len(lines),
            expected_units=sum(line.quantity for line in lines),
        ),
        merchant_id=merchant.pk,
    )
    return asn


#: The ASN's one state machine (table: ``domain.ASN_TRANSITIONS``); ``asn_transition`` is its only writer.
ASN_MACHINE = StateMachine.from_table("asn", domain.ASN_TRANSITIONS, names=domain.ASN_TRANSITION_NAMES)


@transaction.atomic
def asn_transition(*, asn: Asn | int, to_status: str, actor: Any = None, reason: str = "") -> Asn:
    """Move an ASN along its state machine (``ASN_MACHINE``): status, audit row and event in one transaction.

    The step goes through ``quai.core.states.transition``: refused with ``invalid_transition`` (details: from, to,
    allowed) when the table forbids it; otherwise the status and its time stamp (receiving started, closed) are
    written, with a ``core.StateTransition`` row and an ``inbound.asn_status_changed`` event. The step-specific
    events (``inbound.asn_cancelled``, ``inbound.asn_received``…) are recorded by the services that make the step.
    The ASN passed in is updated too; the returned copy is the row as the step left it.
    """
    locked = asn_locked(asn)
    now = clock.now()
    values: dict[str, Any] = {}
    if to_status == AsnStatus.RECEIVING:
        values["receiving_started_at"] = now
    if to_status in (AsnStatus.CLOSED, AsnStatus.CANCELLED):
        values["closed_at"] = now
    transition(
        locked,
        machine=ASN_MACHINE,
        to_status=to_status,
        event=lambda step: AsnStatusChanged(
            asn_id=locked.pk,
            reference=locked.reference,
            from_status=step.from_status,
            to_status=step.to_status,
            reason=step.reason,
        ),
        actor=actor,
        reason=reason,
        values=values,
    )
    if isinstance(asn, Asn) and asn is not locked:
        for name in ("status", "receiving_started_at", "closed_at", "updated_at"):
            setattr(asn, name, getattr(locked, name))
    return locked


@transaction.atomic
def asn_cancel(*, asn: Asn, actor: Any = None, reason: str = "") -> Asn:
    """Cancel an ASN that nothing was received against yet."""
    cancelled = asn_transition(asn=asn, to_status=AsnStatus.CANCELLED, actor=actor, reason=reason or "cancelled")
    event_record(
        AsnCancelled(asn_id=cancelled.pk, reference=cancelled.reference, reason=reason),
        merchant_id=cancelled.merchant_id,
    )
    return cancelled
