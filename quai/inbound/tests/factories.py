from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import factory

from quai.catalog.tests.factories import SkuFactory
from quai.inbound.domain import gs1_check_digit
from quai.inbound.models import Asn, AsnLine, HandlingUnit, PickFace, PutawayTask
from quai.tenants.tests.factories import MerchantFactory
from quai.warehouse.models import Location, Site, Zone, ZoneKind
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory


def sscc(n: int, prefix: str = "0376123450") -> str:
    """A valid 18-digit SSCC (extension digit, company prefix, serial, GS1 check digit)."""
    body = f"{prefix}{n:07d}"[:17]
    return body + str(gs1_check_digit(body))


class AsnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asn

    merchant = factory.SubFactory(MerchantFactory)
    reference = factory.Sequence(lambda n: f"ASN-{n:05d}")
    supplier = "Fournisseur SA"
    site = factory.SubFactory(SiteFactory)


class AsnLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AsnLine

    asn = factory.SubFactory(AsnFactory)
    sku = factory.LazyAttribute(lambda line: SkuFactory(merchant=line.asn.merchant))
    expected_quantity = 10


class HandlingUnitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HandlingUnit

    asn = factory.SubFactory(AsnFactory)
    merchant = factory.LazyAttribute(lambda unit: unit.asn.merchant)
    sscc = factory.Sequence(lambda n: sscc(n))


@dataclass
class Warehouse:
    """A small site: a receiving dock, a packing table, storage racks, a pick zone and quarantine."""

    site: Site
    receiving: Zone
    storage: Zone
    picking: Zone
    packing: Zone
    quarantine: Zone
    dock: Location
    pack_table: Location


def warehouse_build(code: str = "lyon") -> Warehouse:
    site = SiteFactory(code=code)
    receiving = ZoneFactory(site=site, code="REC", kind=ZoneKind.RECEIVING)
    storage = ZoneFactory(site=site, code="STO", kind=ZoneKind.STORAGE)
    picking = ZoneFactory(site=site, code="PIC", kind=ZoneKind.PICKING)
    packing = ZoneFactory(site=site, code="PAK", kind=ZoneKind.PACKING)
    quarantine = ZoneFactory(site=site, code="QUA", kind=ZoneKind.QUARANTINE)
    dock = LocationFactory(zone=receiving, code="DOCK-1", x_m=Decimal("0"), y_m=Decimal("0"))
    pack_table = LocationFactory(zone=packing, code="PACK-1", x_m=Decimal("50"), y_m=Decimal("0"))
    return Warehouse(site, receiving, storage, picking, packing, quarantine, dock, pack_table)


def location(zone: Zone, code: str, x: str = "10", y: str = "0", **kwargs: Any) -> Location:
    return LocationFactory(zone=zone, site=zone.site, code=code, x_m=Decimal(x), y_m=Decimal(y), **kwargs)


def _putaway_task_id(merchant: Any) -> int:
    line = AsnLineFactory(asn=AsnFactory(merchant=merchant))
    site = line.asn.site
    dock = LocationFactory(zone=ZoneFactory(site=site, kind=ZoneKind.RECEIVING), site=site)
    return PutawayTask.objects.create(
        merchant=merchant, asn=line.asn, line=line, sku=line.sku, quantity=3, from_location=dock
    ).pk


def _pick_face_id(merchant: Any) -> int:
    zone = ZoneFactory(kind=ZoneKind.PICKING)
    face = PickFace.objects.create(
        merchant=merchant,
        location=LocationFactory(zone=zone, site=zone.site),
        sku=SkuFactory(merchant=merchant),
        min_quantity=2,
        max_quantity=10,
    )
    return face.pk


# Every path parameter of the inbound routes → a row of ``merchant``, for the project-wide isolation walk.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "asn_id": lambda merchant: AsnLineFactory(asn=AsnFactory(merchant=merchant)).asn.pk,
    "putaway_task_id": _putaway_task_id,
    "pick_face_id": _pick_face_id,
}
