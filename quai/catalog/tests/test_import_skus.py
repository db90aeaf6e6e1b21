from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from quai.catalog.models import Barcode, Sku
from quai.catalog.tests.factories import SkuFactory, valid_gtin13

pytestmark = pytest.mark.django_db

HEADER = "code,name,gtin,weight_g,lot_tracked,barcodes,country_of_origin\n"


def run(path: Path, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_skus", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_clean_file_is_imported_with_a_progress_bar(tmp_path, merchant):
    SkuFactory(merchant=merchant, code="OLD", name="Old", weight_g=100)
    path = tmp_path / "skus.csv"
    path.write_text(
        HEADER + f"TSHIRT-M,T-shirt M,{valid_gtin13(1)},180,oui,SUP-1|SUP-2,pt\n" + "OLD,,,250,,,\n" + "\n",
        encoding="utf-8",
    )
    out, err = run(path, "--merchant", merchant.code)
    assert "1 SKUs created, 1 updated, 0 unchanged" in out
    assert "importing" in err and "2/2" in err  # tqdm's bar, drawn on stderr
    new = Sku.objects.get(merchant=merchant, code="TSHIRT-M")
    assert (new.weight_g, new.lot_tracked, new.country_of_origin) == (180, True, "PT")
    assert Barcode.objects.filter(sku=new).count() == 3
    old = Sku.objects.get(merchant=merchant, code="OLD")
    assert (old.name, old.weight_g) == ("Old", 250)  # an empty cell leaves the field as it is


def test_a_semicolon_separated_excel_file_with_a_bom_is_read(tmp_path, merchant):
    path = tmp_path / "excel.csv"
    path.write_text("code;name;weight_g\nA;Article A;10\n", encoding="utf-8-sig")
    run(path, "--merchant", merchant.code)
    assert Sku.objects.get(code="A").weight_g == 10


def test_one_bad_row_imports_nothing_and_writes_an_error_report(tmp_path, merchant):
    path = tmp_path / "skus.csv"
    errors = tmp_path / "errors.csv"
    path.write_text(
        HEADER
        + "GOOD,Good,,100,,,\n"
        + "BADGTIN,Bad,9521234543214,100,,,\n"
        + "HEAVY,Heavy,,lots,maybe,,FRA\n"
        + "TOO,many,cells,1,no,,FR,extra\n"
        + "GOOD,Again,,1,,,\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="nothing was imported"):
        run(path, "--merchant", merchant.code, "--errors", str(errors))
    assert not Sku.objects.exists()
    rows = report_rows(errors)
    assert [(r["line"], r["column"], r["code"]) for r in rows] == [
        ("3", "gtin", "invalid_gtin"),
        ("4", "country_of_origin", "invalid_country"),
        ("4", "lot_tracked", "not_a_boolean"),
        ("4", "weight_g", "not_an_integer"),
        ("5", "", "malformed_row"),
        ("6", "code", "duplicate_sku_code"),
    ]
    assert "check digit should be 3" in rows[0]["message"]


def test_errors_are_found_in_every_batch_and_across_batches(tmp_path, merchant):
    path = tmp_path / "skus.csv"
    errors = tmp_path / "errors.csv"
    path.write_text(
        "code,name,gtin\n" + "A,A,\n" + "B,B,12345678\n" + "C,C,\n" + "A,A twice,\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError):
        run(path, "--merchant", merchant.code, "--errors", str(errors), "--batch-size", "2")
    assert [(r["line"], r["code"]) for r in report_rows(errors)] == [
        ("3", "invalid_gtin"),
        ("5", "duplicate_sku_code"),
    ]
    assert not Sku.objects.exists()


def test_a_file_with_an_unknown_column_is_refused_before_any_row(tmp_path, merchant):
    path = tmp_path / "skus.csv"
    path.write_text("code,name,colour\nA,A,red\n", encoding="utf-8")
    with pytest.raises(CommandError):
        run(path, "--merchant", merchant.code, "--errors", str(tmp_path / "errors.csv"))
    assert [(r["line"], r["column"], r["code"]) for r in report_rows(tmp_path / "errors.csv")] == [
        ("1", "colour", "unknown_column")
    ]
    assert not Sku.objects.exists()


def test_a_dry_run_checks_every_row_and_writes_nothing(tmp_path, merchant):
    path = tmp_path / "skus.csv"
    path.write_text("code,name\nA,A\nB,B\n", encoding="utf-8")
    out, _err = run(path, "--merchant", merchant.code, "--dry-run")
    assert "2 rows checked" in out
    assert not Sku.objects.exists()


def test_an_unknown_merchant_is_refused(tmp_path):
    path = tmp_path / "skus.csv"
    path.write_text("code,name\nA,A\n", encoding="utf-8")
    with pytest.raises(CommandError, match="No merchant"):
        run(path, "--merchant", "nobody")


def test_the_help_documents_the_csv_columns(capsys):
    with pytest.raises(SystemExit):
        call_command("import_skus", "--help")
    text = capsys.readouterr().out
    for column in ("code", "gtin", "barcodes", "weight_g", "hs_code", "country_of_origin", "status"):
        assert column in text


def test_a_csv_line_whose_code_is_another_skus_barcode_is_refused(tmp_path, merchant):
    SkuFactory(merchant=merchant, code="MUG-RED", gtin="09521234543213")
    path = tmp_path / "skus.csv"
    errors = tmp_path / "errors.csv"
    path.write_text(HEADER + "9521234543213,Clash,,100,,,\nNEW,New,,100,,mug-red,\n", encoding="utf-8")
    with pytest.raises(CommandError, match="nothing was imported"):
        run(path, "--merchant", merchant.code, "--errors", str(errors))
    assert [(r["line"], r["column"], r["code"]) for r in report_rows(errors)] == [
        ("2", "code", "code_taken"),
        ("3", "barcodes", "code_taken"),
    ]
    assert Sku.objects.count() == 1
