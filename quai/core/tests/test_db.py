from __future__ import annotations

import pytest

from quai.core.db import insert_returning_id
from quai.core.models import OutboxEvent

pytestmark = pytest.mark.django_db


def test_a_fast_insert_stores_exactly_what_the_orm_would():
    values = {"name": "test.fast", "merchant_id": 4, "payload": {"a": [1, "b"]}}
    fast = OutboxEvent.objects.get(pk=insert_returning_id(OutboxEvent, values))
    orm = OutboxEvent.objects.create(**values)
    for field in ("name", "merchant_id", "payload", "aggregate", "attempts", "last_error", "relayed_at"):
        assert getattr(fast, field) == getattr(orm, field), field
    assert fast.event_id != orm.event_id  # each row gets its own default uuid
    assert fast.occurred_at is not None
