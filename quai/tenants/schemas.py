from __future__ import annotations

from datetime import datetime

from ninja import Schema


class MerchantOut(Schema):
    id: int
    code: str
    name: str
    legal_name: str
    siret: str
    vat_number: str
    contact_name: str
    contact_email: str
    contact_phone: str
    default_currency: str
    status: str


class MerchantCreateIn(Schema):
    code: str
    name: str
    legal_name: str = ""
    siret: str = ""
    vat_number: str = ""
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    default_currency: str = "EUR"


class ApiKeyOut(Schema):
    id: int
    merchant_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreateIn(Schema):
    name: str
    merchant_id: int | None = None


class ApiKeyCreatedOut(ApiKeyOut):
    secret: str


class WhoAmIOut(Schema):
    kind: str
    merchant_id: int | None
    merchant_code: str | None
    username: str | None
