from __future__ import annotations

import pytest
from django.core.management import call_command
from stdnum import ean

from quai.catalog.models import Sku
from quai.inbound.models import Asn, PickFace
from quai.inventory.models import StockMovement
from quai.inventory.selectors import stock_drift
from quai.tenants.models import ApiKey, Merchant
from quai.warehouse.models import Location, Zone, ZoneKind

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_the_demo_loads_a_site_near_lyon_with_every_zone_kind_two_merchants_and_500_valid_skus():
    call_command("demo", verbosity=0)

    assert set(Zone.objects.values_list("kind", flat=True)) == set(ZoneKind.values)
    assert 1_900 <= Location.objects.count() <= 2_200
    assert set(Merchant.objects.values_list("code", flat=True)) == {"lumen", "belle-rive"}
    assert Sku.objects.count() == 500
    assert all(ean.is_valid(gtin) for gtin in Sku.objects.values_list("gtin", flat=True))
    cosmetics = Sku.objects.filter(merchant__code="belle-rive")
    assert cosmetics.filter(lot_tracked=True, expiry_tracked=True).count() == 200
    assert Zone.objects.get(code="EVT-LUMEN").valid_until is not None
    assert StockMovement.objects.count() >= 500
    assert stock_drift() == []
    assert Asn.objects.count() == 2
    assert PickFace.objects.count() == Location.objects.filter(zone__code="PCK").count()


def test_loading_the_demo_twice_changes_nothing_the_second_time():
    call_command("demo", verbosity=0)
    counts = (Location.objects.count(), Sku.objects.count(), Zone.objects.count(), ApiKey.objects.count())

    call_command("demo", verbosity=0)

    assert (Location.objects.count(), Sku.objects.count(), Zone.objects.count(), ApiKey.objects.count()) == counts


def test_if_empty_leaves_a_database_that_already_has_merchants_alone(merchant):
    call_command("demo", "--if-empty", verbosity=0)

    assert not Location.objects.exists()
