"""Marks shared by every process through Redis (the broker in production): "a task of this kind is queued".

A commit that asks for a worker's run (the outbox relay, the webhook sender) queues a task only if it takes the mark;
the task gives it up when it starts (or when it stops, for one that runs through a burst), so during a sale at most
one such task waits in the queue instead of one per commit. A mark expires on its own, so a task lost with its
worker holds nothing for long; beat's sweeps catch what waited meanwhile. Without Redis (the embedded default, the
tests) there is no mark: every nudge queues its task, as before.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=2)
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def mark_take(key: str, seconds: int) -> bool:
    """True if the caller should queue its task: the mark was not there and is now set (for ``seconds``), or there
    is no Redis to keep marks (or it cannot be read: better a task too many than an event left waiting)."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return True
    try:
        return bool(_redis(url).set(key, 1, nx=True, ex=seconds))
    except Exception:
        logger.exception("could not read the mark %s", key)
        return True


def marks_take(keys: Sequence[str], seconds: int) -> list[bool]:
    """``mark_take`` of each key, in one round trip to Redis (a pipeline; each SET NX is atomic on its own)."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return [True] * len(keys)
    try:
        pipe = _redis(url).pipeline(transaction=False)
        for key in keys:
            pipe.set(key, 1, nx=True, ex=seconds)
        return [bool(taken) for taken in pipe.execute()]
    except Exception:
        logger.exception("could not read the marks %s", ", ".join(keys))
        return [True] * len(keys)


def mark_renew(key: str, seconds: int) -> None:
    url = getattr(settings, "REDIS_URL", "")
    if url:
        try:
            _redis(url).set(key, 1, ex=seconds)
        except Exception:  # a lapsed mark only lets a second task start
            logger.exception("could not renew the mark %s", key)


def mark_clear(key: str) -> None:
    url = getattr(settings, "REDIS_URL", "")
    if url:
        try:
            _redis(url).delete(key)
        except Exception:  # the mark expires by itself; meanwhile the sweep runs
            logger.exception("could not clear the mark %s", key)


def mark_pop(key: str) -> bool:
    """Whether the mark was there, removing it in the same step (False without Redis: no mark was ever left)."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return False
    try:
        pipe = _redis(url).pipeline()  # GET then DEL in one MULTI: no other process sees the mark between them
        found, _deleted = pipe.get(key).delete(key).execute()
        return found is not None
    except Exception:  # as if it were there: one pass more rather than an event left to the relay
        logger.exception("could not read the mark %s", key)
        return True
