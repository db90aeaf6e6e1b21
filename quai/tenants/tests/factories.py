from __future__ import annotations

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
