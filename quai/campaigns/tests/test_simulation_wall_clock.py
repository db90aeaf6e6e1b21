"""The simulated day does not depend on the wall clock: an intake request a slow machine keeps waiting is waited for
(the committer's own wait, in wall-clock seconds, would otherwise refuse its orders, which the day never sends
again). How the orders fall into the committer's batches not depending on the machine's speed either is tested
with the committer (``quai/core/tests/test_batching.py``)."""

from __future__ import annotations

import threading

import pytest

from quai.campaigns.simulation import engine
from quai.orders.services.intake_batched import intake_committer

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_order_queued_longer_than_the_committers_wait_is_waited_for_in_the_day_not_refused() -> None:
    committer = intake_committer()
    saved = committer.wait_timeout
    committer.wait_timeout = 0.05  # a machine so slow that the committer's wait runs out: here after 50 ms
    started, release = threading.Event(), threading.Event()

    def gate() -> str:
        started.set()
        assert release.wait(10), "the test never released the gate"
        return "gate"

    timer = threading.Timer(0.3, release.set)
    try:
        with engine._simulated_world():
            blocker = committer.submit(gate, key="slow machine")
            assert started.wait(10)
            queued = committer.submit(lambda: "written", key="slow machine")  # behind the batch the gate holds
            timer.start()
            assert committer.wait(queued) == "written"
            assert committer.wait(blocker) == "gate"
        assert committer.wait_timeout == 0.05  # the process's own wait is back after the day
    finally:
        release.set()
        timer.cancel()
        committer.wait_timeout = saved
