"""Closing many weighed parcels in one go (``parcels_close_many``) ends exactly as closing the same parcels one by
one with ``parcel_close``: the same parcels, shipments, ledger moves, order steps and outbox rows — a hold placed
meanwhile, a weight mismatch and a wrong item included; a parcel refused while its label was being fetched, or
whose carrier failed, waits for its label and the others close."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent, StateTransition
from quai.inventory.models import StockMovement, StockQuantity
from quai.inventory.selectors import stock_drift
from quai.orders import services as orders
from quai.orders.models import Order
from quai.packing import services
from quai.packing.models import Parcel, ParcelStatus
from quai.packing.tests.equivalence import events_per_aggregate, last_pk, transitions_per_aggregate
from quai.packing.tests.factories import floor_build, released_order
from quai.shipping.carriers import sandbox
from quai.shipping.carriers.base import CarrierUnavailable
from quai.shipping.models import Shipment, SsccSequence

SHIRT, MUG, CAP = "3760000000017", "03760000000031", "3760000000055"
MOMENT = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)
#: Payload keys naming rows the close creates: their ids differ between two runs on PostgreSQL (sequences are not
#: rolled back with a savepoint), so they are left out of the comparison; everything else must be equal.
NEW_ROW_IDS = {"movement_id", "shipment_id", "transition_id", "id"}


class _Undo(Exception):
    pass


@pytest.fixture
def floor(db):  # type: ignore[no-untyped-def]
    from quai.catalog.tests.factories import SkuFactory

    built = floor_build()
    SkuFactory(merchant=built.merchant, code="CAP", gtin="03760000000055")  # the merchant's, in no order
    return built


def _weighed(floor: Any, ref: str, shirts: int, mugs: int, *, wrong_item: bool = False, heavy: bool = False) -> Parcel:
    """A parcel opened, every unit scanned (a wrong item refused on the way if asked), boxed and weighed (too heavy
    if asked: the weight mismatch keeps it from closing)."""
    lines = [{"sku": "SHIRT-M", "quantity": shirts, "unit_price": "19.90"}] if shirts else []
    if mugs:
        lines.append({"sku": "MUG", "quantity": mugs, "unit_price": "9.90"})
    released_order(floor.merchant, ref, lines)
    parcel = services.parcel_open(code=ref, station=floor.station, actor="packer")
    codes = [SHIRT] * shirts + ([CAP] if wrong_item else []) + [MUG] * mugs
    services.parcel_scans_record(parcel=parcel, codes=codes, actor="packer")
    parcel = services.parcel_box_set(
        parcel=parcel, packaging_code=services.parcel_box_suggest(parcel=parcel).box.code, actor="packer"
    )
    assert parcel.expected_weight_g is not None
    try:
        services.parcel_weigh(parcel=parcel, weight_g=parcel.expected_weight_g + (900 if heavy else 0), actor="packer")
    except QuaiError as exc:
        assert heavy and exc.code == "weight_mismatch"
    return Parcel.objects.get(pk=parcel.pk)


def _state(floor: Any, since_event: int, since_transition: int) -> dict[str, Any]:
    """Everything the closes wrote or changed, the ids of the rows they created left out; events and audit rows in
    each aggregate's order."""
    events = events_per_aggregate(since_event, new_row_ids=NEW_ROW_IDS)
    shipments = {s.pk: s for s in Shipment.objects.all()}
    return {
        "parcels": [
            (
                p.pk,
                p.status,
                p.last_error,
                p.carrier_code,
                p.closed_at,
                shipments[p.shipment_id].sscc if p.shipment_id else None,
            )
            for p in Parcel.objects.order_by("pk")
        ],
        "shipments": list(
            Shipment.objects.order_by("sscc").values_list(
                "order_id", "parcel_id", "sscc", "tracking_number", "service", "weight_g", "status", "label_format"
            )
        ),
        "ledger": list(
            StockMovement.objects.order_by("pk").values_list(
                "kind", "sku_id", "from_location_id", "to_location_id", "quantity", "document_type", "document_id"
            )
        ),
        "stock": sorted(StockQuantity.objects.values_list("location_id", "sku_id", "on_hand", "reserved")),
        "orders": sorted(Order.objects.values_list("external_id", "status")),
        "transitions": transitions_per_aggregate(since_transition),
        "sscc": list(SsccSequence.objects.values_list("company_prefix", "next_serial")),
        "events": events,
    }


def _fresh_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox numbers its labels with a process-wide counter: both runs start it from the same value."""
    monkeypatch.setattr(sandbox, "_counter", itertools.count(1))


@pytest.mark.django_db
def test_closing_many_parcels_ends_exactly_as_closing_them_one_by_one(floor, monkeypatch):  # type: ignore[no-untyped-def]
    ok = _weighed(floor, "MANY-1", 2, 1)
    wrong = _weighed(floor, "MANY-2", 1, 0, wrong_item=True)  # a wrong item refused at the scan: it closes
    held = _weighed(floor, "MANY-3", 1, 1)
    heavy = _weighed(floor, "MANY-4", 2, 0, heavy=True)  # the weight mismatch: refused, stays open
    last = _weighed(floor, "MANY-5", 1, 2)
    orders.order_hold(order=held.order_id, reason="customer_service")  # meanwhile, customer service
    parcels = [last, ok, heavy, held, wrong]
    since_event, since_transition = last_pk(OutboxEvent), last_pk(StateTransition)
    with clock.frozen(MOMENT):
        refusals: dict[int, str] = {}
        with pytest.raises(_Undo), transaction.atomic():
            _fresh_counter(monkeypatch)
            for parcel in sorted(parcels, key=lambda p: p.pk):
                try:
                    services.parcel_close(parcel=parcel.pk, actor="packer", label_format="zpl")
                except QuaiError as exc:
                    refusals[parcel.pk] = exc.code
            one_by_one = _state(floor, since_event, since_transition)
            raise _Undo
        assert _state(floor, since_event, since_transition)["events"] == {}
        _fresh_counter(monkeypatch)
        one_at_a_time: list[int] = []
        record = services._close_record
        monkeypatch.setattr(
            services,
            "_close_record",
            lambda current, *a, **k: one_at_a_time.append(current.pk) or record(current, *a, **k),
        )
        outcomes = services.parcels_close_many(parcels=parcels, actor="packer", label_format="zpl")
    assert one_at_a_time == []  # nothing refused once labelled: the parcels were recorded together
    together = _state(floor, since_event, since_transition)
    assert refusals == {held.pk: "order_on_hold", heavy.pk: "parcel_weight_unchecked"}
    assert [o.parcel_id for o in outcomes] == sorted(p.pk for p in parcels)
    assert {o.parcel_id: o.error.code for o in outcomes if o.error is not None} == refusals
    assert together == one_by_one
    closed = [p for p in together["parcels"] if p[1] == ParcelStatus.CLOSED]
    assert [p[0] for p in closed] == [ok.pk, wrong.pk, last.pk]
    assert len(together["shipments"]) == 3 and len(together["ledger"]) > 0
    assert stock_drift() == []


@pytest.mark.django_db
def test_a_parcel_held_while_its_label_is_fetched_or_whose_carrier_fails_waits_and_the_others_close(floor, monkeypatch):  # type: ignore[no-untyped-def]
    from quai.shipping import services as shipping

    first = _weighed(floor, "LBL-1", 1, 0)
    held = _weighed(floor, "LBL-2", 1, 1)
    failing = _weighed(floor, "LBL-3", 2, 0)
    last = _weighed(floor, "LBL-4", 0, 1)
    asked = shipping.shipment_label_request
    voided: list[str] = []

    def carrier(*, carrier: Any, request: Any) -> Any:
        if request.reference == "LBL-2":
            orders.order_hold(order=held.order_id, reason="fraud")  # the agent acts while the carrier answers
        if request.reference == "LBL-3":
            raise CarrierUnavailable("the carrier answered 500")
        return asked(carrier=carrier, request=request)

    monkeypatch.setattr(shipping, "shipment_label_request", carrier)
    monkeypatch.setattr(shipping, "shipment_label_void", lambda answer: voided.append(answer.request.reference))
    outcomes = services.parcels_close_many(parcels=[first, held, failing, last], actor="packer")
    assert [(o.parcel_id, o.error.code if o.error else "") for o in outcomes] == [
        (first.pk, ""),
        (held.pk, "order_on_hold"),
        (failing.pk, "carrier_unavailable"),
        (last.pk, ""),
    ]
    rows = {p.pk: (p.status, p.last_error) for p in Parcel.objects.all()}
    assert rows == {
        first.pk: (ParcelStatus.CLOSED, ""),
        held.pk: (ParcelStatus.AWAITING_LABEL, "order_on_hold"),
        failing.pk: (ParcelStatus.AWAITING_LABEL, "carrier_unavailable"),
        last.pk: (ParcelStatus.CLOSED, ""),
    }
    assert voided == ["LBL-2"]  # the held parcel's label, after the commit; no label was made for the failing one
    assert sorted(Shipment.objects.values_list("order_reference", flat=True)) == ["LBL-1", "LBL-4"]
    statuses = dict(Order.objects.values_list("external_id", "status"))
    assert statuses == {"LBL-1": "packed", "LBL-2": "on_hold", "LBL-3": "released", "LBL-4": "packed"}
    assert not StockMovement.objects.filter(document_id__in=[str(held.pk), str(failing.pk)], kind="pack").exists()
    assert stock_drift() == []
    # The carrier is back and the hold released: the waiting parcels close, one by one as in a batch.
    monkeypatch.setattr(shipping, "shipment_label_request", asked)
    orders.order_release_hold(order=held.order_id)
    again = services.parcels_close_many(parcels=[held.pk, failing.pk], actor="packer")
    assert [o.closed for o in again] == [True, True]


@pytest.mark.django_db
def test_a_batch_close_costs_fewer_queries_per_parcel_than_one_by_one(floor):  # type: ignore[no-untyped-def]
    one = [_weighed(floor, f"Q1-{n}", 1, 1) for n in range(4)]
    many = [_weighed(floor, f"QM-{n}", 1, 1) for n in range(4)]
    with CaptureQueriesContext(connection) as single:
        for parcel in one:
            services.parcel_close(parcel=parcel, actor="packer")
    with CaptureQueriesContext(connection) as batch:
        outcomes = services.parcels_close_many(parcels=many, actor="packer")
    assert all(o.closed for o in outcomes)
    # The checks, the carriers, the SKUs, the order lines, the SSCCs and the totes are read once per batch; what
    # stays per parcel is the ledger, the shipment, the order's step and the event.
    assert len(batch) < len(single) * 0.8, (len(batch), len(single))


def _scanned(floor: Any, ref: str, shirts: int, mugs: int) -> Parcel:
    lines = [{"sku": "SHIRT-M", "quantity": shirts, "unit_price": "19.90"}] if shirts else []
    if mugs:
        lines.append({"sku": "MUG", "quantity": mugs, "unit_price": "9.90"})
    released_order(floor.merchant, ref, lines)
    parcel = services.parcel_open(code=ref, station=floor.station, actor="packer")
    services.parcel_scans_record(parcel=parcel, codes=[SHIRT] * shirts + [MUG] * mugs, actor="packer")
    return Parcel.objects.get(pk=parcel.pk)


def _fields(since_event: int) -> dict[str, Any]:
    return {
        "parcels": list(
            Parcel.objects.order_by("pk").values_list(
                "pk",
                "status",
                "packaging_code",
                "packaging_tare_g",
                "packaging_dims_mm",
                "expected_weight_g",
                "measured_weight_g",
                "weight_ok",
                "last_error",
                "updated_at",
            )
        ),
        "events": [
            (e.name, e.merchant_id, e.aggregate, e.aggregate_id, e.occurred_at, e.payload)
            for e in OutboxEvent.objects.filter(pk__gt=since_event).order_by("pk")
        ],
    }


@pytest.mark.django_db
def test_boxing_and_weighing_many_parcels_ends_exactly_as_one_by_one(floor):  # type: ignore[no-untyped-def]
    """The auto-packing line: the cartonizer boxes a batch, the inline scale weighs it; a hold placed meanwhile,
    a weight mismatch and a zero reading refused as one by one."""
    parcels = [
        _scanned(floor, "LINE-1", 2, 1),
        _scanned(floor, "LINE-2", 1, 0),
        _scanned(floor, "LINE-3", 0, 2),
        _scanned(floor, "LINE-4", 3, 0),
        _scanned(floor, "LINE-5", 1, 1),
    ]
    held, heavy, zero = parcels[2], parcels[3], parcels[4]
    orders.order_hold(order=held.order_id, reason="customer_service")
    since = last_pk(OutboxEvent)

    def weights() -> list[tuple[int, int]]:
        found = {p.pk: p.expected_weight_g or 500 for p in Parcel.objects.all()}
        return [
            (p.pk, 0 if p.pk == zero.pk else found[p.pk] + (900 if p.pk == heavy.pk else 0)) for p in reversed(parcels)
        ]

    with clock.frozen(MOMENT):
        refused: dict[int, str] = {}
        with pytest.raises(_Undo), transaction.atomic():
            for parcel in sorted(parcels, key=lambda p: p.pk):
                try:
                    box = services.parcel_box_suggest(parcel=parcel).box
                    services.parcel_box_set(parcel=parcel.pk, packaging_code=box.code, actor="line")
                except QuaiError as exc:
                    refused[parcel.pk] = exc.code
            for pk, grams in sorted(weights()):
                try:
                    services.parcel_weigh(parcel=pk, weight_g=grams, actor="line")
                except QuaiError as exc:
                    refused.setdefault(pk, exc.code)
            one_by_one = _fields(since)
            raise _Undo
        boxed = services.parcels_box_many(parcels=parcels, actor="line")
        weighed = services.parcels_weigh_many(weighings=weights(), actor="line")
    together = _fields(since)
    assert refused == {held.pk: "order_on_hold", heavy.pk: "weight_mismatch", zero.pk: "weight_invalid"}
    assert [o.parcel_id for o in boxed] == [o.parcel_id for o in weighed] == sorted(p.pk for p in parcels)
    assert {o.parcel_id: o.error.code for o in boxed if o.error} == {held.pk: "order_on_hold"}
    assert {o.parcel_id: o.error.code for o in weighed if o.error} == refused
    assert together == one_by_one
    assert [e[5]["reason"] for e in together["events"]] == ["weighed", "weighed", "weight_mismatch"]
    assert all(row[2] for row in together["parcels"] if row[0] != held.pk)  # every other parcel boxed


@pytest.mark.django_db
def test_the_stations_readings_weighed_together_each_in_its_packers_name_end_as_one_by_one(floor):  # type: ignore[no-untyped-def]
    """A pack table's stations send their scales' readings together, each parcel in the name of the packer who
    weighed it: the same parcels and events (each with its operator) as each packer weighing one by one."""
    parcels = [_scanned(floor, f"DUO-{n}", 1, n % 2) for n in range(4)]
    boxed = services.parcels_box_many(parcels=parcels, actor="line")
    grams = {o.parcel_id: o.parcel.expected_weight_g for o in boxed if o.parcel is not None}
    grams[parcels[3].pk] += 900  # a mismatch, refused in its packer's name
    packers = {p.pk: ("ana" if n % 2 else "bob") for n, p in enumerate(parcels)}
    since = last_pk(OutboxEvent)
    with clock.frozen(MOMENT):
        refused: dict[int, str] = {}
        with pytest.raises(_Undo), transaction.atomic():
            for pk in sorted(grams):
                try:
                    services.parcel_weigh(parcel=pk, weight_g=grams[pk], actor=packers[pk])
                except QuaiError as exc:
                    refused[pk] = exc.code
            one_by_one = _fields(since)
            raise _Undo
        weighed = services.parcels_weigh_many(
            weighings=[(p.pk, grams[p.pk], packers[p.pk]) for p in reversed(parcels)], actor="line"
        )
    together = _fields(since)
    assert refused == {parcels[3].pk: "weight_mismatch"}
    assert {o.parcel_id: o.error.code for o in weighed if o.error} == refused
    assert together == one_by_one
    assert [e[5]["operator"] for e in together["events"]] == ["bob", "ana", "bob", "ana"]


@pytest.mark.django_db
def test_the_line_boxes_and_weighs_a_batch_in_the_same_queries_for_two_parcels_or_eight(floor):  # type: ignore[no-untyped-def]
    parcels = [_scanned(floor, f"QL-{n}", 1, 1) for n in range(10)]

    def line(batch: list[Parcel]) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as box:
            boxed = services.parcels_box_many(parcels=batch)
        weighings = [(o.parcel_id, o.parcel.expected_weight_g) for o in boxed if o.parcel is not None]
        with CaptureQueriesContext(connection) as weigh:
            assert all(o.done for o in services.parcels_weigh_many(weighings=weighings))
        return len(box), len(weigh)

    assert line(parcels[:2]) == line(parcels[2:])
    assert all(p.weight_ok for p in Parcel.objects.all())


@pytest.mark.django_db
def test_the_api_closes_a_batch_for_a_packer_answering_each_parcel_and_refuses_others(floor, staff_api, api):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group
    from django.test import Client

    from conftest import ApiClient
    from quai.tenants.tests.factories import StaffUserFactory

    ok = _weighed(floor, "API-1", 1, 1)
    held = _weighed(floor, "API-2", 1, 0)
    orders.order_hold(order=held.order_id, reason="fraud")
    body = {"parcel_ids": [held.pk, ok.pk, ok.pk + 999], "label_format": "zpl"}
    merchant_answer = api.post("packing/parcels/close", body)
    assert (merchant_answer.status_code, merchant_answer.json()["error"]["code"]) == (403, "staff_only")
    clerk = Client()
    clerk.force_login(StaffUserFactory(username="clerk"))
    refused = ApiClient(clerk).post("packing/parcels/close", body)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "packer_only")
    assert Parcel.objects.get(pk=ok.pk).status == ParcelStatus.OPEN  # nothing closed by a refused caller
    packer = StaffUserFactory(username="packer-1")
    packer.groups.add(Group.objects.get_or_create(name="packer")[0])
    clerk.force_login(packer)
    answer = ApiClient(clerk).post("packing/parcels/close", body)
    assert answer.status_code == 200, answer.content
    results = answer.json()["results"]
    assert [(r["parcel_id"], r["result"], r["reason"]) for r in results] == [
        (ok.pk, "closed", ""),
        (held.pk, "refused", "order_on_hold"),
        (ok.pk + 999, "refused", "parcel_not_found"),
    ]
    assert results[0]["parcel"]["status"] == "closed" and results[0]["parcel"]["shipment_id"]
    assert results[1]["message"] and results[1]["parcel"]["status"] == "open"
    assert results[2]["parcel"] is None
    assert Shipment.objects.get(parcel_id=ok.pk).label_format == "zpl"
    assert ApiClient(clerk).post("packing/parcels/close", {"parcel_ids": []}).status_code == 422
    # A supervisor (here an admin) may close a batch too; the held parcel is still refused.
    assert staff_api.post("packing/parcels/close", {"parcel_ids": [held.pk]}).json()["results"][0]["reason"] == (
        "order_on_hold"
    )


@pytest.mark.django_db
def test_a_ledger_refusal_after_the_batch_wrote_undoes_it_and_closes_the_others_one_by_one(floor, monkeypatch):  # type: ignore[no-untyped-def]
    """The units of one parcel leave the shelf while its label is fetched: the closes recorded together are refused
    by the ledger after their first writes, undone whole, and the parcels closed one by one — that one left waiting
    for its label with the reason, its label voided, the other closed."""
    from quai.shipping import services as shipping

    shirts = _weighed(floor, "GONE-1", 2, 0)
    mugs = _weighed(floor, "GONE-2", 0, 1)
    asked = shipping.shipment_label_request
    voided: list[str] = []

    def carrier(*, carrier: Any, request: Any) -> Any:
        if request.reference == "GONE-2":  # meanwhile, the mugs are counted away from the shelf
            StockQuantity.objects.filter(location=floor.shelf, sku=floor.mug).update(on_hand=0, reserved=0)
        return asked(carrier=carrier, request=request)

    monkeypatch.setattr(shipping, "shipment_label_request", carrier)
    monkeypatch.setattr(shipping, "shipment_label_void", lambda answer: voided.append(answer.request.reference))
    together = services._close_record_many
    undone: list[str] = []

    def recorded(*args: Any, **kwargs: Any) -> Any:
        try:
            return together(*args, **kwargs)
        except services._TogetherRefused as exc:
            undone.append(getattr(exc.__cause__, "code", ""))
            raise

    monkeypatch.setattr(services, "_close_record_many", recorded)
    outcomes = services.parcels_close_many(parcels=[shirts, mugs], actor="packer")
    assert outcomes[0].closed and outcomes[1].error is not None
    assert undone == [outcomes[1].error.code]  # refused after the batch's first writes, then one by one
    assert Parcel.objects.get(pk=shirts.pk).status == ParcelStatus.CLOSED
    waiting = Parcel.objects.get(pk=mugs.pk)
    assert (waiting.status, waiting.last_error) == (ParcelStatus.AWAITING_LABEL, outcomes[1].error.code)
    assert voided == ["GONE-2"]
    assert sorted(Shipment.objects.values_list("order_reference", flat=True)) == ["GONE-1"]
    assert dict(Order.objects.values_list("external_id", "status")) == {"GONE-1": "packed", "GONE-2": "released"}
    assert not StockMovement.objects.filter(document_id=str(mugs.pk), kind="pack").exists()
