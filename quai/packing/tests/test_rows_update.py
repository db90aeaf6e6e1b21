"""``quai.core.rows.rows_update`` writes what ``bulk_update`` writes: here on the pack station's parcels, whose
columns cover the kinds the batch forms write (text, whole numbers and their NULL, a boolean, a JSON list, times,
a foreign key), on both databases, in one statement whose text does not depend on the number of rows. (Until
5 December 2026 the pack line, the totes and the trucks called ``quai.core.db.rows_update``, a ``VALUES`` list per
number of rows; it was folded into this one.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core.rows import rows_update
from quai.packing.models import Parcel, ParcelItem
from quai.packing.tests.factories import parcel_for
from quai.tenants.tests.factories import MerchantFactory
from quai.warehouse.tests.factories import LocationFactory

FIELDS = [
    "status",
    "packaging_code",
    "packaging_dims_mm",
    "expected_weight_g",
    "measured_weight_g",
    "weight_ok",
    "last_error",
    "closed_at",
    "station",
    "updated_at",
]
MOMENT = datetime(2026, 11, 27, 15, 30, 12, 345678, tzinfo=UTC)


class _Undo(Exception):
    pass


def _changed(parcels: list[Parcel], station: Any) -> list[Parcel]:
    for n, parcel in enumerate(parcels):
        parcel.status = "awaiting_label" if n % 2 else "closed"
        parcel.packaging_code = f"BOX-{n}" if n != 1 else ""
        parcel.packaging_dims_mm = [300 + n, 200, 120] if n != 2 else []
        parcel.expected_weight_g = 480 + n if n != 1 else None
        parcel.measured_weight_g = None if n % 2 else 500 + n
        parcel.weight_ok = bool(n % 2)
        parcel.last_error = "weight_mismatch" if n == 2 else ""
        parcel.closed_at = MOMENT + timedelta(minutes=n) if n != 1 else None
        parcel.station = station if n != 2 else parcel.station
        parcel.updated_at = MOMENT
    return parcels


def _text(sql: str) -> str:
    """A captured statement without its parameters' values (SQLite's log inlines them): up to ``FROM``'s source."""
    return sql.split(" FROM ", 1)[0]


def _rows() -> list[tuple[Any, ...]]:
    return list(
        Parcel.objects.order_by("pk").values_list("pk", *[f if f != "station" else "station_id" for f in FIELDS])
    )


@pytest.mark.django_db
def test_rows_update_writes_what_bulk_update_writes() -> None:
    merchant = MerchantFactory(code="acme")
    ids = [parcel_for(merchant) for _n in range(3)]
    untouched = parcel_for(merchant)
    station = LocationFactory()
    with pytest.raises(_Undo), transaction.atomic():
        Parcel.objects.bulk_update(_changed(list(Parcel.objects.filter(pk__in=ids).order_by("pk")), station), FIELDS)
        expected = _rows()
        raise _Undo
    before = _rows()
    changed = _changed(list(Parcel.objects.filter(pk__in=ids).order_by("pk")), station)
    with CaptureQueriesContext(connection) as many:
        matched = rows_update(changed, FIELDS)
    assert matched == 3
    first = _changed(list(Parcel.objects.filter(pk=ids[0])), station)
    with CaptureQueriesContext(connection) as one:
        assert rows_update(first, FIELDS) == 1
    # One statement, the same text for one row as for three (prepared once on PostgreSQL).
    assert len(many) == len(one) == 1
    assert _text(many[0]["sql"]) == _text(one[0]["sql"])
    assert _rows() == expected != before
    assert [row for row in _rows() if row[0] == untouched] == [row for row in before if row[0] == untouched]


@pytest.mark.django_db
def test_rows_update_refuses_a_row_given_twice_or_two_models() -> None:
    merchant = MerchantFactory(code="acme")
    parcel = Parcel.objects.get(pk=parcel_for(merchant))
    with pytest.raises(ValueError):
        rows_update([parcel, Parcel.objects.get(pk=parcel.pk)], ["status"])
    with pytest.raises(TypeError):
        rows_update([parcel, ParcelItem.objects.get(parcel=parcel)], ["status"])  # type: ignore[list-item]
    assert rows_update([], ["status"]) == 0
