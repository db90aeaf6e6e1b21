from __future__ import annotations

from datetime import date

import pytest

from quai.catalog import selectors
from quai.catalog.models import Barcode, BarcodeKind, PackagingType, Sku
from quai.catalog.services import (
    BULK_MAX_ROWS,
    barcode_add,
    barcode_remove,
    packaging_type_create,
    packaging_type_update,
    sku_bulk_upsert,
    sku_create,
    sku_update,
)
from quai.catalog.tests.factories import PackagingTypeFactory, SkuFactory, valid_gtin13
from quai.core.errors import Conflict, NotFound, ValidationFailed
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db

GS = "\x1d"


def test_a_new_sku_keeps_its_gtin_as_its_primary_barcode(merchant):
    sku = sku_create(merchant=merchant, code="TSHIRT-M", name="T-shirt M", gtin="9521234543213", weight_g=180)
    assert sku.gtin == "09521234543213"
    assert sku.version == 1
    primary = Barcode.objects.get(sku=sku)
    assert (primary.code, primary.kind, primary.is_primary) == ("09521234543213", BarcodeKind.GTIN, True)


def test_an_invalid_gtin_check_digit_is_refused_and_nothing_is_written(merchant):
    with pytest.raises(ValidationFailed) as excinfo:
        sku_create(merchant=merchant, code="BAD", name="Bad", gtin="9521234543214")
    assert excinfo.value.code == "invalid_gtin"
    assert "check digit should be 3" in excinfo.value.message
    assert not Sku.objects.exists()
    assert not Barcode.objects.exists()


def test_a_duplicate_sku_code_is_a_conflict_within_one_merchant_only(merchant, other_merchant):
    sku_create(merchant=merchant, code="MUG", name="Mug")
    with pytest.raises(Conflict) as excinfo:
        sku_create(merchant=merchant, code="MUG", name="Another mug")
    assert excinfo.value.code == "duplicate_sku_code"
    assert Sku.objects.filter(merchant=merchant).count() == 1
    # Another merchant may use the same code: codes are unique per merchant.
    assert sku_create(merchant=other_merchant, code="MUG", name="Their mug").code == "MUG"


def test_two_skus_of_one_merchant_cannot_share_a_gtin(merchant, other_merchant):
    sku_create(merchant=merchant, code="A", name="A", gtin="9521234543213")
    with pytest.raises(Conflict) as excinfo:
        sku_create(merchant=merchant, code="B", name="B", gtin="09521234543213")
    assert excinfo.value.code == "duplicate_gtin"
    assert sku_create(merchant=other_merchant, code="B", name="B", gtin="9521234543213").pk


def test_several_bad_fields_are_all_listed_in_the_details(merchant):
    with pytest.raises(ValidationFailed) as excinfo:
        sku_create(merchant=merchant, code="X", name="X", country_of_origin="FRA", hs_code="61A9", status="gone")
    codes = [error["code"] for error in excinfo.value.details["errors"]]
    assert codes == ["invalid_hs_code", "invalid_country", "invalid_status"]


def test_hs_code_and_country_are_normalised(merchant):
    sku = sku_create(merchant=merchant, code="X", name="X", hs_code="6109.10.00", country_of_origin="pt")
    assert (sku.hs_code, sku.country_of_origin) == ("61091000", "PT")


def test_an_update_bumps_the_version_and_a_stale_one_is_refused(merchant):
    sku = sku_create(merchant=merchant, code="A", name="A")
    updated = sku_update(sku=sku, version=1, data={"name": "A prime", "fragile": True})
    assert (updated.name, updated.fragile, updated.version) == ("A prime", True, 2)
    with pytest.raises(Conflict) as excinfo:
        sku_update(sku=sku, version=1, data={"name": "Lost edit"})
    assert excinfo.value.code == "stale_version"
    assert excinfo.value.status == 409
    assert Sku.objects.get(pk=sku.pk).name == "A prime"


def test_changing_the_gtin_moves_the_primary_barcode(merchant):
    sku = sku_create(merchant=merchant, code="A", name="A", gtin="9521234543213")
    new_gtin = valid_gtin13(7)
    sku_update(sku=sku, version=1, data={"gtin": new_gtin})
    assert list(Barcode.objects.filter(sku=sku).values_list("code", "is_primary")) == [(new_gtin.zfill(14), True)]
    sku_update(sku=sku, version=2, data={"gtin": ""})
    assert not Barcode.objects.filter(sku=sku).exists()


def test_an_extra_barcode_can_become_the_primary_gtin(merchant):
    sku = sku_create(merchant=merchant, code="A", name="A", barcodes=[valid_gtin13(3)])
    sku_update(sku=sku, version=1, data={"gtin": valid_gtin13(3)})
    assert list(Barcode.objects.filter(sku=sku).values_list("code", "is_primary")) == [
        (valid_gtin13(3).zfill(14), True)
    ]


def test_a_code_cannot_be_changed_to_another_skus_code(merchant):
    SkuFactory(merchant=merchant, code="TAKEN")
    sku = sku_create(merchant=merchant, code="MINE", name="Mine")
    with pytest.raises(Conflict) as excinfo:
        sku_update(sku=sku, version=1, data={"code": "TAKEN"})
    assert excinfo.value.code == "duplicate_sku_code"


def test_a_barcode_resolves_to_one_sku_only(merchant):
    first = SkuFactory(merchant=merchant)
    second = SkuFactory(merchant=merchant)
    barcode_add(sku=first, code="SUPPLIER-42", kind=BarcodeKind.SUPPLIER)
    with pytest.raises(Conflict) as excinfo:
        barcode_add(sku=second, code="SUPPLIER-42")
    assert excinfo.value.code == "duplicate_barcode"
    with pytest.raises(Conflict):
        barcode_add(sku=second, code=first.gtin[1:])  # the first SKU's GTIN typed as a 13-digit EAN
    assert Barcode.objects.filter(sku=second).count() == 1


def test_a_barcode_that_passes_the_gtin_check_is_stored_as_a_gtin(merchant):
    sku = SkuFactory(merchant=merchant)
    barcode = barcode_add(sku=sku, code="96385074")
    assert (barcode.code, barcode.kind) == ("00000096385074", BarcodeKind.GTIN)
    internal = barcode_add(sku=sku, code="96385075")
    assert (internal.code, internal.kind) == ("96385075", BarcodeKind.INTERNAL)
    with pytest.raises(ValidationFailed) as excinfo:
        barcode_add(sku=sku, code="96385075", kind=BarcodeKind.GTIN)
    assert excinfo.value.code == "invalid_gtin"


def test_the_primary_gtin_cannot_be_removed_as_a_barcode(merchant):
    sku = SkuFactory(merchant=merchant)
    primary = Barcode.objects.get(sku=sku, is_primary=True)
    with pytest.raises(Conflict) as excinfo:
        barcode_remove(barcode=primary)
    assert excinfo.value.code == "primary_barcode"
    extra = barcode_add(sku=sku, code="EXTRA-1")
    barcode_remove(barcode=extra)
    assert not Barcode.objects.filter(pk=extra.pk).exists()


def test_bulk_upsert_creates_and_updates_by_code(merchant):
    existing = SkuFactory(merchant=merchant, code="OLD", name="Old name")
    result = sku_bulk_upsert(
        merchant=merchant,
        rows=[
            {"code": "OLD", "name": "New name", "weight_g": "250"},
            {"code": "NEW", "name": "New", "gtin": "9521234543213", "barcodes": "SUP-1|SUP-2", "fragile": "oui"},
        ],
    )
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    existing.refresh_from_db()
    assert (existing.name, existing.weight_g, existing.version) == ("New name", 250, 2)
    new = Sku.objects.get(merchant=merchant, code="NEW")
    assert new.fragile is True
    assert set(Barcode.objects.filter(sku=new).values_list("code", flat=True)) == {
        "09521234543213",
        "SUP-1",
        "SUP-2",
    }


def test_bulk_upsert_of_identical_rows_changes_nothing(merchant):
    rows = [{"code": "A", "name": "A", "gtin": "9521234543213", "barcodes": ["X1"]}]
    sku_bulk_upsert(merchant=merchant, rows=rows)
    result = sku_bulk_upsert(merchant=merchant, rows=rows)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert Sku.objects.get(code="A").version == 1


def test_bulk_upsert_is_all_or_nothing_with_errors_per_row(merchant):
    with pytest.raises(ValidationFailed) as excinfo:
        sku_bulk_upsert(
            merchant=merchant,
            rows=[
                {"code": "OK-1", "name": "Fine"},
                {"code": "BAD-GTIN", "name": "Bad", "gtin": "9521234543214"},
                {"code": "OK-1", "name": "Twice"},
                {"name": "No code", "weight_g": "heavy", "colour": "red"},
            ],
        )
    error = excinfo.value
    assert error.code == "bulk_rejected"
    rows = error.details["rows"]
    assert [row["index"] for row in rows] == [1, 2, 3]
    assert rows[0]["code"] == "BAD-GTIN"
    assert [e["code"] for e in rows[0]["errors"]] == ["invalid_gtin"]
    assert [e["code"] for e in rows[1]["errors"]] == ["duplicate_sku_code"]
    assert {(e["field"], e["code"]) for e in rows[2]["errors"]} == {
        ("colour", "unknown_field"),
        ("weight_g", "not_an_integer"),
        ("code", "required"),
    }
    assert not Sku.objects.exists()


def test_bulk_upsert_refuses_a_barcode_owned_by_a_sku_outside_the_batch(merchant):
    owner = SkuFactory(merchant=merchant)
    with pytest.raises(ValidationFailed) as excinfo:
        sku_bulk_upsert(merchant=merchant, rows=[{"code": "NEW", "name": "New", "gtin": owner.gtin}])
    (row,) = excinfo.value.details["rows"]
    assert row["errors"][0]["code"] == "duplicate_gtin"
    assert owner.code in row["errors"][0]["message"]


def test_bulk_upsert_may_move_a_barcode_between_two_skus_of_the_batch(merchant):
    sku_bulk_upsert(merchant=merchant, rows=[{"code": "A", "name": "A", "barcodes": ["MOVING"]}])
    sku_bulk_upsert(
        merchant=merchant,
        rows=[{"code": "A", "barcodes": []}, {"code": "B", "name": "B", "barcodes": ["MOVING"]}],
    )
    assert Barcode.objects.get(code="MOVING").sku.code == "B"


def test_bulk_upsert_refuses_more_than_a_thousand_rows(merchant):
    rows = [{"code": f"C{i}", "name": "x"} for i in range(BULK_MAX_ROWS + 1)]
    with pytest.raises(ValidationFailed) as excinfo:
        sku_bulk_upsert(merchant=merchant, rows=rows)
    assert excinfo.value.code == "too_many_rows"
    assert not Sku.objects.exists()


def test_bulk_upsert_takes_a_thousand_rows_in_one_call(merchant):
    rows = [{"code": f"C{i:04d}", "name": f"Item {i}", "gtin": valid_gtin13(i)} for i in range(BULK_MAX_ROWS)]
    result = sku_bulk_upsert(merchant=merchant, rows=rows)
    assert result.created == BULK_MAX_ROWS
    assert Barcode.objects.filter(merchant=merchant, is_primary=True).count() == BULK_MAX_ROWS


def test_a_scan_resolves_a_gs1_datamatrix_to_sku_lot_expiry_and_serial(merchant):
    sku = sku_create(merchant=merchant, code="VAX", name="Vaccine", gtin="9521234543213", lot_tracked=True)
    result = selectors.scan_resolve(
        merchant=merchant, code="]d2" + "0109521234543213" + "17271100" + "10L-77" + GS + "21SER9"
    )
    assert result.sku == sku
    assert (result.kind, result.lot, result.expiry, result.serial) == ("gs1", "L-77", date(2027, 11, 30), "SER9")


def test_a_scan_finds_an_ean_13_a_gtin_14_form_an_extra_barcode_and_a_sku_code(merchant):
    sku = sku_create(merchant=merchant, code="MUG-RED", name="Mug", gtin="9521234543213", barcodes=["SUP-9"])
    for code in ["9521234543213", "09521234543213", "(01)09521234543213", "SUP-9", "MUG-RED"]:
        assert selectors.scan_resolve(merchant=merchant, code=code).sku == sku, code


def test_an_unknown_or_foreign_code_gets_a_clear_unknown_code_answer(merchant, other_merchant):
    foreign = SkuFactory(merchant=other_merchant)
    for code in ["NOPE-1", foreign.gtin, foreign.code]:
        with pytest.raises(NotFound) as excinfo:
            selectors.scan_resolve(merchant=merchant, code=code)
        assert excinfo.value.code == "unknown_code"
        assert "merchant" in excinfo.value.message


def test_an_sscc_scan_answers_without_a_sku(merchant):
    result = selectors.scan_resolve(merchant=merchant, code="(00)106141411234567897")
    assert (result.kind, result.sku, result.sscc) == ("sscc", None, "106141411234567897")


def test_packaging_types_of_the_operator_are_offered_to_every_merchant(merchant, other_merchant):
    shared = packaging_type_create(
        merchant=None,
        code="BOX-S",
        name="Small box",
        inner_length_mm=200,
        inner_width_mm=150,
        inner_height_mm=100,
        max_weight_g=3000,
        tare_weight_g=120,
        cost="0.45",
    )
    own = PackagingTypeFactory(merchant=merchant)
    theirs = PackagingTypeFactory(merchant=other_merchant)
    visible = set(selectors.packaging_type_list(scope=Scope.merchant(merchant)))
    assert visible == {shared, own}
    assert theirs not in visible


def test_a_merchant_packaging_code_cannot_repeat_an_operator_code(merchant):
    PackagingTypeFactory(merchant=None, code="BOX-S")
    with pytest.raises(Conflict) as excinfo:
        packaging_type_create(
            merchant=merchant,
            code="BOX-S",
            name="Mine",
            inner_length_mm=1,
            inner_width_mm=1,
            inner_height_mm=1,
            max_weight_g=10,
        )
    assert excinfo.value.code == "duplicate_packaging_code"
    assert PackagingType.objects.count() == 1


def test_a_packaging_type_with_a_tare_above_its_max_weight_is_refused(merchant):
    with pytest.raises(ValidationFailed) as excinfo:
        packaging_type_create(
            merchant=merchant,
            code="ENV",
            name="Envelope",
            kind="envelope",
            inner_length_mm=300,
            inner_width_mm=200,
            inner_height_mm=5,
            max_weight_g=100,
            tare_weight_g=100,
        )
    assert excinfo.value.code == "tare_exceeds_max_weight"


def test_a_packaging_type_update_checks_its_version(merchant):
    packaging = PackagingTypeFactory(merchant=merchant)
    packaging_type_update(packaging_type=packaging, version=1, data={"cost": "1.20", "active": False})
    packaging.refresh_from_db()
    assert (str(packaging.cost), packaging.active, packaging.version) == ("1.2000", False, 2)
    with pytest.raises(Conflict) as excinfo:
        packaging_type_update(packaging_type=packaging, version=1, data={"name": "late"})
    assert excinfo.value.code == "stale_version"


def test_creations_and_real_changes_are_recorded_as_events_and_no_op_upserts_are_not(merchant):
    from quai.core.models import OutboxEvent

    rows = [{"code": "A", "name": "A", "gtin": "9521234543213"}]
    sku_bulk_upsert(merchant=merchant, rows=rows)
    sku_bulk_upsert(merchant=merchant, rows=rows)  # the same catalog pushed again: nothing to tell
    sku = Sku.objects.get(code="A")
    sku_update(sku=sku, version=1, data={"weight_g": 90, "barcodes": ["EXTRA"]})
    events = list(OutboxEvent.objects.filter(aggregate="sku", aggregate_id=str(sku.pk)).order_by("id"))
    assert [event.name for event in events] == ["catalog.sku_created", "catalog.sku_updated"]
    assert events[0].merchant_id == merchant.pk
    assert events[1].payload["changed"] == ["weight_g", "barcodes"]
    assert events[1].payload["version"] == 2
