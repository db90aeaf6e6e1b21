"""Who may call the API: 401 for anyone without valid credentials, throttled failures, and who may mint keys."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from ninja.security import HttpBearer

from conftest import merchant_api
from quai.core import clock
from quai.tenants.auth import MerchantKeyAuth
from quai.tenants.models import ApiKey, Merchant
from quai.tenants.services import MAX_LIVE_KEYS_PER_MERCHANT, api_key_create, api_key_revoke
from quai.tenants.throttle import MAX_FAILURES

pytestmark = pytest.mark.django_db


def _post(client: Client, path: str, body: dict, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/{path}", data=json.dumps(body), content_type="application/json", headers=headers)


def test_a_post_without_any_credentials_answers_401_unauthenticated_not_a_csrf_failure(client):
    # Was 403 csrf_failed: the session auth checked CSRF before knowing whether a session was there.
    response = _post(client, "merchants", {"code": "x", "name": "X"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert not Merchant.objects.exists()


@pytest.mark.parametrize("authorization", ["Token abc", "quai_deadbeef_x", "Basic dXNlcjpwYXNz"])
def test_a_post_with_an_authorization_header_that_is_not_bearer_answers_401(client, authorization):
    response = _post(client, "api-keys", {"name": "x"}, Authorization=authorization)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_a_post_with_a_misformatted_bearer_key_answers_401_invalid_api_key(client):
    response = _post(client, "api-keys", {"name": "x"}, Authorization="Bearer not-a-key")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_session_post_with_its_csrf_token_is_accepted(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.cookies["csrftoken"] = "b" * 32
    response = _post(client, "merchants", {"code": "shop", "name": "Shop"}, **{"X-CSRFToken": "b" * 32})
    assert response.status_code == 201, response.content


def test_failed_authentications_from_one_address_are_throttled_with_retry_after(client, merchant):
    for attempt in range(MAX_FAILURES):
        response = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer quai_guess{attempt}_x"})
        assert response.status_code == 401
    refused = client.get("/api/v1/whoami", headers={"Authorization": "Bearer quai_other_x"})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    # Even a valid key from that address waits: otherwise the answer would tell which guess was right.
    valid = api_key_create(merchant=merchant, name="valid").secret
    assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {valid}"}).status_code == 429
    # Another address is not held back.
    other = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {valid}"}, REMOTE_ADDR="10.9.9.9")
    assert other.status_code == 200


def test_failed_authentications_with_one_key_prefix_are_throttled_from_any_address(client, merchant):
    issued = api_key_create(merchant=merchant, name="shop")
    wrong = f"quai_{issued.api_key.prefix}_wrong-secret"
    for attempt in range(MAX_FAILURES):
        response = client.get(
            "/api/v1/whoami", headers={"Authorization": f"Bearer {wrong}"}, REMOTE_ADDR=f"10.0.0.{attempt}"
        )
        assert response.status_code == 401
    refused = client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {wrong}"}, REMOTE_ADDR="10.1.1.1")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"


def test_requests_without_credentials_are_throttled_per_address_too(client):
    for _attempt in range(MAX_FAILURES):
        assert client.get("/api/v1/whoami").status_code == 401
    refused = client.get("/api/v1/whoami")
    assert refused.status_code == 429
    assert "Retry-After" in refused


def test_the_throttle_lifts_when_its_window_ends(client, merchant):
    clock.set_now(clock.now().replace(second=0, microsecond=0))
    for attempt in range(MAX_FAILURES):
        client.get("/api/v1/whoami", headers={"Authorization": f"Bearer quai_guess{attempt}_x"})
    valid = api_key_create(merchant=merchant, name="valid").secret
    assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {valid}"}).status_code == 429
    clock.set_now(clock.now() + timedelta(seconds=61))
    assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {valid}"}).status_code == 200


def test_revoking_a_key_revokes_the_keys_it_minted_to_any_depth(api, merchant):
    parent = ApiKey.objects.get(merchant=merchant)
    child = api.post("api-keys", {"name": "child"}).json()
    grandchild = merchant_api_from_secret(child["secret"]).post("api-keys", {"name": "grandchild"}).json()
    by_a_person = api_key_create(merchant=merchant, name="by-a-person").api_key
    assert ApiKey.objects.get(pk=child["id"]).minted_by_id == parent.pk

    api_key_revoke(api_key_id=parent.pk)

    assert set(ApiKey.objects.filter(revoked_at=None).values_list("pk", flat=True)) == {by_a_person.pk}
    assert merchant_api_from_secret(grandchild["secret"]).get("whoami").status_code == 401


def test_a_merchant_cannot_hold_more_live_keys_than_the_limit(api, merchant):
    for number in range(MAX_LIVE_KEYS_PER_MERCHANT - 1):  # the api fixture's key is the first
        assert api.post("api-keys", {"name": f"key-{number}"}).status_code == 201
    refused = api.post("api-keys", {"name": "one-too-many"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "api_key_limit_reached"
    assert ApiKey.objects.filter(merchant=merchant, revoked_at=None).count() == MAX_LIVE_KEYS_PER_MERCHANT
    # Revoking one frees a place.
    api_key_revoke(api_key_id=ApiKey.objects.filter(name="key-0").get().pk)
    assert api.post("api-keys", {"name": "replacement"}).status_code == 201


def merchant_api_from_secret(secret: str):  # type: ignore[no-untyped-def]
    from conftest import ApiClient

    return ApiClient(Client(), {"Authorization": f"Bearer {secret}"})


def test_another_merchants_limit_is_its_own(api, other_merchant):
    other = merchant_api(other_merchant)
    assert other.post("api-keys", {"name": "theirs"}).status_code == 201


class _NinjasBearer(HttpBearer):
    """Ninja's own Bearer parsing (through ``request.headers``), answering the token it read."""

    def authenticate(self, request, token):  # type: ignore[no-untyped-def]
        return token


class _OursBearer(MerchantKeyAuth):
    def authenticate(self, request, token):  # type: ignore[no-untyped-def]
        return token


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer quai_abc_x",
        "bearer quai_abc_x",
        "BEARER quai_abc_x",
        "Bearer",
        "Bearer ",
        "Bearer  a b",
        "Token abc",
        "quai_abc_x",
        "Basic dXNlcjpwYXNz",
        " Bearer x",
    ],
)
def test_the_key_auth_reads_the_header_from_meta_as_ninja_reads_it_from_the_headers(rf, authorization):
    # MerchantKeyAuth reads META["HTTP_AUTHORIZATION"] instead of building request.headers: the same token, or
    # the same "no key", for every shape of the header.
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    ours_request = rf.post("/api/v1/orders", **extra)
    assert _OursBearer()(ours_request) == _NinjasBearer()(rf.post("/api/v1/orders", **extra))
    assert "headers" not in ours_request.__dict__  # the mapping was never built
