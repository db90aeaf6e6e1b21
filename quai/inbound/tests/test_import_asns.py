"""``manage.py import_asns --merchant CODE file.csv``: all rows or nothing, with a per-row report."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from quai.inbound.models import Asn, AsnLine, HandlingUnit
from quai.inbound.tests.factories import sscc

pytestmark = pytest.mark.django_db

HEADER = "reference,supplier,expected_at,site,sku,quantity,lot,expiry,sscc,unit_kind\n"


@pytest.fixture(autouse=True)
def english():  # type: ignore[no-untyped-def]
    """The command speaks the installation's language; these tests read its English."""
    with translation.override("en"):
        yield


def _csv(tmp_path: Path, body: str, name: str = "asns.csv") -> str:
    path = tmp_path / name
    path.write_text(HEADER + body, encoding="utf-8")
    return str(path)


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_asns", *args, stdout=out, stderr=err, verbosity=0)
    return out.getvalue(), err.getvalue()


def test_rows_with_one_reference_make_one_asn(tmp_path, merchant, wh, shirt, cream, frozen_clock):
    path = _csv(
        tmp_path,
        f"PO-1,Textiles du Nord,2031-03-12,lyon,SHIRT-M,10,,,{sscc(1)},pallet\n"
        f"PO-1,Textiles du Nord,2031-03-12,lyon,CREAM-50,6,L9,2031-12-31,{sscc(1)},pallet\n"
        "PO-2,Autre,,,SHIRT-M,3,,,,\n",
    )
    out, _err = _run("--merchant", "acme", path)
    assert "Imported 2 ASN(s)" in out
    first = Asn.objects.get(reference="PO-1")
    assert first.supplier == "Textiles du Nord" and str(first.expected_at) == "2031-03-12"
    assert [(li.sku.code, li.expected_quantity, li.lot) for li in first.lines.order_by("id")] == [
        ("SHIRT-M", 10, ""),
        ("CREAM-50", 6, "L9"),
    ]
    assert HandlingUnit.objects.get().kind == "pallet"
    assert Asn.objects.get(reference="PO-2").lines.get().expected_quantity == 3


def test_any_bad_row_is_reported_by_number_and_nothing_is_written(tmp_path, merchant, wh, shirt, cream, frozen_clock):
    path = _csv(
        tmp_path,
        "PO-1,S,2031-03-12,lyon,SHIRT-M,10,,,,\n"  # row 2: fine
        "PO-2,S,2031-03-12,lyon,SHIRT-M,0,,,,\n"  # row 3: zero quantity
        "PO-2,S,2031-03-12,lyon,SHIRT-M,2,LOT,,,\n"  # row 4: lot on a SKU without lots
        "PO-3,S,2031-03-12,lyon,CREAM-50,2,L1,2020-01-01,,\n"  # row 5: expiry in the past
        "PO-4,S,2031-03-12,lyon,NOPE,2,,,,\n"  # row 6: unknown SKU
        "PO-5,S,tomorrow,lyon,SHIRT-M,two,,,,\n",  # row 7: bad date, bad quantity
    )
    with pytest.raises(CommandError) as caught:
        _run("--merchant", "acme", path)
    assert "Nothing was imported" in str(caught.value)
    assert not Asn.objects.exists() and not AsnLine.objects.exists()


def test_the_error_report_names_each_row(tmp_path, merchant, wh, shirt, cream, frozen_clock, capsys):
    path = _csv(
        tmp_path,
        "PO-2,S,2031-03-12,lyon,SHIRT-M,0,,,,\nPO-2,S,2031-03-12,lyon,SHIRT-M,2,LOT,,,\nPO-3,S,,lyon,CREAM-50,2,L1,2020-01-01,,\n",
    )
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("import_asns", "--merchant", "acme", path, stderr=err, verbosity=0)
    report = err.getvalue()
    assert "row 2: quantity:" in report
    assert "row 3: lot:" in report and "not lot-tracked" in report
    assert "row 4: expiry:" in report and "already past" in report


def test_an_unknown_merchant_or_a_missing_column_stops_the_import(tmp_path, merchant, wh):
    with pytest.raises(CommandError, match="No merchant"):
        _run("--merchant", "nobody", _csv(tmp_path, ""))
    bad = tmp_path / "bad.csv"
    bad.write_text("reference,sku\nPO-1,SHIRT-M\n", encoding="utf-8")
    with pytest.raises(CommandError, match="Missing column"):
        _run("--merchant", "acme", str(bad))


def test_semicolon_separated_files_from_a_spreadsheet_are_read(tmp_path, merchant, wh, shirt):
    path = tmp_path / "excel.csv"
    path.write_text("reference;sku;quantity\nPO-9;SHIRT-M;4\n", encoding="utf-8-sig")
    _run("--merchant", "acme", str(path))
    assert Asn.objects.get(reference="PO-9").lines.get().expected_quantity == 4
