"""The simulated floor's waves: sized on the pickers the plan has, with no ceiling that does not grow with them."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from quai.campaigns.simulation import engine


@pytest.mark.parametrize(("pickers", "open_lines", "expected"), [(2, 0, 80), (8, 100, 254), (79, 0, 3160), (1, 59, 20)])
def test_a_wave_holds_the_half_hour_of_work_the_pickers_on_shift_ask_for(
    monkeypatch: pytest.MonkeyPatch, pickers: int, open_lines: int, expected: int
) -> None:
    """Half an hour of the pickers' work at the pick standard (120 lines an hour), about 1.5 lines an order, at least
    20 orders: at a 10,000-order day's peak (79 pickers) a fixed ceiling of 500 orders a tick left them 60 % idle
    while the spike waited for a wave."""
    asked: list[Any] = []

    def release(*, site: Any, criteria: Any) -> Any:
        asked.append(criteria.capacity)
        return SimpleNamespace(pk=1, order_count=criteria.capacity)

    monkeypatch.setattr(engine.fulfillment_selectors, "site_open_pick_lines", lambda **_kw: open_lines)
    monkeypatch.setattr(engine.fulfillment_selectors, "orders_awaiting_wave_exist", lambda **_kw: True)
    monkeypatch.setattr(engine.fulfillment_selectors, "wave_order_ids", lambda **_kw: [])
    monkeypatch.setattr(engine.fulfillment, "wave_release", release)
    run = SimpleNamespace(world=SimpleNamespace(site=SimpleNamespace(pk=1)), traces={})
    engine._waves(run, pickers, datetime(2027, 3, 16, 10, tzinfo=UTC))  # type: ignore[arg-type]
    assert asked == [expected]


def test_no_wave_when_the_open_batches_hold_the_half_hour_already(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine.fulfillment_selectors, "site_open_pick_lines", lambda **_kw: 600)
    monkeypatch.setattr(engine.fulfillment, "wave_release", lambda **_kw: pytest.fail("no wave expected"))
    run = SimpleNamespace(world=SimpleNamespace(site=SimpleNamespace(pk=1)), traces={})
    engine._waves(run, 10, datetime(2027, 3, 16, 10, tzinfo=UTC))  # type: ignore[arg-type]
