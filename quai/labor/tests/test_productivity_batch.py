"""Labour's batch forms of the scan handlers (``on_picks_confirmed``, ``on_pack_scans``): the same productivity
entries as the per-event handlers run on each event in turn, in a fixed number of queries per relay batch, and a
batch that fails falls back per event."""

from __future__ import annotations

import dataclasses
import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.events import Envelope, event_from_payload, event_from_row
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record, outbox_relay
from quai.core.tests.sql_faults import fails_once
from quai.labor import services
from quai.labor.models import ProductivityEntry
from quai.labor.tests.factories import staff_member
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db
for _module in ("quai.fulfillment.events", "quai.packing.events"):
    importlib.import_module(_module)
NINE = datetime(2030, 1, 7, 9, tzinfo=UTC)


def _pick(operator_id: int | None, location_code: str, task_id: int) -> Any:
    return event_from_payload(
        "fulfilment.pick_confirmed",
        {
            "order_id": 1,
            "batch_id": 1,
            "task_id": task_id,
            "sku_id": 1,
            "sku_code": "SKU",
            "quantity": 1,
            "lot": "",
            "from_location_code": location_code,
            "tote_code": "T1",
            "operator_id": operator_id,
        },
    )


def _pack(operator: str, result: str, minute: int) -> Any:
    return event_from_payload(
        "packing.scan_recorded",
        {
            "parcel_id": 1,
            "order_id": 1,
            "code": "x",
            "sku_code": "SKU",
            "result": result,
            "reason": "" if result == "ok" else "not_in_order",
            "operator": operator,
            "scanned_at": (NINE + timedelta(minutes=minute)).isoformat(),
        },
    )


def _items(name: str) -> list[tuple[Any, Envelope]]:
    rows = OutboxEvent.objects.filter(name=name).order_by("id")
    return [(event_from_row(row), Envelope.of(row)) for row in rows]


@pytest.fixture
def scenario(merchant) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Picks from a place known once, from a code two sites share (unknown), from no place, by a known operator, a
    vanished one and nobody; pack scans accepted and refused, by a known operator, an unknown name and nobody; one
    pick already counted before the batch, and each kind's first event twice in the batch."""
    site, other_site = SiteFactory(), SiteFactory()
    zone = ZoneFactory(site=site)
    LocationFactory(zone=zone, site=site, code="A-01-01")
    LocationFactory(zone=zone, site=site, code="TWIN")
    LocationFactory(zone=ZoneFactory(site=other_site), site=other_site, code="TWIN")
    ana, bea = staff_member("ana", site), staff_member("bea", site)
    picks = [
        (ana.user.pk, " a-01-01 "),
        (bea.user.pk, "TWIN"),
        (None, "A-01-01"),
        (ana.user.pk + bea.user.pk + 1000, "A-01-01"),  # an operator since deleted
        (bea.user.pk, "NOWHERE"),
    ]
    packs = [("ana", "ok"), ("ana", "refused"), ("ghost", "ok"), ("", "ok"), ("bea", "ok"), ("bea", "error")]
    for minute, (operator_id, code) in enumerate(picks):
        with clock.frozen(NINE + timedelta(minutes=minute)):
            event_record(_pick(operator_id, code, minute), merchant_id=merchant.pk)
    for minute, (operator, result) in enumerate(packs):
        with clock.frozen(NINE + timedelta(minutes=minute)):
            event_record(_pack(operator, result, minute), merchant_id=merchant.pk)
    picks_items, packs_items = _items("fulfilment.pick_confirmed"), _items("packing.scan_recorded")
    services.on_pick_confirmed(*picks_items[-1])  # counted before (a relay that died after its commit)
    return {
        "picks": [*picks_items, picks_items[0]],
        "packs": [*packs_items, packs_items[0]],
    }


def _entries() -> list[tuple[Any, ...]]:
    return [
        (e.event_id, e.activity, e.operator_id, e.operator_label, e.site_id, e.zone_id, e.lines, e.occurred_at)
        for e in ProductivityEntry.objects.order_by("pk")
    ]


class Undo(Exception):
    pass


def test_the_batch_forms_count_exactly_what_the_per_event_handlers_count(scenario):
    with pytest.raises(Undo), transaction.atomic():
        for event, envelope in scenario["picks"]:
            services.on_pick_confirmed(event, envelope)
        for event, envelope in scenario["packs"]:
            services.on_pack_scan(event, envelope)
        one_by_one = _entries()
        raise Undo
    assert len(_entries()) == 1  # the per-event run was undone: only the pick counted before
    with CaptureQueriesContext(connection) as picks:
        services.on_picks_confirmed(scenario["picks"])
    with CaptureQueriesContext(connection) as packs:
        services.on_pack_scans(scenario["packs"])
    together = _entries()
    assert together == one_by_one
    assert len(together) == 5 + 4  # every pick once; the accepted scans of ana, the unknown name, nobody, bea
    by_event = {entry[0]: entry for entry in together}
    first_pick = by_event[scenario["picks"][0][1].event_id]
    assert first_pick[3] == "ana" and first_pick[4] is not None  # the code is read as the floor types it
    twin = by_event[scenario["picks"][1][1].event_id]
    assert twin[3] == "bea" and twin[4] is None and twin[5] is None  # a code two sites share names no place
    ghost = by_event[scenario["packs"][2][1].event_id]
    assert ghost[2] is None and ghost[3] == "ghost"
    assert len(picks.captured_queries) == 3  # operators, locations, one insert
    assert len(packs.captured_queries) == 2  # operators, one insert


def test_a_batch_of_refused_scans_reads_nothing(scenario):
    refused = [item for item in scenario["packs"] if item[0].result != "ok"]
    with CaptureQueriesContext(connection) as context:
        services.on_pack_scans(refused)
    assert not context.captured_queries


def test_the_query_count_does_not_grow_with_the_scans(merchant):
    site = SiteFactory()
    LocationFactory(zone=ZoneFactory(site=site), site=site, code="B-1")
    staff = [staff_member(f"picker{n}", site) for n in range(5)]
    for n in range(60):
        event_record(_pick(staff[n % 5].user.pk, "B-1", n), merchant_id=merchant.pk)
        event_record(_pack(f"picker{n % 5}", "ok", n), merchant_id=merchant.pk)
    picks, packs = _items("fulfilment.pick_confirmed"), _items("packing.scan_recorded")
    with CaptureQueriesContext(connection) as context:
        services.on_picks_confirmed(picks)
        services.on_pack_scans(packs)
    assert len(context.captured_queries) == 5
    assert ProductivityEntry.objects.filter(activity="pick", site=site).count() == 60
    assert ProductivityEntry.objects.filter(activity="pack", operator__isnull=False).count() == 60


def test_a_batch_that_fails_is_undone_and_the_relay_counts_each_scan_alone(scenario, settings):
    settings.QUAI_OUTBOX_NUDGE = False
    with fails_once('INTO "labor_productivityentry"', "duplicate key value (injected)") as failed:
        while outbox_relay(batch=100):
            pass
    assert failed
    assert len(_entries()) == 5 + 4
    # subscribed unrecorded (test_productivity_unrecorded): no HandledEvent row
    assert not HandledEvent.objects.filter(handler__in=["labor.productivity_pick", "labor.productivity_pack"]).exists()
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()


def test_a_pick_replayed_with_another_payload_keeps_its_first_count(scenario):
    event, envelope = scenario["picks"][0]
    services.on_picks_confirmed([(event, envelope)])
    services.on_picks_confirmed([(dataclasses.replace(event, from_location_code="TWIN"), envelope)])
    assert ProductivityEntry.objects.get(event_id=envelope.event_id).site_id is not None


def test_the_batch_reads_have_one_text_for_one_event_and_many(scenario):
    """The operators and the places are read with their ids, names and codes as ONE parameter
    (``quai.core.rows.Among``): the same texts for a batch of one event as for the whole batch (5-16 texts each over
    ~100 relay batches in a 1,000-order PostgreSQL day before, each planned at every call); what they read is the
    per-event test's above."""
    from quai.core.tests.sql_texts import statement_texts, texts_with

    for kind, handle in (("picks", services.on_picks_confirmed), ("packs", services.on_pack_scans)):
        with pytest.raises(Undo), transaction.atomic():
            one = statement_texts(lambda handle=handle, kind=kind: handle(scenario[kind][:1]))
            raise Undo
        with pytest.raises(Undo), transaction.atomic():
            many = statement_texts(lambda handle=handle, kind=kind: handle(scenario[kind]))
            raise Undo
        for marker in ('FROM "auth_user"', 'FROM "warehouse_location"'):
            assert texts_with(one, marker) == texts_with(many, marker)
        assert texts_with(one, 'FROM "auth_user"')
