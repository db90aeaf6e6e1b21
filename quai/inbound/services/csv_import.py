"""ASNs imported from a CSV file (management command and back office): all or nothing, every problem listed."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from quai.core.errors import Conflict, ValidationFailed
from quai.inbound.models import Asn, HandlingUnitKind
from quai.inbound.services.asns import AsnLineInput, HandlingUnitInput, asn_create
from quai.tenants.models import Merchant
from quai.warehouse.models import Site

IMPORT_REQUIRED_COLUMNS = ("reference", "sku", "quantity")
IMPORT_ASN_COLUMNS = ("supplier", "expected_at", "site")


@dataclass(frozen=True)
class AsnImported:
    asns: list[Asn]


def asn_csv_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of an ASN CSV (comma, semicolon or tab separated, header row) with their line numbers in the file."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        raise ValidationFailed(_("The file is empty."), code="empty_file")
    try:
        dialect: Any = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(lines, dialect=dialect)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in IMPORT_REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ValidationFailed(
            _("Missing column(s): %(columns)s.") % {"columns": ", ".join(missing)},
            code="missing_columns",
            details={"missing": missing},
        )
    rows = []
    for number, raw in enumerate(reader, start=2):
        row = {(key or "").strip(): (value or "").strip() for key, value in raw.items() if isinstance(value, str)}
        if any(row.values()):
            rows.append((number, row))
    return rows


def _import_date(value: str, column: str, problems: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(_("%(column)s: '%(value)s' is not a date (YYYY-MM-DD)") % {"column": column, "value": value})
        return None


@transaction.atomic
def asn_import(
    *,
    merchant: Merchant,
    rows: Sequence[tuple[int, dict[str, str]]],
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda items: items,
    actor: Any = None,
) -> AsnImported:
    """Create one ASN per reference from CSV rows, all or nothing.

    Any problem refuses the whole file with ``import_failed`` and ``details.rows``: ``{row number: [problems]}``.
    """
    errors: dict[int, list[str]] = defaultdict(list)
    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, row in rows:
        if not row.get("reference"):
            errors[number].append(_("reference: required"))
            continue
        groups.setdefault(row["reference"], []).append((number, row))
    sites = {site.code: site for site in Site.objects.all()}
    created: list[Asn] = []
    for reference, group in progress(list(groups.items())):
        first_number, first = group[0]
        problems_before = sum(len(found) for found in errors.values())
        lines: list[AsnLineInput] = []
        units: dict[str, str] = {}
        for number, row in group:
            for name in IMPORT_ASN_COLUMNS:
                if row.get(name, "") != first.get(name, ""):
                    errors[number].append(
                        _("%(column)s: differs from row %(row)s of ASN %(reference)s")
                        % {"column": name, "row": first_number, "reference": reference}
                    )
            try:
                quantity = int(row.get("quantity", ""))
            except ValueError:
                errors[number].append(
                    _("quantity: '%(value)s' is not a whole number") % {"value": row.get("quantity", "")}
                )
                quantity = 0
            expiry = _import_date(row.get("expiry", ""), "expiry", errors[number])
            sscc = row.get("sscc", "")
            if sscc:
                units.setdefault(sscc, row.get("unit_kind", "") or HandlingUnitKind.CARTON)
            lines.append(
                AsnLineInput(
                    sku_code=row.get("sku", ""), quantity=quantity, lot=row.get("lot", ""), expiry=expiry, sscc=sscc
                )
            )
        expected_at = _import_date(first.get("expected_at", ""), "expected_at", errors[first_number])
        site_code = first.get("site", "")
        site = sites.get(site_code) if site_code else (next(iter(sites.values())) if len(sites) == 1 else None)
        if site is None:
            errors[first_number].append(
                _("site: '%(site)s' is not a site") % {"site": site_code} if site_code else _("site: required")
            )
        if site is None or sum(len(found) for found in errors.values()) > problems_before:
            continue
        try:
            with transaction.atomic():
                created.append(
                    asn_create(
                        merchant=merchant,
                        reference=reference,
                        site=site,
                        supplier=first.get("supplier", ""),
                        expected_at=expected_at,
                        lines=lines,
                        handling_units=[HandlingUnitInput(sscc=sscc, kind=kind) for sscc, kind in units.items()],
                        actor=actor,
                    )
                )
        except (ValidationFailed, Conflict) as exc:
            line_errors = exc.details.get("errors")
            if not line_errors:
                errors[first_number].append(exc.message)
            for problem in line_errors or []:
                index = int(problem.get("line", 0))
                number = group[index][0] if index < len(group) else first_number
                field = str(problem.get("field", "")).replace("handling_units.", "")
                errors[number].append(f"{field}: {problem['message']}")
    found = {number: problems for number, problems in sorted(errors.items()) if problems}
    if found:
        count = sum(len(problems) for problems in found.values())
        first_row = next(iter(found))
        raise ValidationFailed(
            _("%(count)s problem(s), first on row %(row)s: %(problem)s. Nothing was imported.")
            % {"count": count, "row": first_row, "problem": found[first_row][0].rstrip(".")},
            code="import_failed",
            details={"rows": found},
        )
    return AsnImported(asns=created)
