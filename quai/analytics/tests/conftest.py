"""A small built scenario on a Tuesday at 10:05 (Paris): two merchants' orders at every stage of site LYS1, the
promise's demo configuration (cut-offs 14:00, 15:00, 17:30), a staffing plan, shifts and scans."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.core import clock
from quai.fulfillment.tests.factories import Floor, floor_for
from quai.inventory.services import stock_receive
from quai.labor import services as labor
from quai.labor.models import ProductivityEntry
from quai.labor.tests.factories import staff_member
from quai.orders import services as order_services
from quai.orders.services import order_transition
from quai.orders.tests.conftest import order_data
from quai.promise import selectors as promise_selectors
from quai.promise.models import PromiseRecord, PromiseSite
from quai.promise.services import promise_config_load
from quai.promise.tests.conftest import demo_document
from quai.tenants.tests.factories import MerchantFactory

PARIS = ZoneInfo("Europe/Paris")
TUESDAY = datetime(2030, 3, 5, tzinfo=PARIS)
NOW = TUESDAY + timedelta(hours=10, minutes=5)
COLISSIMO = TUESDAY + timedelta(hours=15)


@dataclass
class Scenario:
    floor: Floor
    other: Any
    orders: dict[str, Any]
    at_risk: Any


def _order(floor: Floor, merchant: Any, ref: str) -> Any:
    sku = floor.skus[len(ref) % len(floor.skus)]
    data = order_data(ref, lines=[{"sku": sku.code, "quantity": 1, "unit_price": "9.90"}])
    return order_services.order_create(merchant=merchant, data=data).order  # allocated: the floor has stock


def _record(order: Any, ship_by: datetime, status: str = "pending") -> PromiseRecord:
    """The order's promise, as if recorded at intake (replacing the one the promise's handler may have written)."""
    record, _created = PromiseRecord.objects.update_or_create(
        order=order,
        defaults={
            "merchant_id": order.merchant_id,
            "promise_site": PromiseSite.objects.get(),
            "source": "intake",
            "service": "colissimo_home",
            "ship_by": ship_by,
            "delivery_by": (ship_by + timedelta(days=2)).date(),
            "status": status,
            "at_risk_since": NOW if status == "at_risk" else None,
        },
    )
    return record


def build(merchant: Any, django_capture_on_commit_callbacks: Any) -> Scenario:
    clock.set_now(TUESDAY + timedelta(hours=6))
    floor = floor_for(merchant, site_code="LYS1")
    promise_selectors.snapshot_invalidate()
    with django_capture_on_commit_callbacks(execute=True):
        promise_config_load(document=demo_document("LYS1"))
    promise_selectors.snapshot_invalidate()
    other = MerchantFactory(code="lumen", name="Lumen")
    other_floor = Floor(site=floor.site, zone=floor.zone, merchant=other)
    sku = SkuFactory(merchant=other, code="LU-01")
    stock_receive(sku=sku, location=floor.places[floor.skus[0].code], quantity=20)
    other_floor.skus.append(sku)

    orders: dict[str, Any] = {}
    clock.set_now(TUESDAY + timedelta(hours=8, minutes=10))  # 6 of acme's orders and 3 of lumen's come in
    for n in range(6):
        orders[f"A{n}"] = _order(floor, merchant, f"A-{n}")
    for n in range(3):
        orders[f"L{n}"] = _order(other_floor, other, f"L-{n}")
    clock.set_now(TUESDAY + timedelta(hours=8, minutes=40))  # four of acme's released to the warehouse
    for n in range(4):
        order_services.order_release(order=orders[f"A{n}"].pk, now=clock.now() + timedelta(days=1))
    clock.set_now(TUESDAY + timedelta(hours=9, minutes=20))  # two picking, one of them packed at 09:40
    for n in range(2):
        order_transition(order=orders[f"A{n}"], to_status="picking")
    clock.set_now(TUESDAY + timedelta(hours=9, minutes=40))
    order_transition(order=orders["A0"], to_status="packed")
    # Promised to ship at today's Colissimo cut-off: A0 (packed), A1 (picking), A2 and A3 (released; A3 at risk),
    # lumen's L0 (allocated).
    for key in ("A0", "A1", "A2", "L0"):
        _record(orders[key], COLISSIMO)
    at_risk = _record(orders["A3"], COLISSIMO, status="at_risk")

    # Labour: a plan asking 3 pickers in PCK at 10:00, 2 on shift, one of whom scanned at 10:00.
    for activity, rate in (("pick", "100"), ("pack", "100"), ("ship", "1000")):
        labor.standard_set(site=floor.site, activity=activity, lines_per_hour=Decimal(rate))
    labor.staffing_plan_create(
        site=floor.site,
        forecast=[labor.ForecastHour(hour=TUESDAY + timedelta(hours=10), orders=250)],
        lines_per_order=1.0,
        utilisation=1.0,
        name="Tuesday",
        zone_shares={floor.zone.pk: 1.0},
    )
    for n in range(2):
        person = staff_member(f"picker{n}", floor.site)
        labor.skill_add(staff=person, activity="pick", zone=floor.zone)
        labor.shift_create(
            staff=person,
            activity="pick",
            zone=floor.zone,
            starts_at=TUESDAY + timedelta(hours=8),
            ends_at=TUESDAY + timedelta(hours=16),
        )
    for minutes in (10, 55, 62):  # two scans in the last hour (one of them in the last 15 minutes), one before it
        ProductivityEntry.objects.create(
            event_id=uuid.uuid4(),
            activity="pick",
            operator_label="picker0",
            site=floor.site,
            zone=floor.zone,
            lines=3,
            occurred_at=NOW - timedelta(minutes=minutes),
        )
    clock.set_now(NOW)
    return Scenario(floor=floor, other=other, orders=orders, at_risk=at_risk)


@pytest.fixture
def scenario(merchant, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    built = build(merchant, django_capture_on_commit_callbacks)
    yield built
    promise_selectors.snapshot_invalidate()


@pytest.fixture
def supervisor(db):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    from quai.tenants.tests.factories import StaffUserFactory

    user = StaffUserFactory(username="sup")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user
