"""Pure shipping rules: SSCC and GS1-128, address lines, the Mondial Relay signature, tracking statuses."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quai.shipping import domain


def test_the_gs1_check_digit_of_the_classic_sscc_example():
    assert domain.gs1_check_digit("10614141123456789") == 7
    assert domain.sscc_is_valid("106141411234567897")
    assert not domain.sscc_is_valid("106141411234567898")
    assert not domain.sscc_is_valid("10614141123456789")


@given(st.integers(0, 9), st.integers(0, 10**9 - 1))
def test_every_built_sscc_is_valid_and_changing_any_digit_breaks_it(extension, serial):  # type: ignore[no-untyped-def]
    sscc = domain.sscc_build(extension=extension, company_prefix="3760123", serial=serial)
    assert len(sscc) == 18 and domain.sscc_is_valid(sscc)
    for i in range(17):
        changed = sscc[:i] + str((int(sscc[i]) + 1) % 10) + sscc[i + 1 :]
        assert not domain.sscc_is_valid(changed)


def test_a_serial_too_long_for_the_prefix_is_refused():
    with pytest.raises(ValueError):
        domain.sscc_build(extension=0, company_prefix="3760123", serial=10**9)


def test_gs1_128_data_starts_with_fnc1_and_ai_00():
    assert domain.gs1_128_data("106141411234567897") == "\xf100106141411234567897"


def test_address_lines_are_unaccented_upper_case_and_35_wide():
    lines = domain.address_lines(["12 rue de l'Église Saint-Étienne-du-Mont prolongée", "Bâtiment B"])
    assert all(len(line) <= 35 for line in lines)
    assert lines[0].startswith("12 RUE DE L'EGLISE")
    with pytest.raises(ValueError):
        domain.address_lines(["word " * 40])


def test_the_mondial_relay_security_is_the_upper_md5_of_the_values_then_the_key():
    expected = hashlib.md5(b"BDTEST13FR75011PrivateK").hexdigest().upper()
    assert domain.mondial_relay_security(["BDTEST13", "FR", "", "75011"], "PrivateK") == expected


def test_carriers_words_fold_onto_one_scale():
    assert domain.colissimo_status("DI1") == domain.DELIVERED
    assert domain.colissimo_status("AG1") == domain.AT_PICKUP_POINT
    assert domain.colissimo_status("MD2") == domain.OUT_FOR_DELIVERY
    assert domain.colissimo_status("ZZ9") is None
    assert domain.mondial_relay_status("COLIS LIVRÉ") == domain.DELIVERED
    assert domain.mondial_relay_status("DISPONIBLE AU POINT RELAIS") == domain.AT_PICKUP_POINT
    assert domain.mondial_relay_status("PRISE EN CHARGE EN AGENCE") == domain.IN_TRANSIT
    assert domain.mondial_relay_status("RETOUR EXPEDITEUR") == domain.RETURNED
