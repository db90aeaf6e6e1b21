from __future__ import annotations

from django.db.models import QuerySet

from quai.tenants.models import ApiKey, Merchant
from quai.tenants.principal import Principal


def merchant_list(*, principal: Principal, status: str | None = None, q: str | None = None) -> QuerySet[Merchant]:
    qs = Merchant.objects.all()
    if principal.merchant_id is not None:
        qs = qs.filter(pk=principal.merchant_id)
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(name__icontains=q) | qs.filter(code__icontains=q)
    return qs.order_by("name", "id")


def api_key_list(*, principal: Principal, merchant_id: int | None = None) -> QuerySet[ApiKey]:
    qs = ApiKey.objects.all()
    scope = principal.merchant_filter(merchant_id)
    if scope is not None:
        qs = qs.filter(merchant_id=scope)
    return qs.order_by("-created_at", "-id")
