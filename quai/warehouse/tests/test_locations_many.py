"""``locations_create_many``, the many form of ``location_create``: the same rows and the same refusals as the
locations created one by one in one transaction (each world built, read, then undone; the other built after)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.errors import QuaiError
from quai.warehouse import services
from quai.warehouse.models import Location, Site, Zone
from quai.warehouse.services import NewLocation

pytestmark = pytest.mark.django_db


@pytest.fixture
def site() -> Site:
    site = services.site_create(code="lyon", name="Lyon Gerland")
    storage = services.zone_create(site=site, code="STO", name="Réserve", kind="storage")
    services.location_create(site=site, zone=storage, code="A-01-01-01", pick_sequence=7)
    return site


@pytest.fixture
def zone(site: Site) -> Zone:
    return services.zone_create(site=site, code="TOT", name="Totes", kind="processing")


SPECS = [
    NewLocation(code=" tote-0001 "),
    NewLocation(code="B-02-03-01", x_m="12.5", y_m=3, max_volume_cm3=40_000),  # rack-shaped: address filled in
    NewLocation(code="DOCK-9", pick_sequence=40),  # an explicit sequence: the next ones come after it
    NewLocation(code="C-03-01-02", side="right", aisle="z", status="blocked", mixed_sku=False),
    NewLocation(code="TOTE-0002", pick_sequence=3, max_weight_g=9_000),
    NewLocation(code="TOTE-0003"),
]


class Undo(Exception):
    pass


def _rows(site: Site) -> list[tuple[Any, ...]]:
    fields = [f.attname for f in Location._meta.concrete_fields if f.name not in ("id",)]
    return list(Location.objects.filter(site=site).order_by("code").values_list(*fields))


def _one_by_one(site: Site, zone: Zone, specs: list[NewLocation]) -> list[Location]:
    return [services.location_create(site=site, zone=zone, **vars(spec)) for spec in specs]


def test_many_writes_the_rows_one_by_one_writes(site, zone):
    now = clock.now()
    with pytest.raises(Undo), transaction.atomic(), clock.frozen(now):
        made = _one_by_one(site, zone, SPECS)
        expected = _rows(site), [loc.code for loc in made], [loc.pick_sequence for loc in made]
        raise Undo
    assert Location.objects.filter(site=site).count() == 1
    with clock.frozen(now), CaptureQueriesContext(connection) as context:
        made = services.locations_create_many(site=site, zone=zone, locations=SPECS)
    assert (_rows(site), [loc.code for loc in made], [loc.pick_sequence for loc in made]) == expected
    assert expected[2] == [8, 9, 40, 41, 3, 42]
    assert all(loc.pk for loc in made)
    assert len(context.captured_queries) <= 7, [q["sql"] for q in context.captured_queries]


@pytest.mark.parametrize(
    "bad",
    [
        [NewLocation(code="TOTE-0009"), NewLocation(code="A-01-01-01")],  # exists already
        [NewLocation(code="TOTE-0009"), NewLocation(code="tote-0009")],  # twice in the list
        [NewLocation(code="TOTE-0009"), NewLocation(code="X-1", side="up"), NewLocation(code="A-01-01-01")],
        [NewLocation(code="TOTE-0009"), NewLocation(code="A-01-01-01"), NewLocation(code="X-1", side="up")],
        [NewLocation(code="TOTE-0009", status="gone")],
        [NewLocation(code="TOTE-0009"), NewLocation(code="")],
        [NewLocation(code="TOTE-0009", max_weight_g=0)],
    ],
)
def test_many_refuses_what_one_by_one_refuses_first_and_writes_nothing(site, zone, bad):
    with pytest.raises(QuaiError) as one, transaction.atomic():
        _one_by_one(site, zone, bad)
    with pytest.raises(QuaiError) as many:
        services.locations_create_many(site=site, zone=zone, locations=bad)
    assert (many.value.code, many.value.details, str(many.value.message)) == (
        one.value.code,
        one.value.details,
        str(one.value.message),
    )
    assert Location.objects.filter(site=site).count() == 1


def test_a_closed_zone_or_another_site_s_zone_is_refused_as_one_by_one(site, zone):
    other = services.site_create(code="paris", name="Paris")
    foreign = services.zone_create(site=other, code="TOT", name="Totes", kind="processing")
    for target in (foreign,):
        with pytest.raises(QuaiError) as one:
            services.location_create(site=site, zone=target, code="TOTE-0001")
        with pytest.raises(QuaiError) as many:
            services.locations_create_many(site=site, zone=target, locations=[NewLocation(code="TOTE-0001")])
        assert many.value.code == one.value.code == "zone_site_mismatch"
    assert services.locations_create_many(site=site, zone=zone, locations=[]) == []
