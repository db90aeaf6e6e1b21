from __future__ import annotations

import itertools

import factory
from django.contrib.auth import get_user_model

from quai.tenants.models import Merchant, MerchantUser


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"merchant-{n}")
    name = factory.Sequence(lambda n: f"Merchant {n}")
    legal_name = factory.LazyAttribute(lambda m: f"{m.name} SAS")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct-horse-battery")


class StaffUserFactory(UserFactory):
    is_staff = True


class MerchantUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MerchantUser

    user = factory.SubFactory(UserFactory)
    merchant = factory.SubFactory(MerchantFactory)


_key_numbers = itertools.count()


def _api_key_id(merchant: Merchant) -> int:
    from quai.tenants.services import api_key_create

    return api_key_create(merchant=merchant, name=f"isolation-{next(_key_numbers)}").api_key.pk


# Rows owned by a given merchant, one per path parameter of the API (see tests/test_tenant_isolation.py).
ISOLATION_FACTORIES = {"api_key_id": _api_key_id}
