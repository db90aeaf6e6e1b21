"""Cleaning of catalog input, without a database: these run in milliseconds."""

from __future__ import annotations

from decimal import Decimal

import pytest

from quai.catalog import cleaning
from quai.catalog.cleaning import (
    barcode_clean,
    hs_code_clean,
    packaging_values_clean,
    packaging_weights_check,
    sku_values_clean,
)
from quai.catalog.models import BarcodeKind, PackagingKind, SkuStatus
from quai.core.errors import ValidationFailed


def _codes(errors: list[cleaning.FieldError]) -> list[tuple[str, str]]:
    return [(error.field, error.code) for error in errors]


def test_the_choices_restated_for_cleaning_are_those_of_the_models():
    assert tuple(SkuStatus.values) == cleaning.SKU_STATUSES
    assert tuple(BarcodeKind.values) == cleaning.BARCODE_KINDS
    assert tuple(PackagingKind.values) == cleaning.PACKAGING_KINDS


def test_a_csv_line_of_strings_becomes_typed_values():
    cleaned, errors = sku_values_clean(
        {
            "code": "  TSHIRT-M ",
            "name": "T-shirt",
            "gtin": "952-1234-54321-3",
            "weight_g": "180",
            "fragile": "oui",
            "hazmat": "",
            "hs_code": "6109.10.00",
            "country_of_origin": "pt",
            "status": "Active",
            "barcodes": "SUP-1; SUP-2|4006381333931",
        }
    )
    assert errors == []
    assert cleaned == {
        "code": "TSHIRT-M",
        "name": "T-shirt",
        "gtin": "09521234543213",
        "weight_g": 180,
        "fragile": True,
        "hazmat": False,
        "hs_code": "61091000",
        "country_of_origin": "PT",
        "status": "active",
        "barcodes": [("SUP-1", "internal"), ("SUP-2", "internal"), ("04006381333931", "gtin")],
    }


def test_absent_fields_stay_absent_so_an_update_leaves_them_alone():
    cleaned, errors = sku_values_clean({"weight_g": 200})
    assert (cleaned, errors) == ({"weight_g": 200}, [])


def test_every_bad_field_of_a_row_is_reported_at_once():
    _cleaned, errors = sku_values_clean(
        {
            "code": "",
            "name": "x" * 256,
            "gtin": "9521234543214",
            "weight_g": "1.5",
            "height_mm": -1,
            "fragile": "maybe",
            "hs_code": "61",
            "country_of_origin": "FRA",
            "status": "sold",
            "colour": "red",
        }
    )
    assert sorted(_codes(errors)) == sorted(
        [
            ("colour", "unknown_field"),
            ("name", "too_long"),
            ("gtin", "invalid_gtin"),
            ("height_mm", "out_of_range"),
            ("weight_g", "not_an_integer"),
            ("fragile", "not_a_boolean"),
            ("hs_code", "invalid_hs_code"),
            ("country_of_origin", "invalid_country"),
            ("status", "invalid_status"),
            ("code", "required"),
        ]
    )


def test_a_gtin_error_names_the_check_digit_it_expected():
    _cleaned, errors = sku_values_clean({"gtin": "9521234543214"})
    assert "check digit should be 3" in errors[0].message


@pytest.mark.parametrize("value", [True, 2_147_483_648, "12a"])
def test_an_integer_field_refuses_booleans_overflows_and_letters(value):
    _cleaned, errors = sku_values_clean({"weight_g": value})
    assert len(errors) == 1 and errors[0].field == "weight_g"


def test_an_empty_integer_cell_clears_the_value():
    assert sku_values_clean({"weight_g": " "}) == ({"weight_g": None}, [])


def test_the_hs_code_loses_the_dots_and_spaces_people_type():
    assert hs_code_clean("6109 10.00") == "61091000"


def test_a_barcode_that_passes_the_gtin_check_is_kept_as_14_digits_unless_said_otherwise():
    assert barcode_clean("4006381333931") == ("04006381333931", "gtin")
    assert barcode_clean("4006381333931", "supplier") == ("4006381333931", "supplier")
    assert barcode_clean(" SUP-9 ") == ("SUP-9", "internal")


@pytest.mark.parametrize(
    ("code", "kind", "error"),
    [
        ("", None, "required"),
        ("x" * 65, None, "too_long"),
        ("0109521234543213\x1d10LOT", None, "invalid_barcode"),
        ("SUP-1", "pallet", "invalid_barcode_kind"),
        ("4006381333932", "gtin", "invalid_gtin"),
    ],
)
def test_a_bad_barcode_is_refused_with_its_code(code, kind, error):
    with pytest.raises(ValidationFailed) as excinfo:
        barcode_clean(code, kind)
    assert excinfo.value.code == error


def test_barcodes_must_be_a_list_or_a_separated_cell():
    _cleaned, errors = sku_values_clean({"barcodes": {"a": 1}})
    assert _codes(errors) == [("barcodes", "invalid_barcode")]


def test_packaging_values_are_cleaned_and_the_cost_rounded_to_four_places():
    cleaned = packaging_values_clean(
        {"code": " BOX-S ", "kind": "box", "inner_length_mm": "300", "cost": "0.123456", "currency": "eur"}
    )
    assert cleaned == {
        "code": "BOX-S",
        "kind": "box",
        "inner_length_mm": 300,
        "cost": Decimal("0.1235"),
        "currency": "EUR",
    }


def test_bad_packaging_values_are_all_listed_in_one_error():
    with pytest.raises(ValidationFailed) as excinfo:
        packaging_values_clean({"name": "", "kind": "crate", "max_weight_g": 0, "cost": "-1", "currency": "€"})
    assert excinfo.value.code == "required"
    assert [error["code"] for error in excinfo.value.details["errors"]] == [
        "required",
        "invalid_packaging_kind",
        "out_of_range",
        "invalid_cost",
        "invalid_currency",
    ]


def test_a_box_must_weigh_less_empty_than_full():
    packaging_weights_check(tare_weight_g=100, max_weight_g=101)
    with pytest.raises(ValidationFailed) as excinfo:
        packaging_weights_check(tare_weight_g=500, max_weight_g=500)
    assert excinfo.value.code == "tare_exceeds_max_weight"
