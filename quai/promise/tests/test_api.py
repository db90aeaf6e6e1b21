"""POST /api/v1/promise, the lead-time feed and the configuration routes, on the database."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.inbound.tests.factories import AsnFactory, AsnLineFactory
from quai.promise.services import promise_token_read

pytestmark = pytest.mark.django_db

MONDAY = datetime.fromisoformat("2025-03-10T10:00:00+01:00")


def _ask(api, *lines, country="FR", postcode="75011", **extra):
    body = {
        "lines": [{"sku": s, "quantity": q} for s, q in lines],
        "destination": {"country": country, "postcode": postcode},
    }
    body.update(extra)
    return api.post("promise", body)


def _error(response, status):
    assert response.status_code == status, response.content
    return response.json()["error"]["code"]


def test_a_cart_in_stock_gets_every_service_soonest_first_with_its_cutoff(api, configured, shirt):
    clock.set_now(MONDAY)
    response = _ask(api, ("SHIRT-M", 2))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["zone"], body["available_now"], body["available_from"]) == ("FR-MAINLAND", True, None)
    options = {o["service"]: o for o in body["options"]}
    assert [o["service"] for o in body["options"]] == ["chronopost_13h", "colissimo_home", "mondial_relay"]
    home = options["colissimo_home"]
    assert (home["ship_date"], home["delivery_earliest"], home["delivery_latest"]) == (
        "2025-03-10",
        "2025-03-11",
        "2025-03-12",
    )
    assert home["seconds_to_cutoff"] == 5 * 3600
    assert home["cutoff"].startswith("2025-03-10T15:00:00")
    assert home["price"] == "6.90" and options["mondial_relay"]["pickup_point"] is True
    token = promise_token_read(home["promise_id"])
    assert token is not None and token.delivery_by == date(2025, 3, 12) and len(home["promise_id"]) <= 100


def test_an_at_instant_replays_a_promise_and_a_stale_offset_lands_after_the_cutoff(api, configured, shirt):
    response = _ask(api, ("SHIRT-M", 1), services=["colissimo_home"], at="2025-03-31T14:30:00+01:00")
    (option,) = response.json()["options"]
    assert option["ship_date"] == "2025-04-01"


def test_a_zone_one_service_does_not_serve_is_listed_as_unserved(api, configured, shirt):
    clock.set_now(MONDAY)
    body = _ask(api, ("SHIRT-M", 1), postcode="97400").json()
    assert [o["service"] for o in body["options"]] == ["colissimo_home"]
    assert {u["service"]: u["code"] for u in body["unserved"]} == {
        "chronopost_13h": "zone_not_served",
        "mondial_relay": "zone_not_served",
    }


def test_stock_only_on_an_asn_is_promised_from_its_expected_date(api, merchant, configured, shelf):
    clock.set_now(MONDAY)
    sku = SkuFactory(merchant=merchant, code="NEW-1")
    asn = AsnFactory(merchant=merchant, site=configured, expected_at=date(2025, 3, 11))
    AsnLineFactory(asn=asn, sku=sku, expected_quantity=10)
    body = _ask(api, ("NEW-1", 2), services=["colissimo_home"]).json()
    assert (body["available_now"], body["available_from"]) == (False, "2025-03-11")
    assert body["options"][0]["ship_date"] == "2025-03-12"


@pytest.mark.parametrize(
    ("lines", "extra", "status", "code"),
    [
        ([("NOPE", 1)], {}, 404, "unknown_sku"),
        ([("SHIRT-M", 0)], {}, 422, "invalid_quantity"),
        ([("SHIRT-M", 1)], {"destination": {"country": "FR", "postcode": "96000"}}, 422, "invalid_postcode"),
        ([("SHIRT-M", 1)], {"destination": {"country": "ZZ", "postcode": "1"}}, 422, "invalid_country"),
        ([("SHIRT-M", 1)], {"destination": {"country": "DE", "postcode": "10115"}}, 422, "destination_not_served"),
        ([("SHIRT-M", 1)], {"at": "yesterday"}, 422, "invalid_instant"),
        ([("SHIRT-M", 1)], {"at": "2025-03-10T10:00:00"}, 422, "invalid_instant"),
        ([("SHIRT-M", 1)], {"services": ["ups_saver"]}, 422, "service_unavailable"),
        ([("SHIRT-M", 999)], {}, 409, "out_of_stock"),
        ([], {}, 422, "empty_cart"),
    ],
)
def test_bad_input_is_refused_with_its_code_never_a_500(api, configured, shirt, lines, extra, status, code):
    assert _error(_ask(api, *lines, **extra), status) == code


def test_another_merchants_sku_is_unknown_like_a_missing_one(api, other_merchant, configured, shirt):
    SkuFactory(merchant=other_merchant, code="THEIRS")
    assert _error(_ask(api, ("THEIRS", 1)), 404) == "unknown_sku"


def test_no_site_configured_is_a_clear_refusal(api, shirt):
    assert _error(_ask(api, ("SHIRT-M", 1)), 409) == "promise_not_configured"


def test_the_lead_time_feed_answers_each_sku_and_may_be_cached(api, merchant, configured, shirt):
    clock.set_now(MONDAY)
    SkuFactory(merchant=merchant, code="GONE")
    response = api.get("promise/lead-times", sku=["SHIRT-M", "GONE"])
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "private, max-age=60"
    rows = {r["sku"]: r for r in response.json()}
    assert rows["SHIRT-M"]["service"] == "chronopost_13h" and rows["SHIRT-M"]["delivery_latest"] == "2025-03-11"
    assert rows["GONE"]["available_now"] is False and rows["GONE"]["ship_date"] is None


def test_staff_read_and_load_the_configuration_and_a_merchant_may_not(api, staff_api, configured):
    document = staff_api.get("promise/config").json()
    assert document["sites"][0]["site"] == "LYS1"
    document["sites"][0]["services"][0]["cutoffs"] = {"1": "16:00"}
    response = staff_api.put("promise/config", document)
    assert response.status_code == 200, response.content
    assert staff_api.get("promise/config").json()["sites"][0]["services"][0]["cutoffs"] == {"1": "16:00"}
    assert _error(api.put("promise/config", document), 403) == "staff_only"
    assert _error(api.get("promise/config"), 403) == "staff_only"


def test_a_configuration_with_problems_is_refused_whole_with_each_path(staff_api, configured):
    document = staff_api.get("promise/config").json()
    services = document["sites"][0]["services"]
    assert [s["code"] for s in services] == ["chronopost_13h", "colissimo_home", "mondial_relay"]
    services[1]["transit"]["FR-MAINLAND"] = [[2, 0.9], [1, 1.0]]
    services[0]["cutoffs"] = {"funday": "25:00"}
    response = staff_api.put("promise/config", document)
    assert _error(response, 422) == "invalid_promise_config"
    paths = [e["path"] for e in response.json()["error"]["details"]["errors"]]
    assert "sites[0].services[1].transit.FR-MAINLAND" in paths and "sites[0].services[0].cutoffs" in paths
    assert staff_api.get("promise/config").json()["sites"][0]["services"][1]["transit"]["FR-MAINLAND"][0] == [1, 0.8]
