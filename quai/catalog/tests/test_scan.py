"""Scan resolution on the database: one code, one SKU per merchant, several merchants in one query."""

from __future__ import annotations

import pytest

from quai.catalog import selectors
from quai.catalog.models import Barcode
from quai.catalog.tests.factories import BarcodeFactory, SkuFactory
from quai.core.errors import NotFound
from quai.tenants.tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db


def test_a_code_known_to_several_merchants_resolves_for_each_in_the_order_asked_in_one_query(
    merchant, other_merchant, django_assert_num_queries
):
    mine = SkuFactory(merchant=merchant, gtin="09521234543213")
    theirs = SkuFactory(merchant=other_merchant, gtin="09521234543213")
    bystander = MerchantFactory()
    with django_assert_num_queries(1):
        results = selectors.scan_resolve_among(
            merchant_ids=[other_merchant.pk, bystander.pk, merchant.pk], code="9521234543213"
        )
    assert [(result.merchant_id, result.sku) for result in results] == [
        (other_merchant.pk, theirs),
        (merchant.pk, mine),
    ]
    assert all(result.gtin == "09521234543213" for result in results)


def test_a_gs1_string_resolves_among_merchants_with_its_lot_and_expiry(merchant, other_merchant):
    sku = SkuFactory(merchant=other_merchant, gtin="09521234543213")
    [result] = selectors.scan_resolve_among(
        merchant_ids=[merchant.pk, other_merchant.pk], code="(01)09521234543213(17)271130(10)L-7"
    )
    assert (result.merchant_id, result.sku, result.lot, str(result.expiry)) == (
        other_merchant.pk,
        sku,
        "L-7",
        "2027-11-30",
    )


def test_a_sku_code_and_an_extra_barcode_resolve_whatever_their_case(merchant):
    sku = SkuFactory(merchant=merchant, code="MUG-RED")
    BarcodeFactory(sku=sku, code="Sup-9")
    for code in ["mug-red", "MUG-RED", "Mug-Red", "SUP-9", "sup-9"]:
        assert selectors.scan_resolve(merchant=merchant, code=code).sku == sku, code


def test_a_scanned_gtin_designates_the_sku_that_carries_it_before_a_sku_whose_code_is_those_digits(merchant):
    # Old rows from before codes and barcodes were checked against each other: the GTIN's owner wins.
    owner = SkuFactory(merchant=merchant, gtin="09521234543213")
    SkuFactory(merchant=merchant, code="9521234543213", gtin="")
    assert selectors.scan_resolve(merchant=merchant, code="9521234543213").sku == owner


def test_an_sscc_gives_one_result_without_sku_or_merchant(merchant, other_merchant, django_assert_num_queries):
    with django_assert_num_queries(0):
        results = selectors.scan_resolve_among(
            merchant_ids=[merchant.pk, other_merchant.pk], code="]C1" + "00106141411234567897"
        )
    assert [(result.kind, result.sku, result.merchant_id, result.sscc) for result in results] == [
        ("sscc", None, None, "106141411234567897")
    ]


def test_a_code_that_matches_nothing_among_the_merchants_is_an_unknown_code_that_says_so(merchant, other_merchant):
    SkuFactory(merchant=other_merchant, code="THEIRS")
    with pytest.raises(NotFound) as excinfo:
        selectors.scan_resolve_among(merchant_ids=[merchant.pk], code="THEIRS")
    assert excinfo.value.code == "unknown_code"
    assert excinfo.value.details["reason"] == "unknown"
    assert "neither a barcode nor a SKU code" in excinfo.value.message
    assert "Rival" not in excinfo.value.message


def test_staff_screens_learn_that_a_code_belongs_to_another_merchant(merchant, other_merchant):
    SkuFactory(merchant=other_merchant, code="THEIRS")
    with pytest.raises(NotFound) as excinfo:
        selectors.scan_resolve_among(merchant_ids=[merchant.pk], code="theirs", tell_other_merchants=True)
    assert excinfo.value.code == "unknown_code"
    assert excinfo.value.details["reason"] == "other_merchant"
    assert excinfo.value.details["merchant_id"] == other_merchant.pk
    assert "another merchant (Rival)" in excinfo.value.message


def test_staff_screens_resolving_a_code_of_an_asked_merchant_ignore_the_other_merchants(
    merchant, other_merchant, django_assert_num_queries
):
    mine = SkuFactory(merchant=merchant, gtin="09521234543213")
    SkuFactory(merchant=other_merchant, gtin="09521234543213")
    with django_assert_num_queries(1):
        results = selectors.scan_resolve_among(
            merchant_ids=[merchant.pk], code="09521234543213", tell_other_merchants=True
        )
    assert [(result.merchant_id, result.sku) for result in results] == [(merchant.pk, mine)]


def test_no_merchant_to_look_in_is_an_unknown_code_without_a_query(django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(NotFound) as excinfo:
        selectors.scan_resolve_among(merchant_ids=[], code="ANY")
    assert excinfo.value.code == "unknown_code"


def test_a_barcode_row_counts_once_per_sku_even_when_the_gtin_and_the_typed_code_both_match(merchant):
    sku = SkuFactory(merchant=merchant, gtin="09521234543213")
    Barcode.objects.create(merchant=merchant, sku=sku, code="9521234543213", kind="internal")
    results = selectors.scan_resolve_among(merchant_ids=[merchant.pk], code="9521234543213")
    assert [result.sku for result in results] == [sku]
