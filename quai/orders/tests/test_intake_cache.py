"""What intake keeps per process (quai/orders/services/intake.py): a merchant's SKUs by code and its release buffer,
read once for many orders, and the draft's digest built without copying its SKU rows."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from quai.catalog.tests.factories import SkuFactory
from quai.orders.models import Order
from quai.orders.services import intake, order_policy_set, order_validate
from quai.orders.tests.conftest import order_data

pytestmark = pytest.mark.django_db


def _reads(context: CaptureQueriesContext) -> dict[str, int]:
    sqls = [query["sql"] for query in context.captured_queries]
    sku_reads = [sql for sql in sqls if sql.startswith("SELECT") and 'FROM "catalog_sku"' in sql]
    return {
        "skus": sum(1 for sql in sku_reads if "COUNT(" not in sql),
        "stamp": sum(1 for sql in sku_reads if "COUNT(" in sql),
        "policy": sum(1 for sql in sqls if sql.startswith("SELECT") and 'FROM "orders_orderpolicy"' in sql),
    }


def test_a_second_order_for_the_same_skus_reads_neither_the_skus_nor_the_release_buffer(api, shirt, stock):
    stock(shirt, 10)
    with CaptureQueriesContext(connection) as first:
        assert api.post("orders", order_data("C-1")).status_code == 201
    with CaptureQueriesContext(connection) as second:
        assert api.post("orders", order_data("C-2", lines=[{"sku": "shirt-m", "quantity": 1}])).status_code == 201
    assert _reads(first) == {"skus": 1, "stamp": 1, "policy": 1}
    # The code without case is the same SKU, from the cache.
    assert _reads(second) == {"skus": 0, "stamp": 0, "policy": 0}
    lines = Order.objects.get(external_id="C-2").lines.get()
    assert (lines.sku_id, lines.sku_code) == (shirt.pk, "SHIRT-M")


def test_an_unknown_code_is_not_kept_so_a_sku_created_next_is_found_at_once(api, merchant, shirt, stock):
    stock(shirt, 10)
    body = order_data("C-3", lines=[{"sku": "SHIRT-M", "quantity": 1}, {"sku": "NEW-1", "quantity": 1}])
    refused = api.post("orders", body)
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "sku_not_found"
    SkuFactory(merchant=merchant, code="NEW-1")
    with CaptureQueriesContext(connection) as context:
        response = api.post("orders", body)
    assert response.status_code == 201, response.content
    assert _reads(context)["skus"] == 1  # the new code only: SHIRT-M came from the cache
    assert [line["sku"] for line in response.json()["lines"]] == ["SHIRT-M", "NEW-1"]


def test_the_skus_of_one_merchant_are_never_found_for_another(api, merchant, other_merchant, shirt, stock):
    stock(shirt, 10)
    assert api.post("orders", order_data("C-4")).status_code == 201  # merchant's SHIRT-M is now cached
    with pytest.raises(Exception) as refused:
        order_validate(merchant=other_merchant, data=order_data("C-4"))
    assert getattr(refused.value, "code", None) == "sku_not_found"


def test_a_cached_sku_is_read_again_once_its_time_is_over(monkeypatch, settings, merchant, shirt):
    now = [1000.0]
    monkeypatch.setattr(intake.time, "monotonic", lambda: now[0])
    settings.QUAI_INTAKE_CACHE_SECONDS = 5
    assert order_validate(merchant=merchant, data=order_data("C-5")).lines[0].sku.pk == shirt.pk
    shirt.code = "SHIRT-L"  # renamed by the catalog (another process: nothing here is told)
    shirt.save(update_fields=["code"])
    now[0] += 4.9
    assert order_validate(merchant=merchant, data=order_data("C-5")).lines[0].sku.pk == shirt.pk  # still trusted
    now[0] += 0.2
    with pytest.raises(Exception) as refused:
        order_validate(merchant=merchant, data=order_data("C-5"))
    assert getattr(refused.value, "code", None) == "sku_not_found"


def test_with_no_cache_time_every_order_reads_its_skus_and_buffer(api, settings, shirt, stock):
    settings.QUAI_INTAKE_CACHE_SECONDS = 0
    stock(shirt, 10)
    api.post("orders", order_data("C-6"))
    with CaptureQueriesContext(connection) as context:
        assert api.post("orders", order_data("C-7")).status_code == 201
    assert _reads(context) == {"skus": 1, "stamp": 0, "policy": 1}


def test_each_request_gets_its_own_copy_of_a_cached_sku(merchant, shirt):
    first = order_validate(merchant=merchant, data=order_data("C-8")).lines[0].sku
    second = order_validate(merchant=merchant, data=order_data("C-8")).lines[0].sku
    assert first is not second and first.pk == second.pk == shirt.pk


def test_a_new_release_buffer_applies_to_the_next_order_at_once(api, merchant, shirt, stock):
    stock(shirt, 10)
    api.post("orders", order_data("C-9"))  # the default buffer is now cached
    order_policy_set(merchant=merchant, release_buffer_minutes=90)
    created = api.post("orders", order_data("C-10")).json()
    order = Order.objects.get(pk=created["id"])
    assert order.release_after - order.created_at == timedelta(minutes=90)


def _fingerprint_as_before(draft: Any) -> str:
    """The digest as it was first written (dataclasses.asdict): orders stored with it must still match a resend."""
    values = asdict(draft)
    values["lines"] = [
        {"sku_id": line.sku.pk, "quantity": line.quantity, "unit_price": str(line.unit_price)} for line in draft.lines
    ]
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_the_draft_s_digest_is_the_one_orders_were_stored_with(merchant, shirt, mug):
    data = order_data(
        "C-11",
        lines=[{"sku": "SHIRT-M", "quantity": 2, "unit_price": "19.90"}, {"sku": "MUG", "quantity": 1}],
        promise={"id": "P-1", "delivery_from": "2026-12-07", "delivery_by": "2026-12-09"},
        gift_message="Joyeux Noël",
        notes="Porte B",
    )
    draft = order_validate(merchant=merchant, data=data)
    assert draft.promised_from == date(2026, 12, 7)
    assert draft.fingerprint == _fingerprint_as_before(draft)
    assert order_validate(merchant=merchant, data=order_data("C-12")).fingerprint == _fingerprint_as_before(
        order_validate(merchant=merchant, data=order_data("C-12"))
    )


def _rows(skus: Any) -> list[tuple[Any, ...]]:
    """Every attribute of each row as the ORM set it (its values and their types), the model state's flags too."""
    return sorted(
        (
            sku.pk,
            sorted((name, repr(value)) for name, value in vars(sku).items() if name != "_state"),
            (sku._state.db, sku._state.adding),
        )
        for sku in skus
    )


@pytest.mark.parametrize("codes", [["shirt-m"], ["shirt-m", "mug"], ["mug", "nope", "shirt-m"], ["other-1"]])
def test_the_skus_read_with_the_compiled_statement_are_those_the_catalogue_s_query_finds(
    merchant, other_merchant, shirt, mug, codes
):
    SkuFactory(merchant=other_merchant, code="OTHER-1")
    with CaptureQueriesContext(connection) as context:
        read = intake._skus_read(merchant.pk, codes)
    assert len(context.captured_queries) == 1
    assert _rows(read) == _rows(intake._skus_queryset(merchant.pk, codes))
    assert {sku.code.lower() for sku in read} == set(codes) & {"shirt-m", "mug"}


def test_a_sku_with_every_kind_of_field_set_is_read_as_the_orm_reads_it(merchant):
    SkuFactory(
        merchant=merchant,
        code="Full-1",
        description="«ligne»\n2",
        length_mm=None,
        weight_g=12,
        lot_tracked=True,
        fragile=True,
        hs_code="610910",
        country_of_origin="PT",
        status="inactive",
    )
    read = intake._skus_read(merchant.pk, ["full-1"])
    assert _rows(read) == _rows(intake._skus_queryset(merchant.pk, ["full-1"]))
    assert read[0].lot_tracked is True and read[0].length_mm is None and read[0].code_lower == "full-1"


def test_a_statement_whose_parameters_are_not_the_stand_ins_is_left_to_the_orm(monkeypatch, merchant, shirt):
    catalogue_query = intake._skus_queryset
    # The catalogue's query grows a parameter of its own: the statement cannot say where its value comes from.
    monkeypatch.setattr(intake, "_skus_queryset", lambda *args: catalogue_query(*args).exclude(code=""))
    monkeypatch.setattr(intake, "_sku_statements", {})
    assert intake._sku_statement(1) is None
    assert [sku.pk for sku in intake._skus_read(merchant.pk, ["shirt-m"])] == [shirt.pk]


def test_a_cached_skus_copy_is_what_copy_copy_makes_and_shares_nothing_mutable(shirt):
    import copy

    row = type(shirt).objects.select_related("merchant").get(pk=shirt.pk)
    ours, theirs = intake._row_copy(row), copy.copy(row)
    assert type(ours) is type(theirs) is type(row)
    # copy.copy also leaves the pickle's Django version as an attribute (Model.__setstate__ keeps it): nothing reads it.
    assert ours.__dict__.keys() == theirs.__dict__.keys() - {"_django_version"}
    for name, value in ours.__dict__.items():
        if name != "_state":
            assert theirs.__dict__[name] == value, name
    assert vars(ours._state).keys() == vars(theirs._state).keys()
    assert (ours._state.db, ours._state.adding) == (theirs._state.db, theirs._state.adding)
    assert ours._state.fields_cache == theirs._state.fields_cache == row._state.fields_cache
    assert ours._state.fields_cache["merchant"] is row.merchant  # shallow, as copy.copy
    # Nothing mutable is shared with the cached row: a request's changes stay its own.
    assert ours._state is not row._state and ours._state.fields_cache is not row._state.fields_cache
    ours.name = "changed"
    ours._state.fields_cache.clear()
    ours._state.adding = True
    assert row.name != "changed" and "merchant" in row._state.fields_cache and row._state.adding is False


# --- The SKUs kept under their merchant's stamp (intake._skus_validated) -----------------------------------------


@pytest.fixture
def ticking(monkeypatch: pytest.MonkeyPatch, settings: Any) -> list[float]:
    """The cache's clock, moved by hand; the cache's time 5 s."""
    now = [1000.0]
    monkeypatch.setattr(intake.time, "monotonic", lambda: now[0])
    settings.QUAI_INTAKE_CACHE_SECONDS = 5
    return now


def _sku_of(merchant: Any, code: str) -> tuple[int, str] | str:
    """What intake makes of ``code`` for ``merchant``: the SKU's id and stored code, or the refusal's code."""
    try:
        line = order_validate(merchant=merchant, data=order_data("S-1", lines=[{"sku": code, "quantity": 1}])).lines[0]
    except Exception as refused:
        return str(getattr(refused, "code", refused))
    return (line.sku.pk, line.sku_code)


def test_past_the_cache_time_an_unchanged_merchant_costs_one_stamp_read_and_no_sku_read(ticking, merchant, shirt):
    assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")
    for _ in range(3):
        ticking[0] += 5.1
        with CaptureQueriesContext(connection) as context:
            assert _sku_of(merchant, "shirt-m") == (shirt.pk, "SHIRT-M")
        assert _reads(context) == {"skus": 0, "stamp": 1, "policy": 0}
        with CaptureQueriesContext(connection) as again:
            assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")
        assert len(again.captured_queries) == 0  # the stamp is trusted for the cache's time


def test_a_sku_renamed_through_the_catalogue_is_seen_within_the_cache_time_even_with_quai_s_clock_stopped(
    ticking, merchant, shirt, mug
):
    from quai.catalog.services import sku_update
    from quai.core import clock

    clock.set_now(clock.now())  # stopped: updated_at stays the same, the version still moves
    try:
        assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")
        sku_update(sku=shirt, version=shirt.version, data={"code": "SHIRT-L"})  # another process: nothing told here
        ticking[0] += 4.9
        assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")  # within the documented bound: still trusted
        ticking[0] += 0.2
        assert _sku_of(merchant, "SHIRT-M") == "sku_not_found"
        assert _sku_of(merchant, "SHIRT-L") == (shirt.pk, "SHIRT-L")
        assert _sku_of(merchant, "MUG") == (mug.pk, "MUG")
    finally:
        clock.reset()


def test_a_new_sku_taking_a_renamed_code_is_found_once_the_cache_time_is_over(ticking, merchant, shirt):
    assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")
    shirt.code = "SHIRT-OLD"
    shirt.save(update_fields=["code"])
    newcomer = SkuFactory(merchant=merchant, code="SHIRT-M")
    ticking[0] += 5.1
    assert _sku_of(merchant, "SHIRT-M") == (newcomer.pk, "SHIRT-M")
    assert _sku_of(merchant, "shirt-old") == (shirt.pk, "SHIRT-OLD")


def test_an_edit_the_stamp_cannot_see_is_seen_once_the_row_is_too_old(ticking, merchant, shirt):
    assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")
    # A raw rename that neither moves updated_at nor the version: the stamp stays the same.
    type(shirt).objects.filter(pk=shirt.pk).update(code="SHIRT-RAW")
    ticking[0] += intake.SKU_ROW_MAX_AGE - 1
    assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")
    ticking[0] += 1.1
    assert _sku_of(merchant, "SHIRT-M") == "sku_not_found"
    assert _sku_of(merchant, "SHIRT-RAW") == (shirt.pk, "SHIRT-RAW")


def test_rows_read_before_a_new_stamp_are_not_kept_under_it(ticking, merchant, shirt):
    generation = intake._skus_validated(merchant.pk, 5)
    read = {"shirt-m": intake._skus_read(merchant.pk, ["shirt-m"])[0]}  # read, then the catalogue changes
    shirt.code = "SHIRT-L"
    shirt.save(update_fields=["code"])
    ticking[0] += 5.1
    assert intake._skus_validated(merchant.pk, 5) != generation  # a new stamp: the merchant's rows forgotten
    intake._skus_keep(merchant.pk, read, generation=generation, read_at=ticking[0])
    assert _sku_of(merchant, "SHIRT-M") == "sku_not_found"


def test_one_merchant_s_new_stamp_forgets_its_rows_only(ticking, merchant, other_merchant, shirt):
    theirs = SkuFactory(merchant=other_merchant, code="THEIRS")
    assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")
    assert _sku_of(other_merchant, "THEIRS") == (theirs.pk, "THEIRS")
    SkuFactory(merchant=merchant, code="NEW-2")
    ticking[0] += 5.1
    with CaptureQueriesContext(connection) as context:
        assert _sku_of(other_merchant, "THEIRS") == (theirs.pk, "THEIRS")
    assert _reads(context) == {"skus": 0, "stamp": 1, "policy": 0}
    with CaptureQueriesContext(connection) as context:
        assert _sku_of(merchant, "SHIRT-M") == (shirt.pk, "SHIRT-M")
    assert _reads(context) == {"skus": 1, "stamp": 1, "policy": 0}


def test_threads_finding_the_stamp_out_of_date_read_it_once(ticking, monkeypatch, merchant):
    import threading
    import time as real_time

    reads: list[int] = []

    def slow_stamp(*, merchant_id: int) -> tuple[int, Any, int]:
        reads.append(merchant_id)
        real_time.sleep(0.05)
        return (1, None, 1)

    monkeypatch.setattr(intake, "sku_stamp", slow_stamp)
    generations: list[int] = []
    threads = [
        threading.Thread(target=lambda: generations.append(intake._skus_validated(merchant.pk, 5))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reads == [merchant.pk] and len(set(generations)) == 1


def test_threads_finding_the_release_buffer_out_of_date_read_it_once(ticking, monkeypatch, merchant):
    import threading
    import time as real_time

    reads: list[int] = []

    def slow_policy(merchant_id: int) -> Any:
        reads.append(merchant_id)
        real_time.sleep(0.05)
        return None

    monkeypatch.setattr(intake, "order_policy_for", slow_policy)
    minutes: list[int] = []
    for expired in (False, True):
        if expired:
            ticking[0] += 5.1
        minutes.clear()
        threads = [
            threading.Thread(target=lambda: minutes.append(intake.release_buffer_minutes_for(merchant.pk)))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert minutes == [intake.DEFAULT_RELEASE_BUFFER_MINUTES] * 8
    assert reads == [merchant.pk, merchant.pk]  # once when first asked, once when it expired


@pytest.mark.parametrize("seconds_between", [0.0, 5.1])
def test_with_the_stamp_intake_finds_what_the_plain_read_finds_after_every_catalogue_change(
    ticking, settings, merchant, other_merchant, seconds_between
):
    """Equivalence: after each change of a scripted catalogue history (creations, renames, a code taken over, a
    bulk upsert, another merchant's changes) and once the cache's time has passed, the cached path's drafts are the
    uncached path's (same SKU ids, codes, digests); within the time, a code found answers as it was first found."""
    from quai.catalog.services import sku_bulk_upsert, sku_update

    codes = ["A-1", "a-2", "B-1", "NEW-9", "OLD-1"]
    a1, a2 = SkuFactory(merchant=merchant, code="A-1"), SkuFactory(merchant=merchant, code="A-2")
    SkuFactory(merchant=other_merchant, code="B-1")
    history = [
        lambda: SkuFactory(merchant=merchant, code="B-1"),
        lambda: sku_update(sku=a1, version=type(a1).objects.get(pk=a1.pk).version, data={"code": "OLD-1"}),
        lambda: SkuFactory(merchant=merchant, code="A-1"),
        lambda: sku_update(sku=a2, version=type(a2).objects.get(pk=a2.pk).version, data={"name": "Renamed"}),
        lambda: sku_bulk_upsert(
            merchant=merchant, rows=[{"code": "NEW-9", "name": "New"}, {"code": "A-2", "name": "x"}]
        ),
        lambda: SkuFactory(merchant=other_merchant, code="NEW-9"),
    ]

    def seen(cached: bool) -> list[Any]:
        settings.QUAI_INTAKE_CACHE_SECONDS = 5 if cached else 0
        answers = []
        for who in (merchant, other_merchant):
            for code in codes:
                answers.append(_sku_of(who, code))
                try:
                    draft = order_validate(merchant=who, data=order_data("E-1", lines=[{"sku": code, "quantity": 2}]))
                except Exception as refused:
                    answers.append(getattr(refused, "code", None))
                else:
                    answers.append(draft.fingerprint)
        return answers

    first = seen(cached=False)
    assert seen(cached=True) == first
    for change in history:
        change()
        ticking[0] += seconds_between
        if seconds_between:
            assert seen(cached=True) == seen(cached=False)
        else:  # within the cache's time a code found at first answers as then (an unknown code is read each time)
            stale = [(a, b) for a, b in zip(seen(cached=True), first, strict=True) if b != "sku_not_found" and a != b]
            assert stale == []
