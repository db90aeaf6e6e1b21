"""Release limits (the throttle an event sale pushes down): every wave release holds back the orders beyond them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quai.core import clock
from quai.core.errors import ValidationFailed
from quai.fulfillment import domain, selectors, services
from quai.fulfillment.models import ReleaseLimit
from quai.fulfillment.tests.factories import floor_for, released_order, wave_for
from quai.orders.models import Order
from quai.tenants.scope import Scope
from quai.tenants.tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db
NOON = datetime(2030, 3, 5, 12, tzinfo=UTC)


def _orders(floor, count, prefix="T", lines=1):  # type: ignore[no-untyped-def]
    return [released_order(floor, f"{prefix}-{n}", [(k, 1) for k in range(lines)]) for n in range(count)]


# --- The rule, without a database ------------------------------------------------------------------------------


def test_the_room_counts_the_last_hour_since_the_limit_started():
    start = NOON - timedelta(minutes=30)
    releases = [
        domain.Release(at=NOON - timedelta(minutes=90), orders=50, lines=50),  # outside the sliding hour
        domain.Release(at=NOON - timedelta(minutes=40), orders=7, lines=9),  # before the limit started
        domain.Release(at=NOON - timedelta(minutes=20), orders=3, lines=4),
    ]
    room = domain.release_room(
        1, [domain.LimitFigures(orders_per_hour=5, lines_per_hour=None, valid_from=start)], releases, now=NOON
    )
    assert room.orders_left == 2 and room.lines_left is None
    assert room.next_room_at == NOON + timedelta(minutes=40)
    older = domain.release_room(
        1,
        [domain.LimitFigures(orders_per_hour=20, lines_per_hour=None, valid_from=NOON - timedelta(days=1))],
        releases,
        now=NOON,
    )
    assert older.orders_left == 10  # 7 + 3 in the hour; the 50 of 90 minutes ago no longer count


def test_the_strictest_figure_applies_and_a_big_order_goes_alone_when_the_hour_is_fresh():
    figures = [
        domain.LimitFigures(orders_per_hour=10, lines_per_hour=None, valid_from=NOON - timedelta(hours=2)),
        domain.LimitFigures(orders_per_hour=4, lines_per_hour=6, valid_from=NOON - timedelta(hours=2)),
    ]
    room = domain.release_room(1, figures, [], now=NOON)
    assert (room.orders_left, room.lines_left, room.orders_per_hour) == (4, 6, 4)
    assert room.fits(lines=9)  # bigger than the hour's figure, but nothing went yet: it goes alone
    room.take(lines=9)
    assert room.lines_left == 0 and not room.fits(lines=1)


# --- Every release path honours them ------------------------------------------------------------------------------


def test_a_manual_release_holds_back_the_orders_beyond_the_limit_and_says_why(merchant):
    clock.set_now(NOON)
    floor = floor_for(merchant)
    _orders(floor, 5)
    services.release_limit_set(merchant=merchant, site=floor.site, source="campaign:1", orders_per_hour=2)
    wave = wave_for(floor)
    assert wave.order_count == 2
    assert wave.held == [
        {
            "merchant_id": merchant.pk,
            "orders": 3,
            "code": "release_limit_reached",
            "message": wave.held[0]["message"],
            "orders_per_hour": 2,
            "lines_per_hour": None,
            "sources": ["campaign:1"],
            "next_room_at": None,
        }
    ]
    assert "3" in wave.held[0]["message"]
    # Half an hour later the limit is still full: nothing of the merchant goes, and the wave says when room comes.
    clock.set_now(NOON + timedelta(minutes=30))
    again = wave_for(floor)
    assert again.order_count == 0 and again.held[0]["orders"] == 3
    assert datetime.fromisoformat(again.held[0]["next_room_at"]) == NOON + timedelta(hours=1)
    # Past the sliding hour, room again for two.
    clock.set_now(NOON + timedelta(minutes=61))
    assert wave_for(floor).order_count == 2  # room for two again; the fifth waits


def test_another_merchants_orders_are_not_held(merchant):
    clock.set_now(NOON)
    floor = floor_for(merchant)
    _orders(floor, 3)
    other = MerchantFactory(code="lumen")
    services.release_limit_set(merchant=other, site=floor.site, source="campaign:9", orders_per_hour=1)
    wave = wave_for(floor)
    assert wave.order_count == 3 and wave.held == []


def test_an_order_lines_limit_holds_orders_whose_lines_do_not_fit(merchant):
    clock.set_now(NOON)
    floor = floor_for(merchant)
    _orders(floor, 3, lines=2)
    services.release_limit_set(merchant=merchant, site=floor.site, source="manual", lines_per_hour=5)
    wave = wave_for(floor)
    assert wave.order_count == 2 and wave.held[0]["orders"] == 1 and wave.held[0]["lines_per_hour"] == 5


def test_the_limit_applies_only_inside_its_window(merchant):
    clock.set_now(NOON)
    floor = floor_for(merchant)
    _orders(floor, 4)
    services.release_limit_set(
        merchant=merchant,
        site=floor.site,
        source="campaign:2",
        orders_per_hour=1,
        valid_from=NOON + timedelta(hours=1),
        valid_until=NOON + timedelta(hours=3),
    )
    assert wave_for(floor, capacity=2).order_count == 2  # before the window: no limit
    clock.set_now(NOON + timedelta(hours=1, minutes=5))
    inside = wave_for(floor)
    assert inside.order_count == 1 and inside.held[0]["orders"] == 1  # the first hour's releases were before it
    clock.set_now(NOON + timedelta(hours=3))
    assert wave_for(floor).order_count == 1 and not ReleaseLimit.objects.filter(valid_until__gt=clock.now()).exists()


def test_the_scheduled_release_respects_the_limit(merchant, settings):
    clock.set_now(NOON)
    settings.QUAI_FULFILMENT_SCHEDULED_WAVE_SIZE = 10
    floor = floor_for(merchant)
    _orders(floor, 4)
    services.release_limit_set(merchant=merchant, site=floor.site, source="campaign:3", orders_per_hour=3)
    released = services.waves_release_scheduled()
    assert len(released) == 1
    wave = selectors.wave_get(wave_id=released[0])
    assert wave.scheduled and wave.order_count == 3 and wave.held[0]["orders"] == 1
    assert Order.objects.filter(merchant=merchant, status="released").count() == 4  # waiting, not changed


def test_setting_again_from_the_same_source_replaces_and_clearing_lifts_it(merchant):
    clock.set_now(NOON)
    floor = floor_for(merchant)
    services.release_limit_set(merchant=merchant, site=floor.site, source="campaign:4", orders_per_hour=3)
    services.release_limit_set(merchant=merchant, site=floor.site, source="campaign:4", orders_per_hour=8)
    limits = list(selectors.release_limits_in_force(scope=Scope.merchant(merchant), site_id=floor.site.pk, at=NOON))
    assert [(limit.source, limit.orders_per_hour) for limit in limits] == [("campaign:4", 8)]
    assert not selectors.release_limits_in_force(
        scope=Scope.merchant(MerchantFactory()), site_id=floor.site.pk, at=NOON
    )
    assert services.release_limit_clear(merchant=merchant, site=floor.site, source="campaign:4") == 1
    assert services.release_limit_clear(merchant=merchant, site=floor.site, source="campaign:4") == 0
    _orders(floor, 4)
    assert wave_for(floor).order_count == 4


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"orders_per_hour": -1}, "invalid_release_limit"),
        ({"orders_per_hour": 0}, "invalid_release_limit"),
        ({"lines_per_hour": 0, "valid_until": NOON + timedelta(hours=2)}, "invalid_release_limit"),
        ({"orders_per_hour": 2_000_000}, "invalid_release_limit"),
        ({"orders_per_hour": True}, "invalid_release_limit"),
        ({}, "invalid_release_limit"),
        ({"orders_per_hour": 5, "valid_until": NOON - timedelta(hours=1)}, "invalid_release_window"),
        (
            {"orders_per_hour": 5, "valid_from": NOON + timedelta(hours=2), "valid_until": NOON + timedelta(hours=1)},
            "invalid_release_window",
        ),
        ({"orders_per_hour": 5, "valid_from": datetime(2030, 3, 5, 12)}, "invalid_instant"),
        ({"orders_per_hour": 5, "source": "  "}, "source_required"),
    ],
)
def test_bad_limits_are_refused_with_a_clear_code_and_nothing_written(merchant, kwargs, code):
    clock.set_now(NOON)
    floor = floor_for(merchant, skus=1)
    arguments = {"merchant": merchant, "site": floor.site, "source": "campaign:5", **kwargs}
    with pytest.raises(ValidationFailed) as refused:
        services.release_limit_set(**arguments)
    assert refused.value.code == code
    assert not ReleaseLimit.objects.exists()


def test_the_wave_api_answers_what_was_held_back(merchant, staff_api):
    clock.set_now(NOON)
    floor = floor_for(merchant)
    _orders(floor, 3)
    services.release_limit_set(merchant=merchant, site=floor.site, source="campaign:6", orders_per_hour=1)
    answer = staff_api.post("/api/v1/fulfilment/waves", {"site_id": floor.site.pk, "capacity": 10})
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["order_count"] == 1
    assert [(h["merchant_id"], h["orders"], h["code"]) for h in body["held"]] == [
        (merchant.pk, 2, "release_limit_reached")
    ]
