"""Catalog's past-tense events, recorded in the outbox with the change they report (shop connectors and webhooks
keep the merchant's other systems in step with them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from quai.core.events import Event


@dataclass(frozen=True)
class SkuCreated(Event):
    """A SKU entered the merchant's catalogue. ``version`` is the SKU's own version (it starts at 1)."""

    name: ClassVar[str] = "catalog.sku_created"
    aggregate: ClassVar[str] = "sku"

    sku_id: int
    code: str
    gtin: str
    version: int

    @property
    def aggregate_id(self) -> int:
        return self.sku_id


@dataclass(frozen=True)
class SkuUpdated(Event):
    """A SKU changed. ``changed`` lists the SKU fields that changed, plus "barcodes" when its codes changed;
    ``version`` is the SKU's version after the change."""

    name: ClassVar[str] = "catalog.sku_updated"
    aggregate: ClassVar[str] = "sku"

    sku_id: int
    code: str
    gtin: str
    version: int
    changed: list[str]

    @property
    def aggregate_id(self) -> int:
        return self.sku_id
