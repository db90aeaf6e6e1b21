"""Idempotent writes: a write retried with the same ``Idempotency-Key`` is answered once, whatever route it is."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from conftest import ApiClient
from quai.core import clock
from quai.tenants import services
from quai.tenants.models import ApiKey, IdempotencyRecord, Merchant
from quai.tenants.services import api_key_create, idempotency_claim, idempotency_records_purge

pytestmark = pytest.mark.django_db


def _post(api, path: str, body: dict, key: str):  # type: ignore[no-untyped-def]
    return api.client.post(
        f"/api/v1/{path}",
        data=json.dumps(body),
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": key},
    )


def test_the_same_key_and_body_replays_the_first_answer_without_running_again(api, merchant):
    first = _post(api, "api-keys", {"name": "shop"}, "k-1")
    again = _post(api, "api-keys", {"name": "shop"}, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same key, its secret shown again to the client that lost it
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert ApiKey.objects.filter(merchant=merchant, name="shop").count() == 1


def test_the_same_body_written_with_other_spacing_or_key_order_is_the_same_request(api):
    body = {"name": "shop", "merchant_id": None}
    first = _post(api, "api-keys", body, "k-order")
    replay = api.client.post(
        "/api/v1/api-keys",
        data='{ "merchant_id" : null,\n "name": "shop" }',
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": "k-order"},
    )
    assert replay.status_code == 201
    assert replay.json() == first.json()


def test_the_same_key_with_another_body_is_refused_with_409_and_changes_nothing(api, merchant):
    _post(api, "api-keys", {"name": "shop"}, "k-2")
    refused = _post(api, "api-keys", {"name": "erp"}, "k-2")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "idempotency_key_reused"
    assert not ApiKey.objects.filter(name="erp").exists()


def test_the_same_key_on_another_route_is_another_request(api, merchant):
    _post(api, "api-keys", {"name": "shop"}, "k-3")
    key = ApiKey.objects.get(name="shop")
    refused = _post(api, f"api-keys/{key.pk}/revoke", {}, "k-3")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "idempotency_key_reused"


def test_another_merchant_using_the_same_key_gets_its_own_answer(api, other_api, merchant, other_merchant):
    mine = _post(api, "api-keys", {"name": "shop"}, "shared-key")
    theirs = _post(other_api, "api-keys", {"name": "shop"}, "shared-key")
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["merchant_id"] == other_merchant.pk != mine.json()["merchant_id"]


def test_two_keys_of_one_merchant_share_its_idempotency_keys(api, merchant):
    first = _post(api, "api-keys", {"name": "shop"}, "k-4")
    # Another key of the same merchant (e.g. a second worker of its ERP).
    second_key = ApiClient(
        Client(), {"Authorization": f"Bearer {api_key_create(merchant=merchant, name='erp').secret}"}
    )
    replay = _post(second_key, "api-keys", {"name": "shop"}, "k-4")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()


def test_a_refusal_is_replayed_too(api, merchant):
    api.post("api-keys", {"name": "taken"})
    first = _post(api, "api-keys", {"name": "taken"}, "k-5")
    assert first.status_code == 409
    api.post(f"api-keys/{ApiKey.objects.get(name='taken').pk}/revoke")
    replay = _post(api, "api-keys", {"name": "taken"}, "k-5")
    assert replay.status_code == 409
    assert replay["Idempotent-Replayed"] == "true"


def test_a_request_refused_by_its_schema_is_not_remembered(api):
    assert _post(api, "api-keys", {"name": ""}, "k-6").status_code == 422
    assert not IdempotencyRecord.objects.exists()


def test_a_server_error_is_not_stored_and_the_key_can_be_retried(api, merchant, monkeypatch):
    real_create = services.api_key_create

    def broken(**kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("quai.tenants.services.api_key_create", broken)
    crashing = Client(raise_request_exception=False)
    response = crashing.post(
        "/api/v1/api-keys",
        data=json.dumps({"name": "shop"}),
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": "k-7"},
    )
    assert response.status_code == 500
    assert not IdempotencyRecord.objects.exists()

    monkeypatch.setattr("quai.tenants.services.api_key_create", real_create)
    retry = _post(api, "api-keys", {"name": "shop"}, "k-7")
    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry


def test_a_request_still_running_with_the_key_makes_the_second_wait_409(api, merchant):
    fingerprint = "0" * 64
    idempotency_claim(scope=f"merchant:{merchant.pk}", key="k-8", fingerprint=fingerprint, method="POST", path="/x")
    # The claim above is another request with this key that has not answered yet; same body or not, it is in use.
    refused = _post(api, "api-keys", {"name": "shop"}, "k-8")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] in {"idempotency_key_in_use", "idempotency_key_reused"}


def test_a_claim_whose_request_died_frees_its_key_after_a_while(api, merchant):
    first = _post(api, "api-keys", {"name": "shop"}, "k-9")
    record = IdempotencyRecord.objects.get(key="k-9")
    IdempotencyRecord.objects.filter(pk=record.pk).update(response_status=None)  # as if it never answered
    assert _post(api, "api-keys", {"name": "shop"}, "k-9").json()["error"]["code"] == "idempotency_key_in_use"
    clock.set_now(clock.now() + timedelta(minutes=6))
    again = _post(api, "api-keys", {"name": "shop"}, "k-9")
    assert again.status_code == 409  # ran again: the name is taken by the first run
    assert again.json()["error"]["code"] == "duplicate_api_key_name"
    assert first.status_code == 201


@pytest.mark.parametrize("key", ["", "k" * 256, "clé", "tab\there"])
def test_an_idempotency_key_that_is_empty_too_long_or_not_printable_is_refused(api, key):
    response = api.client.post(
        "/api/v1/api-keys",
        data=json.dumps({"name": "shop"}),
        content_type="application/json",
        headers={**api.headers, "Idempotency-Key": key.encode().decode("latin-1")},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not ApiKey.objects.filter(name="shop").exists()


def test_a_staff_session_has_its_own_scope(staff_api, staff_user, merchant):
    first = _post(staff_api, "merchants", {"code": "new", "name": "New"}, "k-10")
    replay = _post(staff_api, "merchants", {"code": "new", "name": "New"}, "k-10")
    assert first.status_code == replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert Merchant.objects.filter(code="new").count() == 1
    assert IdempotencyRecord.objects.get(key="k-10").scope == f"user:{staff_user.pk}"


def test_reads_ignore_the_header(api):
    assert "Idempotent-Replayed" not in api.client.get(
        "/api/v1/whoami", headers={**api.headers, "Idempotency-Key": "r"}
    )
    assert not IdempotencyRecord.objects.exists()


def test_answers_expire_after_a_day_and_the_purge_deletes_them(api, merchant):
    _post(api, "api-keys", {"name": "shop"}, "k-11")
    assert idempotency_records_purge() == 0
    clock.set_now(clock.now() + timedelta(hours=24, seconds=1))
    assert idempotency_records_purge() == 1
    assert not IdempotencyRecord.objects.exists()


def test_an_expired_key_is_a_new_request(api, merchant):
    _post(api, "api-keys", {"name": "shop"}, "k-12")
    clock.set_now(clock.now() + timedelta(hours=25))
    again = _post(api, "api-keys", {"name": "shop"}, "k-12")
    assert "Idempotent-Replayed" not in again
    assert again.json()["error"]["code"] == "duplicate_api_key_name"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_the_same_key_run_once_on_postgresql(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("real parallel connections: run with DATABASE_URL=postgres://…")
    from quai.tenants.tests.factories import MerchantFactory

    merchant = MerchantFactory(code="race")
    secret = services.api_key_create(merchant=merchant, name="race").secret
    real_create = services.api_key_create

    def slow_create(**kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.5)  # long enough for the other request to arrive while this one runs
        return real_create(**kwargs)

    monkeypatch.setattr("quai.tenants.services.api_key_create", slow_create)
    barrier = threading.Barrier(2)
    answers: list[tuple[int, dict]] = []

    def send() -> None:
        try:
            barrier.wait()
            response = Client().post(
                "/api/v1/api-keys",
                data=json.dumps({"name": "raced"}),
                content_type="application/json",
                headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "race-key"},
            )
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(status for status, _body in answers)
    assert statuses == [201, 409], answers
    assert next(body for status, body in answers if status == 409)["error"]["code"] == "idempotency_key_in_use"
    assert ApiKey.objects.filter(merchant=merchant, name="raced").count() == 1
