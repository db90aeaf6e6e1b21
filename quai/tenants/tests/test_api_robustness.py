"""What the API answers outside its happy paths: every refusal is a 4xx ``{"error": {code, message, details}}``.

Found by fuzzing the OpenAPI schema (schemathesis); each test pins one finding.
"""

from __future__ import annotations

import json

import pytest
from django.db import DataError, IntegrityError
from django.test import Client

from quai.tenants.models import Merchant

pytestmark = pytest.mark.django_db


def _error_of(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error


def test_a_method_a_path_does_not_serve_answers_405_in_the_error_format_with_the_allowed_methods(api):
    response = api.delete("whoami")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    error = _error_of(response)
    assert error["code"] == "method_not_allowed"
    assert error["details"] == {"allowed": ["GET"]}


def test_a_405_on_a_write_route_changes_nothing(api):
    response = api.put("merchants", {"code": "ghost", "name": "Ghost"})
    assert response.status_code == 405
    assert _error_of(response)["code"] == "method_not_allowed"
    assert not Merchant.objects.filter(code="ghost").exists()


def test_an_unknown_path_under_the_api_answers_404_unknown_route_in_the_error_format(api, client):
    for response in (api.get("no-such-route"), api.post("catalog/no/such/thing", {}), client.get("/api/v1/whoami/")):
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert _error_of(response)["code"] == "unknown_route"


def test_the_api_root_paths_still_answer_after_the_catch_all(api, client):
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert api.get("whoami").status_code == 200


def test_a_body_that_is_not_json_answers_400_malformed_request(api):
    response = api.client.post(
        "/api/v1/api-keys", data="{not json", content_type="application/json", headers=api.headers
    )
    assert response.status_code == 400
    assert _error_of(response)["code"] == "malformed_request"


def test_an_offset_beyond_any_database_integer_answers_422_instead_of_a_server_error(api):
    # Fuzzer finding: GET /api/v1/catalog/skus?offset=29682301905370112000 -> 500 (SQLite "datatype mismatch").
    response = api.get("merchants", offset=29682301905370112000)
    assert response.status_code == 422
    error = _error_of(response)
    assert error["code"] == "invalid_input"
    assert error["details"]["fields"][0]["field"] == "offset"
    assert api.get("merchants", offset=2**31 - 1).json() == {"items": [], "count": 1}


def test_staff_asking_for_a_merchant_that_does_not_exist_get_a_404_in_the_error_format(staff_api):
    # Was {"detail": "Not Found: No Merchant matches the given query."} from get_object_or_404.
    response = staff_api.get("merchants/987654")
    assert response.status_code == 404
    error = _error_of(response)
    assert error["code"] == "merchant_not_found"
    assert error["details"] == {"merchant_id": 987654}


def test_a_session_without_its_csrf_token_is_refused_with_csrf_failed(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.post(
        "/api/v1/merchants", data=json.dumps({"code": "x", "name": "X"}), content_type="application/json"
    )
    assert response.status_code == 403
    assert _error_of(response)["code"] == "csrf_failed"
    assert not Merchant.objects.filter(code="x").exists()


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (IntegrityError("UNIQUE constraint failed"), 409, "conflict"),
        (IntegrityError("datatype mismatch"), 422, "out_of_range"),  # SQLite, for a number beyond its integers
        (Merchant.DoesNotExist("Merchant matching query does not exist."), 404, "not_found"),
        (DataError("value too long for type character varying(20)"), 422, "out_of_range"),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), 422, "out_of_range"),
    ],
)
def test_a_database_error_a_route_lets_slip_is_still_a_4xx_in_the_error_format(
    staff_api, monkeypatch, raised, status, code
):
    def boom(**kwargs):  # type: ignore[no-untyped-def]
        raise raised

    monkeypatch.setattr("quai.tenants.services.merchant_create", boom)
    response = staff_api.post("merchants", {"code": "boom", "name": "Boom"})
    assert response.status_code == status
    assert _error_of(response)["code"] == code


def test_a_django_validation_error_a_route_lets_slip_is_a_422_listing_its_fields(staff_api, monkeypatch):
    from django.core.exceptions import ValidationError

    def invalid(**kwargs):  # type: ignore[no-untyped-def]
        raise ValidationError({"code": ["Ensure this value has at most 20 characters."]})

    monkeypatch.setattr("quai.tenants.services.merchant_create", invalid)
    response = staff_api.post("merchants", {"code": "x" * 30, "name": "Long"})
    assert response.status_code == 422
    error = _error_of(response)
    assert error["code"] == "invalid_input"
    assert error["details"]["fields"] == [{"field": "code", "message": "Ensure this value has at most 20 characters."}]


@pytest.mark.parametrize(
    "body",
    [
        {"code": "", "name": ""},  # was 201: a merchant without code or name
        {"code": "x" * 300, "name": "Long"},  # was 201 on SQLite, a 500 on PostgreSQL (varchar(40))
        {"code": "with space", "name": "Spaced"},
        {"code": "ok", "name": "Ok", "contact_phone": "9" * 300},
        {"code": "ok", "name": "Ok", "contact_email": "not-an-email"},
        {"code": "ok", "name": "Ok", "default_currency": "EURO"},
    ],
)
def test_staff_cannot_create_a_merchant_that_breaks_its_columns(staff_api, body):
    response = staff_api.post("merchants", body)
    assert response.status_code == 422, response.content
    assert _error_of(response)["code"] == "invalid_input"
    assert not Merchant.objects.exists()


def test_an_api_key_name_longer_than_its_column_is_refused_before_the_database(api, merchant):
    # Was 201 on SQLite and a 500 on PostgreSQL (ApiKey.name is varchar(100)).
    response = api.post("api-keys", {"name": "k" * 101})
    assert response.status_code == 422
    assert _error_of(response)["details"]["fields"][0]["field"] == "name"
    assert merchant.api_keys.count() == 1


def test_a_filter_id_beyond_any_database_integer_answers_422_instead_of_a_server_error(staff_api):
    # Fuzzer finding: GET /api/v1/api-keys?merchant_id=97976258581473125203968 was a 500 on SQLite
    # (OverflowError: Python int too large to convert to SQLite INTEGER); PostgreSQL simply finds nothing.
    response = staff_api.get("api-keys", merchant_id=97976258581473125203968)
    assert response.status_code in (200, 422)
    if response.status_code == 422:
        assert _error_of(response)["code"] == "out_of_range"
    else:
        assert response.json() == {"items": [], "count": 0}


def test_a_session_post_whose_multipart_body_has_no_boundary_answers_400_instead_of_a_server_error(staff_user):
    # Fuzzer finding: POST /api/v1/api-keys/36/revoke as staff with "Content-Type: multipart/form-data" (no boundary)
    # was a 500: the CSRF check reads request.POST and Django raises MultiPartParserError.
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    token = "a" * 32
    client.cookies["csrftoken"] = token
    response = client.post(
        "/api/v1/merchants", data=b"{}", content_type="multipart/form-data", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 400
    assert _error_of(response)["code"] == "malformed_request"
    assert not Merchant.objects.exists()
