"""Fixtures shared by every app's tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from quai.celery import app as celery_app
from quai.core import clock

# Tasks run eagerly in the test process, so tests stay fast and deterministic; the real embedded worker and beat
# are started by quai/core/tests/test_embedded_worker.py.
celery_app.conf.task_always_eager = True


@pytest.fixture(autouse=True)
def _real_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Each test starts with empty caches: the failed-authentication counts of one test never throttle another."""
    from django.core.cache import cache

    from quai.labor.selectors import measured_rate_invalidate
    from quai.orders.services.intake import intake_caches_clear
    from quai.promise.selectors import snapshot_invalidate

    def clear() -> None:
        cache.clear()
        # What a process keeps between requests, keyed by ids and stamps: ids are reused after a rollback and the
        # clock is often frozen, so a previous test's rows could match by coincidence.
        intake_caches_clear()
        snapshot_invalidate()
        measured_rate_invalidate()

    clear()
    yield
    clear()


class ApiClient:
    """A thin JSON client for /api/v1/ that speaks as one principal."""

    def __init__(self, client: Client, headers: dict[str, str] | None = None) -> None:
        self.client = client
        self.headers = headers or {}

    def _call(self, method: str, path: str, data: Any = None, **params: Any) -> Any:
        url = path if path.startswith("/") else f"/api/v1/{path}"
        kwargs: dict[str, Any] = {"headers": self.headers}
        if method == "get":
            return self.client.get(url, data=params or data, **kwargs)
        body = json.dumps(data) if data is not None else ""
        return getattr(self.client, method)(url, data=body, content_type="application/json", **kwargs)

    def get(self, path: str, **params: Any) -> Any:
        return self._call("get", path, **params)

    def post(self, path: str, data: Any = None) -> Any:
        return self._call("post", path, data)

    def put(self, path: str, data: Any = None) -> Any:
        return self._call("put", path, data)

    def patch(self, path: str, data: Any = None) -> Any:
        return self._call("patch", path, data)

    def delete(self, path: str, data: Any = None) -> Any:
        return self._call("delete", path, data)


@pytest.fixture
def merchant(db):  # type: ignore[no-untyped-def]
    from quai.tenants.tests.factories import MerchantFactory

    return MerchantFactory(code="acme", name="Acme")


@pytest.fixture
def other_merchant(db):  # type: ignore[no-untyped-def]
    from quai.tenants.tests.factories import MerchantFactory

    return MerchantFactory(code="rival", name="Rival")


def merchant_api(merchant: Any) -> ApiClient:
    from quai.tenants.services import api_key_create

    issued = api_key_create(merchant=merchant, name=f"test-{merchant.code}")
    return ApiClient(Client(), {"Authorization": f"Bearer {issued.secret}"})


@pytest.fixture
def api(merchant):  # type: ignore[no-untyped-def]
    """The API as the ``merchant`` fixture, with its own API key."""
    return merchant_api(merchant)


@pytest.fixture
def other_api(other_merchant):  # type: ignore[no-untyped-def]
    return merchant_api(other_merchant)


@pytest.fixture
def staff_user(db):  # type: ignore[no-untyped-def]
    from quai.tenants.tests.factories import StaffUserFactory

    return StaffUserFactory(username="supervisor", is_superuser=True)


@pytest.fixture
def staff_api(staff_user):  # type: ignore[no-untyped-def]
    """The API as a logged-in staff member (session + CSRF checks off, as Django's test client does)."""
    client = Client()
    client.force_login(staff_user)
    return ApiClient(client)


# --- Browser tests (Playwright driving Debian's Chromium) ----------------------------------------------------------
# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make around it are still
# plain synchronous calls, so Django's async-safety guard is lifted for the test process only.
import os  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent / "var" / "screenshots"


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    # Without Chromium (a laptop without it), browser tests are skipped with a reason; CI installs it and fails
    # if it is missing, so they always run there.
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium, live_server):  # type: ignore[no-untyped-def]
    """A fresh page on a handheld-sized viewport, in French; call ``login_page(page, user)`` to log in."""
    context = chromium.new_context(viewport={"width": 480, "height": 860}, locale="fr-FR", base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def login_page(page: Any, user: Any, live_server_url: str) -> None:
    """Log ``user`` into the browser context through a real session cookie."""
    from django.conf import settings

    client = Client()
    client.force_login(user)
    session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_id, "url": live_server_url}])


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG under var/screenshots/ so a person can look at the screen the test saw."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
