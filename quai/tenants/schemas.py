from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema
from pydantic import StrictInt


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


# Bounds match the model's columns: beyond them SQLite stored anything and PostgreSQL answered a 500.
MAX_INT = 2**31 - 1  # PositiveIntegerField / IntegerField on every database
MAX_BIGINT = 2**63 - 1  # PositiveBigIntegerField


class MerchantCreateIn(Schema):
    code: str = Field(..., min_length=1, max_length=40, pattern=r"^[-a-zA-Z0-9_]+$", description="A slug, unique.")
    name: str = Field(..., min_length=1, max_length=200)
    legal_name: str = Field("", max_length=200)
    siret: str = Field("", max_length=40, description="14 digits (spaces allowed), checked with Luhn.")
    vat_number: str = Field("", max_length=40, description="An EU VAT number (spaces allowed), checked.")
    contact_name: str = Field("", max_length=200)
    contact_email: str = Field("", max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")
    contact_phone: str = Field("", max_length=40)
    default_currency: str = Field("EUR", max_length=3, pattern=r"^[A-Za-z]{3}$", description="ISO 4217 code, e.g. EUR.")


class ApiKeyOut(Schema):
    id: int
    merchant_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreateIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    merchant_id: StrictInt | None = None


class ApiKeyCreatedOut(ApiKeyOut):
    secret: str


class WhoAmIOut(Schema):
    kind: str
    merchant_id: int | None
    merchant_code: str | None
    username: str | None
