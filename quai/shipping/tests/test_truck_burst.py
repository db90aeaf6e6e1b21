"""The truck's scan burst (``manifest_scans_record``): the same codes loaded one by one with ``manifest_scan`` and
as one burst end with the same parcels on the truck and the same ``shipment.loaded`` rows, refusals included; the
burst's queries do not grow with its parcels."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from quai.core import clock
from quai.core.errors import QuaiError
from quai.core.models import OutboxEvent
from quai.shipping import services
from quai.shipping.models import Manifest, Shipment, ShipmentStatus
from quai.shipping.tests.factories import shipment_for
from quai.tenants.tests.factories import MerchantFactory

MOMENT = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


class _Undo(Exception):
    pass


def _state(manifest_id: int, since: int) -> dict[str, Any]:
    return {
        "shipments": list(
            Shipment.objects.order_by("pk").values_list("pk", "manifest_id", "loaded_at", "status", "updated_at")
        ),
        "manifest": list(Manifest.objects.filter(pk=manifest_id).values_list("status", "missing")),
        "events": [
            (e.name, e.merchant_id, e.aggregate, e.aggregate_id, e.occurred_at, e.payload)
            for e in OutboxEvent.objects.filter(pk__gt=since).order_by("pk")
        ],
    }


def _last_event_id() -> int:
    last = OutboxEvent.objects.order_by("-pk").first()
    return last.pk if last else 0


@pytest.mark.django_db
def test_a_truck_burst_ends_exactly_as_the_same_codes_scanned_one_by_one_refusals_included() -> None:
    merchant = MerchantFactory(code="acme")
    parcels = [shipment_for(merchant) for _ in range(4)]
    other = services.sandbox_carrier_ensure(code="colissimo", name="Colissimo")
    elsewhere = shipment_for(merchant)
    Shipment.objects.filter(pk=elsewhere.pk).update(carrier=other)
    gone = shipment_for(merchant)
    Shipment.objects.filter(pk=gone.pk).update(status=ShipmentStatus.HANDED_OVER)
    manifest = services.manifest_open(carrier=parcels[0].carrier)
    # By SSCC, by GS1-128 (AI 00), by tracking number in lower case; another carrier's parcel, one handed over
    # already, an unknown code, and a parcel scanned twice.
    codes = [
        parcels[0].sscc,
        "00" + parcels[1].sscc,
        elsewhere.sscc,
        parcels[2].tracking_number.lower(),
        "NOPE-1",
        gone.sscc,
        parcels[0].sscc,
    ]
    since = _last_event_id()
    with clock.frozen(MOMENT):
        refusals: list[str] = []
        with pytest.raises(_Undo), transaction.atomic():
            for code in codes:
                try:
                    services.manifest_scan(manifest=manifest.pk, code=code, actor="driver")
                except QuaiError as exc:
                    refusals.append(exc.code)
            one_by_one = _state(manifest.pk, since)
            raise _Undo
        assert _state(manifest.pk, since)["events"] == []
        outcomes = services.manifest_scans_record(manifest=manifest.pk, codes=codes, actor="driver")
    burst = _state(manifest.pk, since)
    assert refusals == ["shipment_other_carrier", "shipment_not_found", "shipment_already_shipped"]
    assert [o.error.code for o in outcomes if o.error is not None] == refusals
    assert [o.loaded for o in outcomes] == [True, True, False, True, False, False, True]
    assert burst == one_by_one
    assert len(burst["events"]) == 4
    loaded = set(Shipment.objects.filter(manifest=manifest, loaded_at__isnull=False).values_list("pk", flat=True))
    assert loaded == {parcels[0].pk, parcels[1].pk, parcels[2].pk}  # parcels[3] is on the manifest, not scanned


@pytest.mark.django_db
def test_a_truck_burst_costs_the_same_queries_for_two_parcels_or_twelve() -> None:
    merchant = MerchantFactory(code="acme")
    parcels = [shipment_for(merchant) for _ in range(14)]
    manifest = services.manifest_open(carrier=parcels[0].carrier)
    with CaptureQueriesContext(connection) as two:
        services.manifest_scans_record(manifest=manifest, codes=[p.sscc for p in parcels[:2]], actor="driver")
    with CaptureQueriesContext(connection) as twelve:
        services.manifest_scans_record(manifest=manifest, codes=[p.tracking_number for p in parcels[2:]])
    assert len(twelve) <= len(two) + 1  # the tracking numbers take one more read than the SSCCs
    assert Shipment.objects.filter(manifest=manifest, loaded_at__isnull=False).count() == 14


@pytest.mark.django_db
def test_a_closed_manifest_refuses_a_burst_with_nothing_written() -> None:
    merchant = MerchantFactory(code="acme")
    parcel = shipment_for(merchant)
    manifest = services.manifest_open(carrier=parcel.carrier)
    Manifest.objects.filter(pk=manifest.pk).update(status="closed")
    since = _last_event_id()
    with pytest.raises(QuaiError) as refused:
        services.manifest_scans_record(manifest=manifest.pk, codes=[parcel.sscc])
    assert refused.value.code == "manifest_closed"
    assert _state(manifest.pk, since)["events"] == []
    assert Shipment.objects.get(pk=parcel.pk).loaded_at is None
    assert services.manifest_scans_record(manifest=manifest.pk, codes=[]) == []


@pytest.mark.django_db
def test_the_truck_reads_an_sscc_in_every_form_receiving_reads_it() -> None:
    # A scanner that sends its symbology identifier (]C1), a leading FNC1, or a loader typing the number printed
    # under the label ((00)...): receiving's parser took them, the truck answered shipment_not_found.
    merchant = MerchantFactory(code="acme")
    parcels = [shipment_for(merchant) for _ in range(4)]
    manifest = services.manifest_open(carrier=parcels[0].carrier)
    forms = ["]C100" + parcels[0].sscc, "(00)" + parcels[1].sscc, "\x1d00" + parcels[2].sscc]
    outcomes = services.manifest_scans_record(manifest=manifest.pk, codes=forms, actor="driver")
    assert [o.error for o in outcomes] == [None, None, None]
    loaded = services.manifest_scan(manifest=manifest.pk, code=" ]C100" + parcels[3].sscc + "\r\n", actor="driver")
    assert loaded.pk == parcels[3].pk
    assert Shipment.objects.filter(manifest=manifest, loaded_at__isnull=False).count() == 4
    wrong = parcels[0].sscc[:-1] + str((int(parcels[0].sscc[-1]) + 1) % 10)
    with pytest.raises(QuaiError) as refused:
        services.manifest_scan(manifest=manifest.pk, code="]C100" + wrong, actor="driver")
    assert refused.value.code == "shipment_not_found"
