"""``scans_resolve`` (many codes of one merchant at once) against ``scan_resolve`` one code at a time."""

from __future__ import annotations

import pytest

from quai.catalog import selectors
from quai.catalog.models import Barcode
from quai.catalog.tests.factories import BarcodeFactory, SkuFactory
from quai.core.errors import NotFound

pytestmark = pytest.mark.django_db

CODES = [
    "9521234543213",  # a GTIN-13 one SKU carries, and another SKU's code (old rows): the GTIN's owner
    "09521234543213",  # the same GTIN in its 14-digit form
    "(01)09521234543213(17)271130(10)L-7",  # GS1 with lot and expiry
    "]C1" + "00106141411234567897",  # an SSCC: no SKU, no merchant
    "mug-red",  # a SKU code, another case
    "MUG-RED",
    "sup-9",  # an extra barcode, another case
    "OLD-1",  # a barcode of one SKU and the code of another (old rows): the barcode wins
    "THEIRS",  # another merchant's code: unknown here
    "9521234543214",  # a wrong check digit
    "NOWHERE",
    "",
    "mug-red",  # a code given twice is answered once
]


def _as_one_by_one(merchant: object, code: str) -> object:
    try:
        return selectors.scan_resolve(merchant=merchant, code=code)  # type: ignore[arg-type]
    except NotFound as exc:
        return exc


def _same(one: object, many: object) -> None:
    if isinstance(one, NotFound):
        assert isinstance(many, NotFound)
        assert (many.code, many.message, many.details) == (one.code, one.message, one.details)
    else:
        assert many == one
        assert getattr(many, "sku", None) is None or many.sku.code == one.sku.code  # type: ignore[attr-defined]


def test_many_codes_resolve_at_once_as_each_one_alone_with_the_same_refusals_in_two_reads(
    merchant, other_merchant, django_assert_num_queries
):
    owner = SkuFactory(merchant=merchant, gtin="09521234543213")
    SkuFactory(merchant=merchant, code="9521234543213", gtin="")
    SkuFactory(merchant=merchant, code="MUG-RED")
    BarcodeFactory(sku=SkuFactory(merchant=merchant), code="Sup-9")
    SkuFactory(merchant=merchant, code="OLD-1", gtin="")
    BarcodeFactory(sku=SkuFactory(merchant=merchant), code="old-1")
    SkuFactory(merchant=other_merchant, code="THEIRS")
    SkuFactory(merchant=other_merchant, gtin="09521234543213")
    alone = {code: _as_one_by_one(merchant, code) for code in CODES}
    with django_assert_num_queries(2):
        together = selectors.scans_resolve(merchant=merchant, codes=CODES)
    assert list(together) == list(dict.fromkeys(CODES))
    for code in CODES:
        _same(alone[code], together[code])
    assert together["9521234543213"].sku == owner  # type: ignore[union-attr]
    assert isinstance(together["THEIRS"], NotFound)
    assert together["9521234543214"].details["reason"] == "check_digit"  # type: ignore[union-attr]


def test_a_barcode_row_that_matches_both_forms_of_a_gtin_counts_once_as_alone(merchant):
    sku = SkuFactory(merchant=merchant, gtin="09521234543213")
    Barcode.objects.create(merchant=merchant, sku=sku, code="9521234543213", kind="internal")
    together = selectors.scans_resolve(merchant=merchant.pk, codes=["9521234543213", "09521234543213"])
    for code, answer in together.items():
        _same(_as_one_by_one(merchant, code), answer)


def test_codes_that_need_no_read_cost_none(merchant, django_assert_num_queries):
    with django_assert_num_queries(0):
        together = selectors.scans_resolve(merchant=merchant, codes=["]C1" + "00106141411234567897", ""])
    assert together["]C1" + "00106141411234567897"].sscc == "106141411234567897"  # type: ignore[union-attr]
    assert together[""].details["reason"] == "empty"  # type: ignore[union-attr]


def test_the_reads_have_one_text_for_one_code_and_many(merchant):
    """The barcodes' and the SKUs' reads take their forms as ONE parameter (``quai.core.rows.Among``): the same
    texts for one code as for three (the ORM's ``IN (%s, …)`` wrote a text per number of forms, planned at every
    call on PostgreSQL)."""
    from quai.core.tests.sql_texts import statement_texts

    SkuFactory(merchant=merchant, code="MUG-RED")
    BarcodeFactory(sku=SkuFactory(merchant=merchant), code="Sup-9")
    # Each call finds a barcode (the SKUs' read then tests their ids or their codes: the same two branches).
    one = statement_texts(lambda: selectors.scans_resolve(merchant=merchant, codes=["sup-9"]))
    many = statement_texts(
        lambda: selectors.scans_resolve(merchant=merchant, codes=["sup-9", "MUG-RED", "9521234543213"])
    )
    assert len(one) == 2 and one == many
