from __future__ import annotations

import pytest

from quai.core.errors import Forbidden, NotFound
from quai.tenants.models import ApiKey, MerchantScopedQuerySet
from quai.tenants.principal import Principal
from quai.tenants.scope import Scope
from quai.tenants.tests.factories import MerchantFactory

STAFF = Principal(kind="staff", merchant_id=None)


def test_a_merchant_principal_is_always_held_to_its_own_merchant():
    principal = Principal(kind="merchant_key", merchant_id=7)
    assert principal.scope() == Scope.merchant(7)
    assert principal.scope(7) == Scope.merchant(7)
    with pytest.raises(NotFound) as caught:
        principal.scope(8)
    assert caught.value.code == "merchant_not_found"


def test_staff_get_the_merchant_they_name_or_every_merchant():
    assert STAFF.scope(3) == Scope.merchant(3)
    assert STAFF.scope().is_all


def test_only_staff_may_ask_for_every_merchant():
    with pytest.raises(Forbidden) as caught:
        Scope.all_merchants(Principal(kind="merchant_user", merchant_id=4))
    assert caught.value.code == "staff_only"


def test_a_system_scope_says_why_it_sees_every_merchant():
    scope = Scope.system("nightly sweep")
    assert scope.is_all and "nightly sweep" in scope.why
    with pytest.raises(ValueError):
        Scope.system("  ")


def test_a_scope_filters_on_any_merchant_column():
    assert Scope.merchant(5).q("asn__merchant_id").children == [("asn__merchant_id", 5)]
    assert not Scope.system("test").q().children
    assert Scope.merchant(5).allows(5) and not Scope.merchant(5).allows(6)
    assert not Scope.merchant(5).allows(None) and Scope.system("test").allows(None)


@pytest.mark.django_db
def test_within_keeps_a_merchant_inside_its_own_rows():
    merchant = MerchantFactory()
    sql, params = MerchantScopedQuerySet(model=ApiKey).within(Scope.merchant(merchant)).query.sql_with_params()
    assert '"merchant_id" = ' in sql and params == (merchant.pk,)
    assert "WHERE" not in str(MerchantScopedQuerySet(model=ApiKey).within(Scope.system("test")).query)
