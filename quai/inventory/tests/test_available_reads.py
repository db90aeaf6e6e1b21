"""``available_to_sell_many``'s statement written once (ids as one parameter) reads what its ORM form read: for any
SKUs asked — stocked in lots and statuses, reserved, never stocked, unknown, another merchant's — the same code and
the same figure the shops may sell, through receipts, reservations, releases and safety buffers set per SKU and for
the merchant, on either database."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.db import connection
from django.db.models import IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.test.utils import CaptureQueriesContext

from quai.catalog.models import Sku
from quai.catalog.tests.factories import SkuFactory
from quai.inventory import domain, selectors
from quai.inventory import services as inventory
from quai.inventory.models import StockLevel, StockPolicy, StockStatus
from quai.tenants.scope import Scope
from quai.warehouse.tests.factories import LocationFactory

pytestmark = pytest.mark.django_db


def _orm_form(*, merchant_id: int, sku_ids: list[int]) -> dict[int, tuple[str, int]]:
    """The selector as the ORM compiled it on every call (before its statement was written once)."""
    level = StockLevel.objects.filter(sku_id=OuterRef("pk"))
    per_sku = StockPolicy.objects.filter(sku_id=OuterRef("pk")).values("safety_buffer")[:1]
    per_merchant = StockPolicy.objects.filter(merchant_id=OuterRef("merchant_id"), sku=None).values("safety_buffer")
    rows = (
        Sku.objects.within(Scope.merchant(merchant_id))
        .filter(pk__in=sku_ids)
        .annotate(
            level_on_hand=Coalesce(Subquery(level.values("on_hand")[:1]), Value(0), output_field=IntegerField()),
            level_reserved=Coalesce(Subquery(level.values("reserved")[:1]), Value(0), output_field=IntegerField()),
            buffer=Coalesce(Subquery(per_sku), Subquery(per_merchant[:1]), Value(0), output_field=IntegerField()),
        )
        .values_list("pk", "code", "level_on_hand", "level_reserved", "buffer")
    )
    return {
        pk: (code, domain.available_for_shops(on_hand=int(on), reserved=int(res), safety_buffer=int(buf)))
        for pk, code, on, res, buf in rows
    }


def _assert_same(rng: random.Random, merchants: list[Any], skus: list[Any]) -> None:
    ids = [sku.pk for sku in skus]
    asks = [[], ids, [max(ids) + 1000, *ids[:3]], ids[:1] * 3]
    asks += [rng.sample(ids, rng.randint(1, len(ids))) for _ in range(6)]
    for merchant in merchants:
        for ask in asks:
            with CaptureQueriesContext(connection) as context:
                found = selectors.available_to_sell_many(merchant_id=merchant.pk, sku_ids=ask)
            assert found == _orm_form(merchant_id=merchant.pk, sku_ids=ask), (merchant.pk, ask)
            assert len(context.captured_queries) == 1


def test_the_written_statement_reads_what_the_orm_form_read_through_stock_changes(merchant, other_merchant):
    rng = random.Random(17)
    locations = [LocationFactory() for _ in range(3)]
    owners = [merchant] * 7 + [other_merchant] * 3
    skus = [SkuFactory(merchant=owner, code=f"A{n}", lot_tracked=n % 2 == 0) for n, owner in enumerate(owners)]
    merchants = [merchant, other_merchant]
    _assert_same(rng, merchants, skus)  # nothing stocked, no policy

    for sku in skus[:-2]:  # the last two never stocked
        for lot in ("L1", "L2")[: rng.randint(1, 2)] if sku.lot_tracked else ("",):
            status = rng.choice([StockStatus.SELLABLE, StockStatus.SELLABLE, StockStatus.QUARANTINE])
            inventory.stock_receive(
                sku=sku, location=rng.choice(locations), quantity=rng.randint(1, 30), lot=lot, status=status
            )
    _assert_same(rng, merchants, skus)

    reservations = []
    for sku in skus[:-2]:
        level = StockLevel.objects.get(sku=sku)
        if level.on_hand - level.reserved > 0:
            quantity = rng.randint(1, level.on_hand - level.reserved)
            reservations.append(inventory.reservation_create(merchant=sku.merchant, sku=sku, quantity=quantity))
    _assert_same(rng, merchants, skus)

    inventory.stock_policy_set(merchant=merchant, safety_buffer=3)  # the merchant's default ...
    inventory.stock_policy_set(merchant=merchant, sku=skus[1], safety_buffer=0)  # ... one SKU's own, zero
    inventory.stock_policy_set(merchant=merchant, sku=skus[2], safety_buffer=50)  # more than it has
    inventory.stock_policy_set(merchant=other_merchant, sku=skus[7], safety_buffer=2)  # no default there
    _assert_same(rng, merchants, skus)

    for reservation in reservations[::2]:
        inventory.reservation_release(reservation=reservation)
    inventory.stock_receive(sku=skus[-1], location=locations[0], quantity=4)  # stocked at last
    _assert_same(rng, merchants, skus)
