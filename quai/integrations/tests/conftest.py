"""Fixtures shared by the integrations tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quai.integrations.connectors import shopify


@pytest.fixture(autouse=True)
def _shopify_known_levels_forgotten() -> Iterator[None]:
    """What the Shopify adapter knows of a shop's levels lives in the process (``shopify._KNOWN``): each test starts
    from nothing known, as a fresh worker would, even when a fake shop reuses an earlier one's port."""
    shopify._KNOWN.clear()
    yield
    shopify._KNOWN.clear()
