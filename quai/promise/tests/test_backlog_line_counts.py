"""The backlog handler's read of its orders' line counts (``selectors.order_line_counts``, a statement written once)
gives the rows the ORM's query gave: per order its merchant and its lines, within the scope, for any ids."""

from __future__ import annotations

import pytest
from django.db.models import Count

from quai.catalog.tests.factories import SkuFactory
from quai.orders import services as order_services
from quai.orders.models import OrderLine
from quai.orders.selectors import order_list
from quai.orders.tests.conftest import order_data
from quai.promise import selectors
from quai.tenants.scope import Scope

pytestmark = pytest.mark.django_db


def _orm_counts(scope, ids):
    """The read as the ORM wrote it before."""
    rows = (
        order_list(scope=scope)
        .filter(pk__in=list(dict.fromkeys(ids)))
        .order_by()
        .values_list("pk", "merchant_id")
        .annotate(line_count=Count("lines"))
    )
    return {int(pk): (int(merchant_id), int(count)) for pk, merchant_id, count in rows}


def _order(merchant, external_id, lines):
    data = order_data(
        external_id, lines=[{"sku": "SHIRT-M", "quantity": 1, "unit_price": "9.90"} for _ in range(lines)]
    )
    return order_services.order_create(merchant=merchant, data=data).order


def test_the_line_counts_read_equals_the_orm_query_for_every_scope(merchant, other_merchant):
    for owner in (merchant, other_merchant):
        SkuFactory(merchant=owner, code="SHIRT-M", name="T-shirt M")
    mine = [_order(merchant, f"A-{n}", lines=n) for n in (1, 2, 3)]
    theirs = [_order(other_merchant, f"B-{n}", lines=n) for n in (1, 4)]
    emptied = _order(merchant, "A-empty", lines=2)
    OrderLine.objects.filter(order=emptied).delete()  # an order with no line left: counted 0, not left out
    ids = [order.pk for order in (*mine, *theirs, emptied)]
    missing = max(ids) + 100
    scopes = [Scope.system("test"), Scope.merchant(merchant), Scope.merchant(other_merchant)]
    id_sets = [ids, [*ids, missing, ids[0], ids[0]], [missing], [], list(reversed(ids))[:3]]
    for scope in scopes:
        for chosen in id_sets:
            assert selectors.order_line_counts(scope=scope, order_ids=chosen) == _orm_counts(scope, chosen)
    counted = selectors.order_line_counts(scope=Scope.system("test"), order_ids=ids)
    assert counted[emptied.pk] == (merchant.pk, 0)
    assert counted[theirs[1].pk] == (other_merchant.pk, 4)
