"""The stock marks' read of the shops that push stock (a statement written once) gives the ORM query's rows."""

from __future__ import annotations

import pytest

from quai.integrations.models import Connection, ConnectionStatus
from quai.integrations.services import stock_out
from quai.integrations.tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db


def _orm(merchant_ids):
    return list(
        Connection.objects.filter(merchant_id__in=list(merchant_ids), push_stock=True)
        .exclude(status=ConnectionStatus.PAUSED)
        .order_by("pk")
        .values_list("pk", "merchant_id")
    )


def test_the_stock_shops_read_equals_the_orm_query(merchant, other_merchant):
    ConnectionFactory(merchant=merchant, name="A")
    ConnectionFactory(merchant=other_merchant, name="B", status=ConnectionStatus.FAILING)
    ConnectionFactory(merchant=merchant, name="C", status=ConnectionStatus.PAUSED)
    ConnectionFactory(merchant=merchant, name="D", push_stock=False)
    ConnectionFactory(merchant=other_merchant, name="E")
    ConnectionFactory(merchant=merchant, name="F")
    missing = merchant.pk + other_merchant.pk + 100
    for chosen in ({merchant.pk}, {other_merchant.pk}, {merchant.pk, other_merchant.pk, missing}, {missing}):
        assert stock_out._stock_shops(chosen) == _orm(chosen)
    assert len(stock_out._stock_shops({merchant.pk, other_merchant.pk})) == 4
