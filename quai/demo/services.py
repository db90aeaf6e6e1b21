"""Loads the demo: a 3PL near Lyon, its zones and about 2,000 locations, two merchants and 500 SKUs.

Every step goes through the apps' own services (the same checks as the API), and every step is idempotent: it
creates what is missing and leaves what exists, so `manage.py demo` can run again at any time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from stdnum import ean

from quai.catalog.models import PackagingType, Sku
from quai.catalog.services import packaging_type_create, sku_bulk_upsert
from quai.core import clock
from quai.demo.domain import cosmetics_catalogue, fashion_catalogue, siret
from quai.inbound.models import Asn
from quai.inbound.services import AsnLineInput, HandlingUnitInput, asn_create, pick_face_set
from quai.inventory.models import StockMovement
from quai.inventory.services import stock_receive
from quai.tenants.models import ApiKey, Merchant, Operator, StaffRole
from quai.tenants.services import api_key_create, merchant_create, operator_create, staff_roles_sync
from quai.warehouse.models import Location, Site, Zone, ZoneKind
from quai.warehouse.services import location_create, rack_bulk_create, site_create, zone_create

DEMO_PASSWORD = "quai-demo"
SITE_CODE = "LYS1"


@dataclass
class DemoReport:
    created: dict[str, int] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)

    def count(self, what: str, number: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + number


Step = Callable[[DemoReport], None]


def _operator(report: DemoReport) -> None:
    if not Operator.objects.exists():
        operator_create(
            name="Quai Logistique Rhône",
            legal_name="Quai Logistique Rhône SAS",
            siret=siret("84321765", "0001"),
        )
        report.count("operator")


def _staff(report: DemoReport) -> None:
    staff_roles_sync()
    user_model = get_user_model()
    people = [
        ("admin", "Camille", "Admin", StaffRole.ADMIN, True),
        ("supervision", "Nora", "Benali", StaffRole.SUPERVISOR, False),
        ("reception", "Lucas", "Martin", StaffRole.RECEIVER, False),
        ("preparation", "Inès", "Moreau", StaffRole.PICKER, False),
        ("emballage", "Hugo", "Bernard", StaffRole.PACKER, False),
        ("service-client", "Léa", "Petit", StaffRole.AGENT, False),
    ]
    for username, first, last, role, superuser in people:
        if user_model.objects.filter(username=username).exists():
            continue
        user = user_model.objects.create_user(
            username=username,
            password=DEMO_PASSWORD,
            first_name=first,
            last_name=last,
            email=f"{username}@quai-demo.example",
            is_staff=True,
            is_superuser=superuser,
        )
        user.groups.add(Group.objects.get(name=role))
        report.count("staff users")


MERCHANTS: list[dict[str, Any]] = [
    {
        "code": "lumen",
        "name": "Maison Lumen",
        "legal_name": "Maison Lumen SAS",
        "siret": siret("91234567", "0001"),
        "contact_name": "Jeanne Roux",
        "contact_email": "logistique@maison-lumen.example",
        "contact_phone": "+33 4 72 00 00 01",
    },
    {
        "code": "belle-rive",
        "name": "Belle Rive Cosmétiques",
        "legal_name": "Belle Rive Cosmétiques SARL",
        "siret": siret("82345678", "0002"),
        "contact_name": "Paul Girard",
        "contact_email": "ops@bellerive.example",
        "contact_phone": "+33 4 78 00 00 02",
    },
]


def _merchants(report: DemoReport) -> None:
    for values in MERCHANTS:
        merchant = Merchant.objects.filter(code=values["code"]).first()
        if merchant is None:
            merchant = merchant_create(**values)
            report.count("merchants")
        if not ApiKey.objects.filter(merchant=merchant, revoked_at=None).exists():
            issued = api_key_create(merchant=merchant, name="demo-shop")
            report.api_keys[merchant.code] = issued.secret


# (zone code, name, kind, rack pattern or loose locations)
ZONES: list[dict[str, Any]] = [
    {"code": "RCV", "name": "Quais de réception", "kind": ZoneKind.RECEIVING, "loose": ("RCV-DOCK-", 8, 2, 4)},
    {
        "code": "STO",
        "name": "Réserve (racks A–L)",
        "kind": ZoneKind.STORAGE,
        "rack": {
            "aisles": "A-L",
            "bays": 30,
            "levels": 4,
            "origin_x_m": 10,
            "origin_y_m": 20,
            "max_volume_cm3": 1_000_000,
            "max_weight_g": 500_000,
        },
    },
    {
        "code": "PCK",
        "name": "Picking (racks M–P)",
        "kind": ZoneKind.PICKING,
        "rack": {
            "aisles": "M-P",
            "bays": 30,
            "levels": 4,
            "origin_x_m": 50,
            "origin_y_m": 20,
            "max_volume_cm3": 120_000,
            "max_weight_g": 40_000,
        },
    },
    {
        "code": "PRC",
        "name": "Préparation spéciale (kitting, étiquetage)",
        "kind": ZoneKind.PROCESSING,
        "loose": ("PRC-", 6, 70, 44),
    },
    {"code": "PAK", "name": "Postes d'emballage", "kind": ZoneKind.PACKING, "loose": ("PAK-", 12, 70, 20)},
    {"code": "SHP", "name": "Expédition", "kind": ZoneKind.SHIPPING, "loose": ("SHP-LANE-", 10, 84, 4)},
    {"code": "RET", "name": "Retours", "kind": ZoneKind.RETURNS, "loose": ("RET-", 10, 2, 40)},
    {"code": "QUA", "name": "Quarantaine", "kind": ZoneKind.QUARANTINE, "loose": ("QUA-", 10, 2, 52)},
]


def _site(report: DemoReport) -> Site:
    site = Site.objects.filter(code=SITE_CODE).first()
    if site is None:
        site = site_create(
            code=SITE_CODE,
            name="Entrepôt de Saint-Priest",
            address_line1="12 rue du Dauphiné",
            postal_code="69800",
            city="Saint-Priest",
            country="FR",
            time_zone="Europe/Paris",
            opening_days=[1, 2, 3, 4, 5, 6],
            opens_at=time(6, 0),
            closes_at=time(22, 0),
        )
        report.count("sites")
    return site


def _zones(report: DemoReport) -> None:
    site = _site(report)
    for spec in ZONES:
        zone = Zone.objects.filter(site=site, code=spec["code"]).first()
        if zone is None:
            zone = zone_create(site=site, code=spec["code"], name=spec["name"], kind=spec["kind"])
            report.count("zones")
        if zone.locations.exists():
            continue
        if "rack" in spec:
            created = rack_bulk_create(site=site, zone=zone, **spec["rack"])
            report.count("locations", created.count)
        else:
            prefix, count, x, y = spec["loose"]
            for number in range(1, count + 1):
                location_create(
                    site=site,
                    zone=zone,
                    code=f"{prefix}{number:02d}",
                    x_m=Decimal(x) + Decimal(number % 5) * 2,
                    y_m=Decimal(y) + Decimal(number // 5) * 2,
                    max_volume_cm3=8_000_000,
                    max_weight_g=2_000_000,
                )
            report.count("locations", count)
    # The fashion brand's event sale: a temporary zone open for ten days, starting next Monday.
    lumen = Merchant.objects.get(code="lumen")
    if not Zone.objects.filter(site=site, code="EVT-LUMEN").exists():
        start = clock.now().replace(hour=6, minute=0, second=0, microsecond=0)
        start += timedelta(days=7 - start.weekday())
        zone = zone_create(
            site=site,
            code="EVT-LUMEN",
            name="Vente événementielle Maison Lumen",
            kind=ZoneKind.PICKING,
            merchant=lumen,
            valid_from=start,
            valid_until=start + timedelta(days=10),
        )
        created = rack_bulk_create(
            site=site,
            zone=zone,
            aisles="Q",
            bays=20,
            levels=2,
            origin_x_m=62,
            origin_y_m=20,
            max_volume_cm3=120_000,
            max_weight_g=40_000,
        )
        report.count("zones")
        report.count("locations", created.count)


PACKAGING: list[dict[str, Any]] = [
    {
        "code": "BOX-S",
        "name": "Carton S",
        "kind": "box",
        "inner_length_mm": 250,
        "inner_width_mm": 180,
        "inner_height_mm": 100,
        "max_weight_g": 5_000,
        "tare_weight_g": 120,
        "cost": "0.38",
    },
    {
        "code": "BOX-M",
        "name": "Carton M",
        "kind": "box",
        "inner_length_mm": 350,
        "inner_width_mm": 250,
        "inner_height_mm": 150,
        "max_weight_g": 10_000,
        "tare_weight_g": 210,
        "cost": "0.55",
    },
    {
        "code": "BOX-L",
        "name": "Carton L",
        "kind": "box",
        "inner_length_mm": 450,
        "inner_width_mm": 350,
        "inner_height_mm": 250,
        "max_weight_g": 20_000,
        "tare_weight_g": 380,
        "cost": "0.92",
    },
    {
        "code": "BOX-XL",
        "name": "Carton XL",
        "kind": "box",
        "inner_length_mm": 600,
        "inner_width_mm": 400,
        "inner_height_mm": 400,
        "max_weight_g": 30_000,
        "tare_weight_g": 650,
        "cost": "1.45",
    },
    {
        "code": "ENV-A4",
        "name": "Enveloppe matelassée A4",
        "kind": "envelope",
        "inner_length_mm": 320,
        "inner_width_mm": 230,
        "inner_height_mm": 30,
        "max_weight_g": 1_000,
        "tare_weight_g": 25,
        "cost": "0.21",
    },
    {
        "code": "BAG-M",
        "name": "Sachet d'expédition M",
        "kind": "mailer_bag",
        "inner_length_mm": 400,
        "inner_width_mm": 300,
        "inner_height_mm": 60,
        "max_weight_g": 2_000,
        "tare_weight_g": 18,
        "cost": "0.09",
    },
]
MERCHANT_PACKAGING: dict[str, list[dict[str, Any]]] = {
    "lumen": [
        {
            "code": "LUM-GIFT",
            "name": "Coffret cadeau Maison Lumen",
            "kind": "box",
            "inner_length_mm": 380,
            "inner_width_mm": 280,
            "inner_height_mm": 120,
            "max_weight_g": 4_000,
            "tare_weight_g": 340,
            "cost": "2.10",
        },
    ],
    "belle-rive": [
        {
            "code": "BR-ECRIN",
            "name": "Écrin Belle Rive",
            "kind": "box",
            "inner_length_mm": 200,
            "inner_width_mm": 150,
            "inner_height_mm": 90,
            "max_weight_g": 2_000,
            "tare_weight_g": 150,
            "cost": "1.20",
        },
    ],
}


def _packaging(report: DemoReport) -> None:
    for values in PACKAGING:
        if not PackagingType.objects.filter(merchant=None, code=values["code"]).exists():
            packaging_type_create(merchant=None, **values)
            report.count("packaging types")
    for code, items in MERCHANT_PACKAGING.items():
        merchant = Merchant.objects.get(code=code)
        for values in items:
            if not PackagingType.objects.filter(merchant=merchant, code=values["code"]).exists():
                packaging_type_create(merchant=merchant, **values)
                report.count("packaging types")


def _catalogue(report: DemoReport) -> None:
    for code, catalogue in (("lumen", fashion_catalogue()), ("belle-rive", cosmetics_catalogue())):
        merchant = Merchant.objects.get(code=code)
        existing = set(Sku.objects.for_merchant(merchant).values_list("code", flat=True))
        rows = [asdict(sku) for sku in catalogue if sku.code not in existing]
        for start in range(0, len(rows), 1000):
            result = sku_bulk_upsert(merchant=merchant, rows=rows[start : start + 1000])
            report.count("SKUs", len(result.items))


def _sscc(serial: int) -> str:
    body = f"0{COMPANY_PREFIX_SSCC}{serial:09d}"
    return body + ean.calc_check_digit(body)


COMPANY_PREFIX_SSCC = "3770016"


def _stock(report: DemoReport) -> None:
    """Stock on every pick face, reserve pallets behind half of them, two lots per cosmetic with their expiries."""
    if StockMovement.objects.exists():
        return
    site = Site.objects.get(code=SITE_CODE)
    rng = random.Random(7)
    today = clock.today()
    pick_faces = list(Location.objects.filter(site=site, zone__code="PCK").order_by("pick_sequence"))
    reserve = list(Location.objects.filter(site=site, zone__code="STO").order_by("pick_sequence"))
    skus = list(Sku.objects.filter(merchant__code__in=["lumen", "belle-rive"]).order_by("merchant__code", "code"))
    skus.sort(key=lambda sku: sku.merchant.code != "lumen")  # the fashion brand's fast movers get the pick faces first
    for index, sku in enumerate(skus):
        lots: list[tuple[str, date | None]] = [("", None)]
        if sku.lot_tracked:
            lots = [
                (f"L{today:%y}{index % 50 + 1:02d}A", today + timedelta(days=120 + rng.randint(0, 120))),
                (f"L{today:%y}{index % 50 + 1:02d}B", today + timedelta(days=300 + rng.randint(0, 200))),
            ]
        if index < len(pick_faces):
            location = pick_faces[index]
            pick_face_set(merchant=sku.merchant, location=location, sku=sku, min_quantity=6, max_quantity=40)
            lot, expiry = lots[0]
            stock_receive(
                sku=sku,
                location=location,
                quantity=rng.randint(8, 40),
                lot=lot,
                expiry=expiry,
                reason="demo opening stock",
                document_type="demo",
                document_id="opening",
            )
            report.count("stock movements")
        if index % 2 == 0 or index >= len(pick_faces):
            lot, expiry = lots[-1]
            stock_receive(
                sku=sku,
                location=reserve[index % len(reserve)],
                quantity=rng.randint(40, 200),
                lot=lot,
                expiry=expiry,
                reason="demo opening stock",
                document_type="demo",
                document_id="opening",
            )
            report.count("stock movements")


def _asns(report: DemoReport) -> None:
    site = Site.objects.get(code=SITE_CODE)
    today = clock.today()
    for code, reference, supplier in (
        ("lumen", "ASN-LUM-0001", "Atelier Tessitura (Porto)"),
        ("belle-rive", "ASN-BR-0001", "Laboratoire Rhodanien"),
    ):
        merchant = Merchant.objects.get(code=code)
        if Asn.objects.filter(merchant=merchant, reference=reference).exists():
            continue
        skus = list(Sku.objects.for_merchant(merchant).order_by("code")[:12])
        pallets = [_sscc(1 if code == "lumen" else 2), _sscc(11 if code == "lumen" else 12)]
        lines = [
            AsnLineInput(
                sku_code=sku.code,
                quantity=24 * (1 + n % 3),
                lot=f"L{today:%y}90{n:02d}" if sku.lot_tracked else "",
                expiry=today + timedelta(days=540) if sku.expiry_tracked else None,
                sscc=pallets[n % 2],
            )
            for n, sku in enumerate(skus)
        ]
        asn_create(
            merchant=merchant,
            reference=reference,
            site=site,
            lines=lines,
            supplier=supplier,
            expected_at=today + timedelta(days=2),
            handling_units=[HandlingUnitInput(sscc=sscc, kind="pallet") for sscc in pallets],
        )
        report.count("ASNs")


def _promise(report: DemoReport) -> None:
    """The demo site's delivery-promise configuration (calendar, carrier services, transit), from its example file."""
    import json
    from pathlib import Path

    from quai.promise.models import PromiseSite
    from quai.promise.services import promise_config_load

    if PromiseSite.objects.filter(site__code=SITE_CODE).exists():
        return
    document = json.loads((Path(__file__).resolve().parent.parent / "promise" / "config" / "demo.json").read_text())
    report.count("promise services", promise_config_load(document=document)["services"])


STEPS: list[tuple[str, Step]] = [
    ("operator", _operator),
    ("staff and roles", _staff),
    ("merchants and API keys", _merchants),
    ("site, zones and locations", _zones),
    ("packaging types", _packaging),
    ("catalogue", _catalogue),
    ("opening stock", _stock),
    ("advance shipping notices", _asns),
    ("delivery promise", _promise),
]


def demo_load(*, progress: Callable[[str], Any] | None = None) -> DemoReport:
    """Load whatever of the demo is missing. Each step commits on its own, so an interrupted load resumes."""
    report = DemoReport()
    for label, step in STEPS:
        with transaction.atomic():
            step(report)
        if progress is not None:
            progress(label)
    return report


def demo_is_loaded() -> bool:
    return Location.objects.filter(site__code=SITE_CODE).exists() and Merchant.objects.exists()
