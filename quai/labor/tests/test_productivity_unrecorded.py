"""Labour's scan handlers are subscribed unrecorded (``subscribe(..., recorded=False)``, issue 17): they write no
``HandledEvent`` row, so a retried event (another handler failed on it, a relay died after their commit) runs them
again. Their entries' unique event id makes that second run write nothing: the entries are those of one run."""

from __future__ import annotations

from typing import Any

import pytest

from quai.core import clock
from quai.core.events import Envelope, subscriptions_for
from quai.core.models import HandledEvent, OutboxEvent
from quai.core.outbox import event_record
from quai.core.tests.retried import relayed_then_retried
from quai.labor import services
from quai.labor.models import ProductivityEntry
from quai.labor.tests.factories import staff_member
from quai.labor.tests.test_productivity_batch import NINE, _entries, _items, _pack, _pick
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory

pytestmark = pytest.mark.django_db

KEYS = {"labor.productivity_pick": "fulfilment.pick_confirmed", "labor.productivity_pack": "packing.scan_recorded"}


@pytest.fixture
def scans(merchant) -> dict[str, list[tuple[Any, Envelope]]]:  # type: ignore[no-untyped-def]
    site = SiteFactory()
    LocationFactory(zone=ZoneFactory(site=site), site=site, code="A-01")
    ana = staff_member("ana", site)
    for minute in range(4):
        with clock.frozen(NINE):
            event_record(_pick(ana.user.pk, "A-01", minute), merchant_id=merchant.pk)
            event_record(_pack("ana", "ok" if minute else "refused", minute), merchant_id=merchant.pk)
    return {"picks": _items("fulfilment.pick_confirmed"), "packs": _items("packing.scan_recorded")}


def test_the_scan_handlers_are_subscribed_unrecorded():
    for key, name in KEYS.items():
        assert subscriptions_for(name)[key].recorded is False


@pytest.mark.parametrize("form", ["batch", "one event at a time"])
def test_a_second_run_on_the_same_events_writes_nothing(scans, form):
    def run() -> None:
        if form == "batch":
            services.on_picks_confirmed(scans["picks"])
            services.on_pack_scans(scans["packs"])
        else:
            for event, envelope in scans["picks"]:
                services.on_pick_confirmed(event, envelope)
            for event, envelope in scans["packs"]:
                services.on_pack_scan(event, envelope)

    run()
    once = _entries()
    assert len(once) == 4 + 3  # every pick, the accepted scans
    run()
    assert _entries() == once
    # and the other form after this one, as a relay batch that failed falls back per event
    services.on_picks_confirmed(scans["picks"])
    for event, envelope in scans["packs"]:
        services.on_pack_scan(event, envelope)
    assert _entries() == once


def test_a_retried_event_counts_its_scan_once(scans):
    def pending() -> None:
        assert OutboxEvent.objects.filter(relayed_at=None).count() == 8  # every event failed beside

    once, again = relayed_then_retried(list(KEYS.values()), _entries, pending=pending)
    assert len(once) == 7
    assert again == once  # the retries ran the scan handlers again: no entry more
    assert not OutboxEvent.objects.filter(relayed_at=None).exists()
    assert not HandledEvent.objects.filter(handler__in=list(KEYS)).exists()
    assert ProductivityEntry.objects.count() == 7
