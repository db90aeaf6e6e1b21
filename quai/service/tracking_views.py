"""The shopper's tracking page: reached by order number + email or postcode on the merchant's page, or by a signed
link (``django.core.signing``); status timeline, promised date, parcel tracking, a contact form; branded per
merchant; French and English.

Asking with a wrong email or postcode tells nothing: the same answer whether the order exists or not, after the
same work (one look-up, one constant-time comparison against the stored values or against a stand-in). Attempts
are counted per address and per order number (``TRACK_ATTEMPTS`` in ``TRACK_WINDOW_SECONDS``): past that, 429.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core import signing
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from quai.core.errors import QuaiError
from quai.orders import selectors as orders_selectors
from quai.service import services, warehouse
from quai.service.services.customers import email_normalise
from quai.service.services.wismo import TRACKING_SALT, order_status_words, tracking_path
from quai.tenants.scope import Scope
from quai.tenants.selectors import merchant_get, merchant_list
from quai.tenants.throttle import client_address

TRACK_ATTEMPTS = 10
TRACK_WINDOW_SECONDS = 15 * 60
LINK_MAX_AGE_SECONDS = 180 * 24 * 3600
CONTACT_MAX = 10_000  # the form's maxlength
_STAND_IN = "\x00no-such-order\x00"

#: The shopper's view of the order's life: (step, the order statuses that reached it).
_STEPS = (
    ("received", {"received", "allocated", "backordered", "on_hold"}),
    ("preparing", {"released", "picking"}),
    ("packed", {"packed"}),
    ("shipped", {"partially_shipped", "shipped"}),
    ("delivered", {"delivered"}),
)


def _brand(merchant_id: int, merchant_name: str) -> dict[str, str]:
    settings = services.service_settings(merchant_id=merchant_id)
    colour = settings.brand_colour if len(settings.brand_colour) == 7 and settings.brand_colour[0] == "#" else "#1f4e79"
    return {"name": settings.brand_name or merchant_name, "colour": colour}


def _not_found_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """An unknown shop, or a link tampered with or past its age, answers 404 with a sentence in the shopper's
    language on the tracking page's own frame (Django's bare "Not Found" is English), naming no shop nor order."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Http404:
            context = {"brand": {"name": "", "colour": "#1f4e79"}, "next_url": request.path}
            return render(request, "service/track_not_found.html", context, status=404)

    return wrapped


def _throttled(request: HttpRequest, *keys: str) -> bool:
    """Count one attempt under each key; True once any key went over the limit in its window."""
    over = False
    for key in keys:
        cache_key = f"quai.track.{key}"
        cache.add(cache_key, 0, TRACK_WINDOW_SECONDS)
        try:
            count = cache.incr(cache_key)
        except ValueError:
            cache.set(cache_key, 1, TRACK_WINDOW_SECONDS)
            count = 1
        over = over or count > TRACK_ATTEMPTS
    return over


def _merchant(code: str) -> Any:
    merchant = merchant_list(scope=Scope.system("shopper tracking page")).filter(code=code).first()
    if merchant is None:
        raise Http404
    return merchant


@_not_found_page
@require_http_methods(["GET", "POST"])
def lookup(request: HttpRequest, merchant_code: str) -> HttpResponse:
    merchant = _merchant(merchant_code)
    brand = _brand(merchant.pk, merchant.name)
    number = request.POST.get("number", "").strip()[:100]
    proof = request.POST.get("proof", "").strip()[:254]
    context = {"brand": brand, "merchant_code": merchant.code, "number": number, "error": ""}
    if request.method == "GET":
        return render(request, "service/track_lookup.html", context)
    if _throttled(request, f"ip.{client_address(request)}", f"order.{merchant.pk}.{number.lower()}"):
        context["error"] = _("Too many attempts: try again in a few minutes.")
        return render(request, "service/track_lookup.html", context, status=429)
    order = (
        orders_selectors.order_list(scope=Scope.merchant(merchant))
        .filter(external_id=number)
        .only("pk", "merchant_id", "shopper_email", "postcode")
        .first()
        if number
        else None
    )
    email = email_normalise(order.shopper_email) if order else _STAND_IN
    postcode = order.postcode.replace(" ", "").upper() if order else _STAND_IN
    given_email, given_postcode = email_normalise(proof), proof.replace(" ", "").upper()
    # Both comparisons always run, in constant time, whether the order exists or not.
    email_ok = hmac.compare_digest(email.encode(), given_email.encode()) and bool(given_email)
    postcode_ok = hmac.compare_digest(postcode.encode(), given_postcode.encode()) and bool(given_postcode)
    if order is not None and (email_ok or postcode_ok):
        return redirect(tracking_path(order))
    context["error"] = _("We found no order with this number and this email or postcode.")
    return render(request, "service/track_lookup.html", context)


def _order_from(token: str) -> Any:
    try:
        data = signing.loads(token, salt=TRACKING_SALT, max_age=LINK_MAX_AGE_SECONDS)
    except signing.BadSignature:
        raise Http404 from None
    try:
        return orders_selectors.order_detail(scope=Scope.merchant(int(data["m"])), order_id=int(data["o"]))
    except (QuaiError, KeyError, TypeError, ValueError):
        raise Http404 from None


def _page(
    request: HttpRequest,
    token: str,
    *,
    sent: bool = False,
    error: str = "",
    status: int = 200,
    return_error: str = "",
    opened: Any = None,
) -> HttpResponse:
    order = _order_from(token)
    merchant = merchant_get(scope=Scope.merchant(order.merchant_id), merchant_id=order.merchant_id)
    reached_index = next((i for i, (_step, statuses) in enumerate(_STEPS) if order.status in statuses), 0)
    labels = {
        "received": _("Order received"),
        "preparing": _("Being prepared"),
        "packed": _("Packed"),
        "shipped": _("Shipped"),
        "delivered": _("Delivered"),
    }
    reached_at: dict[str, Any] = {}
    for step in order.timeline:
        for name, statuses in _STEPS:
            if step.to_status in statuses and name not in reached_at:
                reached_at[name] = step.at
    reached_at.setdefault("received", order.created_at)
    steps = [
        {"label": labels[name], "done": i <= reached_index, "current": i == reached_index, "at": reached_at.get(name)}
        for i, (name, _statuses) in enumerate(_STEPS)
    ]
    parcels = warehouse.order_parcels(scope=Scope.merchant(order.merchant_id), order_id=order.pk)
    context = {
        "brand": _brand(order.merchant_id, merchant.name),
        "order": order,
        "status_words": order_status_words(order),
        "steps": steps,
        "stopped": order.status in ("on_hold", "cancelled"),
        "parcels": parcels,
        "token": token,
        "sent": sent,
        "error": error,
        "next_url": reverse("tracking:signed", kwargs={"token": token}),
        "returns": _returns_context(order),
        "return_error": return_error,
        "opened": opened,
    }
    return render(request, "service/track_order.html", context, status=status)


def _returns_context(order: Any) -> dict[str, Any] | None:
    """The returns portal's part of the page: only once the order has left the warehouse."""
    if order.status not in ("partially_shipped", "shipped", "delivered"):
        return None
    state = services.portal_state(order=order)
    reasons = {
        "return": _("I changed my mind"),
        "damaged": _("It arrived damaged"),
        "wrong_item": _("It is not what I ordered"),
        "missing_item": _("Something is missing"),
        "exchange": _("Wrong size or colour: exchange"),
    }
    return {
        "state": state,
        "reasons": [(value, reasons[value]) for value in services.PORTAL_REASONS],
        "rmas": services.order_rmas(order=order),
    }


@_not_found_page
@require_http_methods(["GET"])
def signed(request: HttpRequest, token: str) -> HttpResponse:
    opened = request.GET.get("rma", "")
    rma_id = int(opened) if opened.isdecimal() else None  # isdecimal: "²" is a digit int() cannot read
    return _page(request, token, sent=request.GET.get("sent") == "1", opened=rma_id)


@_not_found_page
@require_POST
def contact(request: HttpRequest, token: str) -> HttpResponse:
    """The contact form on the tracking page: a ticket linked to this order, from the order's shopper."""
    order = _order_from(token)
    if _throttled(request, f"contact.{client_address(request)}"):
        return _page(request, token, error=_("Too many messages: try again in a few minutes."), status=429)
    body = request.POST.get("message", "")
    if not body.strip() or len(body) > CONTACT_MAX:
        # The service's own refusal names its field ("body"): the shopper is told in words of the form.
        error = _("Write your message before sending it.") if not body.strip() else _("Your message is too long.")
        return _page(request, token, error=error, status=422)
    try:
        services.ticket_open(
            merchant_id=order.merchant_id,
            channel="form",
            message=services.IncomingMessage(
                body=body,
                subject=_("Message about order %(order)s") % {"order": order.external_id},
                email=order.shopper_email,
                name=order.shopper_name,
                order_ids=(order.pk,),
            ),
            actor="tracking page",
        )
    except QuaiError as exc:
        return _page(request, token, error=exc.message, status=422)
    # Post/redirect/get: a reload or a language switch never sends the message twice.
    return redirect(reverse("tracking:signed", kwargs={"token": token}) + "?sent=1")


@_not_found_page
@require_POST
def return_open(request: HttpRequest, token: str) -> HttpResponse:
    """The returns portal: the quantities chosen per line (``qty_<line id>``), a reason, refund or exchange."""
    order = _order_from(token)
    if _throttled(request, f"return.{client_address(request)}", f"return.order.{order.pk}"):
        return _page(request, token, return_error=_("Too many attempts: try again in a few minutes."), status=429)
    lines = []
    for key in request.POST:
        value = request.POST.get(key, "")
        # isdecimal, not isdigit: "²" is a digit that int() cannot read.
        if key.startswith("qty_") and key[4:].isdecimal() and value.strip() not in ("", "0"):
            quantity = int(value) if value.strip().isdecimal() else -1
            lines.append({"line_id": int(key[4:]), "quantity": quantity})
    try:
        rma = services.portal_return_open(
            order=order,
            lines=lines,
            reason=request.POST.get("reason", ""),
            exchange=request.POST.get("kind") == "exchange",
            note=request.POST.get("note", ""),
        )
    except QuaiError as exc:
        return _page(request, token, return_error=exc.message, status=422)
    return redirect(reverse("tracking:signed", kwargs={"token": token}) + f"?rma={rma.pk}#returns")
