"""Input no client should send is refused with a 4xx naming the field, never a server error or a silent write."""

from __future__ import annotations

import pytest

from quai.tenants.models import ApiKey, Merchant

pytestmark = pytest.mark.django_db


def _raw_post(api, path: str, raw: str, content_type: str = "application/json", **headers: str):  # type: ignore[no-untyped-def]
    return api.client.post(
        f"/api/v1/{path}", data=raw.encode("utf-8"), content_type=content_type, headers={**api.headers, **headers}
    )


def _fields(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [field["field"] for field in response.json()["error"]["details"]["fields"]]


def test_a_lone_surrogate_in_a_json_string_answers_422_naming_the_field(api):
    # Was a 500 HTML page: Python's JSON reader accepts "\ud800", the database cannot store it.
    response = _raw_post(api, "api-keys", '{"name": "shop\\ud800"}')
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
    assert _fields(response) == ["name"]
    assert not ApiKey.objects.filter(name__startswith="shop").exists()


def test_a_nul_character_deep_in_a_body_answers_422_naming_its_path(api):
    raw = '{"reference": "ASN-1", "lines": [{"sku": "A", "quantity": 1, "lot": "L\\u0000"}]}'
    response = _raw_post(api, "inbound/asns", raw)
    assert response.status_code == 422
    assert _fields(response) == ["lines.0.lot"]


def test_a_nul_character_in_a_query_parameter_answers_422_naming_it(staff_api):
    response = staff_api.get("merchants", q="a\x00b")
    assert response.status_code == 422
    assert _fields(response) == ["q"]


def test_a_surrogate_in_an_object_key_is_refused_too(api):
    response = _raw_post(api, "api-keys", '{"name": "shop", "\\udfff": 1}')
    assert response.status_code == 422


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", "application/octet-stream"]
)
def test_a_body_that_is_not_json_answers_415_unsupported_media_type(api, content_type):
    response = _raw_post(api, "api-keys", '{"name": "shop"}', content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not ApiKey.objects.filter(name="shop").exists()


def test_json_with_a_charset_or_a_json_suffix_is_accepted(api):
    assert (
        _raw_post(api, "api-keys", '{"name": "a"}', content_type="application/json; charset=utf-8").status_code == 201
    )
    assert _raw_post(api, "api-keys", '{"name": "b"}', content_type="application/merge-patch+json").status_code == 201


def test_an_asn_note_of_a_megabyte_is_refused_naming_the_field(api):
    # Was accepted: AsnCreateIn.notes had no bound and the column is a TextField.
    body = {"reference": "ASN-BIG", "notes": "n" * 1_000_000, "lines": [{"sku": "A", "quantity": 1}]}
    response = api.post("inbound/asns", body)
    assert response.status_code == 422
    assert _fields(response) == ["notes"]


def test_an_over_long_value_names_its_field_and_its_limit(staff_api):
    response = staff_api.client.post(
        "/api/v1/merchants",
        data='{"code": "ok", "name": "%s"}' % ("N" * 201),
        content_type="application/json",
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"] == [
        {"field": "name", "message": "Must have at most 200 character(s)."}
    ]
    assert not Merchant.objects.exists()


@pytest.mark.parametrize("value", [True, "1"])
def test_a_boolean_or_a_string_is_not_an_integer(staff_api, merchant, value):
    response = staff_api.post("api-keys", {"name": "shop", "merchant_id": value})
    assert response.status_code == 422
    assert _fields(response) == ["merchant_id"]


def test_validation_messages_follow_the_requests_language(api):
    response = api.client.post(
        "/api/v1/api-keys",
        data='{"name": ""}',
        content_type="application/json",
        headers={**api.headers, "Accept-Language": "fr"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"] == "La requête n'est pas valide : name: Au moins 1 caractère(s)."
    assert error["details"]["fields"] == [{"field": "name", "message": "Au moins 1 caractère(s)."}]


def test_validation_messages_are_in_english_when_asked(api):
    response = api.client.post(
        "/api/v1/api-keys",
        data='{"name": ""}',
        content_type="application/json",
        headers={**api.headers, "Accept-Language": "en"},
    )
    assert response.json()["error"]["details"]["fields"] == [
        {"field": "name", "message": "Must have at least 1 character(s)."}
    ]


def test_a_field_named_like_a_request_part_is_still_named_in_the_error(api):
    # A ticket's text is its "body": the old filter dropped every "body" of the location, the field's name too.
    response = api.post("service/tickets", {"channel": "api", "subject": "x", "body": ""})
    assert response.status_code == 422
    assert _fields(response) == ["body"]


def test_the_values_a_field_accepts_are_listed_without_an_english_word(api):
    response = api.client.post(
        "/api/v1/service/tickets",
        data='{"channel": "mail", "subject": "x", "body": "x"}',
        content_type="application/json",
        headers={**api.headers, "Accept-Language": "fr"},
    )
    assert response.status_code == 422
    (field,) = response.json()["error"]["details"]["fields"]
    assert field == {"field": "channel", "message": "Doit être l'une des valeurs : 'api', 'shop'."}


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity"])
def test_an_amount_that_is_no_finite_number_is_refused_in_the_readers_language(api, amount):
    response = api.client.post(
        "/api/v1/service/refunds",
        data=f'{{"order_id": 1, "amount": "{amount}", "reason": "x"}}',
        content_type="application/json",
        headers={**api.headers, "Accept-Language": "fr"},
    )
    assert response.status_code == 422
    (field,) = response.json()["error"]["details"]["fields"]
    assert field == {"field": "amount", "message": "Doit être un nombre fini."}
