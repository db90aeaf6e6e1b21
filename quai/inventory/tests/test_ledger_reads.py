"""The pack line's and the pick's ledger reads written as SQL (one statement text for any number of ids, no model
instance) read what the ORM reads: the same values, converted as the ORM converts them (an expiry a date, a flag a
bool, a zone's window aware datetimes — SQLite gives text and integers), on a world with lots, expiries, an empty
row not counted, a zone with a validity window and one of another merchant."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.inventory.models import Reservation, ReservationAllocation, StockLevel, StockQuantity
from quai.inventory.services import reservation_create, stock_receive
from quai.inventory.services.parcels import ParcelStock, _allocations_of, _levels, _packing_locked
from quai.inventory.services.totes import _held_locked, _lock_clause, _places_of, _rows_ensure_of, _rows_locked
from quai.warehouse.models import Location, Zone, ZoneKind
from quai.warehouse.services import location_create, rack_bulk_create, zone_create
from quai.warehouse.tests.factories import SiteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(merchant) -> dict[str, Any]:
    site: Any = SiteFactory(code="lr")
    zone = zone_create(site=site, code="PCK", name="Picking", kind=ZoneKind.PICKING)
    rack_bulk_create(site=site, zone=zone, aisles="M", bays=3, levels=1)
    shelves = list(Location.objects.filter(zone=zone).order_by("pick_sequence"))
    packing = zone_create(site=site, code="PAK", name="Packing", kind=ZoneKind.PACKING)
    now = clock.now()
    Zone.objects.filter(pk=packing.pk).update(
        valid_from=now - timedelta(hours=2, microseconds=1234), valid_until=now + timedelta(days=1)
    )
    station = location_create(site=site, zone=packing, code="PACK-01")
    kept = zone_create(site=site, code="KPT", name="Kept", kind=ZoneKind.PACKING)
    Zone.objects.filter(pk=kept.pk).update(merchant_id=merchant.pk, status="closed")
    other = location_create(site=site, zone=kept, code="PACK-99")
    red = SkuFactory(merchant=merchant, code="RED", lot_tracked=True, expiry_tracked=True)
    blue = SkuFactory(merchant=merchant, code="BLUE")
    stock_receive(sku=red, location=shelves[0], quantity=4, lot="L1", expiry=date(2027, 5, 31))
    stock_receive(sku=red, location=shelves[1], quantity=6, lot="L2", expiry=date(2028, 1, 2))
    stock_receive(sku=blue, location=shelves[2], quantity=5)
    StockQuantity.objects.create(
        merchant=merchant, sku=blue, location=station, lot="", status="sellable", on_hand=0, reserved=0, counted=False
    )
    first = reservation_create(merchant=merchant, sku=red, quantity=7, allocate=True)
    second = reservation_create(merchant=merchant, sku=blue, quantity=2, allocate=True)
    return {"locations": [*shelves, station, other], "reservations": [first.pk, second.pk], "skus": [red.pk, blue.pk]}


def test_the_ledger_reads_read_what_the_orm_reads(world):
    reservations, skus = world["reservations"], world["skus"]
    locked = _packing_locked([ParcelStock(parcel_id=1, reservation_ids=reservations, location=None)])
    fields = ("status", "quantity", "merchant_id", "sku_id", "consumed_quantity", "document_type", "document_id")
    assert {
        pk: (*(getattr(r, f) for f in fields), r.sku.pk, r.sku.code, r.sku.merchant_id) for pk, r in locked.items()
    } == {
        r.pk: (*(getattr(r, f) for f in fields), r.sku.pk, r.sku.code, r.sku.merchant_id)
        for r in Reservation.objects.select_related("sku").filter(pk__in=reservations)
    }

    held = _held_locked(reservations)
    assert {
        pk: (h.pk, h.status, h.merchant_id, h.sku_id, tuple(h.sku), h.document_type, h.document_id)
        for pk, h in held.items()
    } == {
        pk: (pk, status, merchant_id, sku_id, (sku_id, code, owner), document_type, document_id)
        for pk, status, merchant_id, sku_id, code, owner, document_type, document_id in Reservation.objects.filter(
            pk__in=reservations
        ).values_list(
            "pk", "status", "merchant_id", "sku_id", "sku__code", "sku__merchant_id", "document_type", "document_id"
        )
    }
    assert _held_locked([]) == {}

    allocations = _allocations_of(reservations)
    assert sum(len(found) for found in allocations.values()) == 3  # the red one on two shelves
    assert {
        a.pk: (a.reservation_id, a.location_id, a.stock_id, a.quantity, a.lot, tuple(a.stock), a.location_code)
        for found in allocations.values()
        for a in found
    } == {
        a.pk: (
            a.reservation_id,
            a.location_id,
            a.stock_id,
            a.quantity,
            a.lot,
            (s.lot, s.expiry, s.status, s.location_id),
            a.location.code,
        )
        for a in ReservationAllocation.objects.select_related("stock", "location").filter(
            reservation_id__in=reservations
        )
        for s in [a.stock]
    }
    assert all(type(a.stock.expiry) is date for a in allocations[reservations[0]])

    rows = _rows_locked(StockQuantity.objects.values_list("pk", flat=True))
    assert {pk: tuple(row) for pk, row in rows.items()} == {
        q.pk: (q.pk, q.sku_id, q.location_id, q.status, q.counted, q.on_hand, q.reserved)
        for q in StockQuantity.objects.all()
    }
    assert {type(row.counted) for row in rows.values()} == {bool}

    assert _levels(set(skus)) == {
        level.sku_id: {"on_hand": level.on_hand, "reserved": level.reserved}
        for level in StockLevel.objects.filter(sku_id__in=skus)
    }

    location_ids = {location.pk for location in world["locations"]}
    places = _places_of(location_ids, now=clock.now())
    assert places.locations == {
        loc["pk"]: loc
        for loc in Location.objects.filter(pk__in=location_ids).values("pk", "code", "status", "zone_id", "site_id")
    }
    assert places.zones == {
        zone["pk"]: zone
        for zone in Zone.objects.filter(locations__pk__in=location_ids)
        .distinct()
        .values("pk", "status", "valid_from", "valid_until", "merchant_id")
    }
    assert [places.active(pk) for pk in sorted(location_ids)] == [True] * 4 + [False]


def test_the_rows_found_by_key_match_the_orm_rows_expiry_included(world):
    keys = {(q.sku_id, q.location_id, q.lot, q.expiry, q.status): q.pk for q in StockQuantity.objects.all()}
    places = _places_of({k[1] for k in keys}, now=clock.now())
    owners = dict(StockQuantity.objects.values_list("sku_id", "merchant_id"))
    count = StockQuantity.objects.count()
    assert _rows_ensure_of(set(keys), owners, places, now=clock.now()) == keys
    assert StockQuantity.objects.count() == count  # every key found: none created again


def test_the_reservation_reads_lock_the_reservations_not_their_skus(world):
    """``FOR UPDATE OF r`` on PostgreSQL (the SKUs joined are read, not locked); no clause on SQLite."""
    texts: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        texts.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        _packing_locked([ParcelStock(parcel_id=1, reservation_ids=world["reservations"], location=None)])
        _held_locked(world["reservations"])
    clause = " FOR UPDATE OF r" if connection.vendor == "postgresql" else ""
    assert _lock_clause("r") == clause
    assert len(texts) == 2 and all(text.endswith(f"ORDER BY r.id{clause}") for text in texts)
