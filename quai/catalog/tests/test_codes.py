"""One code, one SKU within a merchant, whatever kind of code it is and whatever its case (issue 11, item 8)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from quai.catalog import selectors
from quai.catalog.models import Barcode, Sku
from quai.catalog.services import barcode_add, sku_bulk_upsert, sku_create, sku_update
from quai.catalog.tests.factories import BarcodeFactory, SkuFactory
from quai.core.errors import Conflict, NotFound, ValidationFailed

pytestmark = pytest.mark.django_db


def test_a_barcode_equal_to_another_skus_code_is_refused_so_a_scan_of_that_code_finds_its_own_sku(merchant):
    mug = SkuFactory(merchant=merchant, code="MUG-RED")
    cup = SkuFactory(merchant=merchant, code="CUP-BLUE")
    with pytest.raises(Conflict) as excinfo:
        barcode_add(sku=cup, code="MUG-RED")
    assert (excinfo.value.code, excinfo.value.details["sku_id"]) == ("code_taken", mug.pk)
    assert "'MUG-RED'" in excinfo.value.message
    assert selectors.scan_resolve(merchant=merchant, code="MUG-RED").sku == mug


def test_a_sku_may_answer_to_its_own_code_as_a_barcode(merchant):
    mug = SkuFactory(merchant=merchant, code="MUG-RED")
    barcode_add(sku=mug, code="mug-red")
    assert selectors.scan_resolve(merchant=merchant, code="MUG-RED").sku == mug


def test_a_new_sku_whose_code_is_another_skus_barcode_is_refused(merchant):
    holder = BarcodeFactory(sku=SkuFactory(merchant=merchant), code="SUP-9").sku
    with pytest.raises(Conflict) as excinfo:
        sku_create(merchant=merchant, code="sup-9", name="Clash")
    assert excinfo.value.code == "code_taken"
    assert holder.code in excinfo.value.message
    assert excinfo.value.details["errors"][0]["sku_id"] == holder.pk


def test_a_sku_code_cannot_become_another_skus_gtin_in_any_of_its_forms(merchant):
    holder = SkuFactory(merchant=merchant, gtin="09521234543213")
    sku = SkuFactory(merchant=merchant, code="PLAIN")
    with pytest.raises(Conflict) as excinfo:
        sku_update(sku=sku, version=sku.version, data={"code": "9521234543213"})
    assert excinfo.value.code == "code_taken"
    assert holder.code in excinfo.value.message
    assert Sku.objects.get(pk=sku.pk).code == "PLAIN"


def test_a_new_gtin_equal_to_another_skus_code_is_refused(merchant):
    SkuFactory(merchant=merchant, code="9521234543213", gtin="")
    with pytest.raises(Conflict) as excinfo:
        sku_create(merchant=merchant, code="NEW", name="New", gtin="09521234543213")
    assert (excinfo.value.code, excinfo.value.details["field"]) == ("code_taken", "gtin")


def test_a_sku_code_that_differs_only_by_case_is_the_same_code(merchant):
    existing = sku_create(merchant=merchant, code="MUG-RED", name="Mug")
    with pytest.raises(Conflict) as excinfo:
        sku_create(merchant=merchant, code="mug-red", name="Mug again")
    assert (excinfo.value.code, excinfo.value.details["errors"][0]["sku_id"]) == ("duplicate_sku_code", existing.pk)


def test_a_bulk_upsert_matches_a_sku_by_its_code_whatever_the_case(merchant):
    existing = sku_create(merchant=merchant, code="MUG-RED", name="Mug")
    result = sku_bulk_upsert(merchant=merchant, rows=[{"code": "mug-red", "name": "Red mug"}])
    assert [(sku.pk, action) for _index, sku, action in result.items] == [(existing.pk, "updated")]
    assert Sku.objects.get(pk=existing.pk).name == "Red mug"


def test_a_bulk_batch_cannot_give_one_rows_code_to_another_rows_barcodes(merchant):
    with pytest.raises(ValidationFailed) as excinfo:
        sku_bulk_upsert(
            merchant=merchant,
            rows=[{"code": "A-1", "name": "A"}, {"code": "B-1", "name": "B", "barcodes": ["a-1"]}],
        )
    [rejected] = excinfo.value.details["rows"]
    assert (rejected["index"], [error["code"] for error in rejected["errors"]]) == (1, ["code_taken"])
    assert not Sku.objects.exists()


def test_a_bulk_row_cannot_take_a_code_held_by_a_sku_outside_the_batch(merchant):
    holder = SkuFactory(merchant=merchant, code="HELD")
    with pytest.raises(ValidationFailed) as excinfo:
        sku_bulk_upsert(merchant=merchant, rows=[{"code": "NEW", "name": "New", "barcodes": "held"}])
    [rejected] = excinfo.value.details["rows"]
    assert rejected["errors"][0] == {
        "field": "barcodes",
        "code": "code_taken",
        "message": "The code 'held' is already the code of SKU 'HELD' of this merchant: a scan of it would find "
        "that SKU.",
        "sku_id": holder.pk,
    }


def test_a_sku_of_the_batch_that_gives_up_its_code_lets_another_row_take_it_as_a_barcode(merchant):
    old = SkuFactory(merchant=merchant, code="OLD")
    sku_update(sku=old, version=old.version, data={"code": "RENAMED"})
    result = sku_bulk_upsert(merchant=merchant, rows=[{"code": "NEW", "name": "New", "barcodes": ["OLD"]}])
    assert result.created == 1
    assert selectors.scan_resolve(merchant=merchant, code="old").sku.code == "NEW"


def test_a_barcode_that_differs_only_by_case_is_the_same_barcode(merchant):
    BarcodeFactory(sku=SkuFactory(merchant=merchant), code="SUP-9")
    with pytest.raises(Conflict) as excinfo:
        barcode_add(sku=SkuFactory(merchant=merchant), code="sup-9")
    assert excinfo.value.code == "duplicate_barcode"


def test_the_database_refuses_two_codes_that_differ_only_by_case(merchant):
    SkuFactory(merchant=merchant, code="MUG-RED")
    with pytest.raises(IntegrityError):
        Sku.objects.create(merchant=merchant, code="mug-red", name="Written around the services")


def test_the_database_refuses_two_barcodes_that_differ_only_by_case(merchant):
    sku = SkuFactory(merchant=merchant)
    Barcode.objects.create(merchant=merchant, sku=sku, code="SUP-9", kind="internal")
    with pytest.raises(IntegrityError):
        Barcode.objects.create(merchant=merchant, sku=sku, code="sup-9", kind="internal")


def test_other_merchants_may_use_the_same_codes(merchant, other_merchant):
    SkuFactory(merchant=other_merchant, code="MUG-RED")
    BarcodeFactory(sku=SkuFactory(merchant=other_merchant), code="SUP-9")
    mine = sku_create(merchant=merchant, code="SUP-9", name="Mine", barcodes=["mug-red"])
    assert selectors.scan_resolve(merchant=merchant, code="MUG-RED").sku == mine


def test_a_scan_with_a_wrong_check_digit_says_so(merchant):
    SkuFactory(merchant=merchant, gtin="09521234543213")
    for code in ["9521234543214", "(01)09521234543214", "]d2" + "0109521234543214" + "10LOT"]:
        with pytest.raises(NotFound) as excinfo:
            selectors.scan_resolve(merchant=merchant, code=code)
        assert (excinfo.value.code, excinfo.value.details["reason"]) == ("unknown_code", "check_digit"), code
        assert "check digit is wrong" in excinfo.value.message
        assert "should end with 3" in excinfo.value.message


def test_a_scan_with_an_impossible_date_says_so(merchant):
    SkuFactory(merchant=merchant, gtin="09521234543213")
    for code in ["(01)09521234543213(17)261332", "0109521234543213" + "17260230" + "10LOT"]:
        with pytest.raises(NotFound) as excinfo:
            selectors.scan_resolve(merchant=merchant, code=code)
        assert (excinfo.value.code, excinfo.value.details["reason"], excinfo.value.details["ai"]) == (
            "unknown_code",
            "date",
            "17",
        ), code
        assert "impossible date" in excinfo.value.message
