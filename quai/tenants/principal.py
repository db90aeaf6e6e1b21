"""Who is asking: a merchant (API key or portal user) or a member of the warehouse staff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from quai.core.errors import Forbidden, NotFound, ValidationFailed
from quai.tenants.scope import Scope

if TYPE_CHECKING:
    from quai.tenants.models import ApiKey, Merchant


@dataclass(frozen=True)
class Principal:
    """``merchant_id`` is None for staff, who act across merchants; set for anyone speaking for one merchant."""

    kind: str  # "merchant_key" | "merchant_user" | "staff"
    merchant_id: int | None
    user: Any = None
    api_key: ApiKey | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def idempotency_scope(self) -> str:
        """Whose Idempotency-Keys these are: a merchant's keys share one scope; a session is its user's."""
        if self.kind == "merchant_key":
            return f"merchant:{self.merchant_id}"
        return f"user:{self.user.pk}"

    def require_staff(self) -> None:
        if not self.is_staff:
            raise Forbidden(_("This action is reserved for the warehouse staff."), code="staff_only")

    def merchant_for(self, merchant_id: int | None) -> Merchant:
        """The merchant this request acts for.

        A merchant acts for itself (naming another merchant is answered as if it did not exist); staff must say
        which merchant they act for.
        """
        from quai.tenants.models import Merchant

        if self.merchant_id is not None:
            if merchant_id is not None and merchant_id != self.merchant_id:
                raise NotFound(
                    _("Merchant not found."), code="merchant_not_found", details={"merchant_id": merchant_id}
                )
            return Merchant.objects.get(pk=self.merchant_id)
        if merchant_id is None:
            raise ValidationFailed(
                _("Say which merchant this is for: staff requests need merchant_id."), code="merchant_required"
            )
        try:
            return Merchant.objects.get(pk=merchant_id)
        except Merchant.DoesNotExist:
            raise NotFound(
                _("Merchant not found."), code="merchant_not_found", details={"merchant_id": merchant_id}
            ) from None

    def scope(self, merchant_id: int | None = None) -> Scope:
        """Whose rows this request may read: a merchant always its own (naming another merchant is answered as if
        it did not exist); staff the merchant they name, or every merchant when they name none."""
        if self.merchant_id is not None:
            if merchant_id is not None and merchant_id != self.merchant_id:
                raise NotFound(
                    _("Merchant not found."), code="merchant_not_found", details={"merchant_id": merchant_id}
                )
            return Scope.merchant(self.merchant_id)
        if merchant_id is not None:
            return Scope.merchant(merchant_id)
        return Scope.all_merchants(self)
