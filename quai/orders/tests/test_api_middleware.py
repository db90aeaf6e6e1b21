"""A keyed API request (Bearer, no cookie) passes through the browser-only middleware (quai/security.py): the same
answers, to the byte and the header, as through Django's own middleware; any request with a cookie, and every other
path, still goes through them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.sessions.middleware import SessionMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.test import Client, override_settings

from quai.catalog.tests.factories import SkuFactory
from quai.tenants.services import api_key_create

from .conftest import order_data

pytestmark = pytest.mark.django_db

# settings.MIDDLEWARE as it was: Django's classes, each run for every request.
DJANGO_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "quai.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


@pytest.fixture
def key(merchant: Any, stock: Any) -> str:
    stock(SkuFactory(merchant=merchant, code="SHIRT-M"), 50)
    return api_key_create(merchant=merchant, name="middleware").secret


def _answers(key: str, language: str) -> list[tuple[int, dict[str, str], bytes]]:
    """What a keyed client gets for a few requests (an order accepted, read, refused; an unknown route), with a fresh
    client so the middleware are those of the settings in force."""
    client = Client()
    headers = {"Authorization": f"Bearer {key}"}
    if language:
        headers["Accept-Language"] = language
    answers = []
    created = client.post(
        "/api/v1/orders", json.dumps(order_data(f"MW-{language}")), content_type="application/json", headers=headers
    )
    for response in (
        created,
        client.get(f"/api/v1/orders/{created.json()['id']}", headers=headers),
        client.post(
            "/api/v1/orders",
            json.dumps(order_data("MW-BAD", lines=[{"sku": "NOPE", "quantity": 1}])),
            content_type="application/json",
            headers=headers,
        ),
        client.post("/api/v1/orders", b"{not json", content_type="application/json", headers=headers),
        client.get("/api/v1/nowhere", headers=headers),
        client.get("/api/v1/orders", headers={"Accept-Language": language} if language else {}),  # no key: 401
    ):
        answers.append((response.status_code, dict(response.headers), response.content))
    return answers


@pytest.mark.parametrize("language", ["", "en", "fr", "en-US,en;q=0.9", "de, en;q=0.5", "es", "*", "zz-ZZ"])
def test_a_keyed_request_gets_what_django_s_own_middleware_answered(key: str, language: str) -> None:
    ours = _answers(key, language)
    from quai.orders.models import Order

    Order.objects.all().delete()  # the same order accepted again (201, not a resend's 200)
    with override_settings(MIDDLEWARE=DJANGO_MIDDLEWARE):
        theirs = _answers(key, language)

    def same_ids(answers: list[tuple[int, dict[str, str], bytes]]) -> list[tuple[int, dict[str, str], Any]]:
        # The order's ids and times differ between the two runs; everything else must not.
        out: list[tuple[int, dict[str, str], Any]] = []
        for status, headers, content in answers:
            body = json.loads(content)
            if "id" in body:
                body = {k: v for k, v in body.items() if k not in ("id", "created_at", "updated_at", "release_after")}
                body["lines"] = [{k: v for k, v in line.items() if k not in ("id",)} for line in body["lines"]]
                body["timeline"] = [{k: v for k, v in step.items() if k != "at"} for step in body["timeline"]]
            headers = {name: value for name, value in headers.items() if name != "Content-Length"}
            out.append((status, headers, body))
        return out

    assert [status for status, _h, _c in ours] == [201, 200, 404, 400, 404, 401]
    assert same_ids(ours) == same_ids(theirs)
    assert ours[0][1]["Content-Language"] == ("en" if language.startswith("en") or language == "de, en;q=0.5" else "fr")


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths Django's session and CSRF middleware ran their request step for."""
    seen: list[str] = []
    session_step, csrf_step = SessionMiddleware.process_request, CsrfViewMiddleware.process_request

    def session_spy(self: Any, request: Any) -> Any:
        seen.append(f"session {request.path}")
        return session_step(self, request)

    def csrf_spy(self: Any, request: Any) -> Any:
        seen.append(f"csrf {request.path}")
        return csrf_step(self, request)

    monkeypatch.setattr(SessionMiddleware, "process_request", session_spy)
    monkeypatch.setattr(CsrfViewMiddleware, "process_request", csrf_spy)
    return seen


def test_the_browser_middleware_run_for_a_request_with_a_cookie_or_off_the_api(key: str, ran: list[str]) -> None:
    client = Client()
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert ran == ["csrf /api/v1/orders"]  # Django's own CSRF middleware runs for every request (check --deploy)
    ran.clear()
    client.cookies["anything"] = "1"
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert ran == ["session /api/v1/orders", "csrf /api/v1/orders"]
    ran.clear()
    Client().get("/ops/login/")
    assert {"session /ops/login/", "csrf /ops/login/"} <= set(ran)


def test_a_staff_session_still_reaches_the_api_and_its_writes_still_need_the_csrf_token(staff_user: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.get("/api/v1/orders").status_code == 200
    refused = client.post("/api/v1/merchants", json.dumps({"code": "x", "name": "X"}), content_type="application/json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_failed"


def test_a_keyed_request_without_accept_language_follows_a_changed_language_code(key: str, settings: Any) -> None:
    # The lean locale step keeps each Accept-Language header's language in a per-process cache; it kept the answer
    # for "no header" across a change of LANGUAGE_CODE, so a test that set "en" left the later ones answered in
    # English (this file's "" case failed after quai/catalog's tests).
    headers = {"Authorization": f"Bearer {key}"}
    settings.LANGUAGE_CODE = "en"
    assert Client().get("/api/v1/orders", headers=headers)["Content-Language"] == "en"
    settings.LANGUAGE_CODE = "fr"
    assert Client().get("/api/v1/orders", headers=headers)["Content-Language"] == "fr"
