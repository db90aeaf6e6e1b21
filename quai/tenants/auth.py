"""Authentication for the API: merchant API keys (Bearer) and staff or merchant-user sessions."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer

from quai.tenants.principal import Principal
from quai.tenants.services import api_key_authenticate


class MerchantKeyAuth(HttpBearer):
    openapi_description = "Merchant API key: `Authorization: Bearer quai_…`"

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        key = api_key_authenticate(token)
        principal = Principal(kind="merchant_key", merchant_id=key.merchant_id, api_key=key)
        request.principal = principal  # type: ignore[attr-defined]
        return principal


class SessionAuth(APIKeyCookie):
    """A logged-in staff member (acts across merchants) or merchant user (held to its merchant)."""

    param_name = "sessionid"
    openapi_description = "Session cookie of a logged-in staff member or merchant user (CSRF token required)."

    def __init__(self) -> None:
        super().__init__(csrf=True)

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        user: Any = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
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
