"""Import a merchant's orders from a CSV file: ``manage.py import_orders --merchant CODE orders.csv``."""

from __future__ import annotations

import sys
from argparse import RawDescriptionHelpFormatter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from tqdm import tqdm

from quai.core.errors import QuaiError
from quai.orders import services
from quai.tenants.models import Merchant

HELP = """Import orders for one merchant from a CSV file (UTF-8, comma or semicolon separated, one header line).

One row per order line; the rows with the same external_id (and channel) make one order. Columns:
  external_id        required: the shop's own order number
  channel            where the order comes from (default "csv"); an order is known by (channel, external_id)
  priority           standard (default), express, vip or marketplace
  currency           ISO 4217 code (EUR)
  shopper_name       the recipient (required); shopper_email, shopper_phone (any usual form)
  address_company, address_line1 (required), address_line2, postcode, city (required), region,
  country            ISO 3166-1 two-letter code (FR, BE, GP...), required
  carrier_service    the carrier service asked for
  promise_id, delivery_from, delivery_by   the promise the checkout showed (dates YYYY-MM-DD)
  shipping_total     shipping paid by the shopper (default 0)
  gift_message, notes
  sku                required: the merchant's SKU code of the line
  quantity           required: whole units, above zero
  unit_price         price of one unit (default 0); 19.90 or 19,90

Order columns may be repeated on every line of an order or left empty after its first line. Each order is
checked like an order sent to the API and written on its own, all or nothing: a wrong order does not stop the
others. An order already imported with the same contents is reported "already there"; with other contents it is
refused (order_external_id_reused). Problems are listed (row, external id, column, code, message) on the screen
and in --errors; the command ends with a non-zero status when any row was refused.
"""


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter  # keep the column list's line breaks in --help
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the CSV file to import")
        parser.add_argument("--merchant", required=True, help="the merchant's code")
        parser.add_argument("--errors", type=Path, help="write the error report (CSV) to this file")
        parser.add_argument("--dry-run", action="store_true", help="check every order, write nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        merchant = Merchant.objects.filter(code=options["merchant"]).first()
        if merchant is None:
            raise CommandError(_("No merchant with code '%(code)s'.") % {"code": options["merchant"]})
        path: Path = options["path"]
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise CommandError(_("No such file: %(path)s") % {"path": path}) from None
        # The real stream, not Django's OutputWrapper: tqdm redraws its line with "\r", which the wrapper would
        # break with newlines.
        stream = getattr(self.stderr, "_out", sys.stderr)
        quiet = options["verbosity"] < 1
        try:
            report = services.order_import(
                merchant=merchant,
                text=raw,
                dry_run=options["dry_run"],
                progress=lambda orders: tqdm(orders, desc="orders", unit="order", file=stream, disable=quiet),
            )
        except QuaiError as exc:  # a file that is not UTF-8
            raise CommandError(f"{path}: {exc.message}") from None

        errors_path: Path | None = options.get("errors")
        if errors_path is not None:
            errors_path.write_text(services.order_import_errors_csv(report.errors), encoding="utf-8")
        for error in report.errors[:50]:
            where = _("row %(row)d") % {"row": error.row}
            if error.external_id:
                where += f" ({error.external_id})"
            if error.field:
                where += f", {error.field}"
            self.stderr.write(f"{where}: [{error.code}] {error.message}")
        if len(report.errors) > 50:
            more = len(report.errors) - 50
            self.stderr.write(
                _("… and %(count)d more errors (see %(path)s).") % {"count": more, "path": errors_path}
                if errors_path
                else _("… and %(count)d more errors; use --errors to get them all.") % {"count": more}
            )

        counts = {
            "created": report.count("created"),
            "valid": report.count("valid"),
            "already": report.count("already_there"),
            "refused": report.count("refused"),
        }
        if report.dry_run:
            summary = _(
                "Dry run, nothing written: %(valid)d order(s) would be created, %(already)d already there, "
                "%(refused)d refused."
            )
        else:
            summary = _("%(created)d order(s) created, %(already)d already there, %(refused)d refused.")
        if report.errors:
            self.stdout.write(summary % counts)
            raise CommandError(
                _("%(rows)d row(s) refused.") % {"rows": report.refused_rows}
                if not report.dry_run
                else _("%(rows)d row(s) would be refused.") % {"rows": report.refused_rows}
            )
        self.stdout.write(self.style.SUCCESS(summary % counts))
