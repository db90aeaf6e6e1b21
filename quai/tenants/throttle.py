"""Throttling of failed API authentications, per key prefix and per client address.

Guessing keys is hopeless (256 bits), but a client hammering the API with a wrong or revoked key still costs a
database look-up per request, and a scan of prefixes from one address is worth stopping. Failures are counted in
Django's cache in fixed one-minute windows: past ``MAX_FAILURES`` in a window, any further attempt with that prefix
or from that address is refused with 429 ``throttled`` (and ``Retry-After``) until the window ends, before the key
is even looked up. A valid key from a throttled address is refused too: otherwise the throttle would tell an
attacker which guess was right.

The cache is per process by default (``LocMemCache``); with several web processes, production configures a shared
cache (Redis) so the counts are the same for every process.
"""

from __future__ import annotations

import math

from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import QuaiError

MAX_FAILURES = 10
WINDOW_SECONDS = 60


class AuthThrottled(QuaiError):
    status = 429
    code = "throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            _("Too many failed authentications; retry in %(seconds)d seconds.") % {"seconds": retry_after},
            details={"retry_after": retry_after},
        )
        self.retry_after = retry_after


def client_address(request: HttpRequest) -> str:
    """The address the request came from.

    ``REMOTE_ADDR`` unless ``NINJA_NUM_PROXIES`` says how many proxies of ours stand in front: a client-supplied
    ``X-Forwarded-For`` is never trusted on its own, or anyone could pick a fresh address per attempt.
    """
    from ninja.conf import settings as ninja_settings

    remote = str(request.META.get("REMOTE_ADDR") or "unknown")
    proxies = ninja_settings.NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote
    addresses = [part.strip() for part in str(forwarded).split(",") if part.strip()]
    return addresses[-min(proxies, len(addresses))] if addresses else remote


def _window() -> tuple[int, int]:
    """The current window's number and the seconds left in it."""
    now = clock.now().timestamp()
    return int(now // WINDOW_SECONDS), max(1, math.ceil(WINDOW_SECONDS - now % WINDOW_SECONDS))


def _cache_keys(address: str, prefix: str | None) -> list[str]:
    window, _left = _window()
    keys = [f"quai:authfail:addr:{address}:{window}"]
    if prefix:
        keys.append(f"quai:authfail:prefix:{prefix}:{window}")
    return keys


def auth_throttle_check(*, address: str, prefix: str | None = None) -> None:
    """Refuse with 429 when this address (or this key prefix) failed too often in the current window."""
    counts = cache.get_many(_cache_keys(address, prefix))
    if any(count >= MAX_FAILURES for count in counts.values()):
        raise AuthThrottled(retry_after=_window()[1])


def auth_failure_record(*, address: str, prefix: str | None = None) -> None:
    """Count one failed authentication against the address and, when the secret had one, the key prefix."""
    for key in _cache_keys(address, prefix):
        # add() only sets a missing key, so the first failure of a window starts the count; the timeout outlives
        # the window a little so a count is never lost at its edge.
        cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
        try:
            cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=WINDOW_SECONDS * 2)
