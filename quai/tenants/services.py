"""Writes for merchants, staff roles and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import siret as fr_siret

from quai.core import clock
from quai.core.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from quai.tenants.models import ApiKey, Merchant, MerchantStatus, Operator, StaffRole

KEY_PREFIX = "quai"


def siret_clean(value: str) -> str:
    """A SIRET reduced to its 14 digits, or ``invalid_siret`` if its length or Luhn check digit is wrong."""
    if not value:
        return ""
    try:
        return str(fr_siret.validate(value))
    except StdnumError:
        raise ValidationFailed(
            f"'{value}' is not a valid SIRET: it must be 14 digits with a correct check digit.",
            code="invalid_siret",
            details={"field": "siret", "value": value},
        ) from None


def vat_number_clean(value: str) -> str:
    if not value:
        return ""
    try:
        return str(eu_vat.validate(value))
    except StdnumError:
        raise ValidationFailed(
            f"'{value}' is not a valid EU VAT number.",
            code="invalid_vat_number",
            details={"field": "vat_number", "value": value},
        ) from None


@transaction.atomic
def operator_create(*, name: str, legal_name: str = "", siret: str = "", vat_number: str = "") -> Operator:
    """The 3PL running this installation: one row, its SIRET and VAT number checked like a merchant's."""
    if Operator.objects.exists():
        raise Conflict("This installation already has its operator.", code="operator_exists")
    return Operator.objects.create(
        name=name,
        legal_name=legal_name or name,
        siret=siret_clean(siret),
        vat_number=vat_number_clean(vat_number),
    )


@transaction.atomic
def merchant_create(
    *,
    code: str,
    name: str,
    legal_name: str = "",
    siret: str = "",
    vat_number: str = "",
    contact_name: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    default_currency: str = "EUR",
    status: str = MerchantStatus.ACTIVE,
) -> Merchant:
    if Merchant.objects.filter(code=code).exists():
        raise Conflict(f"A merchant with code '{code}' already exists.", code="duplicate_merchant_code")
    return Merchant.objects.create(
        code=code,
        name=name,
        legal_name=legal_name or name,
        siret=siret_clean(siret),
        vat_number=vat_number_clean(vat_number),
        contact_name=contact_name,
        contact_email=contact_email,
        contact_phone=contact_phone,
        default_currency=default_currency.upper(),
        status=status,
    )


# Which Django permissions each staff role carries, as "app_label.codename" prefixes. Later apps add theirs.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    StaffRole.ADMIN: ["*"],
    StaffRole.SUPERVISOR: [
        "tenants.view_",
        "catalog.",
        "warehouse.",
        "inventory.",
        "inbound.",
        "core.view_",
    ],
    StaffRole.RECEIVER: ["catalog.view_", "warehouse.view_", "inbound.", "inventory.view_", "inventory.add_"],
    StaffRole.PICKER: ["catalog.view_", "warehouse.view_", "inventory.view_"],
    StaffRole.PACKER: ["catalog.view_", "warehouse.view_", "inventory.view_"],
    StaffRole.SHIPPER: ["catalog.view_", "warehouse.view_"],
    StaffRole.AGENT: ["tenants.view_merchant", "catalog.view_", "inventory.view_"],
}


def staff_roles_sync() -> dict[str, int]:
    """Create or refresh one Django group per staff role with its permissions; idempotent."""
    counts: dict[str, int] = {}
    all_perms = list(Permission.objects.select_related("content_type"))
    for role, patterns in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=role)
        wanted = [
            p
            for p in all_perms
            if any(
                pattern == "*" or f"{p.content_type.app_label}.{p.codename}".startswith(pattern) for pattern in patterns
            )
        ]
        group.permissions.set(wanted)
        counts[str(role)] = len(wanted)
    return counts


def _digest(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


@transaction.atomic
def api_key_create(*, merchant: Merchant, name: str, created_by: Any = None) -> IssuedKey:
    if not name.strip():
        raise ValidationFailed("An API key needs a name.", code="name_required")
    if ApiKey.objects.filter(merchant=merchant, name=name, revoked_at=None).exists():
        raise Conflict(f"A live API key named '{name}' already exists.", code="duplicate_api_key_name")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        merchant=merchant, name=name, prefix=prefix, digest=_digest(secret), created_by=created_by
    )
    return IssuedKey(api_key=key, secret=secret)


@transaction.atomic
def api_key_revoke(*, api_key_id: int, merchant_id: int | None = None) -> ApiKey:
    qs = ApiKey.objects.select_for_update()
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    try:
        key = qs.get(pk=api_key_id)
    except ApiKey.DoesNotExist:
        raise NotFound("API key not found.") from None
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        key.save(update_fields=["revoked_at"])
    return key


def api_key_authenticate(secret: str) -> ApiKey:
    """The live key behind ``secret``; one error for unknown, malformed and revoked keys alike."""
    parts = secret.split("_")
    error = Unauthenticated("This API key is not valid or has been revoked.", code="invalid_api_key")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        raise error
    key = ApiKey.objects.select_related("merchant").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.digest, _digest(secret)) or key.revoked_at is not None:
        raise error
    if key.merchant.status in (MerchantStatus.SUSPENDED, MerchantStatus.CLOSED):
        raise Unauthenticated("This merchant's access is suspended.", code="merchant_suspended")
    now = clock.now()
    # Written at most once a minute per key, so a busy integration does not turn every read into a write.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
