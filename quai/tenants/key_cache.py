"""A small in-process cache of authenticated API keys, so a busy integration is not one key query per request.

A shop in a flash sale sends thousands of requests a second with the same key; reading the key and its merchant
for each one was a query per request on the hottest route. Each web process therefore keeps the keys it has
authenticated, by the SHA-256 digest of their secret (never the secret itself), for ``QUAI_API_KEY_CACHE_SECONDS``
(default 5 s). A revocation or a suspended merchant still bites within that time in every process, and at once in
the process that revoked (``api_key_revoke`` forgets everything it holds). 0 turns the cache off.

Only a secret whose digest matches a live key is ever cached, so a hit says nothing to someone guessing keys.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from quai.tenants.models import ApiKey

# Keys a process holds at once; more are simply authenticated again (the cache is emptied when full: keys are few).
MAX_ENTRIES = 4096

_entries: dict[str, tuple[float, ApiKey]] = {}
_lock = threading.Lock()


def ttl_seconds() -> float:
    return float(getattr(settings, "QUAI_API_KEY_CACHE_SECONDS", 5))


def key_cache_get(digest: str) -> ApiKey | None:
    """The key authenticated under ``digest`` less than the TTL ago, else None."""
    entry = _entries.get(digest)
    if entry is None:
        return None
    if time.monotonic() >= entry[0]:
        with _lock:
            if _entries.get(digest) is entry:
                del _entries[digest]
        return None
    return entry[1]


def key_cache_put(digest: str, key: ApiKey) -> None:
    ttl = ttl_seconds()
    if ttl <= 0:
        return
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[digest] = (time.monotonic() + ttl, key)


def key_cache_forget_all() -> None:
    """Forget every key (a key was revoked in this process: it must not pass here one more time)."""
    with _lock:
        _entries.clear()
