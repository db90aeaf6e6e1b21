"""The scan burst (a batch-mode scanner uploading its buffer): the same parcel scanned one code at a time and as
one burst ends with exactly the same rows — counted units, scan events, parcel — refusals included; and a burst
costs a number of queries that does not grow with its units."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent
from quai.orders import services as orders
from quai.packing import services
from quai.packing.models import Parcel, ParcelItem
from quai.packing.tests.factories import floor_build, released_order

SHIRT, MUG, CAP, UNKNOWN = "3760000000017", "03760000000031", "3760000000055", "NOPE-1"
MOMENT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


class _Undo(Exception):
    pass


@pytest.fixture
def floor(db):  # type: ignore[no-untyped-def]
    from quai.catalog.tests.factories import SkuFactory

    built = floor_build()
    SkuFactory(merchant=built.merchant, code="CAP", gtin="03760000000055")  # the merchant's, in no order
    return built


def _state(parcel_id: int, since: int) -> dict[str, Any]:
    """What the scans left: the parcel's lines and fields, and every outbox row since ``since`` minus its ids."""
    parcel = Parcel.objects.get(pk=parcel_id)
    events = [
        (e.name, e.merchant_id, e.aggregate, e.aggregate_id, e.schema_version, e.occurred_at, e.payload)
        for e in OutboxEvent.objects.filter(pk__gt=since).order_by("pk")
    ]
    return {
        "items": list(
            ParcelItem.objects.filter(parcel_id=parcel_id)
            .order_by("pk")
            .values("pk", "sku_id", "sku_code", "name", "lot", "expected", "scanned", "reservation_id")
        ),
        "parcel": (parcel.status, parcel.weight_ok, parcel.last_error, parcel.packaging_code, parcel.measured_weight_g),
        "events": events,
    }


def _last_event_id() -> int:
    last = OutboxEvent.objects.order_by("-pk").first()
    return last.pk if last else 0


@pytest.mark.django_db
def test_a_burst_ends_exactly_as_the_same_codes_scanned_one_by_one_refusals_included(floor):  # type: ignore[no-untyped-def]
    released_order(
        floor.merchant,
        "BURST-1",
        [
            {"sku": "SHIRT-M", "quantity": 2, "unit_price": "19.90"},
            {"sku": "MUG", "quantity": 1, "unit_price": "9.90"},
        ],
    )
    parcel = services.parcel_open(code="BURST-1", station=floor.station, actor="packer")
    # A wrong item, an unknown code and one shirt too many in the middle of the burst.
    codes = [SHIRT, CAP, SHIRT, SHIRT, UNKNOWN, MUG]
    since = _last_event_id()
    with clock.frozen(MOMENT):
        # One by one first, undone afterwards (a savepoint), so the burst starts from the very same parcel.
        refusals: list[str] = []
        with pytest.raises(_Undo), transaction.atomic():
            for code in codes:
                try:
                    services.parcel_scan(parcel=parcel.pk, code=code, actor="packer")
                except QuaiError as exc:
                    refusals.append(exc.code)
            one_by_one = _state(parcel.pk, since)
            raise _Undo
        assert _state(parcel.pk, since)["events"] == []
        outcomes = services.parcel_scans_record(parcel=parcel.pk, codes=codes, actor="packer")
    burst = _state(parcel.pk, since)
    assert refusals == ["item_not_in_order", "item_extra", "unknown_code"]
    assert [o.error.code for o in outcomes if o.error is not None] == refusals
    assert [o.accepted for o in outcomes] == [True, False, True, False, False, True]
    assert burst == one_by_one
    assert [e[6]["result"] for e in burst["events"]] == ["ok", "refused", "ok", "refused", "refused", "ok"]
    assert [i["scanned"] for i in burst["items"]] == [2, 1]
    assert services.parcel_box_suggest(parcel=Parcel.objects.get(pk=parcel.pk)).box.code


@pytest.mark.django_db
def test_a_burst_on_a_held_order_refuses_and_records_every_code_as_one_by_one(floor):  # type: ignore[no-untyped-def]
    order = released_order(floor.merchant, "BURST-HOLD", [{"sku": "MUG", "quantity": 2, "unit_price": "9.90"}])
    parcel = services.parcel_open(code="BURST-HOLD", station=floor.station, actor="packer")
    orders.order_hold(order=order.pk, reason="customer_service")
    codes = [MUG, MUG]
    since = _last_event_id()
    with clock.frozen(MOMENT):
        with pytest.raises(_Undo), transaction.atomic():
            for code in codes:
                with pytest.raises(QuaiError):
                    services.parcel_scan(parcel=parcel.pk, code=code, actor="packer")
            one_by_one = _state(parcel.pk, since)
            raise _Undo
        with pytest.raises(QuaiError) as stopped:
            services.parcel_scans_record(parcel=parcel.pk, codes=codes, actor="packer")
    assert stopped.value.code == "order_on_hold"
    burst = _state(parcel.pk, since)
    assert burst == one_by_one
    assert [(e[6]["result"], e[6]["reason"]) for e in burst["events"]] == [("refused", "order_on_hold")] * 2
    assert [i["scanned"] for i in burst["items"]] == [0]


@pytest.mark.django_db
def test_a_burst_costs_the_same_queries_for_two_units_or_twenty(floor):  # type: ignore[no-untyped-def]
    lines = [
        {"sku": "SHIRT-M", "quantity": 10, "unit_price": "19.90"},
        {"sku": "MUG", "quantity": 10, "unit_price": "9.90"},
    ]
    released_order(floor.merchant, "BURST-S", lines)
    released_order(floor.merchant, "BURST-L", lines)
    small = services.parcel_open(code="BURST-S", station=floor.station, actor="packer")
    large = services.parcel_open(code="BURST-L", station=floor.station, actor="packer")
    with CaptureQueriesContext(connection) as two:
        services.parcel_scans_record(parcel=small.pk, codes=[SHIRT, MUG], actor="packer")
    with CaptureQueriesContext(connection) as twenty:
        outcomes = services.parcel_scans_record(parcel=large.pk, codes=[SHIRT, MUG] * 10, actor="packer")
    assert all(o.accepted for o in outcomes)
    assert dict(ParcelItem.objects.filter(parcel=large).values_list("sku_code", "scanned")) == {
        "SHIRT-M": 10,
        "MUG": 10,
    }
    assert len(twenty.captured_queries) == len(two.captured_queries) <= 14


@pytest.mark.django_db
def test_an_empty_burst_changes_nothing_and_a_missing_parcel_is_not_found(floor):  # type: ignore[no-untyped-def]
    released_order(floor.merchant, "BURST-E", [{"sku": "MUG", "quantity": 1, "unit_price": "9.90"}])
    parcel = services.parcel_open(code="BURST-E", station=floor.station, actor="packer")
    since = _last_event_id()
    assert services.parcel_scans_record(parcel=parcel.pk, codes=[], actor="packer") == []
    assert _state(parcel.pk, since)["events"] == []
    with pytest.raises(QuaiError) as missing:
        services.parcel_scans_record(parcel=parcel.pk + 1000, codes=[MUG])
    assert missing.value.code == "parcel_not_found"


@pytest.mark.django_db
def test_the_api_takes_a_burst_from_a_packer_and_refuses_a_merchant_or_a_staff_member_without_the_role(
    floor, staff_api, api
):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group
    from django.test import Client

    from quai.tenants.tests.factories import StaffUserFactory

    released_order(floor.merchant, "BURST-API", [{"sku": "MUG", "quantity": 1, "unit_price": "9.90"}])
    parcel = services.parcel_open(code="BURST-API", station=floor.station, actor="packer")
    answer = staff_api.post(f"packing/parcels/{parcel.pk}/scans", {"codes": [MUG, CAP, MUG]})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert [(s["result"], s["reason"]) for s in body["scans"]] == [
        ("ok", ""),
        ("refused", "item_not_in_order"),
        ("refused", "item_extra"),
    ]
    assert body["scans"][1]["message"] and body["parcel"]["items"][0]["scanned"] == 1
    merchant_answer = api.post(f"packing/parcels/{parcel.pk}/scans", {"codes": [MUG]})
    assert (merchant_answer.status_code, merchant_answer.json()["error"]["code"]) == (403, "staff_only")
    clerk = Client()
    clerk.force_login(StaffUserFactory(username="clerk"))
    from conftest import ApiClient

    refused = ApiClient(clerk).post(f"packing/parcels/{parcel.pk}/scans", {"codes": [MUG]})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "packer_only")
    packer = StaffUserFactory(username="packer-1")
    packer.groups.add(Group.objects.get_or_create(name="packer")[0])
    clerk.force_login(packer)
    missing = ApiClient(clerk).post(f"packing/parcels/{parcel.pk + 999}/scans", {"codes": [MUG]})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "parcel_not_found")
    empty = ApiClient(clerk).post(f"packing/parcels/{parcel.pk}/scans", {"codes": []})
    assert empty.status_code == 422
    assert OutboxEvent.objects.filter(name="packing.scan_recorded", payload__parcel_id=parcel.pk).count() == 4
