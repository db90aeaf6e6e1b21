"""Pure tests of GTIN and GS1 parsing (no database). Examples come from the GS1 General Specifications."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import ean

from quai.catalog.domain import GtinInvalid, ScanProblem, gtin_check_digit, gtin_normalize, parse_scan

GS = "\x1d"  # what scanners send for FNC1


def test_a_gtin_13_is_stored_as_14_digits():
    assert gtin_normalize("9521234543213") == "09521234543213"


def test_gtin_8_12_and_14_are_padded_to_14_digits():
    assert gtin_normalize("96385074") == "00000096385074"  # GS1 GTIN-8 example
    assert gtin_normalize("614141123452") == "00614141123452"  # UPC-A from the GS1 specifications
    assert gtin_normalize("10614141123459") == "10614141123459"  # a case of the same item, GTIN-14


def test_spaces_and_dashes_typed_from_packaging_are_ignored():
    assert gtin_normalize("952 1234 54321-3") == "09521234543213"


def test_a_wrong_check_digit_is_refused_with_the_expected_digit():
    with pytest.raises(GtinInvalid) as excinfo:
        gtin_normalize("9521234543214")
    assert excinfo.value.reason == "check_digit"
    assert excinfo.value.expected_check_digit == "3"


@pytest.mark.parametrize(
    ("value", "reason"),
    [("95212345432", "length"), ("952123454321A", "format"), ("", "format"), ("00000000000000", "format")],
)
def test_malformed_gtins_are_refused_with_a_reason(value, reason):
    with pytest.raises(GtinInvalid) as excinfo:
        gtin_normalize(value)
    assert excinfo.value.reason == reason


@given(st.text(alphabet="0123456789", min_size=12, max_size=12).filter(lambda body: int(body) > 0))
def test_any_13_digit_gtin_with_its_computed_check_digit_round_trips(body):
    gtin = body + gtin_check_digit(body)
    assert gtin_normalize(gtin) == gtin.zfill(14)
    parsed = parse_scan(gtin)
    assert parsed.kind == "gtin"
    assert parsed.gtin == gtin.zfill(14)
    assert parse_scan(f"01{gtin.zfill(14)}").gtin == gtin.zfill(14)


@given(st.text(alphabet="0123456789", min_size=13, max_size=13).filter(lambda body: int(body) > 0))
def test_any_gtin_14_from_a_13_digit_body_round_trips_alone_and_inside_a_gs1_string(body):
    gtin = body + gtin_check_digit(body)
    assert gtin_normalize(gtin) == gtin
    assert parse_scan(gtin).gtin == gtin
    parsed = parse_scan(f"01{gtin}10LOT{GS}21S1")
    assert (parsed.kind, parsed.gtin, parsed.lot, parsed.serial) == ("gs1", gtin, "LOT", "S1")


@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.integers(min_value=1, max_value=9))
def test_any_altered_check_digit_is_refused(body, shift):
    good = int(ean.calc_check_digit(body))
    with pytest.raises(GtinInvalid):
        gtin_normalize(body + str((good + shift) % 10))


def test_a_bare_ean_13_scan_is_a_gtin_not_a_gs1_message():
    # "9521234543213" also reads as AI (95) + data; an EAN-13 scan means the product.
    parsed = parse_scan("9521234543213")
    assert parsed.kind == "gtin"
    assert parsed.gtin == "09521234543213"
    assert parsed.quantity == 1


def test_the_human_readable_form_printed_under_a_gs1_128_is_parsed():
    parsed = parse_scan("(01)09521234543213(15)210101(10)ABC123")
    assert parsed.kind == "gs1"
    assert parsed.gtin == "09521234543213"
    assert parsed.lot == "ABC123"
    assert parsed.expiry is None  # (15) is a best-before date, not the expiry (17)


def test_a_gs1_element_string_with_group_separators_gives_gtin_lot_and_serial():
    parsed = parse_scan("0109521234543213" + "10ABC123" + GS + "21XYZ")
    assert (parsed.kind, parsed.gtin, parsed.lot, parsed.serial) == ("gs1", "09521234543213", "ABC123", "XYZ")


def test_fixed_length_fields_need_no_separator_before_a_variable_one():
    # GS1 General Specifications example: (01)(17)(10) with the lot last, no FNC1 anywhere.
    parsed = parse_scan("01095011010209171719050810ABCD1234")
    assert parsed.gtin == "09501101020917"
    assert parsed.expiry == date(2019, 5, 8)
    assert parsed.lot == "ABCD1234"


def test_without_a_separator_a_variable_field_runs_to_the_end():
    # Without FNC1 after the lot, "21XYZ" is part of the lot: this is what a badly programmed scanner sends.
    parsed = parse_scan("0109521234543213" + "10ABC123" + "21XYZ")
    assert parsed.lot == "ABC12321XYZ"
    assert parsed.serial is None


@pytest.mark.parametrize("prefix", ["]C1", "]d2", "]Q3", "]e0"])
def test_gs1_symbology_identifiers_are_understood(prefix):
    parsed = parse_scan(prefix + "0109521234543213" + "17251231" + "10LOT7" + GS + "21SN-1")
    assert parsed.kind == "gs1"
    assert parsed.code == "0109521234543213" + "17251231" + "10LOT7" + GS + "21SN-1"
    assert (parsed.gtin, parsed.expiry, parsed.lot, parsed.serial) == (
        "09521234543213",
        date(2025, 12, 31),
        "LOT7",
        "SN-1",
    )


def test_a_leading_fnc1_and_trailing_newline_are_not_data():
    parsed = parse_scan(GS + "0109521234543213" + "10ABC" + GS + "\r\n")
    assert (parsed.gtin, parsed.lot) == ("09521234543213", "ABC")


def test_an_expiry_day_00_means_the_end_of_the_month():
    assert parse_scan("(01)09521234543213(17)240200").expiry == date(2024, 2, 29)
    assert parse_scan("0109521234543213" + "17250400").expiry == date(2025, 4, 30)


def test_an_sscc_from_the_gs1_specifications_is_a_logistic_unit_without_sku():
    parsed = parse_scan("00106141411234567897")
    assert parsed.kind == "sscc"
    assert parsed.sscc == "106141411234567897"
    assert parsed.gtin is None
    assert parse_scan("]C100106141411234567897").sscc == "106141411234567897"
    assert parse_scan("(00)106141411234567897").sscc == "106141411234567897"


def test_an_sscc_label_with_its_content_gtin_and_count_resolves_to_the_item():
    parsed = parse_scan("00106141411234567897" + "0209521234543213" + "3712" + GS + "10LOT1")
    assert parsed.kind == "gs1"
    assert (parsed.sscc, parsed.gtin, parsed.quantity, parsed.lot) == (
        "106141411234567897",
        "09521234543213",
        12,
        "LOT1",
    )


def test_a_count_30_sets_the_quantity():
    assert parse_scan("(01)09521234543213(30)24").quantity == 24


def test_a_gtin_with_a_wrong_check_digit_inside_a_gs1_string_is_not_trusted():
    parsed = parse_scan("0109521234543214" + "10ABC")
    assert parsed.kind == "internal"
    assert parsed.gtin is None


def test_an_sscc_with_a_wrong_check_digit_is_not_trusted():
    assert parse_scan("00106141411234567898").kind == "internal"


@pytest.mark.parametrize("code", ["SKU-001", "10023", "ABC 12", "0123"])
def test_anything_else_is_an_internal_code_looked_up_as_typed(code):
    parsed = parse_scan(f"  {code}\n")
    assert parsed.kind == "internal"
    assert parsed.code == code
    assert parsed.gtin is None


def test_a_non_gs1_symbology_prefix_is_dropped_from_an_internal_code():
    parsed = parse_scan("]C0SKU-001")
    assert (parsed.kind, parsed.code) == ("internal", "SKU-001")


def test_an_ean_13_symbology_prefix_gives_a_gtin():
    assert parse_scan("]E09521234543213").gtin == "09521234543213"


def test_a_variable_measure_label_gives_its_net_weight_in_kg():
    # GS1 General Specifications 3.6.2: (3103) is net weight in kg with 3 decimals, 001250 = 1.250 kg.
    parsed = parse_scan("(01)09521234543213(3103)001250")
    assert (parsed.kind, parsed.gtin, parsed.net_weight_kg) == ("gs1", "09521234543213", Decimal("1.250"))


def test_a_variable_measure_label_gives_its_price_in_the_local_currency():
    # (3922) 001999: amount payable with 2 decimals, 19.99 in the local currency.
    parsed = parse_scan("]C1" + "0109521234543213" + "3922001999")
    assert (parsed.price, parsed.price_currency_numeric) == (Decimal("19.99"), None)


def test_a_price_with_its_iso_currency_gives_both():
    # (3932) 978 002990: ISO 4217 numeric 978 (euro), amount 29.90.
    parsed = parse_scan("]C1" + "0109521234543213" + "3103001250" + "3932978002990")
    assert (parsed.net_weight_kg, parsed.price, parsed.price_currency_numeric) == (
        Decimal("1.250"),
        Decimal("29.90"),
        "978",
    )


def test_a_bare_gtin_with_a_wrong_check_digit_is_looked_up_as_typed_but_its_fault_is_known():
    parsed = parse_scan("9521234543214")
    assert parsed.kind == "internal"
    assert parsed.problem == ScanProblem("check_digit", None, "9521234543214", expected_check_digit="3")


def test_a_wrong_check_digit_inside_a_gs1_string_names_its_ai():
    assert parse_scan("(01)09521234543214").problem == ScanProblem(
        "check_digit", "01", "09521234543214", expected_check_digit="3"
    )
    assert parse_scan("00106141411234567898").problem == ScanProblem(
        "check_digit", "00", "106141411234567898", expected_check_digit="7"
    )


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("(01)09521234543213(17)261332", "261332"),  # month 13, day 32
        ("0109521234543213" + "17260230" + "10LOT", "260230"),  # 30 February
        ("]d2" + "0109521234543213" + "11261301", "261301"),
    ],
)
def test_an_impossible_date_is_named_as_such(code, value):
    problem = parse_scan(code).problem
    assert problem is not None
    assert (problem.reason, problem.value) == ("date", value)


@pytest.mark.parametrize("code", ["12345", "ABC-1", "10023", "MUG-RED"])
def test_an_internal_code_has_no_problem_even_when_it_reads_like_a_broken_gs1_string(code):
    assert parse_scan(code).problem is None
