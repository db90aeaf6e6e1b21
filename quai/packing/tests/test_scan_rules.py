"""The pack station's counting rule, as properties: whatever the packer scans, in any order, each line counts at
most what the order takes, every scan is recorded once (accepted or refused), and the parcel reaches the box step
exactly when every unit was scanned (short of one, it never closes). On PostgreSQL, two stations scanning the last
unit of a parcel at once: one is counted, the other refused as one too many."""

from __future__ import annotations

import threading
from itertools import count

import pytest
from django.db import connection, connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent
from quai.packing import services
from quai.packing.models import Parcel, ParcelItem
from quai.packing.tests.factories import floor_build, released_order
from quai.packing.views import _step

SHIRT, MUG, CAP, UNKNOWN = "3760000000017", "03760000000031", "3760000000055", "NOPE-1"
_refs = count(1)


@pytest.fixture
def floor(db):  # type: ignore[no-untyped-def]
    from quai.catalog.tests.factories import SkuFactory
    from quai.inventory.services import stock_receive

    built = floor_build()
    SkuFactory(merchant=built.merchant, code="CAP", gtin="03760000000055")
    # Hypothesis runs many examples (and replays some) in one test database: enough stock for every order it makes.
    stock_receive(sku=built.shirt, location=built.shelf, quantity=2000)
    stock_receive(sku=built.mug, location=built.shelf, quantity=2000)
    return built


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shirts=st.integers(1, 3),
    mugs=st.integers(1, 2),
    scans=st.lists(st.sampled_from([SHIRT, MUG, CAP, UNKNOWN]), max_size=12),
)
def test_whatever_is_scanned_each_line_counts_at_most_its_quantity_and_every_scan_is_recorded(
    floor, shirts, mugs, scans
):  # type: ignore[no-untyped-def]
    ref = f"PROP-{next(_refs)}"
    lines = [
        {"sku": "SHIRT-M", "quantity": shirts, "unit_price": "19.90"},
        {"sku": "MUG", "quantity": mugs, "unit_price": "9.90"},
    ]
    released_order(floor.merchant, ref, lines)
    parcel = services.parcel_open(code=ref, station=floor.station, actor="packer")
    expected = {"SHIRT-M": shirts, "MUG": mugs}
    model = {"SHIRT-M": 0, "MUG": 0}
    refused = 0
    for code in scans:
        sku = {SHIRT: "SHIRT-M", MUG: "MUG"}.get(code)
        try:
            services.parcel_scan(parcel=parcel, code=code, actor="packer")
        except QuaiError as exc:
            refused += 1
            want = "item_extra" if sku else ("item_not_in_order" if code == CAP else "unknown_code")
            assert exc.code == want
            assert sku is None or model[sku] == expected[sku]
        else:
            assert sku is not None and model[sku] < expected[sku]
            model[sku] += 1
    counted = dict(ParcelItem.objects.filter(parcel=parcel).values_list("sku_code", "scanned"))
    assert counted == model
    events = OutboxEvent.objects.filter(name="packing.scan_recorded", payload__parcel_id=parcel.pk)
    assert events.filter(payload__result="refused").count() == refused
    assert events.filter(payload__result="ok").count() == 1 + len(scans) - refused  # + the opening
    # The screen moves to the box only once every unit is in; a parcel short of a unit never closes.
    all_done = model == expected
    fresh = Parcel.objects.get(pk=parcel.pk)
    assert _step(fresh) == ("box" if all_done else "items")
    if not all_done:
        with pytest.raises(QuaiError) as incomplete:
            services.parcel_close(parcel=parcel)
        assert incomplete.value.code == "parcel_incomplete"
        assert Parcel.objects.get(pk=parcel.pk).status == "open"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_stations_scanning_the_last_unit_at_once_count_it_once():
    if connection.vendor != "postgresql":
        pytest.skip("real parallel writers need PostgreSQL")
    floor = floor_build()
    released_order(floor.merchant, "RACE-1", [{"sku": "MUG", "quantity": 1, "unit_price": "9.90"}])
    parcel = services.parcel_open(code="RACE-1", station=floor.station)
    workers = 6
    barrier = threading.Barrier(workers)
    lock = threading.Lock()
    outcomes: list[str] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            try:
                services.parcel_scan(parcel=parcel.pk, code=MUG, actor="packer")
            except QuaiError as exc:
                with lock:
                    outcomes.append(exc.code)
            else:
                with lock:
                    outcomes.append("ok")
        except BaseException as exc:  # a crash must fail the test, not vanish with the thread
            with lock:
                outcomes.append(f"crash: {exc!r}")
        finally:
            connections["default"].close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["item_extra"] * (workers - 1) + ["ok"]
    assert ParcelItem.objects.get(parcel=parcel).scanned == 1
