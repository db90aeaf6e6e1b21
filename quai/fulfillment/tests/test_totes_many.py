"""A wave's new totes are written together (``_free_totes`` through ``locations_create_many`` and one tote insert):
the same totes, codes, locations and pick sequences as ``tote_ensure`` one code after another, as the pool grew
before (kept below as the reference)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.fulfillment import services
from quai.fulfillment.models import Tote
from quai.warehouse.models import Location, Site, ZoneKind
from quai.warehouse.services import location_create, zone_create
from quai.warehouse.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


def _free_totes_one_by_one(site: Site, count: int) -> list[Tote]:
    """The pool as it grew before: a tote (and its location) created per missing code."""
    totes = list(Tote.objects.select_for_update().filter(site=site, batch__isnull=True).order_by("code")[:count])
    number = Tote.objects.filter(site=site).count()
    while len(totes) < count:
        number += 1
        code = f"TOTE-{number:04d}"
        if Tote.objects.filter(site=site, code=code).exists():
            continue
        totes.append(services.tote_ensure(site=site, code=code))
    return totes


def _state(site: Site) -> dict[str, Any]:
    fields = [f.attname for f in Location._meta.concrete_fields if f.name not in ("id", "zone")]
    return {
        "locations": list(Location.objects.filter(site=site).order_by("code").values_list("zone__code", *fields)),
        "totes": list(
            Tote.objects.filter(site=site).order_by("code").values_list("code", "location__code", "batch_id", "slot")
        ),
    }


class Undo(Exception):
    pass


@pytest.fixture
def site() -> Site:
    """Three free totes, TOTE-0005 numbered out of turn; a location TOTE-0006 without a tote (reused,
    not duplicated). No tote zone yet: the first new location creates it."""
    site = SiteFactory(code="totes")
    other = zone_create(site=site, code="MISC", name="Misc", kind=ZoneKind.PROCESSING)
    for code in ("TOTE-0001", "TOTE-0002", "TOTE-0005"):
        services.tote_ensure(site=site, code=code)
    location_create(site=site, zone=other, code="TOTE-0006", pick_sequence=90)
    return site


@pytest.mark.parametrize("count", [1, 2, 3, 9])
def test_the_pool_grows_with_the_rows_tote_by_tote_wrote(site, count):
    now = clock.now()
    with pytest.raises(Undo), transaction.atomic(), clock.frozen(now):
        made = [t.code for t in _free_totes_one_by_one(site, count)]
        expected = _state(site), made
        raise Undo
    with clock.frozen(now):
        totes = services._free_totes(site, count)
    assert (_state(site), [t.code for t in totes]) == expected
    assert all(t.pk and t.location_id for t in totes)
    if count == 9:  # the free ones; then 0004 (after the count, 3), 0006 (on its location), 0007…: 0005 skipped
        assert [t.code for t in totes][:6] == [
            "TOTE-0001",
            "TOTE-0002",
            "TOTE-0005",
            "TOTE-0004",
            "TOTE-0006",
            "TOTE-0007",
        ]


def test_new_totes_cost_the_same_few_queries_whatever_their_number(site):
    def grown(count: int) -> int:
        with CaptureQueriesContext(connection) as context, transaction.atomic():
            services._free_totes(site, count)
        return len(context.captured_queries)

    assert grown(40) == grown(80)


def _release_world(code: str) -> Site:
    """Two totes in slots of a cart: TOTE-0001 emptied, TOTE-0002 still holding a unit."""
    from quai.catalog.tests.factories import SkuFactory
    from quai.inventory.services import stock_receive
    from quai.tenants.tests.factories import MerchantFactory

    site = SiteFactory(code=code)
    totes = [services.tote_ensure(site=site, code=f"TOTE-000{n}") for n in (1, 2)]
    Tote.objects.filter(pk__in=[t.pk for t in totes]).update(slot=2)
    stock_receive(sku=SkuFactory(merchant=MerchantFactory()), location=totes[1].location, quantity=1)
    return site


def test_totes_given_back_together_answer_and_write_what_one_release_after_another_does():
    asked = [" tote-0001", "TOTE-0002", "TOTE-0404", "TOTE-0001"]
    one_site, many_site = _release_world("one"), _release_world("many")
    answers_one: list[Any] = []
    for code in asked:
        try:
            services.tote_release(site=one_site, tote_code=code)
        except Exception as refusal:
            answers_one.append((refusal.code, refusal.details, str(refusal.message)))  # type: ignore[attr-defined]
        else:
            answers_one.append(None)
    with CaptureQueriesContext(connection) as queries:
        answers = services.totes_release_many(releases=[(many_site, code) for code in asked])
    assert [None if a is None else (a.code, a.details, str(a.message)) for a in answers] == answers_one
    assert _state(many_site)["totes"] == _state(one_site)["totes"]
    assert [a is None for a in answers] == [True, False, False, True]
    assert len([q for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]) == 3
