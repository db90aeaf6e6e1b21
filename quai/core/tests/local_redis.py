"""The local Redis that CI starts, for the tests of the Redis marks: its URL, and whether it is up (they skip
without it)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit


def redis_url() -> str:
    """The Redis a test writes its marks to: ``QUAI_TEST_REDIS_URL`` if set (parallel runs on one machine each give
    their own db), else db 9 of the local Redis, the one the other tests of the marks use."""
    return os.environ.get("QUAI_TEST_REDIS_URL", "").strip() or "redis://127.0.0.1:6379/9"


def _address() -> tuple[str, int]:
    parts = urlsplit(redis_url())
    return parts.hostname or "127.0.0.1", parts.port or 6379


REDIS = _address()


def redis_up() -> bool:
    try:
        with socket.create_connection(_address(), timeout=0.5):
            return True
    except OSError:
        return False
