from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _english_messages(settings: Any) -> Iterator[None]:
    # Quai speaks French by default; these tests read the English source messages. A request without
    # Accept-Language falls back to LANGUAGE_CODE; one with it still gets its language (see test_api.py).
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield
