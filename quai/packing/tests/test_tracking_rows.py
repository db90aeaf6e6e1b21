"""The carrier's tracking file (``tracking_record_many``) writes its shipments as ONE JSON parameter
(``quai.core.rows.values_update``) and locks them, and the orders it delivers, by statements written once
(``quai.core.rows.by_ids``): the same rows as the ORM's ``bulk_update`` (until 5 December 2026 the reference was
``quai.core.db.rows_update``'s ``UPDATE … FROM (VALUES …)``, since folded into ``quai.core.rows.rows_update``) and
the querysets they replace — every column of every shipment, in SQLite's stored text too (a datetime, a date and
their NULLs), the same instances (values, types, deferred fields, id order). ``test_tracking_many`` compares the
whole file with one by one. Here, above shipping, because the parcels are packed and handed over first."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from quai.core import clock
from quai.core.rows import by_ids, values_update
from quai.orders.models import Order
from quai.orders.services.floor_shipping import STEP_FIELDS
from quai.packing.tests.test_pack_reads import _fields
from quai.packing.tests.test_tracking_many import MOMENT, _shipped_parcels
from quai.shipping import services
from quai.shipping.models import Shipment


class _Undo(Exception):
    pass


def _stored() -> list[Any]:
    """Every column of every shipment as the database gives it back (SQLite: the stored text of a datetime)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(Shipment._meta.db_table)} ORDER BY id")
        return [tuple(row) for row in cursor.fetchall()]


@pytest.mark.django_db
def test_the_shipments_json_update_writes_what_bulk_update_writes() -> None:
    shipments = _shipped_parcels(4)
    fields = services._TRACKING_WRITTEN
    at = MOMENT + timedelta(days=1, microseconds=123456)
    written = []
    for write in (
        lambda chosen: Shipment.objects.bulk_update(chosen, list(fields)),
        lambda chosen: values_update(Shipment, fields, [(s.pk, *(getattr(s, f) for f in fields)) for s in chosen]),
    ):
        with pytest.raises(_Undo), transaction.atomic():
            chosen = list(Shipment.objects.filter(pk__in=[s.pk for s in shipments[:3]]).order_by("pk"))
            for n, shipment in enumerate(chosen):
                shipment.status = ["delivered", "in_transit", "handed_over"][n]
                shipment.delivered_at = at + timedelta(hours=n) if n == 0 else None
                shipment.estimated_delivery = date(2026, 11, 30) if n == 1 else None
                shipment.updated_at = at
            write(chosen)
            written.append((_stored(), list(Shipment.objects.order_by("pk").values())))
            raise _Undo
    assert written[0] == written[1]
    rows = written[0][1]
    assert [row["status"] for row in rows[:3]] == ["delivered", "in_transit", "handed_over"]
    assert rows[0]["delivered_at"] == at and rows[1]["estimated_delivery"] == date(2026, 11, 30)


@pytest.mark.django_db
def test_the_file_locks_its_shipments_and_orders_as_the_querysets_did() -> None:
    shipments = _shipped_parcels(3)
    ids = [s.pk for s in reversed(shipments)]
    order_ids = [s.order_id for s in shipments]
    with transaction.atomic():
        wanted = list(
            Shipment.objects.select_for_update().filter(pk__in=ids).only(*services._TRACKING_FIELDS).order_by("pk")
        )
        got = by_ids(Shipment, ids, fields=services._TRACKING_FIELDS, lock=True)
        orders_wanted = list(
            Order.objects.select_for_update().filter(pk__in=order_ids).only(*STEP_FIELDS).order_by("pk")
        )
        orders_got = by_ids(Order, [*order_ids, order_ids[0]], fields=STEP_FIELDS, lock=True)
    for mine, theirs in (*zip(got, wanted, strict=True), *zip(orders_got, orders_wanted, strict=True)):
        assert mine.pk == theirs.pk
        assert mine.get_deferred_fields() == theirs.get_deferred_fields()
        assert _fields(mine) == _fields(theirs)
    assert [s.pk for s in got] == sorted(ids) and len(orders_got) == 3


@pytest.mark.django_db
def test_a_file_whose_delivery_is_refused_leaves_nothing_written_without_the_orders_savepoint() -> None:
    """The orders are delivered within the file's own transaction, without a savepoint of their own: a refusal
    still undoes the whole file (the shipments, their records, the events), as one by one."""
    from quai.core.errors import Conflict
    from quai.shipping import domain
    from quai.shipping.carriers.base import TrackingEvent
    from quai.shipping.models import TrackingEventRecord

    first, second, _third = _shipped_parcels(3)
    Order.objects.filter(pk=second.order_id).update(status="delivered")
    before = (_stored(), list(TrackingEventRecord.objects.values_list("pk", flat=True)))
    at = MOMENT + timedelta(hours=20)
    delivered = [TrackingEvent(at, "SIM-DELIVERED", "Delivered", domain.DELIVERED)]
    with clock.frozen(MOMENT + timedelta(days=2)), pytest.raises(Conflict):
        services.tracking_record_many(updates=[(first.pk, delivered), (second.pk, delivered)])
    assert (_stored(), list(TrackingEventRecord.objects.values_list("pk", flat=True))) == before
    assert Order.objects.get(pk=first.order_id).status == "shipped"
