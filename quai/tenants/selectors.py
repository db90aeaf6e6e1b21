from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from quai.core.errors import NotFound
from quai.tenants.models import ApiKey, Merchant
from quai.tenants.scope import Scope


def merchant_list(*, scope: Scope, status: str | None = None, q: str | None = None) -> QuerySet[Merchant]:
    """The merchants inside ``scope``: a merchant sees itself only."""
    qs = Merchant.objects.filter(scope.q("pk"))
    if status:
        qs = qs.filter(status=status)
    if q:
        qs = qs.filter(name__icontains=q) | qs.filter(code__icontains=q)
    return qs.order_by("name", "id")


def merchant_get(*, scope: Scope, merchant_id: int) -> Merchant:
    """One merchant inside ``scope``; any other answers like a missing one (``merchant_not_found``)."""
    merchant = Merchant.objects.filter(scope.q("pk")).filter(pk=merchant_id).first()
    if merchant is None:
        raise NotFound(_("Merchant not found."), code="merchant_not_found", details={"merchant_id": merchant_id})
    return merchant


def api_key_list(*, scope: Scope) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(scope.q()).order_by("-created_at", "-id")
