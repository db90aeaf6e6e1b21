"""The promise rule without a database: a table of hand-computed cases, then properties.

Every expected date below was worked out by hand from a 2025 calendar before the rule ran it (French public
holidays 2025: 1 Jan Wed, 21 Apr Easter Monday, 1 May Thu, 8 May Thu, 29 May Ascension Thu, 9 Jun Whit Monday,
14 Jul Mon, 15 Aug Fri, 1 Nov Sat, 11 Nov Tue, 25 Dec Thu; 1 Jan 2026 Thu. Clocks: 30 Mar 2025 +01→+02, 26 Oct
2025 +02→+01). The snapshot:

- site in Europe/Paris, open Monday–Saturday 08:00–18:00, French holidays, closed on Friday 30 May 2025 (the
  Ascension bridge);
- ``colissimo``: cut-off 15:00 Monday–Friday, delivers Monday–Saturday; mainland 80 % in 1 day, 97 % in 2,
  100 % in 3; Corsica 60 % 2 / 90 % 3 / 100 % 4; La Réunion 50 % 4 / 95 % 6 / 100 % 8;
- ``express``: cut-off 17:00 Monday–Friday and 11:00 Saturday, delivers Monday–Saturday; mainland 96 % in 1 day;
- ``relay`` (pickup point): cut-off 14:00 Monday–Friday, delivers Tuesday–Saturday; mainland 90 % 2 / 99 % 3 /
  100 % 4; Belgium 90 % 3 / 100 % 4;
- capacity: pick 200 lines/h, pack 300 lines/h, nothing waiting unless the case says; confidence 95 %.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quai.orders.domain import AddressProblem
from quai.promise import domain
from quai.promise.domain import (
    Capacity,
    CarrierService,
    CartLine,
    DestinationZone,
    Problem,
    PromiseResult,
    SiteCalendar,
    Snapshot,
    Transit,
)

WEEKDAYS = {1, 2, 3, 4, 5}

CALENDAR = SiteCalendar(
    time_zone="Europe/Paris",
    opening_days=frozenset({1, 2, 3, 4, 5, 6}),
    opens_at=time(8),
    closes_at=time(18),
    holiday_country="FR",
    closures=frozenset({date(2025, 5, 30)}),
)
COLISSIMO = CarrierService(
    code="colissimo",
    name="Colissimo domicile",
    carrier="colissimo",
    cutoffs={d: time(15) for d in WEEKDAYS},
    delivery_weekdays=frozenset({1, 2, 3, 4, 5, 6}),
    transit={
        domain.MAINLAND: Transit(((1, 0.80), (2, 0.97), (3, 1.0))),
        domain.CORSICA: Transit(((2, 0.60), (3, 0.90), (4, 1.0))),
        "FR-974": Transit(((4, 0.50), (6, 0.95), (8, 1.0))),
    },
    price=Decimal("6.90"),
)
EXPRESS = CarrierService(
    code="express",
    name="Express 24h",
    carrier="chronopost",
    cutoffs={**{d: time(17) for d in WEEKDAYS}, 6: time(11)},
    delivery_weekdays=frozenset({1, 2, 3, 4, 5, 6}),
    transit={domain.MAINLAND: Transit(((1, 0.96), (2, 1.0)))},
    price=Decimal("12.50"),
)
RELAY = CarrierService(
    code="relay",
    name="Point relais",
    carrier="mondial_relay",
    cutoffs={d: time(14) for d in WEEKDAYS},
    delivery_weekdays=frozenset({2, 3, 4, 5, 6}),
    transit={
        domain.MAINLAND: Transit(((2, 0.90), (3, 0.99), (4, 1.0))),
        "BE": Transit(((3, 0.90), (4, 1.0))),
    },
    pickup_point=True,
    price=Decimal("4.50"),
)
SNAPSHOT = Snapshot(
    calendar=CALENDAR,
    services=(COLISSIMO, EXPRESS, RELAY),
    capacity=Capacity(lines_per_hour={"pick": 200, "pack": 300}, backlog_lines={"pick": 0, "pack": 0}),
    putaway_hours=2,
)
IN_STOCK = (CartLine("TSHIRT-M", 2, on_hand=10),)


def _d(text: str) -> date:
    return date.fromisoformat(text)


def _zone(country: str, postcode: str) -> DestinationZone:
    zone = domain.destination_zone(country, postcode)
    assert isinstance(zone, DestinationZone), zone
    return zone


def _run(at: str, service: str, *, country="FR", postcode="75011", snapshot=SNAPSHOT, lines=IN_STOCK):
    result = domain.promise_compute(
        snapshot, lines=lines, zone=_zone(country, postcode), at=datetime.fromisoformat(at), services=[service]
    )
    assert isinstance(result, PromiseResult), result
    return result


def _backlog(pick: int, pack: int = 0) -> Snapshot:
    return replace(SNAPSHOT, capacity=replace(SNAPSHOT.capacity, backlog_lines={"pick": pick, "pack": pack}))


def _widened(zone: str, confidence: float) -> Snapshot:
    return replace(SNAPSHOT, services=(replace(COLISSIMO, lane_confidence={zone: confidence}), EXPRESS, RELAY))


ASN_TOMORROW = (CartLine("TSHIRT-M", 2, on_hand=0, incoming=((date(2025, 3, 11), 5),)),)
PART_ON_ASN = (CartLine("TSHIRT-M", 2, on_hand=1, incoming=((date(2025, 3, 11), 1), (date(2025, 3, 20), 9))),)

# (case, order instant, service, ship date, earliest delivery, latest delivery, options)
CASES = [
    # Fridays and cut-offs
    ("friday before the cut-off", "2025-03-14T10:00+01:00", "colissimo", "2025-03-14", "2025-03-15", "2025-03-17", {}),
    ("friday after the cut-off", "2025-03-14T16:00+01:00", "colissimo", "2025-03-17", "2025-03-18", "2025-03-19", {}),
    ("exactly at the cut-off", "2025-03-14T15:00:00+01:00", "colissimo", "2025-03-17", "2025-03-18", "2025-03-19", {}),
    ("a minute before it", "2025-03-14T14:59:00+01:00", "colissimo", "2025-03-14", "2025-03-15", "2025-03-17", {}),
    # One line takes 18 s to pick (200 lines an hour) and 12 s to pack, side by side: a second is too little.
    (
        "one second before it: too late for its own picking",
        "2025-03-14T14:59:59+01:00",
        "colissimo",
        "2025-03-17",
        "2025-03-18",
        "2025-03-19",
        {},
    ),
    (
        "twenty seconds before it: picked just in time",
        "2025-03-14T14:59:40+01:00",
        "colissimo",
        "2025-03-14",
        "2025-03-15",
        "2025-03-17",
        {},
    ),
    ("sunday order", "2025-03-09T12:00+01:00", "colissimo", "2025-03-10", "2025-03-11", "2025-03-12", {}),
    # Saturday morning services
    (
        "saturday express before 11:00",
        "2025-03-15T10:00+01:00",
        "express",
        "2025-03-15",
        "2025-03-17",
        "2025-03-17",
        {},
    ),
    ("saturday express after 11:00", "2025-03-15T11:30+01:00", "express", "2025-03-17", "2025-03-18", "2025-03-18", {}),
    (
        "saturday, no colissimo pick-up",
        "2025-03-15T10:00+01:00",
        "colissimo",
        "2025-03-17",
        "2025-03-18",
        "2025-03-19",
        {},
    ),
    # 14 July (a Monday in 2025)
    ("friday 11 july late", "2025-07-11T16:00+02:00", "colissimo", "2025-07-15", "2025-07-16", "2025-07-17", {}),
    ("friday 11 july early", "2025-07-11T10:00+02:00", "colissimo", "2025-07-11", "2025-07-12", "2025-07-15", {}),
    ("eve of 14 july, express", "2025-07-13T20:00+02:00", "express", "2025-07-15", "2025-07-16", "2025-07-16", {}),
    # Ascension (Thu 29 May) and its bridge (site closed Fri 30 May)
    ("ascension eve late", "2025-05-28T16:00+02:00", "colissimo", "2025-06-02", "2025-06-03", "2025-06-04", {}),
    ("ascension eve express", "2025-05-28T18:00+02:00", "express", "2025-05-31", "2025-06-02", "2025-06-02", {}),
    ("ascension eve early", "2025-05-28T10:00+02:00", "colissimo", "2025-05-28", "2025-05-30", "2025-05-31", {}),
    # 1 and 8 May (Thursdays)
    ("eve of 1 may late", "2025-04-30T16:00+02:00", "colissimo", "2025-05-02", "2025-05-03", "2025-05-05", {}),
    ("eve of 1 may early", "2025-04-30T10:00+02:00", "colissimo", "2025-04-30", "2025-05-02", "2025-05-03", {}),
    ("eve of 8 may late", "2025-05-07T15:30+02:00", "colissimo", "2025-05-09", "2025-05-10", "2025-05-12", {}),
    # 24–26 December
    ("24 december early", "2025-12-24T10:00+01:00", "colissimo", "2025-12-24", "2025-12-26", "2025-12-27", {}),
    ("24 december late", "2025-12-24T16:00+01:00", "colissimo", "2025-12-26", "2025-12-27", "2025-12-29", {}),
    ("23 december late", "2025-12-23T16:00+01:00", "colissimo", "2025-12-24", "2025-12-26", "2025-12-27", {}),
    (
        "24 december to alsace (26 dec is a holiday there)",
        "2025-12-24T10:00+01:00",
        "colissimo",
        "2025-12-24",
        "2025-12-27",
        "2025-12-29",
        {"postcode": "67000"},
    ),
    # New Year
    ("new year's eve late", "2025-12-31T16:00+01:00", "colissimo", "2026-01-02", "2026-01-03", "2026-01-05", {}),
    ("new year's eve early", "2025-12-31T10:00+01:00", "colissimo", "2025-12-31", "2026-01-02", "2026-01-03", {}),
    # Easter Monday (21 April)
    ("good friday late", "2025-04-18T16:00+02:00", "colissimo", "2025-04-22", "2025-04-23", "2025-04-24", {}),
    ("easter saturday express", "2025-04-19T10:00+02:00", "express", "2025-04-19", "2025-04-22", "2025-04-22", {}),
    # Both clock changes and offsets
    ("before the spring change", "2025-03-28T16:00+01:00", "colissimo", "2025-03-31", "2025-04-01", "2025-04-02", {}),
    ("before the autumn change", "2025-10-24T16:00+02:00", "colissimo", "2025-10-27", "2025-10-28", "2025-10-29", {}),
    ("stale winter offset", "2025-03-31T14:30:00+01:00", "colissimo", "2025-04-01", "2025-04-02", "2025-04-03", {}),
    ("right summer offset", "2025-03-31T14:30:00+02:00", "colissimo", "2025-03-31", "2025-04-01", "2025-04-02", {}),
    ("sent in UTC", "2025-03-31T12:59:00+00:00", "colissimo", "2025-03-31", "2025-04-01", "2025-04-02", {}),
    ("stale summer offset", "2025-10-27T14:30:00+02:00", "colissimo", "2025-10-27", "2025-10-28", "2025-10-29", {}),
    # Pickup point
    ("pickup point monday", "2025-03-10T10:00+01:00", "relay", "2025-03-10", "2025-03-12", "2025-03-13", {}),
    ("pickup point friday", "2025-03-14T13:00+01:00", "relay", "2025-03-14", "2025-03-18", "2025-03-19", {}),
    (
        "pickup point belgium",
        "2025-03-10T10:00+01:00",
        "relay",
        "2025-03-10",
        "2025-03-13",
        "2025-03-14",
        {"country": "BE", "postcode": "1000"},
    ),
    # Corsica and La Réunion
    (
        "corsica 20000",
        "2025-03-10T10:00+01:00",
        "colissimo",
        "2025-03-10",
        "2025-03-12",
        "2025-03-14",
        {"postcode": "20000"},
    ),
    (
        "corsica 2A004",
        "2025-03-10T10:00+01:00",
        "colissimo",
        "2025-03-10",
        "2025-03-12",
        "2025-03-14",
        {"postcode": "2A004"},
    ),
    (
        "la réunion",
        "2025-03-10T10:00+01:00",
        "colissimo",
        "2025-03-10",
        "2025-03-14",
        "2025-03-17",
        {"postcode": "97400"},
    ),
    (
        "la réunion over 20 december",
        "2025-12-17T10:00+01:00",
        "colissimo",
        "2025-12-17",
        "2025-12-23",
        "2025-12-26",
        {"postcode": "97400"},
    ),
    # Capacity
    (
        "capacity full today",
        "2025-03-10T09:00+01:00",
        "colissimo",
        "2025-03-11",
        "2025-03-12",
        "2025-03-13",
        {"snapshot": _backlog(1400)},
    ),
    (
        "backlog and cart done right at the cut-off",  # 1,199 lines waiting + the cart's 1 = 6 h at 200 an hour
        "2025-03-10T09:00+01:00",
        "colissimo",
        "2025-03-10",
        "2025-03-11",
        "2025-03-12",
        {"snapshot": _backlog(1199)},
    ),
    (
        "backlog done at the cut-off leaves no time for the cart",
        "2025-03-10T09:00+01:00",
        "colissimo",
        "2025-03-11",
        "2025-03-12",
        "2025-03-13",
        {"snapshot": _backlog(1200)},
    ),
    (
        "backlog over two days",
        "2025-03-10T09:00+01:00",
        "colissimo",
        "2025-03-12",
        "2025-03-13",
        "2025-03-14",
        {"snapshot": _backlog(4000)},
    ),
    (
        "pack is the slower stage",
        "2025-03-10T09:00+01:00",
        "colissimo",
        "2025-03-11",
        "2025-03-12",
        "2025-03-13",
        {"snapshot": _backlog(100, 2000)},
    ),
    (
        "backlog before opening",
        "2025-03-10T06:00+01:00",
        "colissimo",
        "2025-03-10",
        "2025-03-11",
        "2025-03-12",
        {"snapshot": _backlog(200)},
    ),
    # Stock on an ASN
    (
        "stock only on an ASN tomorrow",
        "2025-03-10T10:00+01:00",
        "colissimo",
        "2025-03-12",
        "2025-03-13",
        "2025-03-14",
        {"lines": ASN_TOMORROW},
    ),
    (
        "one on hand, the rest on the ASN",
        "2025-03-10T10:00+01:00",
        "colissimo",
        "2025-03-12",
        "2025-03-13",
        "2025-03-14",
        {"lines": PART_ON_ASN},
    ),
    # A lane widened after broken promises
    (
        "widened lane",
        "2025-03-10T10:00+01:00",
        "colissimo",
        "2025-03-10",
        "2025-03-11",
        "2025-03-13",
        {"snapshot": _widened(domain.MAINLAND, 0.99)},
    ),
]


@pytest.mark.parametrize(
    ("case", "at", "service", "ship", "earliest", "latest", "options"), CASES, ids=[c[0] for c in CASES]
)
def test_hand_computed_promises(case, at, service, ship, earliest, latest, options):
    result = _run(at, service, **options)
    assert not result.unserved
    (option,) = result.options
    assert (option.ship_date, option.delivery_earliest, option.delivery_latest) == (_d(ship), _d(earliest), _d(latest))
    assert option.cutoff > datetime.fromisoformat(at)


def test_there_are_at_least_forty_hand_computed_cases():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("at", "seconds"),
    [
        ("2025-03-14T10:00+01:00", 5 * 3600),
        ("2025-03-14T16:00+01:00", 71 * 3600),  # to Monday 15:00
        ("2025-03-14T15:00:00+01:00", 72 * 3600),
        ("2025-03-14T14:59:00+01:00", 60),
        ("2025-03-28T16:00+01:00", 70 * 3600),  # the spring weekend is an hour shorter
        ("2025-10-24T16:00+02:00", 72 * 3600),  # and the autumn one an hour longer: 71 + 1
        ("2025-03-31T14:30:00+02:00", 1800),
        ("2025-10-27T14:30:00+02:00", 5400),  # 12:30 UTC is 13:30 in winter time
    ],
)
def test_seconds_left_before_the_cutoff_count_real_seconds_across_clock_changes(at, seconds):
    (option,) = _run(at, "colissimo").options
    assert option.seconds_to_cutoff == seconds


def test_the_cutoff_is_given_in_the_sites_local_time_with_its_offset():
    (option,) = _run("2025-03-28T16:00+01:00", "colissimo").options
    assert option.cutoff.isoformat() == "2025-03-31T15:00:00+02:00"


def test_stock_on_an_asn_says_from_which_date_and_stock_on_hand_says_now():
    assert _run("2025-03-10T10:00+01:00", "colissimo").stock.available_now
    stock = _run("2025-03-10T10:00+01:00", "colissimo", lines=ASN_TOMORROW).stock
    assert (stock.available_now, stock.available_from) == (False, date(2025, 3, 11))
    assert stock.ready_at.isoformat() == "2025-03-12T10:00:00+01:00"  # Tuesday's close, then 2 h of putaway


def test_a_pickup_point_service_says_so_and_options_come_soonest_first():
    result = domain.promise_compute(
        SNAPSHOT, lines=IN_STOCK, zone=_zone("FR", "75011"), at=datetime.fromisoformat("2025-03-10T10:00+01:00")
    )
    assert isinstance(result, PromiseResult)
    assert [o.service for o in result.options] == ["express", "colissimo", "relay"]
    assert [o.pickup_point for o in result.options] == [False, False, True]


@pytest.mark.parametrize(
    ("service", "country", "postcode"),
    [("express", "FR", "97400"), ("colissimo", "DE", "10115"), ("colissimo", "FR", "98800"), ("relay", "FR", "20000")],
)
def test_a_service_that_does_not_serve_the_zone_says_so(service, country, postcode):
    result = _run("2025-03-10T10:00+01:00", service, country=country, postcode=postcode)
    assert result.options == ()
    assert [(u.service, u.code) for u in result.unserved] == [(service, "zone_not_served")]


@pytest.mark.parametrize(
    ("country", "postcode", "code"),
    [
        ("FR", "96000", "postcode_invalid"),
        ("FR", "7501", "postcode_invalid"),
        ("FR", "", "postcode_required"),
        ("ZZ", "1", "country_invalid"),
        ("BE", "0999", "postcode_invalid"),
    ],
)
def test_an_address_that_is_no_address_is_refused_with_its_code(country, postcode, code):
    problem = domain.destination_zone(country, postcode)
    assert isinstance(problem, AddressProblem)
    assert problem.code == code


@pytest.mark.parametrize(
    ("lines", "at", "services", "code"),
    [
        (
            (CartLine("A", 3, on_hand=1, incoming=((date(2025, 3, 11), 1),)),),
            "2025-03-10T10:00+01:00",
            None,
            "out_of_stock",
        ),
        ((CartLine("A", 0, on_hand=10),), "2025-03-10T10:00+01:00", None, "invalid_quantity"),
        (IN_STOCK, "2025-03-10T10:00", None, "invalid_instant"),
        (IN_STOCK, "2025-03-10T10:00+01:00", ["dhl"], "service_unavailable"),
        ((), "2025-03-10T10:00+01:00", None, "empty_cart"),
    ],
)
def test_what_cannot_be_promised_is_a_problem_with_a_code(lines, at, services, code):
    result = domain.promise_compute(
        SNAPSHOT, lines=lines, zone=_zone("FR", "75011"), at=datetime.fromisoformat(at), services=services
    )
    assert isinstance(result, Problem)
    assert result.code == code


@pytest.mark.parametrize(
    ("country", "postcode", "zone", "subdivision"),
    [
        ("FR", "75011", "FR-MAINLAND", ""),
        ("fr", " 57000 ", "FR-MAINLAND", "57"),
        ("FR", "20200", "FR-CORSICA", ""),
        ("FR", "2B200", "FR-CORSICA", ""),
        ("FR", "97110", "FR-971", "971"),
        ("FR", "97200", "FR-972", "972"),
        ("FR", "97300", "FR-973", "973"),
        ("FR", "97400", "FR-974", "974"),
        ("FR", "97500", "FR-975", "PM"),
        ("FR", "97600", "FR-976", "976"),
        ("FR", "97133", "FR-971", "971"),
        ("FR", "98800", "FR-COM", ""),
        ("FR", "98714", "FR-COM", ""),
        ("BE", "1000", "BE", ""),
    ],
)
def test_french_destinations_fall_in_their_zone(country, postcode, zone, subdivision):
    found = _zone(country, postcode)
    assert (found.code, found.holiday_subdivision) == (zone, subdivision)


def test_working_time_skips_nights_weekends_holidays_and_closures():
    start = datetime.fromisoformat("2025-05-28T17:00+02:00")  # Wednesday, 1 h before closing
    # 1 h Wednesday; Thursday holiday, Friday closed; Saturday 08:00 + 2 h.
    assert domain.add_working_time(CALENDAR, start, 3).isoformat() == "2025-05-31T10:00:00+02:00"
    assert domain.add_working_time(CALENDAR, start, 0) == start


def test_transit_reads_its_days_at_a_confidence():
    transit = Transit(((1, 0.80), (2, 0.97), (3, 1.0)))
    assert (transit.earliest_days, transit.days_at(0.95), transit.days_at(0.80), transit.days_at(0.999)) == (1, 2, 1, 3)


@pytest.mark.parametrize("steps", [(), ((2, 0.5), (1, 1.0)), ((1, 0.9), (2, 0.8)), ((1, 1.5),), ((-1, 1.0),)])
def test_a_transit_that_is_no_distribution_is_refused(steps):
    with pytest.raises(ValueError):
        Transit(steps)


def test_observed_transit_replaces_the_seed_once_enough_parcels_arrived():
    seed = Transit(((1, 0.80), (2, 0.97), (3, 1.0)))
    assert domain.transit_observed(seed, {1: 5, 2: 5}) is seed
    observed = domain.transit_observed(seed, {2: 10, 3: 8, 5: 2})
    assert observed.steps == ((2, 0.5), (3, 0.9), (5, 1.0))
    assert observed.days_at(0.95) == 5


def test_transit_days_between_count_delivery_days():
    zone = _zone("FR", "75011")
    weekdays = frozenset({1, 2, 3, 4, 5, 6})
    assert (
        domain.transit_days_between(date(2025, 12, 24), date(2025, 12, 27), delivery_weekdays=weekdays, zone=zone) == 2
    )


def test_a_delivery_after_the_promised_date_is_broken_with_the_first_thing_that_slipped():
    promised = date(2025, 3, 12)
    assert domain.delivery_outcome(delivered_on=promised, promised_by=promised, shipped_on_time=False) == ("kept", "")
    late = promised + timedelta(days=1)
    assert domain.delivery_outcome(delivered_on=late, promised_by=promised, shipped_on_time=True) == (
        "broken",
        "carrier_late",
    )
    assert domain.delivery_outcome(delivered_on=late, promised_by=promised, shipped_on_time=False) == (
        "broken",
        "warehouse_late",
    )
    assert domain.delivery_outcome(
        delivered_on=late, promised_by=promised, shipped_on_time=False, hold_reason="address"
    ) == ("broken", "address_problem")
    assert domain.delivery_outcome(
        delivered_on=late, promised_by=promised, shipped_on_time=False, stock_short=True
    ) == ("broken", "stock_short")


def test_orders_at_risk_are_those_whose_work_ahead_ends_after_their_cutoff():
    now = datetime.fromisoformat("2025-03-10T13:00+01:00")
    cutoff = datetime.fromisoformat("2025-03-10T15:00+01:00")
    tomorrow = cutoff + timedelta(days=1)
    orders = [domain.OpenOrder(1, 200, cutoff), domain.OpenOrder(2, 150, cutoff), domain.OpenOrder(3, 100, tomorrow)]
    capacity = Capacity(lines_per_hour={"pick": 200, "pack": 300}, backlog_lines={})
    # pick is the slower stage: 200 lines end at 14:00, 350 at 14:45, 450 at 15:15 (the third ships tomorrow).
    assert domain.orders_at_risk(CALENDAR, capacity, orders, now) == []
    orders[1] = domain.OpenOrder(2, 250, cutoff)  # 450 lines by 15:15: late
    assert domain.orders_at_risk(CALENDAR, capacity, orders, now) == [2]


def test_a_lane_under_its_kept_threshold_widens_its_confidence():
    assert domain.lane_confidence(kept=18, total=20, threshold=0.95, base=0.95, widened=0.99) == 0.99
    assert domain.lane_confidence(kept=19, total=20, threshold=0.95, base=0.95, widened=0.99) == 0.95
    assert domain.lane_confidence(kept=1, total=5, threshold=0.95, base=0.95, widened=0.99) == 0.95


# --- Properties ---------------------------------------------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31)).map(
    lambda d: d.replace(tzinfo=CALENDAR.zone)
)


@settings(max_examples=150, deadline=None)
@given(
    at=instants, later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)), backlog=st.integers(0, 5000)
)
def test_a_later_order_never_ships_or_arrives_earlier(at, later, backlog):
    snapshot = _backlog(backlog)
    first, second = (
        domain.promise_compute(snapshot, lines=IN_STOCK, zone=_zone("FR", "75011"), at=instant, services=["colissimo"])
        for instant in (at, at + later)
    )
    assert isinstance(first, PromiseResult) and isinstance(second, PromiseResult)
    (a,), (b,) = first.options, second.options
    assert a.ship_date <= b.ship_date and a.delivery_latest <= b.delivery_latest
    for option in (a, b):
        assert option.ship_date >= first.at.date()
        assert option.delivery_earliest <= option.delivery_latest
        assert CALENDAR.works_on(option.ship_date) and option.ship_date.isoweekday() in COLISSIMO.cutoffs


@settings(max_examples=100, deadline=None)
@given(at=instants, backlog=st.integers(0, 5000))
def test_more_work_ahead_never_brings_the_date_forward(at, backlog):
    results = [
        domain.promise_compute(_backlog(b), lines=IN_STOCK, zone=_zone("FR", "75011"), at=at, services=["colissimo"])
        for b in (backlog, backlog + 500)
    ]
    assert isinstance(results[0], PromiseResult) and isinstance(results[1], PromiseResult)
    assert results[0].options[0].ship_date <= results[1].options[0].ship_date


def test_a_big_cart_needs_its_own_picking_time_before_the_cutoff():
    # 100 lines take 30 minutes to pick at 200 an hour (and 20 to pack, side by side): at 14:40 one line ships
    # today, the hundred-line cart misses 15:00 and ships on Monday; at 14:20 both make it.
    big = tuple(CartLine(sku_code=f"SKU-{k}", quantity=1, on_hand=5) for k in range(100))
    assert _run("2025-03-14T14:40+01:00", "colissimo").options[0].ship_date == _d("2025-03-14")
    assert _run("2025-03-14T14:40+01:00", "colissimo", lines=big).options[0].ship_date == _d("2025-03-17")
    assert _run("2025-03-14T14:20+01:00", "colissimo", lines=big).options[0].ship_date == _d("2025-03-14")


def test_the_cart_is_done_no_earlier_than_the_backlog_and_no_earlier_than_its_own_work():
    capacity = Capacity(lines_per_hour={"pick": 200, "pack": 300}, backlog_lines={"pick": 400, "pack": 0})
    now = datetime.fromisoformat("2025-03-10T09:00+01:00")
    # Behind 400 lines, 2 more: 402 / 200 h from now.
    assert domain.cart_done_at(CALENDAR, capacity, cart_lines=2, now=now, starts_at=now) == now + timedelta(
        hours=402 / 200
    )
    # Held until 12:00 (its stock or its buffer): the backlog is long done, its own 2 lines take 36 s from then.
    noon = datetime.fromisoformat("2025-03-10T12:00+01:00")
    assert domain.cart_done_at(CALENDAR, capacity, cart_lines=2, now=now, starts_at=noon) == noon + timedelta(
        seconds=36
    )
