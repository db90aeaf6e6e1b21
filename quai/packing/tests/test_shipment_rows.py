"""The pack line's shipments written together (``shipments_record_many``, one raw multi-row insert) are the rows
``shipment_record`` saves one by one: every column, the label's bytes (a PDF's binary ones included), the
reservations, the customs papers or their absence; and the ASCII fast path of the labels' ``unaccent`` answers
as the Unicode walk it skips."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import transaction

from quai.core import clock
from quai.packing.tests.factories import floor_build
from quai.shipping import domain
from quai.shipping.carriers.base import Address, ShipmentRequest, ShipmentResult
from quai.shipping.models import Shipment
from quai.shipping.services import (
    LabelAnswer,
    ShipmentRecord,
    sandbox_carrier_ensure,
    shipment_record,
    shipments_record_many,
)

MOMENT = datetime(2026, 12, 4, 10, 15, 30, 123456, tzinfo=UTC)
SENDER = Address(name="Entrepôt Lyon", line1="1 rue du Quai", postcode="69007", city="Lyon", country="FR")


class _Undo(Exception):
    pass


def _records(merchant: Any, station: Any) -> list[ShipmentRecord]:
    carrier = sandbox_carrier_ensure()
    cases = [
        # (label, format, pickup point, reservations in the order the lines gave them, customs papers)
        (b"^XA\n^FDCOLIS^FS\n^XZ\n", "zpl", "", [42, 7, 19], None),
        (b"%PDF-1.4\x00\xff\xfe binary \x80", "pdf", "PR-0042", [], {"articles": [{"hs": "6109", "qty": 2}]}),
        (b"", "zpl", "", [3], {"category": "sale", "total": "39.80"}),
    ]
    records = []
    for index, (label, label_format, pickup, reservations, customs) in enumerate(cases, start=1):
        request = ShipmentRequest(
            reference=f"ROWS-{index}",
            service_code="STANDARD",
            sender=SENDER,
            recipient=Address(
                name="Zoé Müller", line1="2 place Bellecour", postcode="69002", city="Lyon", country="FR"
            ),
            weight_g=400 * index,
            sscc=f"37600000000000{index:04d}",
            pickup_point_id=pickup,
            label_format=label_format,
        )
        answer = LabelAnswer(
            carrier=carrier,
            request=request,
            result=ShipmentResult(tracking_number=f"SB{index:08d}", label=label, label_format=label_format),
            tracking_url=f"https://track.example/SB{index:08d}",
        )
        records.append(
            ShipmentRecord(
                answer=answer,
                merchant_id=merchant.pk,
                order_id=1000 + index,
                order_reference=f"ROWS-{index}",
                parcel_id=2000 + index,
                stock_location_id=station.pk,
                reservation_ids=reservations,
                customs=customs,
            )
        )
    return records


def _rows() -> list[dict[str, Any]]:
    rows = []
    for row in Shipment.objects.order_by("parcel_id").values():
        row.pop("id")  # sequences are not rolled back on PostgreSQL
        row["label"] = bytes(row["label"])
        rows.append(row)
    return rows


@pytest.mark.django_db
def test_shipments_written_together_are_the_rows_written_one_by_one() -> None:
    floor = floor_build()
    records = _records(floor.merchant, floor.station)
    with clock.frozen(MOMENT):
        with pytest.raises(_Undo), transaction.atomic():
            for record in records:
                shipment_record(record=record)
            one_by_one = _rows()
            raise _Undo
        assert Shipment.objects.count() == 0
        together = shipments_record_many(records=records)
    assert _rows() == one_by_one
    assert [s.parcel_id for s in together] == [r.parcel_id for r in records]
    assert [s.pk for s in together] == [
        s.pk for s in Shipment.objects.filter(parcel_id__in=[r.parcel_id for r in records]).order_by("parcel_id")
    ]
    assert all(not s._state.adding for s in together)
    assert one_by_one[1]["label"] == b"%PDF-1.4\x00\xff\xfe binary \x80"
    assert one_by_one[0]["reservation_ids"] == [7, 19, 42] and one_by_one[1]["customs"] is not None


def _unaccent_walk(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode("ascii")


def test_unaccent_answers_ascii_text_as_the_unicode_walk_does() -> None:
    texts = [
        "".join(chr(c) for c in range(128)),
        "12 RUE DE LA PAIX 75002 PARIS",
        "Zoé Müller, Straße 5",
        "ﬁnance № 5 ½",
        "Łódź ☃",
        "",
    ]
    for text in texts:
        assert domain.unaccent(text) == _unaccent_walk(text)
    assert domain.unaccent("Zoé Müller") == "Zoe Muller"
