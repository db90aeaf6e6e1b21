"""The pure rules of outbound webhooks: matching, what an answer means, backoff and its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quai.integrations import domain

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("*", "order.accepted", True),
        ("order.*", "order.accepted", True),
        ("order.*", "orders.accepted", False),
        ("inventory.stock_changed", "inventory.stock_changed", True),
        ("inventory.stock_changed", "inventory.stock_changed_again", False),
    ],
)
def test_a_pattern_matches_a_name_exactly_by_prefix_or_everything(pattern, name, expected):
    assert domain.pattern_matches(pattern, name) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "succeeded"),
        (204, "succeeded"),
        (400, "failed"),
        (404, "failed"),
        (410, "failed"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
        (301, "retry"),
        (302, "retry"),
        (307, "retry"),
        (308, "retry"),
        (None, "retry"),
    ],
)
def test_4xx_is_final_except_408_and_429_and_everything_else_but_2xx_is_retried(status, expected):
    assert domain.verdict(status) == expected


def test_retry_after_reads_seconds_and_http_dates():
    assert domain.retry_after_seconds("120", NOW) == 120
    assert domain.retry_after_seconds("Tue, 01 Jan 2030 12:05:00 GMT", NOW) == 300
    assert domain.retry_after_seconds("soon", NOW) is None
    assert domain.retry_after_seconds(None, NOW) is None


def test_backoff_doubles_with_at_most_ten_percent_jitter_and_is_capped():
    for attempts, base_seconds in [(1, 5), (2, 10), (3, 20), (10, 2560)]:
        delay = domain.backoff(attempts, key="d1").total_seconds()
        assert base_seconds <= delay <= base_seconds * 1.1
    assert domain.backoff(30, key="d1") <= timedelta(hours=1.1)


def test_a_retry_after_longer_than_the_backoff_is_honoured():
    schedule = domain.schedule_retry(attempts=1, now=NOW, started_at=NOW, retry_after=600, key="d")
    assert schedule.next_attempt_at == NOW + timedelta(seconds=600)


def test_retries_stop_after_24_hours_with_a_last_try_at_the_end_of_the_window():
    started = NOW - timedelta(hours=23, minutes=59)
    last = domain.schedule_retry(attempts=20, now=NOW, started_at=started, key="d")
    assert last.next_attempt_at == started + timedelta(hours=24)
    over = domain.schedule_retry(attempts=21, now=started + timedelta(hours=24), started_at=started, key="d")
    assert over.next_attempt_at is None


def test_the_response_excerpt_keeps_two_kilobytes_as_text():
    assert len(domain.response_excerpt(b"x" * 10_000)) == 2048
    assert domain.response_excerpt(b"ok\xff\x00") == "ok\ufffd"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(0, 4)), min_size=0, max_size=25),
    st.integers(1, 4),
)
def test_the_cursor_rule_delivers_every_change_after_it_happens(changes: list[tuple[int, int]], page: int) -> None:
    """Orders change (id, second) while a poller pages through ``date_upd >= mark`` with the cursor rule: at the end
    every order's last change has been delivered after it was made, whatever the interleaving."""
    table: dict[int, int] = {}  # id -> date_upd (second)
    since, seen = "0", set[int]()
    delivered: dict[int, int] = {}
    clock = 0
    for order_id, step in changes:
        clock += step
        table[order_id] = clock  # a change, at a clock that never goes back
        # one poll page between changes
        since, seen = _poll_page(table, since, seen, page, delivered)
    for _ in range(100):  # then drain
        before = (since, frozenset(seen), dict(delivered))
        since, seen = _poll_page(table, since, seen, page, delivered)
        if before == (since, frozenset(seen), delivered):
            break
    assert delivered == table


def _poll_page(
    table: dict[int, int], since: str, seen: set[int], page: int, delivered: dict[int, int]
) -> tuple[str, set[int]]:
    mark = int(since)
    rows = sorted(((i, u) for i, u in table.items() if u >= mark), key=lambda r: (r[1], r[0]))[: page + len(seen)]
    keyed = [(i, f"{u:020d}") for i, u in rows]
    new_since, new_seen, new_ids = domain.advance_cursor(f"{mark:020d}", seen, keyed)
    for order_id in new_ids:
        delivered[order_id] = table[order_id]
    if not new_ids:
        return since, seen
    return str(int(new_since)), new_seen
