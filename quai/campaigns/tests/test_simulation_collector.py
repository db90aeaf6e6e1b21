"""The day's collector settings (``engine._collector_for_a_day``): tuned while the day runs, put back after, even
when the day fails. No database."""

from __future__ import annotations

import gc

import pytest

from quai.campaigns.simulation import engine


def test_the_collector_is_tuned_during_the_day_and_put_back_after() -> None:
    saved = gc.get_threshold()
    with engine._collector_for_a_day():
        assert gc.get_threshold() == engine.DAY_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # what existed before the day is out of the collector's walks
    assert gc.get_threshold() == saved
    assert gc.get_freeze_count() == 0


def test_a_failing_day_puts_the_collector_back() -> None:
    saved = gc.get_threshold()
    with pytest.raises(RuntimeError), engine._collector_for_a_day():
        raise RuntimeError("the day failed")
    assert gc.get_threshold() == saved
    assert gc.get_freeze_count() == 0
