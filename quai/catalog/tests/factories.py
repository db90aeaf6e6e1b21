from __future__ import annotations

from collections.abc import Callable
from typing import Any

import factory
from stdnum import ean

from quai.catalog.models import Barcode, BarcodeKind, PackagingKind, PackagingType, Sku
from quai.tenants.tests.factories import MerchantFactory


def valid_gtin13(n: int) -> str:
    """A GTIN-13 with the in-store prefix 200 (never a real trade item), its check digit computed by stdnum."""
    body = f"200{n:09d}"
    return body + ean.calc_check_digit(body)


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku
        skip_postgeneration_save = True

    merchant = factory.SubFactory(MerchantFactory)
    code = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    gtin = factory.Sequence(lambda n: valid_gtin13(n).zfill(14))
    length_mm = 200
    width_mm = 150
    height_mm = 50
    weight_g = 350

    @factory.post_generation
    def primary_barcode(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        # Mirrors what sku_create does: the GTIN is also a primary barcode row, so scans find it.
        if create and self.gtin:
            Barcode.objects.create(
                merchant_id=self.merchant_id, sku=self, code=self.gtin, kind=BarcodeKind.GTIN, is_primary=True
            )


class BarcodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Barcode

    sku = factory.SubFactory(SkuFactory)
    merchant = factory.LazyAttribute(lambda barcode: barcode.sku.merchant)
    code = factory.Sequence(lambda n: f"INT-{n:06d}")
    kind = BarcodeKind.INTERNAL


class PackagingTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PackagingType

    merchant = None
    code = factory.Sequence(lambda n: f"BOX-{n:03d}")
    name = factory.Sequence(lambda n: f"Box {n}")
    kind = PackagingKind.BOX
    inner_length_mm = 300
    inner_width_mm = 200
    inner_height_mm = 100
    max_weight_g = 5000
    tare_weight_g = 150


# Every path parameter of the catalog routes -> a row of ``merchant``, for the project-wide isolation walk.
ISOLATION_FACTORIES: dict[str, Callable[[Any], int]] = {
    "sku_id": lambda merchant: SkuFactory(merchant=merchant).pk,
    "barcode_id": lambda merchant: BarcodeFactory(sku=SkuFactory(merchant=merchant)).pk,
    "packaging_type_id": lambda merchant: PackagingTypeFactory(merchant=merchant).pk,
}
