from __future__ import annotations

import pytest

from quai.core.errors import ValidationFailed
from quai.tenants.models import ApiKey
from quai.tenants.services import api_key_create, api_key_revoke, merchant_create, siret_clean

pytestmark = pytest.mark.django_db


def test_a_key_is_shown_once_and_stored_only_as_a_digest(merchant):
    issued = api_key_create(merchant=merchant, name="shop")
    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    assert issued.secret.startswith(f"quai_{stored.prefix}_")
    assert issued.secret not in (stored.digest, stored.prefix)
    assert len(stored.digest) == 64


def test_a_live_key_authenticates_and_records_its_last_use(api, merchant):
    response = api.get("whoami")
    assert response.status_code == 200
    assert response.json() == {
        "kind": "merchant_key",
        "merchant_id": merchant.pk,
        "merchant_code": "acme",
        "username": None,
    }
    assert ApiKey.objects.get(merchant=merchant).last_used_at is not None


def test_a_revoked_key_is_refused_with_a_clear_code(api, merchant):
    key = ApiKey.objects.get(merchant=merchant)
    api_key_revoke(api_key_id=key.pk)
    response = api.get("whoami")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_made_up_key_is_refused(client):
    response = client.get("/api/v1/whoami", headers={"Authorization": "Bearer quai_deadbeef_nope"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_no_credentials_gets_401_in_the_error_format(client):
    response = client.get("/api/v1/whoami")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_a_merchant_cannot_revoke_another_merchants_key(api, other_merchant):
    foreign = api_key_create(merchant=other_merchant, name="theirs").api_key
    response = api.post(f"api-keys/{foreign.pk}/revoke")
    assert response.status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_a_merchant_creates_its_own_key_through_the_api(api, merchant):
    response = api.post("api-keys", {"name": "warehouse-sync"})
    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith("quai_")
    assert body["merchant_id"] == merchant.pk


def test_siret_check_digit_is_validated():
    assert siret_clean("732 829 320 00074") == "73282932000074"
    with pytest.raises(ValidationFailed) as excinfo:
        siret_clean("73282932000075")
    assert excinfo.value.code == "invalid_siret"


def test_merchant_creation_with_a_bad_siret_writes_nothing():
    with pytest.raises(ValidationFailed):
        merchant_create(code="bad", name="Bad", siret="12345678901234")
    from quai.tenants.models import Merchant

    assert not Merchant.objects.filter(code="bad").exists()


def test_staff_must_name_the_merchant_they_act_for(staff_api):
    response = staff_api.post("api-keys", {"name": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "merchant_required"


def test_the_operator_is_created_once_with_a_checked_siret():
    from quai.core.errors import Conflict
    from quai.tenants.models import Operator
    from quai.tenants.services import operator_create

    with pytest.raises(ValidationFailed):
        operator_create(name="3PL", siret="12345678901234")
    assert not Operator.objects.exists()
    operator_create(name="3PL", siret="732 829 320 00074")
    with pytest.raises(Conflict):
        operator_create(name="Another")
    assert Operator.objects.get().siret == "73282932000074"
