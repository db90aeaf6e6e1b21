"""The pack line's reads written once (``quai.packing.reads``) give the rows the querysets they replace give: every
field's value and type (datetimes aware, the JSON box dimensions a list, the weight flag a bool, NULLs), the fields
left deferred, the parcels' stations and sites as ``select_related`` caches them, the annotation, the order of the
rows; and the pack line's round still closes parcels through them (``test_pack_many`` compares the round whole)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext

from quai.orders.models import Order
from quai.orders.services.floor_shipping import STEP_FIELDS
from quai.packing import reads, services
from quai.packing.models import Parcel, ParcelStatus
from quai.packing.tests.factories import floor_build, released_order
from quai.warehouse.models import Location, Site
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory

SHIRT, MUG = "3760000000017", "03760000000031"


def _fields(instance: Any) -> dict[str, tuple[type, Any]]:
    """Every loaded field's value with its type; the deferred fields named as such."""
    deferred = instance.get_deferred_fields()
    return {
        f.attname: ("deferred", None)
        if f.attname in deferred
        else (type(getattr(instance, f.attname)), getattr(instance, f.attname))
        for f in type(instance)._meta.concrete_fields
    }


@pytest.fixture
def parcels(db):  # type: ignore[no-untyped-def]
    """Parcels in every state the reads meet: open and scanned in part, boxed and weighed (dimensions, weights, a
    flag), closed, at two stations of two sites."""
    from quai.warehouse.models import ZoneKind

    floor = floor_build()
    other_site = SiteFactory(code="paris")
    zone = ZoneFactory(site=other_site, code="PAK2", kind=ZoneKind.PACKING)
    other_station = LocationFactory(zone=zone, site=other_site, code="PACK-9")
    made = []
    for ref, station, shirts, mugs in (
        ("R-1", floor.station, 1, 1),
        ("r-2", other_station, 2, 0),
        ("R-3", floor.station, 0, 1),
        ("R-4", other_station, 1, 0),
    ):
        lines = [{"sku": "SHIRT-M", "quantity": shirts, "unit_price": "19.90"}] if shirts else []
        if mugs:
            lines.append({"sku": "MUG", "quantity": mugs, "unit_price": "9.90"})
        released_order(floor.merchant, ref, lines)
        made.append(services.parcel_open(code=ref, station=station, actor="packer"))
    services.parcel_scans_record(parcel=made[0], codes=[SHIRT], actor="packer")
    for parcel, codes in ((made[1], [SHIRT, SHIRT]), (made[2], [MUG]), (made[3], [SHIRT])):
        services.parcel_scans_record(parcel=parcel, codes=codes, actor="packer")
        boxed = services.parcels_box_many(parcels=[parcel])[0].parcel
        services.parcels_weigh_many(weighings=[(parcel, boxed.expected_weight_g)], actor="packer")
    services.parcel_close(parcel=made[2], actor="packer", label_format="zpl")
    return made


def test_parcels_with_stations_read_as_select_related(parcels: list[Parcel]) -> None:
    ids = [p.pk for p in reversed(parcels)] + [10**9]
    with transaction.atomic():
        wanted = list(
            Parcel.objects.select_for_update(of=("self",))
            .select_related("station__site")
            .filter(pk__in=ids)
            .order_by("pk")
        )
        with CaptureQueriesContext(connection) as queries:
            got = reads.parcels_with_stations(ids, lock=True)
    assert len(queries) == 1
    assert ("FOR UPDATE" in queries[0]["sql"]) is connection.features.has_select_for_update
    assert [p.pk for p in got] == [p.pk for p in wanted]
    assert {p.status for p in got} == {ParcelStatus.OPEN, ParcelStatus.CLOSED}
    for mine, theirs in zip(got, wanted, strict=True):
        assert _fields(mine) == _fields(theirs)
        assert Parcel.station.is_cached(mine) and Location.site.is_cached(mine.station)
        assert _fields(mine.station) == _fields(theirs.station)
        assert _fields(mine.station.site) == _fields(theirs.station.site)
        assert isinstance(mine.station.site, Site)
        assert mine._state.adding is False and mine._state.db == theirs._state.db
    assert len({p.station.site.code for p in got}) == 2
    assert reads.parcels_with_stations([]) == []


def test_by_ids_reads_as_the_queryset(parcels: list[Parcel]) -> None:
    order_ids = [p.order_id for p in parcels]
    with transaction.atomic():
        wanted = list(
            Order.objects.select_for_update().filter(pk__in=order_ids).only(*STEP_FIELDS, "hold_reason").order_by("pk")
        )
        got = reads.by_ids(Order, list(reversed(order_ids)), fields=(*STEP_FIELDS, "hold_reason"), lock=True)
    assert [o.pk for o in got] == [o.pk for o in wanted]
    for mine, theirs in zip(got, wanted, strict=True):
        assert mine.get_deferred_fields() == theirs.get_deferred_fields()
        assert _fields(mine) == _fields(theirs)
    whole = reads.by_ids(Parcel, [p.pk for p in parcels])
    assert [_fields(p) for p in whole] == [
        _fields(p) for p in Parcel.objects.filter(pk__in=[p.pk for p in parcels]).order_by("pk")
    ]
    assert reads.by_ids(Order, []) == []


def _locked_for_codes(codes: list[str]) -> tuple[Any, list[str]]:
    """``_orders_locked_for_codes(codes)`` and the texts of its read of the references (placeholders, not values;
    not the look-up one by one of a code that found nothing, ``LIMIT 2``)."""
    seen: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.extend([sql] if "UPPER" in sql and "LIMIT" not in sql else [])
        return execute(sql, params, many, context)

    with transaction.atomic(), connection.execute_wrapper(record):
        return services._orders_locked_for_codes(codes), seen


def test_orders_locked_for_codes_as_the_annotated_queryset(parcels: list[Parcel]) -> None:
    codes = ["R-1", " r-2 ", "R-3", "nope", "R-4"]
    (resolved, locked), many = _locked_for_codes(codes)
    _found, one = _locked_for_codes(["R-1"])
    # The references are ONE parameter: the same statement text for five codes as for one (prepared once).
    assert len(many) == 1 and many == one
    references = sorted({c.strip().upper() for c in codes})
    wanted = {
        o.pk: o
        for o in Order.objects.annotate(reference=Upper("external_id")).filter(reference__in=references).order_by("pk")
    }
    assert sorted(locked) == sorted(wanted)
    for pk, order in locked.items():
        assert _fields(order) == _fields(wanted[pk])
        assert order.reference == wanted[pk].reference  # type: ignore[attr-defined]
    assert resolved[" r-2 "].external_id == "r-2"  # type: ignore[union-attr]
    assert getattr(resolved["nope"], "code", None) == "order_not_found"


@pytest.mark.django_db
def test_carriers_read_as_the_queryset() -> None:
    from quai.shipping.models import CarrierAccount
    from quai.shipping.services import sandbox_carrier_ensure

    for code in ("colissimo", "chronopost", "dpd"):
        sandbox_carrier_ensure(code=code, name=code.title())
    CarrierAccount.objects.filter(code="chronopost").update(credentials='{"key": "s3cret"}', settings={"a": [1, 2]})
    CarrierAccount.objects.filter(code="dpd").update(active=False)
    orders = [Order(carrier_service=s) for s in ("colissimo_dom", "chronopost", "dpd_predict", "ups")]
    got = services._carriers_read(orders)
    wanted = CarrierAccount.objects.filter(
        code__in=["chronopost", "colissimo", "dpd", "dpd_predict", "ups"], active=True
    )
    assert {code: _fields(account) for code, account in got.items()} == {a.code: _fields(a) for a in wanted}
    assert got["chronopost"].credentials == '{"key": "s3cret"}'
    assert services._carriers_read([Order(carrier_service="")]) == {}


class _Undo(Exception):
    pass


def test_closed_write_writes_what_bulk_update_writes(parcels: list[Parcel]) -> None:
    from quai.core import clock

    columns = ["status", "closed_at", "shipment_id", "carrier_code", "last_error", "updated_at"]
    now = clock.now()
    written = []
    for write in (
        lambda chosen: services._closed_write(chosen, now=now),
        lambda chosen: Parcel.objects.bulk_update(chosen, columns),
    ):
        try:
            with transaction.atomic():
                chosen = list(Parcel.objects.filter(pk__in=[parcels[0].pk, parcels[1].pk, parcels[3].pk]))
                for n, parcel in enumerate(chosen):
                    parcel.status, parcel.closed_at, parcel.last_error, parcel.updated_at = "closed", now, "", now
                    parcel.shipment_id, parcel.carrier_code = 1000 + n, ["colissimo", "chronopost", "123"][n]
                write(chosen)
                written.append(list(Parcel.objects.order_by("pk").values()))
                raise _Undo
        except _Undo:
            pass
    assert written[0] == written[1]
    assert [row["status"] for row in written[0]].count("closed") == 4
