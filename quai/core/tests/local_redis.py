"""Whether the local Redis that CI starts is up: tests of the Redis marks skip without it."""

from __future__ import annotations

import socket

REDIS = ("127.0.0.1", 6379)


def redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False
