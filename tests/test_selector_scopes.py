"""Every selector that reads merchant-owned rows says whose: a required scope, never a default meaning everyone.

The walk covers each public function of ``quai/*/selectors.py`` as it stands, so a selector added later is checked
without anyone editing this test.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Iterator
from types import FunctionType

from django.apps import apps

import quai
from quai.tenants.models import MerchantOwned

SCOPE_PARAMETERS = {"merchant", "merchant_id", "merchant_ids", "principal", "scope"}

# Selectors that read merchant-owned rows without a scope parameter, and why that is safe. Keep it short: a new
# entry needs a reason a reviewer accepts.
SCOPED_ELSEWHERE = {
    # Through a row already read inside a scope: its children belong to the same merchant.
    "quai.catalog.selectors.barcode_list": "a SKU's barcodes",
    "quai.catalog.selectors.barcode_get": "a SKU's barcode",
    "quai.inbound.selectors.asn_lines": "an ASN's lines",
    "quai.inbound.selectors.asn_recent_receipts": "an ASN's receipts",
    "quai.inbound.selectors.putaway_item": "a putaway task's SKU",
    "quai.inbound.selectors.replenishment_source": "a pick face's merchant",
    "quai.inbound.selectors.open_pick_faces_of": "one SKU's pick faces (the SKU is one merchant's)",
    "quai.inbound.selectors.sku_on_hand_at": "one SKU's stock (the SKU is one merchant's)",
    "quai.inventory.selectors.count_expected": "a count task's location",
    "quai.inventory.selectors.count_books": "a count task's location",
    "quai.inventory.selectors.count_scan_merchant_ids": "a count task's merchants",
    # Physical facts of a place, whoever owns the goods: what a location holds and how full it is.
    "quai.inventory.selectors.location_contents": "a location's contents, every owner (staff floor)",
    "quai.inventory.selectors.location_load": "a location's load, every owner",
    "quai.inbound.selectors.location_snapshot": "a location's load, every owner",
    "quai.inbound.selectors.location_snapshots": "locations' loads, every owner",
    # The ledger's self-check recomputes every stored number: it is about the books, not a merchant.
    "quai.inventory.selectors.stock_drift": "the whole ledger's drift check",
    "quai.inventory.selectors.stock_overcommitment": "the whole ledger's oversold check",
}

# Selectors of shared data whose merchant parameter is a filter, not a tenant boundary.
SHARED_DATA_FILTERS = {
    "quai.warehouse.selectors.zone_list": "zones are the operator's; merchant_id keeps a merchant's dedicated zones",
}


def _selector_modules() -> Iterator[object]:
    for info in pkgutil.iter_modules(quai.__path__):
        if info.ispkg and importlib.util.find_spec(f"quai.{info.name}.selectors") is not None:
            yield importlib.import_module(f"quai.{info.name}.selectors")


def _public_selectors() -> list[tuple[str, FunctionType]]:
    found = []
    for module in _selector_modules():
        for name, fn in vars(module).items():
            if isinstance(fn, FunctionType) and not name.startswith("_") and fn.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", fn))
    return found


def _merchant_owned_model_names() -> set[str]:
    return {model.__name__ for model in apps.get_models() if issubclass(model, MerchantOwned)}


def test_the_walk_finds_the_selectors_of_every_app():
    names = {name for name, _fn in _public_selectors()}
    expected = {
        "quai.catalog.selectors.sku_get",
        "quai.inventory.selectors.stock_list",
        "quai.inbound.selectors.asn_list",
    }
    assert expected <= names


def test_no_selector_gives_its_merchant_or_scope_parameter_a_default():
    defaulted = [
        f"{name}({parameter.name}={parameter.default!r})"
        for name, fn in _public_selectors()
        if name not in SHARED_DATA_FILTERS
        for parameter in inspect.signature(fn).parameters.values()
        if parameter.name in SCOPE_PARAMETERS and parameter.default is not inspect.Parameter.empty
    ]
    assert defaulted == [], "a scope must be passed, never defaulted to every merchant"


def test_every_selector_that_reads_merchant_owned_rows_takes_a_scope():
    owned = _merchant_owned_model_names()
    unscoped = []
    for name, fn in _public_selectors():
        if name in SCOPED_ELSEWHERE or SCOPE_PARAMETERS & set(inspect.signature(fn).parameters):
            continue
        source = inspect.getsource(fn)
        # A read of such a model in the body itself (its manager), or through another selector's scoped call.
        read = {model for model in owned if re.search(rf"\b{model}\.objects\b", source)}
        if re.search(r"\bscope=", source):
            read.add("another selector's scoped rows")
        if read:
            unscoped.append(f"{name} reads {sorted(read)}")
    assert unscoped == [], "add scope: Scope, or say in SCOPED_ELSEWHERE why the rows are already scoped"


def test_the_allow_lists_name_only_selectors_that_exist():
    names = {name for name, _fn in _public_selectors()}
    assert set(SCOPED_ELSEWHERE) - names == set()
    assert set(SHARED_DATA_FILTERS) - names == set()
