from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import factory

from quai.warehouse.models import Location, Site, Zone, ZoneKind


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"site-{n}")
    name = factory.Sequence(lambda n: f"Entrepôt {n}")
    address_line1 = "12 rue des Docks"
    postal_code = "69007"
    city = "Lyon"


class ZoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Zone

    site = factory.SubFactory(SiteFactory)
    code = factory.Sequence(lambda n: f"Z{n:03d}")
    name = factory.Sequence(lambda n: f"Zone {n}")
    kind = ZoneKind.STORAGE


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    zone = factory.SubFactory(ZoneFactory)
    site = factory.LazyAttribute(lambda location: location.zone.site)
    code = factory.Sequence(lambda n: f"L-{n:05d}")
    x_m = Decimal("1.00")
    y_m = Decimal("1.00")
    pick_sequence = factory.Sequence(lambda n: n + 1)


# Every path parameter of the warehouse routes → a row to put in it. The layout is the 3PL's, not a merchant's:
# the merchant argument is ignored, and a merchant key must get 403 on each of these routes anyway.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "site_id": lambda merchant: SiteFactory().pk,
    "zone_id": lambda merchant: ZoneFactory().pk,
    "location_id": lambda merchant: LocationFactory().pk,
}
