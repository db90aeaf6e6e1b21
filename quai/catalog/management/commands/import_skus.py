"""Import a merchant's SKUs from a CSV file: every row is checked first, then written batch by batch."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils.translation import gettext as _
from tqdm import tqdm

from quai.catalog.cleaning import SKU_ROW_FIELDS
from quai.catalog.services import BULK_MAX_ROWS, sku_bulk_upsert
from quai.core.errors import QuaiError, ValidationFailed
from quai.tenants.models import Merchant

HELP = """Import SKUs for one merchant from a CSV file (UTF-8, comma or semicolon separated, one header line).

Columns (only "code" is required; "name" is required for a SKU that does not exist yet):
  code               the merchant's SKU code; an existing code is updated, a new one created
  name               product name
  description        free text
  gtin               GTIN-8, 12, 13 or 14 (EAN / UPC); the check digit is verified
  barcodes           extra codes of the SKU separated by "|"; when present they replace its extra codes
  length_mm, width_mm, height_mm   outer dimensions in millimetres (whole numbers)
  weight_g           weight in grams (whole number)
  lot_tracked, expiry_tracked, serial_tracked, fragile, hazmat   yes/no (also true/false, 1/0, oui/non)
  hs_code            customs HS code, 6 to 10 digits (dots allowed: 6109.10.00)
  country_of_origin  ISO 3166 two-letter country code (FR, PT, CN...)
  status             active, inactive or discontinued

An empty cell leaves the field as it is (or at its default for a new SKU). Every row is checked before anything
is written: if any row is wrong, nothing is imported and the errors are listed (line, column, code, message) on
the screen and in --errors. Rows are then written in batches of up to 1,000, each batch all or nothing.
"""


@dataclass(frozen=True)
class RowError:
    line: int
    column: str
    code: str
    message: str
    sku_code: str = ""


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: dict[str, str]


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Keep the column list's line breaks in --help.
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the CSV file to import")
        parser.add_argument("--merchant", required=True, help="the merchant's code")
        parser.add_argument("--errors", type=Path, help="write the error report (CSV) to this file")
        parser.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
        parser.add_argument(
            "--batch-size", type=int, default=BULK_MAX_ROWS, help=f"rows per batch (at most {BULK_MAX_ROWS})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        merchant = Merchant.objects.filter(code=options["merchant"]).first()
        if merchant is None:
            raise CommandError(_("No merchant with code '%(code)s'.") % {"code": options["merchant"]})
        batch_size = options["batch_size"]
        if not 1 <= batch_size <= BULK_MAX_ROWS:
            raise CommandError(_("--batch-size must be between 1 and %(max)d.") % {"max": BULK_MAX_ROWS})
        self.show_progress = options["verbosity"] > 0
        rows, errors = self.read(options["path"])
        batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]

        if not any(error.line == 1 for error in errors):  # with a readable header, every row is checked
            errors = sorted(
                [*errors, *self.check_rows(merchant, batches, total=len(rows))], key=lambda e: (e.line, e.column)
            )
        if errors:
            self.report(errors, options.get("errors"))
            failed_lines = len({error.line for error in errors})
            raise CommandError(_("%(count)d line(s) are not valid; nothing was imported.") % {"count": failed_lines})
        if options["dry_run"]:
            self.report([], options.get("errors"))
            self.stdout.write(
                self.style.SUCCESS(
                    _("%(count)d rows checked, no error (dry run: nothing written).") % {"count": len(rows)}
                )
            )
            return

        created = updated = unchanged = 0
        with self.progress(total=len(rows), desc="importing") as bar:
            for number, batch in enumerate(batches, start=1):
                try:
                    result = sku_bulk_upsert(merchant=merchant, rows=[row.values for row in batch])
                except QuaiError as exc:
                    # Only a concurrent change between the check and now can land here; earlier batches stay.
                    self.report(self.batch_errors(batch, exc), options.get("errors"))
                    raise CommandError(
                        _(
                            "Batch %(number)d of %(total)d was refused (%(code)s); "
                            "%(done)d rows of earlier batches were imported."
                        )
                        % {
                            "number": number,
                            "total": len(batches),
                            "code": exc.code,
                            "done": created + updated + unchanged,
                        }
                    ) from None
                created, updated, unchanged = (
                    created + result.created,
                    updated + result.updated,
                    unchanged + result.unchanged,
                )
                bar.update(len(batch))
        self.report([], options.get("errors"))
        self.stdout.write(
            self.style.SUCCESS(
                _("%(created)d SKUs created, %(updated)d updated, %(unchanged)d unchanged.")
                % {"created": created, "updated": updated, "unchanged": unchanged}
            )
        )

    def progress(self, *, total: int, desc: str) -> tqdm[Any]:
        # The real stream, not Django's OutputWrapper: tqdm redraws its line with "\r", which the wrapper would
        # break with newlines.
        stream = getattr(self.stderr, "_out", sys.stderr)
        return tqdm(total=total, desc=desc, unit="row", file=stream, disable=not self.show_progress)

    def read(self, path: Path) -> tuple[list[CsvRow], list[RowError]]:
        try:
            text = path.read_text(encoding="utf-8-sig")  # the BOM Excel writes is not part of the first column
        except FileNotFoundError:
            raise CommandError(_("No such file: %(path)s") % {"path": path}) from None
        except UnicodeDecodeError as exc:
            raise CommandError(
                _("%(path)s is not UTF-8 text (byte %(byte)d); save it as CSV UTF-8.")
                % {"path": path, "byte": exc.start}
            ) from None
        lines = text.splitlines(keepends=True)
        if not lines:
            raise CommandError(_("%(path)s is empty.") % {"path": path})
        try:
            dialect: Any = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.reader(lines, dialect)
        header = [column.strip() for column in next(reader)]
        errors = [
            RowError(1, column, "unknown_column", _("Unknown column '%(column)s'.") % {"column": column})
            for column in header
            if column not in SKU_ROW_FIELDS
        ]
        if "code" not in header:
            errors.append(RowError(1, "code", "missing_column", _("The file needs a 'code' column.")))
        duplicated = {column for column in header if header.count(column) > 1}
        errors.extend(
            RowError(1, column, "duplicate_column", _("Column '%(column)s' appears twice.") % {"column": column})
            for column in duplicated
        )
        if errors:
            return [], errors

        rows: list[CsvRow] = []
        line = 1
        try:
            for cells in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue  # blank lines, often at the end of exported files
                if len(cells) != len(header):
                    errors.append(
                        RowError(
                            line,
                            "",
                            "malformed_row",
                            _("This line has %(cells)d cells but the header has %(columns)d columns.")
                            % {"cells": len(cells), "columns": len(header)},
                            cells[header.index("code")].strip() if len(cells) > header.index("code") else "",
                        )
                    )
                    continue
                values = {column: cell for column, cell in zip(header, cells, strict=True) if cell.strip()}
                rows.append(CsvRow(line, values))
        except csv.Error as exc:
            errors.append(
                RowError(line + 1, "", "malformed_csv", _("The CSV cannot be read here: %(error)s.") % {"error": exc})
            )
        return rows, errors

    def check_rows(self, merchant: Merchant, batches: list[list[CsvRow]], *, total: int) -> list[RowError]:
        """Run every batch as the real import would, then roll everything back: what passes here will pass."""
        errors: list[RowError] = []
        with self.progress(total=total, desc="checking") as bar, transaction.atomic():
            for batch in batches:
                try:
                    sku_bulk_upsert(merchant=merchant, rows=[row.values for row in batch])
                except QuaiError as exc:
                    errors.extend(self.batch_errors(batch, exc))
                bar.update(len(batch))
            errors.extend(self.cross_batch_duplicates(batches))
            transaction.set_rollback(True)
        return sorted(errors, key=lambda error: (error.line, error.column))

    @staticmethod
    def cross_batch_duplicates(batches: list[list[CsvRow]]) -> list[RowError]:
        """A code repeated in two batches would make the second silently overwrite the first."""
        errors: list[RowError] = []
        first_line: dict[str, tuple[int, int]] = {}
        for number, batch in enumerate(batches):
            for row in batch:
                code = row.values.get("code", "").strip()
                if not code:
                    continue
                if code in first_line and first_line[code][0] != number:
                    errors.append(
                        RowError(
                            row.line,
                            "code",
                            "duplicate_sku_code",
                            _("The code '%(code)s' is already on line %(line)d.")
                            % {"code": code, "line": first_line[code][1]},
                            code,
                        )
                    )
                first_line.setdefault(code, (number, row.line))
        return errors

    @staticmethod
    def batch_errors(batch: list[CsvRow], exc: QuaiError) -> list[RowError]:
        if isinstance(exc, ValidationFailed) and exc.code == "bulk_rejected":
            return [
                RowError(batch[row["index"]].line, error["field"], error["code"], error["message"], row["code"])
                for row in exc.details["rows"]
                for error in row["errors"]
            ]
        return [RowError(batch[0].line, "", exc.code, exc.message)]

    def report(self, errors: list[RowError], path: Path | None) -> None:
        if path is not None:
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["line", "column", "code", "message", "sku_code"])
                for error in errors:
                    writer.writerow([error.line, error.column, error.code, error.message, error.sku_code])
        for error in errors[:50]:
            where = (
                _("line %(line)d, column %(column)s") % {"line": error.line, "column": error.column}
                if error.column
                else _("line %(line)d") % {"line": error.line}
            )
            self.stderr.write(f"{where}: [{error.code}] {error.message}")
        if len(errors) > 50:
            more = len(errors) - 50
            self.stderr.write(
                _("… and %(count)d more errors (see %(path)s).") % {"count": more, "path": path}
                if path
                else _("… and %(count)d more errors; use --errors to get them all.") % {"count": more}
            )
