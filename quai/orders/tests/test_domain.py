"""The order rules without a database: lifecycle table, label guard, priorities, postcodes, phones."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from quai.orders import domain
from quai.orders.domain import AddressProblem, WaitingOrder

T0 = datetime(2031, 3, 10, 9, 0)


def test_the_happy_path_of_an_order_is_allowed_step_by_step():
    path = ["received", "allocated", "released", "picking", "packed", "shipped", "delivered"]
    for source, target in itertools.pairwise(path):
        assert target in domain.ORDER_TRANSITIONS[source]


def test_every_status_named_in_the_table_has_its_own_row_and_final_statuses_go_nowhere():
    named = {target for targets in domain.ORDER_TRANSITIONS.values() for target in targets}
    assert named <= set(domain.ORDER_TRANSITIONS)
    assert {"delivered", "cancelled"} == domain.FINAL


def test_every_step_of_the_table_has_a_name_for_the_audit_row():
    steps = {(s, t) for s, targets in domain.ORDER_TRANSITIONS.items() for t in targets}
    assert steps == set(domain.ORDER_TRANSITION_NAMES)


def test_nothing_labelled_can_be_held_or_cancelled_by_the_table():
    for status in domain.LABELLED:
        assert "on_hold" not in domain.ORDER_TRANSITIONS[status]
        assert "cancelled" not in domain.ORDER_TRANSITIONS[status]


def test_cancel_hold_and_address_change_are_refused_from_packed_on():
    for action in ("cancel", "hold", "address_change"):
        assert not domain.refused_once_labelled(action, "picking")
        assert domain.refused_once_labelled(action, "packed")
        assert domain.refused_once_labelled(action, "shipped")


def test_an_unknown_guarded_action_is_a_programming_error():
    with pytest.raises(ValueError):
        domain.refused_once_labelled("reship", "packed")


def test_an_order_is_allocated_only_when_every_line_is_covered():
    assert domain.status_after_allocation(lines_fully_covered=True) == "allocated"
    assert domain.status_after_allocation(lines_fully_covered=False) == "backordered"


def test_a_released_hold_goes_back_where_it_was():
    assert domain.status_after_hold("released", lines_fully_covered=True) == "released"
    assert domain.status_after_hold("backordered", lines_fully_covered=False) == "backordered"


def test_a_backordered_order_covered_during_its_hold_comes_back_allocated():
    assert domain.status_after_hold("backordered", lines_fully_covered=True) == "allocated"


def test_a_hold_cannot_have_come_from_a_labelled_status():
    with pytest.raises(ValueError):
        domain.status_after_hold("packed", lines_fully_covered=True)


def test_short_stock_goes_to_express_then_vip_then_marketplace_then_standard_and_older_first():
    queue = domain.backorder_queue(
        [
            WaitingOrder(1, "standard", T0),
            WaitingOrder(2, "marketplace", T0 + timedelta(minutes=1)),
            WaitingOrder(3, "express", T0 + timedelta(minutes=5)),
            WaitingOrder(4, "vip", T0 + timedelta(minutes=2)),
            WaitingOrder(5, "express", T0 + timedelta(minutes=3)),
            WaitingOrder(6, "standard", T0 - timedelta(minutes=1)),
        ]
    )
    assert [o.order_id for o in queue] == [5, 3, 4, 2, 6, 1]


def test_an_unknown_priority_ranks_last():
    assert domain.priority_rank("whatever") > domain.priority_rank("standard")


@pytest.mark.parametrize(
    ("postcode", "stored"),
    [
        ("75011", "75011"),
        (" 69002 ", "69002"),
        ("20000", "20000"),
        ("2A004", "20004"),
        ("2b200", "20200"),
        ("97400", "97400"),
        ("97150", "97150"),
        ("98800", "98800"),
    ],
)
def test_french_postcodes_incl_corsica_and_overseas_are_accepted(postcode, stored):
    assert domain.postcode_normalise("FR", postcode) == stored


@pytest.mark.parametrize("postcode", ["7501", "750111", "ABCDE", "00100", "96000", "97000", "98900", "2C004"])
def test_french_postcodes_that_exist_nowhere_are_refused(postcode):
    problem = domain.postcode_normalise("FR", postcode)
    assert isinstance(problem, AddressProblem)
    assert (problem.code, problem.field) == ("postcode_invalid", "postcode")


@pytest.mark.parametrize(
    ("country", "postcode", "stored"),
    [
        ("DE", "10115", "10115"),
        ("BE", "1000", "1000"),
        ("NL", "1012 ab", "1012 AB"),
        ("ES", "28001", "28001"),
        ("PT", "1000-001", "1000-001"),
        ("GB", "sw1a 1aa", "SW1A 1AA"),
        ("LU", "L-1234", "1234"),
        ("US", "94103", "94103"),
    ],
)
def test_common_european_formats_are_checked_and_others_only_need_a_postcode(country, postcode, stored):
    assert domain.postcode_normalise(country, postcode) == stored


@pytest.mark.parametrize(("country", "postcode"), [("DE", "1011"), ("NL", "0123 AB"), ("ES", "53001"), ("BE", "0999")])
def test_european_postcodes_off_their_format_are_refused(country, postcode):
    assert isinstance(domain.postcode_normalise(country, postcode), AddressProblem)


def test_an_empty_postcode_is_refused_everywhere():
    problem = domain.postcode_normalise("US", "  ")
    assert isinstance(problem, AddressProblem)
    assert problem.code == "postcode_required"


def test_countries_are_iso_codes_upper_cased_and_unknown_ones_refused():
    assert domain.country_normalise(" fr ") == "FR"
    assert isinstance(domain.country_normalise("ZZ"), AddressProblem)
    assert isinstance(domain.country_normalise("FRA"), AddressProblem)


@pytest.mark.parametrize(
    ("phone", "country", "e164"),
    [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("+33 6 12 34 56 78", "DE", "+33612345678"),
        ("0690 12 34 56", "GP", "+590690123456"),
        ("030 1234567", "DE", "+49301234567"),
        ("", "FR", ""),
    ],
)
def test_phones_are_stored_in_e164(phone, country, e164):
    assert domain.phone_normalise(phone, country=country) == e164


@pytest.mark.parametrize("phone", ["12", "not a phone", "+33 1", "06 12 34"])
def test_phones_that_cannot_be_called_are_refused(phone):
    problem = domain.phone_normalise(phone, country="FR")
    assert isinstance(problem, AddressProblem)
    assert problem.code == "phone_invalid"
