"""The release-limit rule as a property (Hypothesis, no database): whatever the waves' timing and the orders' sizes,
taking orders while the room says they fit never sends more than the limit in any sliding hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from quai.fulfillment import domain

START = datetime(2030, 3, 5, 8, tzinfo=UTC)

waves = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=30),  # minutes since the previous wave
        st.lists(st.integers(min_value=1, max_value=6), max_size=12),  # the lines of each order waiting
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(waves=waves, orders_per_hour=st.integers(1, 15), lines_per_hour=st.one_of(st.none(), st.integers(6, 40)))
def test_no_sliding_hour_ever_holds_more_than_the_limit(waves, orders_per_hour, lines_per_hour):  # type: ignore[no-untyped-def]
    limit = domain.LimitFigures(orders_per_hour=orders_per_hour, lines_per_hour=lines_per_hour, valid_from=START)
    releases: list[domain.Release] = []
    now = START
    for gap, orders in waves:
        now += timedelta(minutes=gap)
        room = domain.release_room(1, [limit], releases, now=now)
        sent, lines = 0, 0
        for size in orders:
            if room.fits(lines=size):
                room.take(lines=size)
                sent, lines = sent + 1, lines + size
            else:
                room.held += 1
        assert room.held + sent == len(orders)
        if sent:
            releases.append(domain.Release(at=now, orders=sent, lines=lines))
    for release in releases:  # every window ending at a release (where the counts can only have grown)
        window = [r for r in releases if release.at - domain.RELEASE_WINDOW <= r.at <= release.at]
        assert sum(r.orders for r in window) <= orders_per_hour
        if lines_per_hour is not None:
            assert sum(r.lines for r in window) <= lines_per_hour  # no order is bigger than the figure here
