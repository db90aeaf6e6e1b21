"""The one source of "now" in Quai.

Nothing in Quai calls ``datetime.now()`` or ``timezone.now()`` directly: cut-offs, promises, expiry checks and
simulations all read this clock, so tests and simulations can freeze it or move it forward.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

_lock = threading.Lock()
_frozen_at: datetime | None = None
_offset = timedelta(0)


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    with _lock:
        if _frozen_at is not None:
            return _frozen_at
        offset = _offset
    return timezone.now() + offset


def today(tz: str | None = None) -> date:
    """Today's date in ``tz`` (default: the installation's time zone)."""
    return now().astimezone(ZoneInfo(tz or settings.TIME_ZONE)).date()


def set_now(moment: datetime) -> None:
    """Freeze the clock at ``moment`` (must be timezone-aware)."""
    global _frozen_at
    if timezone.is_naive(moment):
        raise ValueError("the clock takes timezone-aware datetimes only")
    with _lock:
        _frozen_at = moment


def advance(delta: timedelta) -> None:
    """Move the clock forward (or back): a frozen clock stays frozen at the new time."""
    global _frozen_at, _offset
    with _lock:
        if _frozen_at is not None:
            _frozen_at = _frozen_at + delta
        else:
            _offset = _offset + delta


def reset() -> None:
    """Back to real time."""
    global _frozen_at, _offset
    with _lock:
        _frozen_at = None
        _offset = timedelta(0)


@contextmanager
def frozen(moment: datetime) -> Iterator[None]:
    """Freeze the clock for the duration of a block, then put back what was there."""
    global _frozen_at, _offset
    with _lock:
        saved = (_frozen_at, _offset)
    set_now(moment)
    try:
        yield
    finally:
        with _lock:
            _frozen_at, _offset = saved
