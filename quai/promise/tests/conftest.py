from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from quai.catalog.tests.factories import SkuFactory
from quai.inventory.services import stock_receive
from quai.promise import selectors
from quai.promise.services import promise_config_load
from quai.warehouse.models import ZoneKind
from quai.warehouse.tests.factories import LocationFactory, SiteFactory, ZoneFactory

DEMO_FILE = Path(__file__).resolve().parent.parent / "config" / "demo.json"


def demo_document(site_code: str = "LYS1") -> dict[str, Any]:
    document = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    document = copy.deepcopy(document)
    document["sites"][0]["site"] = site_code
    document["sites"][0]["closures"] = [{"day": "2025-05-30", "reason": "Ascension bridge"}]
    document["sites"][0]["calendar"].update(opens_at="08:00", closes_at="18:00")
    document["sites"][0]["capacity"] = {"pick": 200, "pack": 300}
    return document


@pytest.fixture(autouse=True)
def _fresh_snapshot():
    selectors.snapshot_invalidate()
    yield
    selectors.snapshot_invalidate()


@pytest.fixture
def site(db):  # type: ignore[no-untyped-def]
    return SiteFactory(code="LYS1")


@pytest.fixture
def configured(site, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """The demo configuration on a test site (opening 08:00–18:00, pick 200/h, pack 300/h)."""
    with django_capture_on_commit_callbacks(execute=True):
        promise_config_load(document=demo_document(site.code))
    return site


@pytest.fixture
def shelf(site):  # type: ignore[no-untyped-def]
    zone = ZoneFactory(site=site, code="STO", kind=ZoneKind.STORAGE)
    return LocationFactory(zone=zone, site=site, code="A-01-01")


@pytest.fixture
def shirt(merchant, shelf):  # type: ignore[no-untyped-def]
    sku = SkuFactory(merchant=merchant, code="SHIRT-M", name="T-shirt M")
    stock_receive(sku=sku, location=shelf, quantity=50)
    return sku
