"""API keys are remembered for a few seconds per process: no key query per request, revocation still bites."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.tenants import key_cache
from quai.tenants.models import ApiKey, MerchantStatus
from quai.tenants.services import api_key_revoke

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_key_cache():
    key_cache.key_cache_forget_all()
    yield
    key_cache.key_cache_forget_all()


def _key_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if ApiKey._meta.db_table in q["sql"]]


def test_a_key_used_again_within_seconds_is_not_read_again(api):
    assert api.get("whoami").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert api.get("whoami").status_code == 200
    assert _key_queries(captured) == []


def test_a_key_revoked_in_this_process_is_refused_at_once(api, merchant):
    assert api.get("whoami").status_code == 200
    api_key_revoke(api_key_id=ApiKey.objects.get(merchant=merchant).pk)
    assert api.get("whoami").json()["error"]["code"] == "invalid_api_key"


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_time_has_passed(api, merchant, settings, monkeypatch):
    settings.QUAI_API_KEY_CACHE_SECONDS = 5
    now = [1000.0]
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: now[0])
    assert api.get("whoami").status_code == 200
    # Another process revokes the key: this one does not know until its entry expires.
    ApiKey.objects.filter(merchant=merchant).update(revoked_at=clock.now())
    assert api.get("whoami").status_code == 200
    now[0] += 5.1
    assert api.get("whoami").json()["error"]["code"] == "invalid_api_key"


def test_a_suspended_merchant_is_refused_once_the_cache_time_has_passed(api, merchant, settings, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(key_cache.time, "monotonic", lambda: now[0])
    assert api.get("whoami").status_code == 200
    type(merchant).objects.filter(pk=merchant.pk).update(status=MerchantStatus.SUSPENDED)
    now[0] += settings.QUAI_API_KEY_CACHE_SECONDS + 0.1
    assert api.get("whoami").json()["error"]["code"] == "merchant_suspended"


def test_a_cache_time_of_zero_reads_the_key_every_time(api, settings):
    settings.QUAI_API_KEY_CACHE_SECONDS = 0
    assert api.get("whoami").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert api.get("whoami").status_code == 200
    assert len(_key_queries(captured)) == 1
