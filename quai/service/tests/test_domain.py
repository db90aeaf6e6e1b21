"""Pure customer-service rules: no database, milliseconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quai.core.states import StateMachine
from quai.service import domain

PARIS = ZoneInfo("Europe/Paris")
HOURS = domain.BusinessHours()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Bonjour, où est ma commande #1001 ?", domain.WHERE_IS_MY_ORDER),
        ("Where is my order? It's been a week", domain.WHERE_IS_MY_ORDER),
        ("Ma commande est en retard, elle aurait dû arriver hier", domain.LATE),
        ("My parcel is late and still waiting", domain.LATE),
        ("Le mug est arrivé cassé", domain.DAMAGED),
        ("The box arrived crushed and the glass is broken", domain.DAMAGED),
        ("Il manque un article dans le colis", domain.MISSING_ITEM),
        ("One item is missing from my parcel", domain.MISSING_ITEM),
        ("J'ai reçu le mauvais article, pas la bonne taille", domain.WRONG_ITEM),
        ("I received the wrong size", domain.WRONG_ITEM),
        ("Je voudrais retourner ce pull et être remboursé", domain.RETURN),
        ("How do I return this? I want a refund", domain.RETURN),
        ("Puis-je échanger contre une autre taille ?", domain.EXCHANGE),
        ("Can I exchange it for another size?", domain.EXCHANGE),
        ("Je dois changer l’adresse de livraison", domain.ADDRESS_CHANGE),
        ("Please change my address, I moved", domain.ADDRESS_CHANGE),
        ("Je veux annuler ma commande", domain.CANCEL),
        ("Please cancel my order", domain.CANCEL),
        ("Avez-vous des chaussettes rouges ?", domain.OTHER),
        ("", domain.OTHER),
    ],
)
def test_a_category_is_suggested_from_french_or_english_words(text, category):
    assert domain.category_suggest(text).category == category


def test_a_concrete_problem_beats_where_is_my_order_on_a_tie():
    assert domain.category_suggest("tracking says delivered but it arrived broken").category == domain.DAMAGED


@given(st.text(max_size=300))
def test_any_text_gets_one_known_category(text):
    assert domain.category_suggest(text).category in domain.CATEGORIES


def test_language_is_guessed_from_common_words():
    assert domain.language_guess("Bonjour, je n'ai pas reçu ma commande") == "fr"
    assert domain.language_guess("Hello, I have not received my order") == "en"
    assert domain.language_guess("12345", default="en") == "en"


def test_reference_candidates_are_words_with_a_digit():
    text = "Order #1001 / SHOP-1002, tracking 6A12345678901, see you at 9"
    assert domain.reference_candidates(text) == ["1001", "SHOP-1002", "6A12345678901"]


def test_business_time_skips_nights_and_weekends():
    friday_evening = datetime(2030, 1, 4, 17, 30, tzinfo=PARIS)  # a Friday
    due = domain.business_add(friday_evening, 60, HOURS)
    assert due.astimezone(PARIS) == datetime(2030, 1, 7, 9, 30, tzinfo=PARIS)  # Monday 09:30


def test_business_time_from_a_closed_moment_starts_at_the_opening():
    sunday = datetime(2030, 1, 6, 12, 0, tzinfo=PARIS)
    assert domain.business_add(sunday, 0, HOURS).astimezone(PARIS) == datetime(2030, 1, 7, 9, 0, tzinfo=PARIS)


def test_holidays_are_closed():
    hours = domain.BusinessHours(holidays=frozenset({date(2030, 1, 7)}))
    friday_evening = datetime(2030, 1, 4, 17, 30, tzinfo=PARIS)
    assert domain.business_add(friday_evening, 60, hours).astimezone(PARIS) == datetime(2030, 1, 8, 9, 30, tzinfo=PARIS)


def test_business_hours_refuse_nonsense():
    with pytest.raises(ValueError):
        domain.BusinessHours(weekdays=frozenset())
    with pytest.raises(ValueError):
        domain.BusinessHours(opens=time(18), closes=time(9))
    with pytest.raises(ValueError):
        domain.business_add(datetime(2030, 1, 1, 9), 5, HOURS)


moments = st.datetimes(min_value=datetime(2029, 1, 1), max_value=datetime(2031, 12, 31), timezones=st.just(UTC))


@settings(max_examples=200, deadline=None)
@given(start=moments, minutes=st.integers(min_value=0, max_value=5000))
def test_adding_business_minutes_counts_exactly_those_minutes_and_lands_inside_opening_hours(start, minutes):
    due = domain.business_add(start, minutes, HOURS)
    assert due >= start
    assert domain.business_minutes_between(start, due, HOURS) == minutes
    local = due.astimezone(PARIS)
    assert HOURS.is_open_day(local.date())
    assert HOURS.opens <= local.time().replace(second=0, microsecond=0) <= HOURS.closes


@given(start=moments, first=st.integers(0, 3000), second=st.integers(0, 3000))
@settings(max_examples=100, deadline=None)
def test_business_time_is_monotonic(start, first, second):
    small, large = sorted((first, second))
    assert domain.business_add(start, small, HOURS) <= domain.business_add(start, large, HOURS)


def test_sla_states():
    now = datetime(2030, 1, 7, 12, tzinfo=UTC)
    warn = timedelta(minutes=60)
    assert domain.sla_state(due=now + timedelta(hours=2), done_at=None, now=now, warn_before=warn) == domain.SLA_OK
    assert domain.sla_state(due=now + timedelta(minutes=30), done_at=None, now=now, warn_before=warn) == "at_risk"
    assert domain.sla_state(due=now - timedelta(minutes=1), done_at=None, now=now, warn_before=warn) == "breached"
    assert domain.sla_state(due=now, done_at=now - timedelta(minutes=1), now=now, warn_before=warn) == "met"
    assert domain.sla_state(due=now, done_at=now + timedelta(minutes=1), now=now, warn_before=warn) == "breached"


def test_the_ticket_and_return_tables_are_valid_machines_with_named_steps():
    tickets = StateMachine.from_table("ticket", domain.TICKET_TRANSITIONS, names=domain.TICKET_TRANSITION_NAMES)
    rmas = StateMachine.from_table("rma", domain.RMA_TRANSITIONS, names=domain.RMA_TRANSITION_NAMES)
    assert all(step.name for step in tickets.transitions)
    assert all(step.name for step in rmas.transitions)
    assert tickets.allowed_from(domain.CLOSED) == []
    assert set(rmas.allowed_from(domain.RMA_RECEIVED)) == {domain.RMA_CLOSED}


@given(st.lists(st.sampled_from(list(domain.TICKET_TRANSITIONS)), max_size=30))
def test_every_ticket_reaches_closed_only_through_resolved(path):
    machine = StateMachine.from_table("ticket", domain.TICKET_TRANSITIONS)
    status = domain.NEW
    seen = [status]
    for target in path:
        if machine.can(status, target):
            status = target
            seen.append(status)
    if domain.CLOSED in seen:
        assert seen[seen.index(domain.CLOSED) - 1] == domain.RESOLVED


@pytest.mark.parametrize(
    ("status", "promised", "automatic", "reason"),
    [
        ("picking", date(2030, 1, 10), True, "on_time"),
        ("shipped", date(2030, 1, 10), True, "on_time"),
        ("delivered", date(2030, 1, 1), True, "delivered"),
        ("shipped", date(2030, 1, 5), False, "late"),
        ("on_hold", date(2030, 1, 10), False, "on_hold"),
        ("backordered", date(2030, 1, 10), False, "backordered"),
        ("picking", None, False, "no_promise"),
    ],
)
def test_where_is_my_order_is_automatic_only_when_on_time(status, promised, automatic, reason):
    decision = domain.wismo_decide(status=status, promised_to=promised, today=date(2030, 1, 7))
    assert (decision.automatic, decision.reason) == (automatic, reason)


def test_a_parcel_without_tracking_news_for_days_is_at_risk():
    now = datetime(2030, 1, 7, 12, tzinfo=UTC)
    decision = domain.wismo_decide(
        status="shipped",
        promised_to=date(2030, 1, 10),
        today=now.date(),
        last_event_at=now - timedelta(days=4),
        now=now,
    )
    assert decision == domain.WismoDecision(False, "no_tracking_news")


def test_macros_fill_their_placeholders_and_never_show_template_syntax():
    body = "Commande {{ order_number }}, prévue le {{promised_date}}, suivi {{ tracking_link }} {{ unknown }}"
    assert domain.macro_render(body, {"order_number": "1001", "promised_date": "10/01"}) == (
        "Commande 1001, prévue le 10/01, suivi — —"
    )
    assert domain.macro_placeholders(body) == ["order_number", "promised_date", "tracking_link", "unknown"]


# --- Returns desk -------------------------------------------------------------------------------------------------


@given(st.dates(), st.integers(min_value=-400, max_value=400), st.integers(min_value=0, max_value=365))
def test_the_return_window_is_the_days_from_departure_inclusive(since: date, offset: int, days: int) -> None:
    try:
        today = since + timedelta(days=offset)
    except OverflowError:
        return
    assert domain.return_window_open(since=since, today=today, days=days) == (0 <= offset <= days)
    assert not domain.return_window_open(since=None, today=today, days=days)


@given(
    st.lists(st.decimals(min_value=0, max_value=1000, places=2), max_size=10),
    st.decimals(min_value=-10, max_value=5000, places=2),
)
def test_a_return_refunds_its_units_never_more_than_is_left(prices: list[Decimal], left: Decimal) -> None:
    amount = domain.return_refund_amount(unit_prices=prices, left=left)
    assert Decimal("0") <= amount <= max(left, Decimal("0"))
    assert amount == max(Decimal("0"), min(sum(prices, Decimal("0")), left))


def test_rma_references_and_grades_as_scanned() -> None:
    assert domain.rma_reference_id("RMA12") == 12
    assert domain.rma_reference_id(" rma-7 ") == 7
    assert domain.rma_reference_id("SHOP-12") is None and domain.rma_reference_id("RMA") is None
    assert domain.grade_check(" a ") == "A"
    for bad in ("", "D", "AB"):
        with pytest.raises(ValueError):
            domain.grade_check(bad)
