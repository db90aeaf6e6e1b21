"""Who may open an operator screen: one decorator that every app's views share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils.functional import Promise

from quai.tenants.scope import Scope

View = Callable[..., HttpResponse]


def user_has_staff_role(user: Any, roles: Iterable[str]) -> bool:
    """An active member of the warehouse staff holding one of ``roles`` (a superuser holds them all).

    A merchant's user is never warehouse staff (``MerchantUser``), even when flagged staff and given a role: the
    screens read every merchant's rows, and the API already holds such a session to its own merchant.
    """
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if hasattr(user, "merchant_membership"):
        return False
    return bool(user.is_superuser or user.groups.filter(name__in=list(roles)).exists())


def staff_role_required(roles: Iterable[str], refusal: str | Promise) -> Callable[[View], View]:
    """Send an anonymous visitor to the sign-in page; answer 403 with ``refusal`` to anyone without the role."""
    allowed_roles = tuple(roles)

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user: Any = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_staff_role(user, allowed_roles):
                return HttpResponseForbidden(str(refusal))
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def staff_scope(user: Any) -> Scope:
    """Every merchant's rows, for an operator screen: the warehouse staff work for all merchants at once.

    The screens' decorator has already let only staff in; asking ``Scope.all_merchants`` again means a screen
    reached by anyone else is refused (``staff_only``) rather than shown every merchant's rows.
    """
    from quai.tenants.principal import Principal

    is_staff = bool(user.is_authenticated and user.is_active and user.is_staff)
    return Scope.all_merchants(Principal(kind="staff" if is_staff else "merchant_user", merchant_id=None, user=user))
