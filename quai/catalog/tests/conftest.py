from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _english_messages() -> Iterator[None]:
    # Quai speaks French by default; these tests read the English source messages. HTTP requests still pick
    # their language from Accept-Language (see the French test in test_api.py).
    with translation.override("en"):
        yield
