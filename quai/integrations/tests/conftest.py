"""Fixtures shared by the integrations tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from quai.integrations.connectors import shopify
from quai.integrations.tests.receiver import Receiver


@pytest.fixture(autouse=True)
def _shopify_known_levels_forgotten() -> Iterator[None]:
    """What the Shopify adapter knows of a shop's levels lives in the process (``shopify._KNOWN``): each test starts
    from nothing known, as a fresh worker would, even when a fake shop reuses an earlier one's port."""
    shopify._KNOWN.clear()
    yield
    shopify._KNOWN.clear()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real webhook receiver on loopback (``receiver.Receiver``), answering 200 unless told otherwise."""
    server = Receiver()
    server.start()
    yield server
    server.stop()
