"""Authentication for the API: merchant API keys (Bearer) and staff or merchant-user sessions."""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from quai.core.errors import Unauthenticated
from quai.tenants.key_cache import key_cache_get, key_cache_put, ttl_seconds
from quai.tenants.models import ApiKey
from quai.tenants.principal import Principal
from quai.tenants.services import api_key_authenticate, api_key_prefix
from quai.tenants.throttle import auth_failure_record, auth_throttle_check, client_address

# Ninja's logger for an unexpected scheme, as its HttpBearer logs it (DEBUG only).
logger = logging.getLogger("django")

# Striped, so a miss of one key never waits on another's (a guesser's wrong keys included) but rarely.
_MISS_LOCKS = tuple(threading.Lock() for _ in range(64))


class MerchantKeyAuth(HttpBearer):
    openapi_description = "Merchant API key: `Authorization: Bearer quai_…`"

    def __call__(self, request: HttpRequest) -> Principal | None:
        # Ninja's HttpBearer with the header read from META: its ``request.headers`` builds the whole header mapping
        # (every META key parsed) to read this one, ~3 % of a request thread's CPU in a sale. The same answers: no
        # header or an empty one, or a scheme other than Bearer (any case), is no key; the token is what follows.
        auth_value = request.META.get("HTTP_AUTHORIZATION")
        if not auth_value:
            return None
        parts = auth_value.split(" ")
        if parts[0].lower() != self.openapi_scheme:
            if settings.DEBUG:
                logger.error(f"Unexpected auth - '{auth_value}'")
            return None
        return self.authenticate(request, " ".join(parts[1:]))

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        # A key authenticated by this process a moment ago (quai.tenants.key_cache): no query, no throttle look-up
        # (a hit needs the exact secret of a live key, which no guess reaches).
        digest = hashlib.sha256(token.encode()).hexdigest()
        key = key_cache_get(digest)
        if key is None and ttl_seconds() > 0:
            # When a busy key's entry expires, every thread serving it missed at once and each authenticated it
            # again (~35 key reads and throttle look-ups per expiry in a sale); now one per stripe does and the
            # others, waiting on its lock, find what it cached.
            with _MISS_LOCKS[int(digest[:8], 16) % len(_MISS_LOCKS)]:
                key = key_cache_get(digest)
                if key is None:
                    key = self._authenticate_uncached(request, token, digest)
        elif key is None:
            key = self._authenticate_uncached(request, token, digest)
        principal = Principal(kind="merchant_key", merchant_id=key.merchant_id, api_key=key)
        request.principal = principal  # type: ignore[attr-defined]
        return principal

    @staticmethod
    def _authenticate_uncached(request: HttpRequest, token: str, digest: str) -> ApiKey:
        address = client_address(request)
        prefix = api_key_prefix(token)
        # Checked before the key is looked up, so a throttled client learns nothing from its next guesses.
        auth_throttle_check(address=address, prefix=prefix)
        try:
            key = api_key_authenticate(token)
        except Unauthenticated:
            auth_failure_record(address=address, prefix=prefix)
            raise
        key_cache_put(digest, key)
        return key


class SessionAuth(APIKeyCookie):
    """A logged-in staff member (acts across merchants) or merchant user (held to its merchant)."""

    param_name = settings.SESSION_COOKIE_NAME
    openapi_description = "Session cookie of a logged-in staff member or merchant user (CSRF token required)."

    def __init__(self) -> None:
        # The CSRF check is ours (below): Ninja's runs before it knows whether a session is there at all, so a
        # POST without any credentials answered 403 csrf_failed instead of 401.
        super().__init__(csrf=False)

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        if not key:
            return None
        user: Any = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        # A session cookie is sent by the browser on its own: only then is a forged cross-site request possible.
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request) is not None:
            raise HttpError(403, "CSRF check Failed")
        membership = getattr(user, "merchant_membership", None)
        if membership is not None:
            principal = Principal(kind="merchant_user", merchant_id=membership.merchant_id, user=user)
        elif user.is_staff:
            principal = Principal(kind="staff", merchant_id=None, user=user)
        else:
            return None
        request.principal = principal  # type: ignore[attr-defined]
        return principal


def principal_of(request: HttpRequest) -> Principal:
    """The authenticated principal of an API request (set by whichever auth accepted it)."""
    principal = getattr(request, "auth", None)
    if not isinstance(principal, Principal):
        principal = getattr(request, "principal", None)
    assert isinstance(principal, Principal), "route without authentication"
    return principal
