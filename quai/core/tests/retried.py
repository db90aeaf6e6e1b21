"""For the tests of a handler subscribed unrecorded (``subscribe(..., recorded=False)``): relay the pending events
with another handler of theirs failing, then again once it works, as a retry does, and return what the test reads
after each relay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.test.utils import override_settings

from quai.core import clock
from quai.core.events import Envelope, subscribe, unsubscribe
from quai.core.outbox import outbox_relay

T = TypeVar("T")


def relayed_then_retried(names: list[str], read: Callable[[], T], *, pending: Callable[[], Any]) -> tuple[T, T]:
    """``read()`` after the first relay, where a handler beside failed on every event named ``names`` (they stay
    pending: ``pending()`` is called there, for the test's checks), and after their retry, that handler working."""
    down = [True]

    def beside(event: Any, envelope: Envelope) -> None:
        if down[0]:
            raise RuntimeError("down (injected)")

    keys = [f"test.beside.{name}" for name in names]
    for name, key in zip(names, keys, strict=True):
        subscribe(name, key, beside)
    clock.set_now(clock.now())
    try:
        with override_settings(QUAI_OUTBOX_NUDGE=False):
            while outbox_relay(batch=100):  # the failed events wait for their retry (a minute on)
                pass
            once = read()
            pending()
            down[0] = False
            clock.advance(timedelta(minutes=5))
            while outbox_relay(batch=100):
                pass
            return once, read()
    finally:
        clock.reset()
        for key in keys:
            unsubscribe(key)
