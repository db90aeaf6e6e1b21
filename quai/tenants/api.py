from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from quai.tenants import selectors, services
from quai.tenants.auth import principal_of
from quai.tenants.models import Merchant
from quai.tenants.schemas import (
    ApiKeyCreatedOut,
    ApiKeyCreateIn,
    ApiKeyOut,
    MerchantCreateIn,
    MerchantOut,
    WhoAmIOut,
)

router = Router(tags=["tenants"])


@router.get("/whoami", response=WhoAmIOut)
def whoami(request: HttpRequest) -> dict[str, object]:
    principal = principal_of(request)
    merchant = (
        selectors.merchant_get(scope=principal.scope(), merchant_id=principal.merchant_id)
        if principal.merchant_id
        else None
    )
    return {
        "kind": principal.kind,
        "merchant_id": principal.merchant_id,
        "merchant_code": merchant.code if merchant else None,
        "username": principal.user.get_username() if principal.user else None,
    }


@router.get("/merchants", response=list[MerchantOut])
@paginate
def merchant_list(request: HttpRequest, status: str | None = None, q: str | None = None):
    return selectors.merchant_list(scope=principal_of(request).scope(), status=status, q=q)


@router.get("/merchants/{merchant_id}", response=MerchantOut)
def merchant_detail(request: HttpRequest, merchant_id: int) -> Merchant:
    return selectors.merchant_get(scope=principal_of(request).scope(), merchant_id=merchant_id)


@router.post("/merchants", response={201: MerchantOut})
def merchant_create(request: HttpRequest, payload: MerchantCreateIn) -> Status[Merchant]:
    principal_of(request).require_staff()
    return Status(201, services.merchant_create(**payload.dict()))


@router.get("/api-keys", response=list[ApiKeyOut])
@paginate
def api_key_list(request: HttpRequest, merchant_id: int | None = None):
    return selectors.api_key_list(scope=principal_of(request).scope(merchant_id))


@router.post("/api-keys", response={201: ApiKeyCreatedOut})
def api_key_create(request: HttpRequest, payload: ApiKeyCreateIn) -> Status[dict[str, object]]:
    principal = principal_of(request)
    merchant = principal.merchant_for(payload.merchant_id)
    issued = services.api_key_create(
        merchant=merchant, name=payload.name, created_by=principal.user, minted_by=principal.api_key
    )
    key = issued.api_key
    return Status(201, {**ApiKeyOut.from_orm(key).dict(), "secret": issued.secret})


@router.post("/api-keys/{api_key_id}/revoke", response=ApiKeyOut)
def api_key_revoke(request: HttpRequest, api_key_id: int):
    principal = principal_of(request)
    return services.api_key_revoke(api_key_id=api_key_id, merchant_id=principal.merchant_id)
