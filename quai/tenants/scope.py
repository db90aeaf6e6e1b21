"""Whose rows a read may return: one merchant, or every merchant for staff and background work.

Every selector that reads merchant-owned rows takes a ``Scope`` (keyword-only, required). There is no default,
and ``None`` never means "everything": forgetting the scope is a ``TypeError`` at the call, not a read across
tenants. A scope is built in one of three ways, each saying why it may see what it sees:

- ``Scope.merchant(m)``: one merchant's rows (a ``Merchant`` or its id). What a merchant's API key or portal user
  always gets, and what staff get when they name a merchant.
- ``Scope.all_merchants(principal)``: every merchant's rows, for a request by warehouse staff; anyone else is
  refused with ``staff_only``. Requests normally go through ``Principal.scope(merchant_id)``, which picks between
  the two.
- ``Scope.system(reason)``: every merchant's rows for code that acts for no one in particular (periodic sweeps,
  management commands, the warehouse floor's own scans, the demo loader); ``reason`` says which, for readers and
  for debugging.

Why a value rather than the ``Principal`` itself: services, tasks and screens read too, and have no principal;
a scope is what they can state honestly. ``MerchantScopedQuerySet.within(scope)`` applies it; ``scope.q(...)``
gives the same filter for a query through a relation or on a table whose merchant column is nullable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils.translation import gettext as _

from quai.core.errors import Forbidden

if TYPE_CHECKING:
    from quai.tenants.models import Merchant
    from quai.tenants.principal import Principal


@dataclass(frozen=True)
class Scope:
    """``merchant_id`` is the one merchant this scope holds to, or None for every merchant (``is_all``).

    Build it with ``Scope.merchant``, ``Scope.all_merchants`` or ``Scope.system``, never directly.
    """

    merchant_id: int | None
    why: str

    @classmethod
    def merchant(cls, merchant: Merchant | int) -> Scope:
        merchant_id = merchant if isinstance(merchant, int) else merchant.pk
        if merchant_id is None:
            raise ValueError("Scope.merchant needs a saved merchant or its id")
        return cls(merchant_id=int(merchant_id), why="merchant")

    @classmethod
    def all_merchants(cls, principal: Principal) -> Scope:
        """Every merchant, for a staff request; a merchant's principal is refused (``staff_only``)."""
        if not principal.is_staff:
            raise Forbidden(_("This action is reserved for the warehouse staff."), code="staff_only")
        return cls(merchant_id=None, why="staff")

    @classmethod
    def system(cls, reason: str) -> Scope:
        """Every merchant, for work done on behalf of no one (a sweep, a command, the warehouse floor)."""
        if not reason.strip():
            raise ValueError("Scope.system needs a reason")
        return cls(merchant_id=None, why=f"system: {reason.strip()}")

    @property
    def is_all(self) -> bool:
        return self.merchant_id is None

    def q(self, field: str = "merchant_id") -> Q:
        """The filter of this scope on ``field`` (e.g. ``"asn__merchant_id"``); an empty ``Q`` for every merchant."""
        if self.merchant_id is None:
            return Q()
        return Q(**{field: self.merchant_id})

    def allows(self, merchant_id: int | None) -> bool:
        """Whether a row of ``merchant_id`` is inside this scope (a row of no merchant is only in an all-scope)."""
        return self.merchant_id is None or merchant_id == self.merchant_id
