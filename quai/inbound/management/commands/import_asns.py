"""Import ASNs from a CSV file: ``manage.py import_asns --merchant CODE file.csv``.

One row per ASN line; rows with the same ``reference`` make one ASN. Columns (header row required):
``reference, supplier, expected_at, site, sku, quantity, lot, expiry, sscc, unit_kind`` — only reference, sku and
quantity are required (site may be left out when the warehouse has one site). Dates are ``YYYY-MM-DD``.

Every row is checked; problems are reported per row, and if there is any, nothing is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from quai.core.errors import ValidationFailed
from quai.inbound import services
from quai.tenants.models import Merchant


class Command(BaseCommand):
    help = "Import ASNs for one merchant from a CSV file (one row per line); all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--merchant", required=True, help="The merchant's code.")
        parser.add_argument("file", help="CSV file (UTF-8, comma- or semicolon-separated, header row).")

    def handle(self, *args: Any, **options: Any) -> None:
        merchant = Merchant.objects.filter(code=options["merchant"]).first()
        if merchant is None:
            raise CommandError(f"No merchant with code '{options['merchant']}'.")
        path = Path(options["file"])
        if not path.exists():
            raise CommandError(f"{path}: no such file.")
        quiet = options["verbosity"] < 1
        try:
            rows = services.asn_csv_rows(path.read_text(encoding="utf-8-sig"))
            imported = services.asn_import(
                merchant=merchant,
                rows=rows,
                progress=lambda groups: tqdm(groups, desc="ASNs", unit="asn", disable=quiet),
            )
        except ValidationFailed as exc:
            for number, problems in exc.details.get("rows", {}).items():
                for problem in problems:
                    self.stderr.write(f"row {number}: {problem}")
            raise CommandError(f"{path}: {exc.message}") from None
        self.stdout.write(self.style.SUCCESS(f"Imported {len(imported.asns)} ASN(s) for {merchant.code}."))
