"""Orders imported from a CSV file, for merchants without a shop connector (management command and back office).

One row per order line; the rows of one (channel, external id) make one order, wherever they stand in the file.
Columns (one header row; comma, semicolon or tab separated; UTF-8, with or without the BOM Excel writes):

======================  ================================================================================
``external_id``         required: the shop's own order number
``channel``             where the order comes from (default ``csv``); idempotency is per (channel, external id)
``priority``            ``standard`` (default), ``express``, ``vip`` or ``marketplace``
``currency``            ISO 4217 code (EUR)
``shopper_name``        the recipient (required), ``shopper_email``, ``shopper_phone`` (stored in E.164)
``address_company``     then ``address_line1`` (required), ``address_line2``, ``postcode``, ``city`` (required),
                        ``region``, ``country`` (ISO 3166-1 alpha-2, required)
``carrier_service``     the carrier service asked for
``promise_id``          the promise the checkout showed, and/or its dates ``delivery_from``, ``delivery_by``
                        (YYYY-MM-DD)
``shipping_total``      shipping paid by the shopper (default 0)
``gift_message``        printed with the order; ``notes`` for the warehouse
``sku``                 required: the merchant's SKU code of this line
``quantity``            required: whole units, above zero
``unit_price``          price of one unit (default 0); ``19.90`` or ``19,90``
======================  ================================================================================

Order columns may be repeated on every line of an order or left empty after its first line; a value that differs
from the one given on an earlier line of the same order refuses the order (``order_field_differs``).

Every order is checked by ``order_validate`` and written by ``order_create``, the same services as the API, so an
order is refused here exactly when the API would refuse it. Each order is all or nothing and stands alone: a wrong
order does not stop the others. Imports are idempotent like any intake: an order already imported with the same
contents is reported "already there" (nothing written), one with other contents is refused with
``order_external_id_reused``. Every problem is reported with its row number in the file (the header is row 1), the
order's external id, the column, a stable code and a message.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.utils.translation import gettext as _

from quai.core.errors import NotFound, QuaiError, ValidationFailed
from quai.orders.services.intake import (
    OrderDraft,
    _existing_answer,
    order_create,
    order_validate,
)

DEFAULT_IMPORT_CHANNEL = "csv"
IMPORT_REQUIRED_COLUMNS = ("external_id", "sku", "quantity")
IMPORT_LINE_COLUMNS = ("sku", "quantity", "unit_price")
# Order columns → where ``order_validate`` reads them (and names them in its problems).
IMPORT_ORDER_COLUMNS: dict[str, str] = {
    "external_id": "external_id",
    "channel": "channel",
    "priority": "priority",
    "currency": "currency",
    "shopper_name": "shopper.name",
    "shopper_email": "shopper.email",
    "shopper_phone": "shopper.phone",
    "address_company": "shipping_address.company",
    "address_line1": "shipping_address.line1",
    "address_line2": "shipping_address.line2",
    "postcode": "shipping_address.postcode",
    "city": "shipping_address.city",
    "region": "shipping_address.region",
    "country": "shipping_address.country",
    "carrier_service": "carrier_service",
    "promise_id": "promise.id",
    "delivery_from": "promise.delivery_from",
    "delivery_by": "promise.delivery_by",
    "shipping_total": "shipping_total",
    "gift_message": "gift_message",
    "notes": "notes",
}
IMPORT_COLUMNS = (*IMPORT_ORDER_COLUMNS, *IMPORT_LINE_COLUMNS)
_COLUMN_OF_FIELD = {path: column for column, path in IMPORT_ORDER_COLUMNS.items()}
REPORT_HEADER = ("row", "external_id", "field", "code", "message")

OutcomeStatus = Literal["created", "already_there", "valid", "refused"]


@dataclass(frozen=True)
class OrderImportError:
    """One problem of the report: the row in the file (header = 1), the order, the column, a code, a message."""

    row: int
    external_id: str
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class OrderImportOutcome:
    """What became of one order of the file: ``created``, ``already_there``, ``valid`` (dry run) or ``refused``."""

    channel: str
    external_id: str
    rows: tuple[int, ...]
    status: OutcomeStatus
    order_id: int | None = None


@dataclass
class OrderImportReport:
    dry_run: bool
    rows: int = 0
    outcomes: list[OrderImportOutcome] = field(default_factory=list)
    errors: list[OrderImportError] = field(default_factory=list)

    def count(self, status: OutcomeStatus) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def refused_rows(self) -> int:
        return len({error.row for error in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Row:
    number: int
    values: dict[str, str]
    problems: list[OrderImportError] = field(default_factory=list)


@dataclass
class _Group:
    channel: str
    external_id: str
    rows: list[_Row] = field(default_factory=list)


def order_csv_text(raw: bytes) -> str:
    """The text of an uploaded file, or ``ValidationFailed`` ``file_not_utf8`` (like the SKU and ASN imports: a
    guessed encoding would silently garble names and addresses, so the merchant is asked for "CSV UTF-8")."""
    try:
        return raw.decode("utf-8-sig")  # the BOM Excel writes is not part of the first column
    except UnicodeDecodeError as exc:
        raise ValidationFailed(
            _("The file is not UTF-8 text (byte %(byte)d); save it as CSV UTF-8.") % {"byte": exc.start},
            code="file_not_utf8",
            details={"byte": exc.start},
        ) from None


def order_import_errors_csv(errors: Iterable[OrderImportError]) -> str:
    """The error report as CSV text (row, external_id, field, code, message), for a file or a download."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(REPORT_HEADER)
    for error in errors:
        writer.writerow([error.row, error.external_id, error.field, error.code, error.message])
    return out.getvalue()


def _file_error(code: str, message: str, *, column: str = "") -> OrderImportError:
    return OrderImportError(row=1, external_id="", field=column, code=code, message=message)


def _read_rows(text: str) -> tuple[list[_Row], list[OrderImportError]]:
    """The rows of the file with their row numbers, or the file's own problems (header, CSV syntax)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        return [], [_file_error("empty_file", _("The file is empty."))]
    first_line = text.splitlines()[0]
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    # newline="" keeps a line break quoted inside a cell (a multi-line note) inside its cell.
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header = [name.strip().lower() for name in next(reader)]
    errors = [
        _file_error("unknown_column", _("Unknown column '%(column)s'.") % {"column": name}, column=name)
        for name in header
        if name and name not in IMPORT_COLUMNS
    ]
    errors.extend(
        _file_error("duplicate_column", _("Column '%(column)s' appears twice.") % {"column": name}, column=name)
        for name in sorted({name for name in header if name and header.count(name) > 1})
    )
    missing = [name for name in IMPORT_REQUIRED_COLUMNS if name not in header]
    if missing:
        errors.append(
            _file_error(
                "missing_columns",
                _("Missing column(s): %(columns)s.") % {"columns": ", ".join(missing)},
                column=", ".join(missing),
            )
        )
    if errors:
        return [], errors

    rows: list[_Row] = []
    ended = reader.line_num
    try:
        for cells in reader:
            number, ended = ended + 1, reader.line_num  # a quoted line break makes a row span several lines
            if not any(cell.strip() for cell in cells):
                continue  # blank lines, often at the end of exported files
            values = {name: cell.strip() for name, cell in zip(header, cells, strict=False) if name}
            row = _Row(number, values)
            if len(cells) > len(header):
                row.problems.append(
                    OrderImportError(
                        number,
                        values.get("external_id", ""),
                        "",
                        "malformed_row",
                        _("This row has %(cells)d cells but the header has %(columns)d columns.")
                        % {"cells": len(cells), "columns": len(header)},
                    )
                )
            rows.append(row)
    except csv.Error as exc:
        errors.append(
            OrderImportError(
                ended + 1, "", "", "malformed_csv", _("The CSV cannot be read here: %(error)s.") % {"error": exc}
            )
        )
    return rows, errors


def _groups(rows: list[_Row]) -> tuple[list[_Group], list[OrderImportError]]:
    """Rows gathered into orders by (channel, external id), in the order each first appears."""
    groups: dict[tuple[str, str], _Group] = {}
    errors: list[OrderImportError] = []
    for row in rows:
        external_id = row.values.get("external_id", "")
        if not external_id:
            errors.append(OrderImportError(row.number, "", "external_id", "external_id_required", _("Required.")))
            errors.extend(row.problems)
            continue
        channel = row.values.get("channel", "") or DEFAULT_IMPORT_CHANNEL
        group = groups.setdefault((channel, external_id), _Group(channel, external_id))
        group.rows.append(row)
    return list(groups.values()), errors


def _money(value: str) -> str:
    # A French spreadsheet writes 19,90: read it as 19.90 (a thousands separator is not accepted either way).
    return value.replace(",", ".") if "," in value and "." not in value else value


def _order_data(group: _Group) -> tuple[dict[str, Any], dict[str, int], list[OrderImportError]]:
    """The order as ``order_validate`` reads it, the row each order value came from, and the rows' own problems."""
    problems: list[OrderImportError] = [problem for row in group.rows for problem in row.problems]
    values: dict[str, str] = {}
    source: dict[str, int] = {}
    for row in group.rows:
        for column in IMPORT_ORDER_COLUMNS:
            value = row.values.get(column, "")
            if not value:
                continue
            if column not in values:
                values[column], source[column] = value, row.number
            elif value != values[column]:
                problems.append(
                    OrderImportError(
                        row.number,
                        group.external_id,
                        column,
                        "order_field_differs",
                        _("'%(value)s' differs from '%(first)s' on row %(row)d of the same order.")
                        % {"value": value, "first": values[column], "row": source[column]},
                    )
                )
    lines: list[dict[str, Any]] = []
    for row in group.rows:
        raw_quantity = row.values.get("quantity", "")
        try:
            quantity = int(raw_quantity)
        except ValueError:
            problems.append(
                OrderImportError(
                    row.number,
                    group.external_id,
                    "quantity",
                    "invalid_quantity",
                    _("Must be a whole number of units greater than zero (got %(value)s).") % {"value": raw_quantity},
                )
            )
            quantity = 1  # a stand-in: this row's own problem refuses the order, the rest is still checked
        lines.append(
            {
                "sku": row.values.get("sku", ""),
                "quantity": quantity,
                "unit_price": _money(row.values.get("unit_price", "") or "0"),
            }
        )
    data: dict[str, Any] = {
        "channel": group.channel,
        "external_id": group.external_id,
        "priority": values.get("priority", "").lower(),
        "currency": values.get("currency", ""),
        "shopper": {},
        "shipping_address": {},
        "promise": {},
        "carrier_service": values.get("carrier_service", ""),
        "gift_message": values.get("gift_message", ""),
        "notes": values.get("notes", ""),
        "shipping_total": _money(values.get("shipping_total", "") or "0"),
        "lines": lines,
    }
    for column, path in IMPORT_ORDER_COLUMNS.items():
        if "." in path:
            part, key = path.split(".", 1)
            data[part][key] = values.get(column, "")
    return data, source, problems


def _validation_errors(
    group: _Group, exc: QuaiError, source: Mapping[str, int], data: Mapping[str, Any]
) -> list[OrderImportError]:
    """``order_validate``'s problems put back on the rows and columns of the file they came from."""
    first = group.rows[0].number
    if isinstance(exc, NotFound) and exc.code == "sku_not_found":
        missing = {str(code).lower() for code in exc.details.get("skus", [])}
        return [
            OrderImportError(
                row.number,
                group.external_id,
                "sku",
                "sku_not_found",
                _("SKU '%(sku)s' not found.") % {"sku": line["sku"]},
            )
            for row, line in zip(group.rows, data["lines"], strict=True)
            if str(line["sku"]).lower() in missing
        ]
    fields = exc.details.get("fields") if isinstance(exc, ValidationFailed) else None
    if not fields:
        return [OrderImportError(first, group.external_id, "", exc.code, exc.message)]
    errors = []
    for problem in fields:
        path = str(problem.get("field", ""))
        row, column = first, _COLUMN_OF_FIELD.get(path, path)
        if path.startswith("lines."):
            index_text, _sep, column = path.removeprefix("lines.").partition(".")
            if index_text.isdecimal() and int(index_text) < len(group.rows):
                row = group.rows[int(index_text)].number
            column = column or "sku"
        elif path == "lines":
            column = "sku"
        else:
            row = source.get(column, first)
        # One problem keeps its own code (postcode_invalid, city_required…); several are each invalid_input,
        # as the API answers them, each with its own message.
        errors.append(OrderImportError(row, group.external_id, column, exc.code, str(problem.get("message", ""))))
    return errors


def order_import(
    *,
    merchant: Any,
    text: str | bytes,
    dry_run: bool = False,
    progress: Callable[[list[Any]], Iterable[Any]] | None = None,
    actor: Any = None,
) -> OrderImportReport:
    """Import the orders of a CSV file (columns in this module's docstring) for ``merchant``.

    Each order is validated and written on its own (``order_create``: one transaction each), so a refused order
    leaves the others imported; ``dry_run`` checks everything, including whether an order is already there, and
    writes nothing. ``progress`` wraps the list of orders (``tqdm``) to show how far the import is. Returns the
    report: what became of every order and every problem with its row; it raises only for a file that is not
    UTF-8 (``file_not_utf8``).
    """
    report = OrderImportReport(dry_run=dry_run)
    rows, file_errors = _read_rows(order_csv_text(text) if isinstance(text, bytes) else text)
    report.rows = len(rows)
    if file_errors:
        # A header that cannot be read, or CSV syntax broken part-way (an unclosed quote): which rows belong to
        # which order is no longer certain, so nothing is imported rather than an order without some of its lines.
        report.errors = file_errors
        return report
    groups, errors = _groups(rows)
    for group in (progress or (lambda items: items))(groups):
        data, source, problems = _order_data(group)
        draft: OrderDraft | None = None
        try:
            draft = order_validate(merchant=merchant, data=data)
        except QuaiError as exc:
            problems.extend(_validation_errors(group, exc, source, data))
        outcome = _order_write(group, draft, problems, dry_run=dry_run, merchant=merchant, actor=actor)
        errors.extend(problems)
        report.outcomes.append(outcome)
    report.errors = sorted(errors, key=lambda error: (error.row, error.field))
    return report


def _order_write(
    group: _Group,
    draft: OrderDraft | None,
    problems: list[OrderImportError],
    *,
    dry_run: bool,
    merchant: Any,
    actor: Any,
) -> OrderImportOutcome:
    numbers = tuple(row.number for row in group.rows)

    def outcome(status: OutcomeStatus, order_id: int | None = None) -> OrderImportOutcome:
        return OrderImportOutcome(group.channel, group.external_id, numbers, status, order_id)

    if draft is None or problems:
        return outcome("refused")
    try:
        if dry_run:
            existing = _existing_answer(draft)  # reads only; 409 when the id was used by other contents
            return outcome("already_there", existing.order.pk) if existing else outcome("valid")
        created = order_create(merchant=merchant, data=draft, actor=actor)
    except QuaiError as exc:
        field_name = "external_id" if exc.code == "order_external_id_reused" else ""
        problems.append(OrderImportError(numbers[0], group.external_id, field_name, exc.code, exc.message))
        return outcome("refused")
    return outcome("created" if created.created else "already_there", created.order.pk)
