"""Writes for merchants, staff roles and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import siret as fr_siret

from quai.core import clock
from quai.core.errors import Conflict, NotFound, Unauthenticated, ValidationFailed
from quai.tenants.key_cache import key_cache_forget_all
from quai.tenants.models import ApiKey, IdempotencyRecord, Merchant, MerchantStatus, Operator, StaffRole

KEY_PREFIX = "quai"


def siret_clean(value: str) -> str:
    """A SIRET reduced to its 14 digits, or ``invalid_siret`` if its length or Luhn check digit is wrong."""
    if not value:
        return ""
    try:
        return str(fr_siret.validate(value))
    except StdnumError:
        raise ValidationFailed(
            _("'%(value)s' is not a valid SIRET: it must be 14 digits with a correct check digit.") % {"value": value},
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
            _("'%(value)s' is not a valid EU VAT number.") % {"value": value},
            code="invalid_vat_number",
            details={"field": "vat_number", "value": value},
        ) from None


@transaction.atomic
def operator_create(*, name: str, legal_name: str = "", siret: str = "", vat_number: str = "") -> Operator:
    """The 3PL running this installation: one row, its SIRET and VAT number checked like a merchant's."""
    if Operator.objects.exists():
        raise Conflict(_("This installation already has its operator."), code="operator_exists")
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
        raise Conflict(
            _("A merchant with code '%(code)s' already exists.") % {"code": code}, code="duplicate_merchant_code"
        )
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
        "labor.",  # staff, skills, shifts and standards; plans are computed, shown read-only
        "campaigns.view_",  # an event sale moves through its services (the API), the back office shows it
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


# Live keys a merchant may hold at once, whoever minted them: enough for one key per shop, ERP and script, few
# enough that a leaked key minting keys in a loop is stopped at once (and revoking it revokes what it minted).
MAX_LIVE_KEYS_PER_MERCHANT = 20


@transaction.atomic
def api_key_create(
    *, merchant: Merchant, name: str, created_by: Any = None, minted_by: ApiKey | None = None
) -> IssuedKey:
    """A new key for ``merchant``, by a person (``created_by``) or by another of its keys (``minted_by``)."""
    if not name.strip():
        raise ValidationFailed(_("An API key needs a name."), code="name_required")
    # Lock the merchant's row so two concurrent mints cannot both pass the limit check.
    Merchant.objects.select_for_update().filter(pk=merchant.pk).first()
    live = ApiKey.objects.filter(merchant=merchant, revoked_at=None)
    if live.filter(name=name).exists():
        raise Conflict(
            _("A live API key named '%(name)s' already exists.") % {"name": name}, code="duplicate_api_key_name"
        )
    if live.count() >= MAX_LIVE_KEYS_PER_MERCHANT:
        raise Conflict(
            _("This merchant already has %(limit)d live API keys: revoke one before creating another.")
            % {"limit": MAX_LIVE_KEYS_PER_MERCHANT},
            code="api_key_limit_reached",
            details={"limit": MAX_LIVE_KEYS_PER_MERCHANT},
        )
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        merchant=merchant,
        name=name,
        prefix=prefix,
        digest=_digest(secret),
        created_by=created_by,
        minted_by=minted_by,
    )
    return IssuedKey(api_key=key, secret=secret)


@transaction.atomic
def api_key_revoke(*, api_key_id: int, merchant_id: int | None = None) -> ApiKey:
    """Revoke a key and, with it, every key it minted (and what those minted, to any depth)."""
    qs = ApiKey.objects.select_for_update()
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    try:
        key = qs.get(pk=api_key_id)
    except ApiKey.DoesNotExist:
        raise NotFound(_("API key not found."), code="api_key_not_found") from None
    now = clock.now()
    descendants: list[int] = []
    frontier = [key.pk]
    while frontier:
        frontier = list(ApiKey.objects.filter(minted_by_id__in=frontier).values_list("pk", flat=True))
        descendants += frontier
    ApiKey.objects.filter(pk__in=[key.pk, *descendants], revoked_at=None).update(revoked_at=now)
    # This process stops accepting them at once (and again after the commit, in case a request cached one in
    # between); other processes within QUAI_API_KEY_CACHE_SECONDS.
    key_cache_forget_all()
    transaction.on_commit(key_cache_forget_all)
    key.refresh_from_db(fields=["revoked_at"])
    return key


def api_key_authenticate(secret: str) -> ApiKey:
    """The live key behind ``secret``; one error for unknown, malformed and revoked keys alike."""
    parts = secret.split("_")
    error = Unauthenticated(_("This API key is not valid or has been revoked."), code="invalid_api_key")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        raise error
    key = ApiKey.objects.select_related("merchant").filter(prefix=parts[1]).first()
    if key is None or not hmac.compare_digest(key.digest, _digest(secret)) or key.revoked_at is not None:
        raise error
    if key.merchant.status in (MerchantStatus.SUSPENDED, MerchantStatus.CLOSED):
        raise Unauthenticated(_("This merchant's access is suspended."), code="merchant_suspended")
    now = clock.now()
    # Written at most once a minute per key, so a busy integration does not turn every read into a write.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def api_key_prefix(secret: str) -> str | None:
    """The public prefix of a secret shaped like a key (``quai_<prefix>_…``), else None; nothing is looked up."""
    parts = secret.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX or not parts[1] or len(parts[1]) > 16:
        return None
    return parts[1]


# --- Idempotent writes -----------------------------------------------------------------------------------------
# A stored answer is replayed for a day: clients retry within minutes, a day covers a night's batch re-run.
IDEMPOTENCY_TTL = timedelta(hours=24)
# A claim whose request never finished (its process died) frees its key after this long; no request of the API
# runs that long (the application server times out well before).
IDEMPOTENCY_CLAIM_TIMEOUT = timedelta(minutes=5)


@dataclass(frozen=True)
class IdempotencyClaim:
    """``replay`` is False: the caller runs the request and completes ``record``; True: it answers ``record``."""

    record: IdempotencyRecord
    replay: bool


def idempotency_claim(*, scope: str, key: str, fingerprint: str, method: str, path: str) -> IdempotencyClaim:
    """Claim ``key`` for one request of ``scope``, or find the answer already given to it.

    Refused with 409 ``idempotency_key_reused`` when the key came with another request (``fingerprint`` differs)
    and 409 ``idempotency_key_in_use`` while the first request is still running. The claim is committed before the
    request runs (it is its own transaction): that is what a concurrent request with the same key sees.
    """
    now = clock.now()
    with transaction.atomic():
        existing = IdempotencyRecord.objects.select_for_update().filter(scope=scope, key=key).first()
        if existing is not None and (
            existing.expires_at <= now
            or (not existing.is_complete and existing.created_at <= now - IDEMPOTENCY_CLAIM_TIMEOUT)
        ):
            existing.delete()
            existing = None
        if existing is None:
            try:
                with transaction.atomic():
                    record = IdempotencyRecord.objects.create(
                        scope=scope,
                        key=key,
                        fingerprint=fingerprint,
                        method=method,
                        path=path[:2000],
                        created_at=now,
                        expires_at=now + IDEMPOTENCY_TTL,
                    )
                return IdempotencyClaim(record=record, replay=False)
            except IntegrityError:
                # Another request claimed the key between our read and our insert (on PostgreSQL the insert waited
                # for its commit): read what it wrote.
                existing = IdempotencyRecord.objects.get(scope=scope, key=key)
    if existing.fingerprint != fingerprint:
        raise Conflict(
            _("This Idempotency-Key was already used with another request; send a new key for a new request."),
            code="idempotency_key_reused",
            details={"idempotency_key": key},
        )
    if not existing.is_complete:
        raise Conflict(
            _("A request with this Idempotency-Key is still running; retry when it has answered."),
            code="idempotency_key_in_use",
            details={"idempotency_key": key},
        )
    return IdempotencyClaim(record=existing, replay=True)


def idempotency_complete(*, record: IdempotencyRecord, status: int, content_type: str, body: bytes) -> None:
    """Keep the answer given to the claimed request, to replay it."""
    IdempotencyRecord.objects.filter(pk=record.pk, response_status=None).update(
        response_status=status, response_content_type=content_type[:100], response_body=body
    )


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget an unfinished claim (the request failed on our side): the client may retry with the same key."""
    IdempotencyRecord.objects.filter(pk=record.pk, response_status=None).delete()


def idempotency_records_purge(*, batch: int = 1000) -> int:
    """Delete expired records, ``batch`` rows per statement; returns how many went. Run periodically."""
    now = clock.now()
    deleted = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(expires_at__lte=now).values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
