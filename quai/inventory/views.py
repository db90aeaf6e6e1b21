"""Operator screens of inventory, for a handheld with a scanner that types the code and Enter.

Moving stock: scan the location to take from, the item, (the quantity), then the location to put it in. The screen
keeps no state on the server: each step's answers travel in the form, and the move is one call to ``stock_move``,
so a refused move changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from quai.catalog.selectors import scan_resolve
from quai.core.errors import NotFound, QuaiError, ValidationFailed
from quai.inventory import selectors, services
from quai.inventory.models import StockQuantity, StockStatus
from quai.warehouse.models import Location, Site
from quai.warehouse.selectors import location_get, location_get_by_code, site_list

OPERATOR_GROUPS = ("admin", "supervisor", "receiver", "picker", "packer")

View = Callable[..., HttpResponse]


def operator_required(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user: Any = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        allowed = (
            user.is_active
            and user.is_staff
            and (user.is_superuser or user.groups.filter(name__in=OPERATOR_GROUPS).exists())
        )
        if not allowed:
            return HttpResponseForbidden(_("This screen is for warehouse operators."))
        return view(request, *args, **kwargs)

    return wrapped


def _site(request: HttpRequest) -> Site | None:
    """The site the operator works in: chosen once per session, the first site by default."""
    sites = site_list()
    site_id = request.session.get("site_id")
    return (sites.filter(pk=site_id).first() if site_id else None) or sites.first()


@dataclass
class MoveState:
    """What the operator has scanned so far; each field travels back in the form."""

    from_location: Location | None = None
    row: StockQuantity | None = None

    @property
    def step(self) -> str:
        if self.from_location is None:
            return "from"
        if self.row is None:
            return "item"
        return "to"


def _state(request: HttpRequest) -> MoveState:
    state = MoveState()
    from_id = request.POST.get("from_location_id")
    if from_id and from_id.isdigit():
        state.from_location = location_get(location_id=int(from_id))
        row_id = request.POST.get("row_id")
        if row_id and row_id.isdigit():
            state.row = (
                StockQuantity.objects.filter(pk=int(row_id), location=state.from_location).select_related("sku").first()
            )
    return state


def _error_text(exc: QuaiError, code: str) -> str:
    texts = {
        "unknown_code": _("Unknown code: %(code)s"),
        "unknown_location": _("Unknown location: %(code)s"),
        "empty_location": _("Location %(code)s holds nothing to move."),
        "not_at_location": _("%(code)s is not in this location."),
        "lot_required": _("Several lots of this item are here: scan the label with the lot."),
        "same_location": _("That is the location you are taking from: scan where it goes."),
        "insufficient_stock": _("Not that many free units here (some may be reserved)."),
        "location_blocked": _("Location %(code)s is blocked: scan another one."),
        "invalid_quantity": _("The quantity must be a whole number above zero."),
    }
    text = texts.get(exc.code)
    return exc.message if text is None else text % {"code": code}


def _item_at(location: Location, code: str) -> StockQuantity:
    """The stock row at ``location`` that a scanned item code designates, across the merchants stored there."""
    rows = [row for row in selectors.location_contents(location=location) if row.on_hand > 0]
    if not rows:
        raise ValidationFailed("Nothing to move here.", code="empty_location")
    matches: list[StockQuantity] = []
    for merchant_id in sorted({row.merchant_id for row in rows}):
        try:
            scanned = scan_resolve(merchant=merchant_id, code=code)
        except NotFound:
            continue
        if scanned.sku is None:
            continue
        matches += [row for row in rows if row.sku_id == scanned.sku.pk and (not scanned.lot or row.lot == scanned.lot)]
    if not matches:
        raise NotFound("Not in this location.", code="not_at_location")
    if len({(row.lot, row.expiry) for row in matches}) > 1:
        raise ValidationFailed("Several lots here.", code="lot_required")
    # The same lot in several statuses: sellable stock is what an operator moves by default.
    matches.sort(key=lambda row: (row.status != StockStatus.SELLABLE, row.pk))
    return matches[0]


def _quantity(request: HttpRequest) -> int:
    raw = (request.POST.get("quantity") or "1").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationFailed("Bad quantity.", code="invalid_quantity")
    return int(raw)


@operator_required
@require_http_methods(["GET", "POST"])
def move_home(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and request.POST.get("site_id", "").isdigit():
        request.session["site_id"] = int(request.POST["site_id"])
    return render(
        request,
        "inventory/move.html",
        {"screen": "move", "state": MoveState(), "site": _site(request), "sites": site_list()},
    )


@operator_required
@require_POST
def move_scan(request: HttpRequest) -> HttpResponse:
    code = request.POST.get("code", "").strip()
    site = _site(request)
    state = _state(request)
    context: dict[str, Any] = {"code": code}
    try:
        if site is None:
            raise NotFound("No site.", code="unknown_location")
        if state.step == "from":
            state.from_location = location_get_by_code(site=site, code=code)
            if not any(row.on_hand > 0 for row in selectors.location_contents(location=state.from_location)):
                raise ValidationFailed("Nothing to move here.", code="empty_location")
            context.update(result="ok", message=_("From %(location)s: now scan the item.") % {"location": code})
        elif state.step == "item":
            assert state.from_location is not None
            state.row = _item_at(state.from_location, code)
            context.update(
                result="ok",
                message=_("%(sku)s: type the quantity if not 1, then scan where it goes.")
                % {"sku": state.row.sku.code},
            )
        else:
            assert state.from_location is not None and state.row is not None
            to_location = location_get_by_code(site=site, code=code)
            if to_location.pk == state.from_location.pk:
                raise ValidationFailed("Same location.", code="same_location")
            quantity = _quantity(request)
            row = state.row
            services.stock_move(
                sku=row.sku,
                from_location=state.from_location,
                to_location=to_location,
                quantity=quantity,
                lot=row.lot,
                expiry=row.expiry,
                status=row.status,
                actor=request.user,
                reason="move by scan",
            )
            context.update(
                result="ok",
                message=_("Moved %(quantity)d × %(sku)s to %(location)s.")
                % {"quantity": quantity, "sku": row.sku.code, "location": to_location.code},
                detail=_("Scan the next location to take from."),
            )
            state = MoveState()
    except QuaiError as exc:
        context.update(result="error", message=_error_text(exc, code))
    contents = selectors.location_contents(location=state.from_location) if state.from_location else []
    context.update(state=state, contents=[row for row in contents if row.on_hand > 0], site=site)
    return render(request, "inventory/_move_panel.html", context)
