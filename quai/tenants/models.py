"""The 3PL operator, its merchants, the people who work for either, and the merchants' API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from quai.core.models import TimeStampedModel

if TYPE_CHECKING:
    from quai.tenants.scope import Scope


class Operator(TimeStampedModel):
    """The logistics provider that runs the warehouses (one row per installation)."""

    name = models.CharField(_("name"), max_length=200)
    legal_name = models.CharField(_("legal name"), max_length=200, blank=True)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True)
    vat_number = models.CharField(_("VAT number"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("operator")
        verbose_name_plural = _("operator")

    def __str__(self) -> str:
        return self.name


class MerchantStatus(models.TextChoices):
    ONBOARDING = "onboarding", _("Onboarding")
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    CLOSED = "closed", _("Closed")


class Merchant(TimeStampedModel):
    """An e-commerce merchant (e-commerçant) whose goods the 3PL stores and ships."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("trading name"), max_length=200)
    legal_name = models.CharField(_("legal name"), max_length=200)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True, help_text=_("14 digits, checked with Luhn."))
    vat_number = models.CharField(_("VAT number"), max_length=20, blank=True)
    contact_name = models.CharField(_("contact name"), max_length=200, blank=True)
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=40, blank=True)
    default_currency = models.CharField(_("default currency"), max_length=3, default="EUR")
    status = models.CharField(_("status"), max_length=20, choices=MerchantStatus.choices, default=MerchantStatus.ACTIVE)

    class Meta:
        verbose_name = _("merchant")
        verbose_name_plural = _("merchants")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MerchantScopedQuerySet(models.QuerySet):
    """The one mechanism that keeps a merchant inside its own rows: every merchant-owned model uses it.

    Selectors read with ``within(scope)``; a ``Scope`` says whose rows (``quai.tenants.scope``), never a default.
    """

    def for_merchant(self, merchant: Merchant | int) -> MerchantScopedQuerySet:
        merchant_id = merchant if isinstance(merchant, int) else merchant.pk
        return self.filter(merchant_id=merchant_id)

    def within(self, scope: Scope) -> MerchantScopedQuerySet:
        """The rows inside ``scope``: one merchant's, or every merchant's for an all-merchants or system scope."""
        return self.filter(scope.q())


class MerchantOwned(models.Model):
    """Abstract base of every merchant-owned row: the merchant column plus the scoped manager."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, verbose_name=_("merchant"), related_name="+")

    objects = MerchantScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class StaffRole(models.TextChoices):
    """Warehouse staff roles; each is a Django group carrying its permissions."""

    ADMIN = "admin", _("3PL admin")
    SUPERVISOR = "supervisor", _("Supervisor")
    RECEIVER = "receiver", _("Receiver")
    PICKER = "picker", _("Picker")
    PACKER = "packer", _("Packer")
    SHIPPER = "shipper", _("Shipper")
    AGENT = "agent", _("Contact-centre agent")


class MerchantUserRole(models.TextChoices):
    OWNER = "owner", _("Owner")
    STAFF = "staff", _("Staff")
    VIEWER = "viewer", _("Read only")


class MerchantUser(TimeStampedModel):
    """A person of a merchant's team, for the merchant portal. Such a user is never warehouse staff."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="merchant_membership")
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="users")
    role = models.CharField(_("role"), max_length=20, choices=MerchantUserRole.choices, default=MerchantUserRole.STAFF)

    class Meta:
        verbose_name = _("merchant user")
        verbose_name_plural = _("merchant users")

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant}"


class ApiKey(TimeStampedModel):
    """A merchant's API key. The secret is shown once at creation; only its SHA-256 digest is stored."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    digest = models.CharField(_("digest"), max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The key that minted this one through the API (None: minted by a person). Revoking a key revokes what it
    # minted, so a leaked key cannot leave live copies of itself behind.
    minted_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="minted_keys",
        verbose_name=_("minted by"),
        editable=False,
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "name"],
                condition=models.Q(revoked_at=None),
                name="api_key_live_name_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class IdempotencyRecord(models.Model):
    """The first answer to a write sent with an ``Idempotency-Key`` header, replayed when the client retries.

    A key is scoped by who asks (``merchant:<id>`` for a merchant's API keys, ``user:<id>`` for a session), so one
    merchant never sees another's answer. The row is claimed (``response_status`` empty) before the handler runs and
    completed after it: a second request with the same key meanwhile finds the claim and is refused, never run
    twice. The unique constraint on (scope, key) is what makes the claim safe between processes. Answers of 5xx are
    not kept (the claim is released so the client may retry), and every row expires (see
    ``services.idempotency_records_purge``).
    """

    scope = models.CharField(_("scope"), max_length=40)
    key = models.CharField(_("key"), max_length=255)
    fingerprint = models.CharField(
        _("fingerprint"), max_length=64, help_text=_("SHA-256 of the method, the path and the body.")
    )
    method = models.CharField(_("method"), max_length=10)
    path = models.CharField(_("path"), max_length=2000)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_content_type = models.CharField(_("response content type"), max_length=100, blank=True)
    response_body = models.BinaryField(_("response body"), blank=True, default=b"")

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"

    @property
    def is_complete(self) -> bool:
        return self.response_status is not None
