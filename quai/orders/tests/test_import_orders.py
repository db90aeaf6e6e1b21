"""CSV import of orders: the service (grouping, per-row errors, idempotent replay, dry run) and the command."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import translation

from quai.core.errors import ValidationFailed
from quai.orders import services
from quai.orders.models import Order, OrderLine, OrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english_messages() -> Iterator[None]:
    # Quai speaks French by default; these tests read the English source messages (one test reads the French).
    with translation.override("en"):
        yield


HEADER = (
    "external_id,channel,currency,shopper_name,shopper_phone,address_line1,postcode,city,country,"
    "sku,quantity,unit_price"
)


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


CAMILLE = "EUR,Camille Martin,06 12 34 56 78,12 rue de la Roquette,75011,Paris,FR"


def test_a_valid_file_creates_one_order_per_external_id_with_its_lines(merchant, shirt, mug, stock):
    stock(shirt, 10)
    stock(mug, 10)
    text = csv_text(
        f"W-1,,{CAMILLE},SHIRT-M,2,19.90",
        f"W-2,,{CAMILLE},MUG,1,8.50",
        "W-1,,,,,,,,,MUG,3,8.50",  # another line of W-1, order columns left empty
    )

    report = services.order_import(merchant=merchant, text=text)

    assert report.ok and report.rows == 3
    assert [(o.external_id, o.status, o.rows) for o in report.outcomes] == [
        ("W-1", "created", (2, 4)),
        ("W-2", "created", (3,)),
    ]
    order = Order.objects.get(merchant=merchant, external_id="W-1")
    assert order.channel == "csv"
    assert order.shopper_phone == "+33612345678"
    assert order.status == OrderStatus.ALLOCATED
    assert [(line.sku_code, line.quantity) for line in order.lines.order_by("position")] == [("SHIRT-M", 2), ("MUG", 3)]
    assert str(order.lines_total) == "65.30"


def test_an_excel_file_with_a_bom_semicolons_and_decimal_commas_is_read(merchant, shirt):
    text = "external_id;currency;shopper_name;address_line1;postcode;city;country;sku;quantity;unit_price\n"
    text += "X-1;EUR;Zoé Lefèvre;3 place Saint-Nicolas;20200;Bastia;FR;SHIRT-M;1;19,90\n"

    report = services.order_import(merchant=merchant, text=text.encode("utf-8-sig"))

    assert report.ok, report.errors
    order = Order.objects.get(external_id="X-1")
    assert (order.shopper_name, order.postcode, str(order.lines_total)) == ("Zoé Lefèvre", "20200", "19.90")


def test_a_file_that_is_not_utf8_is_refused_with_its_own_code(merchant):
    with pytest.raises(ValidationFailed) as caught:
        services.order_import(merchant=merchant, text="external_id;sku\nÉ-1;A\n".encode("latin-1"))
    assert caught.value.code == "file_not_utf8"


def test_each_problem_is_reported_on_its_row_and_column_and_only_its_order_is_refused(merchant, shirt):
    text = csv_text(
        f"OK-1,,{CAMILLE},SHIRT-M,1,19.90",
        "BAD-1,,EUR,Camille,,1 rue X,7501,Paris,FR,SHIRT-M,1,19.90",  # postcode off the French format
        f"BAD-2,,{CAMILLE},SHIRT-M,deux,19.90",
        f"BAD-2,,{CAMILLE},NOPE,1,19.90",
        f"BAD-3,,{CAMILLE},SHIRT-M,0,19.90",
        f",,{CAMILLE},SHIRT-M,1,19.90",
        f"BAD-4,,{CAMILLE},SHIRT-M,1,1",
        "BAD-4,,EUR,Dominique,,,,,,SHIRT-M,1,1",  # another shopper on a later line of the same order
    )

    report = services.order_import(merchant=merchant, text=text)

    found = {(e.row, e.external_id, e.field, e.code) for e in report.errors}
    assert found == {
        (3, "BAD-1", "postcode", "postcode_invalid"),
        (4, "BAD-2", "quantity", "invalid_quantity"),
        (5, "BAD-2", "sku", "sku_not_found"),  # every problem of an order at once, not the first only
        (6, "BAD-3", "quantity", "invalid_quantity"),
        (7, "", "external_id", "external_id_required"),
        (9, "BAD-4", "shopper_name", "order_field_differs"),
    }
    assert {o.external_id: o.status for o in report.outcomes} == {
        "OK-1": "created",
        "BAD-1": "refused",
        "BAD-2": "refused",
        "BAD-3": "refused",
        "BAD-4": "refused",
    }
    assert list(Order.objects.values_list("external_id", flat=True)) == ["OK-1"]
    assert OrderLine.objects.count() == 1  # nothing of a refused order was written


def test_an_unknown_sku_is_reported_on_every_row_that_names_it(merchant, shirt):
    text = csv_text(f"S-1,,{CAMILLE},SHIRT-M,1,1", f"S-1,,{CAMILLE},GHOST,1,1", f"S-1,,{CAMILLE},ghost,2,1")

    report = services.order_import(merchant=merchant, text=text)

    assert [(e.row, e.field, e.code, e.message) for e in report.errors] == [
        (3, "sku", "sku_not_found", "SKU 'GHOST' not found."),
        (4, "sku", "sku_not_found", "SKU 'ghost' not found."),
    ]
    assert not Order.objects.exists()


def test_another_merchants_sku_is_not_found(merchant, other_merchant, shirt):
    report = services.order_import(merchant=other_merchant, text=csv_text(f"S-1,,{CAMILLE},SHIRT-M,1,1"))
    assert [e.code for e in report.errors] == ["sku_not_found"]
    assert not Order.objects.exists()


def test_a_header_with_an_unknown_or_missing_column_imports_nothing(merchant, shirt):
    report = services.order_import(merchant=merchant, text="external_id,sku,qty\nA,SHIRT-M,1\n")
    assert {(e.row, e.code, e.field) for e in report.errors} == {
        (1, "unknown_column", "qty"),
        (1, "missing_columns", "quantity"),
    }
    assert report.outcomes == [] and not Order.objects.exists()


def test_an_empty_file_is_reported(merchant):
    report = services.order_import(merchant=merchant, text="\ufeff\n")
    assert [e.code for e in report.errors] == ["empty_file"]


def test_a_row_with_more_cells_than_the_header_refuses_its_order(merchant, shirt):
    report = services.order_import(merchant=merchant, text=csv_text(f"M-1,,{CAMILLE},SHIRT-M,1,1,surplus"))
    assert [(e.row, e.external_id, e.code) for e in report.errors] == [(2, "M-1", "malformed_row")]
    assert not Order.objects.exists()


def test_a_note_with_a_line_break_keeps_the_row_numbers_of_the_file(merchant, shirt):
    header = HEADER + ",notes"
    text = csv_text(
        f'N-1,,{CAMILLE},SHIRT-M,1,1,"leave at the door\nplease"', f"N-2,,{CAMILLE},SHIRT-M,0,1,", header=header
    )
    report = services.order_import(merchant=merchant, text=text)
    assert Order.objects.get(external_id="N-1").notes == "leave at the door\nplease"
    assert [(e.row, e.code) for e in report.errors] == [(4, "invalid_quantity")]


def test_importing_the_same_file_again_changes_nothing_and_reports_already_there(merchant, shirt, stock):
    stock(shirt, 5)
    text = csv_text(f"R-1,,{CAMILLE},SHIRT-M,2,19.90")
    first = services.order_import(merchant=merchant, text=text)

    again = services.order_import(merchant=merchant, text=text)

    assert again.ok
    assert [(o.status, o.order_id) for o in again.outcomes] == [("already_there", first.outcomes[0].order_id)]
    assert Order.objects.count() == 1 and OrderLine.objects.get().reserved_quantity == 2


def test_an_external_id_reused_with_other_contents_is_refused_with_the_409_reason(merchant, shirt):
    services.order_import(merchant=merchant, text=csv_text(f"R-1,,{CAMILLE},SHIRT-M,2,19.90"))

    report = services.order_import(merchant=merchant, text=csv_text(f"R-1,,{CAMILLE},SHIRT-M,3,19.90"))

    assert [(e.row, e.field, e.code) for e in report.errors] == [(2, "external_id", "order_external_id_reused")]
    assert report.outcomes[0].status == "refused"
    assert OrderLine.objects.get().quantity == 2


def test_a_dry_run_checks_everything_and_writes_nothing(merchant, shirt):
    services.order_import(merchant=merchant, text=csv_text(f"D-0,,{CAMILLE},SHIRT-M,1,1"))
    text = csv_text(
        f"D-0,,{CAMILLE},SHIRT-M,1,1",  # already there
        f"D-1,,{CAMILLE},SHIRT-M,1,1",
        f"D-2,,{CAMILLE},SHIRT-M,0,1",
    )

    report = services.order_import(merchant=merchant, text=text, dry_run=True)

    assert [(o.external_id, o.status) for o in report.outcomes] == [
        ("D-0", "already_there"),
        ("D-1", "valid"),
        ("D-2", "refused"),
    ]
    assert [e.code for e in report.errors] == ["invalid_quantity"]
    assert list(Order.objects.values_list("external_id", flat=True)) == ["D-0"]


def test_the_error_report_is_csv_with_one_line_per_problem():
    errors = [services.csv_import.OrderImportError(3, "A-1", "postcode", "postcode_invalid", "Not, a postcode")]
    rows = list(csv.reader(StringIO(services.order_import_errors_csv(errors))))
    assert rows == [
        ["row", "external_id", "field", "code", "message"],
        ["3", "A-1", "postcode", "postcode_invalid", "Not, a postcode"],
    ]


# The command.


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_orders", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_imports_a_file_with_a_progress_bar(tmp_path, merchant, shirt):
    path = tmp_path / "orders.csv"
    path.write_text(csv_text(f"C-1,,{CAMILLE},SHIRT-M,1,1", f"C-2,,{CAMILLE},SHIRT-M,1,1"), encoding="utf-8")

    out, err = run(path, "--merchant", merchant.code)

    assert "2 order(s) created, 0 already there, 0 refused." in out
    assert "orders" in err and "2/2" in err  # tqdm's bar, drawn on stderr
    assert Order.objects.count() == 2


def test_the_command_fails_when_a_row_is_refused_and_writes_the_error_csv(tmp_path, merchant, shirt):
    path, errors = tmp_path / "orders.csv", tmp_path / "errors.csv"
    path.write_text(csv_text(f"C-1,,{CAMILLE},SHIRT-M,1,1", f"C-2,,{CAMILLE},NOPE,1,1"), encoding="utf-8")

    with pytest.raises(CommandError, match="1 row"):
        run(path, "--merchant", merchant.code, "--errors", str(errors))

    with errors.open(encoding="utf-8") as handle:
        assert [(r["row"], r["external_id"], r["field"], r["code"]) for r in csv.DictReader(handle)] == [
            ("3", "C-2", "sku", "sku_not_found")
        ]
    assert list(Order.objects.values_list("external_id", flat=True)) == ["C-1"]


def test_the_command_exits_with_a_non_zero_status_from_the_shell(tmp_path, merchant, shirt):
    path = tmp_path / "orders.csv"
    path.write_text(csv_text(f"C-1,,{CAMILLE},NOPE,1,1"), encoding="utf-8")
    utility = ManagementUtility(["manage.py", "import_orders", str(path), "--merchant", merchant.code, "-v", "0"])
    with pytest.raises(SystemExit) as caught:
        utility.execute()
    assert caught.value.code == 1


def test_a_dry_run_of_the_command_writes_nothing_and_an_empty_error_csv(tmp_path, merchant, shirt):
    path, errors = tmp_path / "orders.csv", tmp_path / "errors.csv"
    path.write_text(csv_text(f"C-1,,{CAMILLE},SHIRT-M,1,1"), encoding="utf-8")

    out, _err = run(path, "--merchant", merchant.code, "--dry-run", "--errors", str(errors))

    assert "1 order(s) would be created" in out
    assert errors.read_text(encoding="utf-8").splitlines() == ["row,external_id,field,code,message"]
    assert not Order.objects.exists()


def test_the_command_names_an_unknown_merchant_and_a_missing_file(tmp_path, merchant):
    with pytest.raises(CommandError, match="No merchant"):
        run(tmp_path / "x.csv", "--merchant", "nobody")
    with pytest.raises(CommandError, match="No such file"):
        run(tmp_path / "x.csv", "--merchant", merchant.code)


def test_the_command_refuses_a_latin1_file_and_says_how_to_save_it(tmp_path, merchant):
    path = tmp_path / "orders.csv"
    path.write_bytes("external_id;sku;quantity\nÉ-1;A;1\n".encode("latin-1"))
    with pytest.raises(CommandError, match="CSV UTF-8"):
        run(path, "--merchant", merchant.code)


def test_the_report_speaks_french_to_a_french_merchant(merchant, shirt):
    with translation.override("fr"):
        report = services.order_import(merchant=merchant, text=csv_text(f"F-1,,{CAMILLE},SHIRT-M,zéro,1"))
    assert report.errors[0].message == "Doit être un nombre entier d'unités supérieur à zéro (reçu zéro)."


# The back office.


@pytest.fixture
def desk(staff_user):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(staff_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_the_order_list_links_to_the_csv_import(desk):
    assert "/admin/orders/order/import/" in desk.get("/admin/orders/order/").content.decode()


def test_the_back_office_imports_a_csv_file_of_orders(desk, merchant, shirt):
    upload = SimpleUploadedFile("orders.csv", csv_text(f"B-1,,{CAMILLE},SHIRT-M,1,1").encode("utf-8-sig"))
    response = desk.post("/admin/orders/order/import/", {"merchant": merchant.pk, "file": upload})
    assert response.status_code == 302
    assert Order.objects.get(external_id="B-1").channel == "csv"


def test_the_back_office_lists_refused_rows_and_offers_the_error_report(desk, merchant, shirt):
    upload = SimpleUploadedFile(
        "orders.csv", csv_text(f"B-1,,{CAMILLE},SHIRT-M,1,1", f"B-2,,{CAMILLE},NOPE,1,1").encode()
    )
    response = desk.post("/admin/orders/order/import/", {"merchant": merchant.pk, "file": upload})
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 order(s) created, 0 already there, 1 refused." in html
    assert "sku_not_found" in html and "order-import-errors.csv" in html
    assert list(Order.objects.values_list("external_id", flat=True)) == ["B-1"]


def test_a_check_only_upload_in_the_back_office_writes_nothing(desk, merchant, shirt):
    upload = SimpleUploadedFile("orders.csv", csv_text(f"B-1,,{CAMILLE},SHIRT-M,1,1").encode())
    response = desk.post("/admin/orders/order/import/", {"merchant": merchant.pk, "file": upload, "dry_run": "on"})
    assert response.status_code == 200
    assert "1 order(s) would be created" in response.content.decode()
    assert not Order.objects.exists()


def test_a_latin1_upload_in_the_back_office_is_refused_with_a_message(desk, merchant):
    upload = SimpleUploadedFile("orders.csv", "external_id;sku;quantity\nÉ-1;A;1\n".encode("latin-1"))
    response = desk.post("/admin/orders/order/import/", {"merchant": merchant.pk, "file": upload})
    assert "CSV UTF-8" in response.content.decode()
    assert not Order.objects.exists()
