"""Operator screens of inventory, for a handheld with a scanner that types the code and Enter.

Moving stock: scan the location to take from, the item, (the quantity), then the location to put it in. The screen
keeps no state on the server: each step's answers travel in the form, and the move is one call to ``stock_move``,
so a refused move changes nothing.

Cycle counts: pick a count or scan a location (a blind count starts there), scan every item (each scan counts one;
type the quantity for a case), then finish (the button, or scan the location again). The count is submitted: within
tolerance it is applied at once, else it waits for a supervisor. A blind count never shows the expected numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods, require_POST

from quai.catalog.selectors import scan_resolve_among, sku_list
from quai.core.errors import NotFound, QuaiError, ValidationFailed
from quai.inventory import selectors, services
from quai.inventory.domain import COUNT_TASK_COUNTABLE
from quai.inventory.models import CountTask, CountTaskStatus, StockQuantity, StockStatus
from quai.tenants.access import staff_role_required, staff_scope
from quai.tenants.scope import Scope
from quai.warehouse.models import Location, Site
from quai.warehouse.selectors import location_get, location_get_by_code, site_list

OPERATOR_GROUPS = ("admin", "supervisor", "receiver", "picker", "packer")


operator_required = staff_role_required(OPERATOR_GROUPS, _lazy("This screen is for warehouse operators."))


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
    if from_id and from_id.isdecimal():
        state.from_location = location_get(location_id=int(from_id))
        row_id = request.POST.get("row_id")
        if row_id and row_id.isdecimal():
            state.row = (
                StockQuantity.objects.filter(pk=int(row_id), location=state.from_location).select_related("sku").first()
            )
    return state


def _error_text(exc: QuaiError, code: str, *, free: int | None = None) -> str:
    """The screen's answer to a refusal: what the operator scanned and what to do, in their language.

    ``free`` is the number of units that may be moved from the picked stock row, when the refusal is about it.
    """
    if exc.code == "insufficient_stock" and free is not None:
        return _("Only %(free)d free here (the rest is reserved): type %(free)d or less.") % {"free": free}
    texts = {
        "unknown_code": _("Unknown code: %(code)s"),
        "location_not_found": _("Unknown location: %(code)s"),
        "empty_location": _("Location %(code)s holds nothing to move."),
        "not_at_location": _("%(code)s is not in this location."),
        "lot_required": _("Several lots of this item are here: scan the label with the lot."),
        "lot_not_here": _("%(code)s is not at this location in the books: scan the label with its lot to count it."),
        "same_location": _("That is the location you are taking from: scan where it goes."),
        "insufficient_stock": _("Not that many free units here (some may be reserved)."),
        "location_blocked": _("Location %(code)s is blocked: scan another one."),
        "invalid_quantity": _("The quantity must be a whole number above zero."),
        "not_in_count": _("%(code)s is not the SKU of this count."),
        "count_closed": _("This count is closed: start another one."),
    }
    if exc.code == "unknown_code" and exc.details.get("reason") in ("check_digit", "date", "format"):
        return exc.message  # a misread or misprinted label: the catalogue's message says which
    text = texts.get(exc.code)
    return exc.message if text is None else text % {"code": code}


def _item_at(contents: list[StockQuantity], code: str) -> StockQuantity:
    """The stock row among a location's ``contents`` that a scanned item code designates, across its merchants."""
    rows = [row for row in contents if row.on_hand > 0]
    if not rows:
        raise ValidationFailed("Nothing to move here.", code="empty_location")
    try:
        # One query for every merchant with stock here; staff screen, so a code of another merchant is told apart.
        results = scan_resolve_among(
            merchant_ids=sorted({row.merchant_id for row in rows}), code=code, tell_other_merchants=True
        )
    except NotFound as exc:
        if exc.details.get("reason") == "other_merchant":
            raise NotFound("Not in this location.", code="not_at_location") from exc
        raise
    matches: list[StockQuantity] = []
    for scanned in results:
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


def _free(row: StockQuantity | None) -> int | None:
    """The units of ``row`` free to move now (read again: the screen's number may be a scan old), or None."""
    if row is None:
        return None
    fresh = StockQuantity.objects.filter(pk=row.pk).first()
    return 0 if fresh is None else max(fresh.free, 0)


def _quantity(request: HttpRequest) -> int:
    raw = (request.POST.get("quantity") or "1").strip()
    if not raw.isdecimal() or int(raw) < 1:
        raise ValidationFailed("Bad quantity.", code="invalid_quantity")
    return int(raw)


@operator_required
@require_http_methods(["GET", "POST"])
def move_home(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and request.POST.get("site_id", "").isdecimal():
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
    contents: list[StockQuantity] | None = None  # the from location's contents, read once per request
    try:
        if site is None:
            raise NotFound("No site.", code="location_not_found")
        if state.step == "from":
            state.from_location = location_get_by_code(site=site, code=code)
            contents = selectors.location_contents(location=state.from_location)
            if not any(row.on_hand > 0 for row in contents):
                raise ValidationFailed("Nothing to move here.", code="empty_location")
            context.update(result="ok", message=_("From %(location)s: now scan the item.") % {"location": code})
        elif state.step == "item":
            assert state.from_location is not None
            contents = selectors.location_contents(location=state.from_location)
            state.row = _item_at(contents, code)
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
        context.update(result="error", message=_error_text(exc, code, free=_free(state.row)))
    if state.from_location is None:
        contents = []
    elif contents is None:
        contents = selectors.location_contents(location=state.from_location)
    context.update(state=state, contents=[row for row in contents if row.on_hand > 0], site=site)
    return render(request, "inventory/_move_panel.html", context)


# --- Cycle counts ----------------------------------------------------------------------------------------------


def _count_tasks_to_do(request: HttpRequest, site: Site | None) -> list[CountTask]:
    if site is None:
        return []
    return list(
        selectors.count_task_list(
            scope=staff_scope(request.user), site_id=site.pk, status=sorted(COUNT_TASK_COUNTABLE)
        ).order_by("pk")[:30]
    )


def _count_home(request: HttpRequest, site: Site | None, **context: Any) -> HttpResponse:
    return render(
        request,
        "inventory/count_home.html",
        {"screen": "count", "site": site, "sites": site_list(), "tasks": _count_tasks_to_do(request, site), **context},
    )


@operator_required
@require_http_methods(["GET", "POST"])
def count_home(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and request.POST.get("site_id", "").isdecimal():
        request.session["site_id"] = int(request.POST["site_id"])
    return _count_home(request, _site(request))


@operator_required
@require_POST
def count_start(request: HttpRequest) -> HttpResponse:
    """A scanned location: carry on with its count in progress, or start a blind count of it."""
    code = request.POST.get("code", "").strip()
    site = _site(request)
    try:
        if site is None:
            raise NotFound("No site.", code="location_not_found")
        location = location_get_by_code(site=site, code=code)
        task = (
            selectors.count_task_list(
                scope=staff_scope(request.user), location_id=location.pk, status=sorted(COUNT_TASK_COUNTABLE)
            )
            .order_by("pk")
            .first()
        )
        if task is None:
            task = services.count_task_create(location=location, actor=request.user)[0]
    except QuaiError as exc:
        text = {"location_not_found": _("Unknown location: %(code)s") % {"code": code}}.get(exc.code, exc.message)
        return _count_home(request, site, result="error", message=text, code=code)
    return redirect(f"{reverse('inventory_ops:count_task', args=[task.pk])}?started=1")


def _count_task_or_404(request: HttpRequest, count_task_id: int) -> CountTask:
    return selectors.count_task_get(scope=staff_scope(request.user), count_task_id=count_task_id)


def _sku_known_at(task: CountTask, sku_id: object) -> bool:
    """Whether the books or this count already hold ``sku_id`` at the counted location."""
    if not isinstance(sku_id, int):
        return True  # nothing to tell: keep the service's own answer
    held = any(row.sku_id == sku_id and row.on_hand > 0 for row in selectors.location_contents(location=task.location))
    return held or task.lines.filter(sku_id=sku_id).exists()


def _count_lines(task: CountTask) -> list[dict[str, Any]]:
    """What the counter sees: what was counted, plus the books' numbers only when the count is not blind."""
    expected = {} if task.blind else selectors.count_expected(task=task)
    lines = []
    seen = set()
    for line in task.lines.select_related("sku").order_by("sku__code", "lot", "pk"):
        key = (line.sku_id, line.lot, line.expiry, line.status)
        seen.add(key)
        lines.append(
            {
                "line": line,
                "sku": line.sku,
                "lot": line.lot,
                "expiry": line.expiry,
                "counted": line.counted_quantity,
                "expected": expected.get(key),
            }
        )
    if not task.blind and expected:
        # The books of a location hold any merchant's SKUs; the count task was read inside the screen's scope.
        in_books = Scope.system("the SKUs a count task's books name")
        skus = {sku.pk: sku for sku in sku_list(scope=in_books).filter(pk__in={key[0] for key in expected})}
        for key, quantity in sorted(expected.items(), key=lambda item: (skus[item[0][0]].code, item[0][1])):
            if key not in seen:
                lines.append(
                    {
                        "line": None,
                        "sku": skus[key[0]],
                        "lot": key[1],
                        "expiry": key[2],
                        "counted": 0,
                        "expected": quantity,
                    }
                )
    return lines


def _count_panel(request: HttpRequest, task: CountTask, **context: Any) -> HttpResponse:
    return render(
        request,
        "inventory/_count_panel.html",
        {"task": task, "lines": _count_lines(task), "screen": "count", **context},
    )


@operator_required
@require_http_methods(["GET"])
def count_task(request: HttpRequest, count_task_id: int) -> HttpResponse:
    try:
        task = _count_task_or_404(request, count_task_id)
    except NotFound:
        return _count_home(request, _site(request), result="error", message=_("This count no longer exists."))
    if task.status not in COUNT_TASK_COUNTABLE:
        return redirect("inventory_ops:count_result", count_task_id=task.pk)
    context: dict[str, Any] = {}
    if request.GET.get("started"):
        context.update(
            result="ok",
            message=_("Counting %(location)s: scan every item.") % {"location": task.location.code},
            detail=_("Type the quantity first for a case. Scan the location again to finish."),
        )
    return render(
        request,
        "inventory/count_task.html",
        {"task": task, "lines": _count_lines(task), "screen": "count", **context},
    )


def _count_finish(request: HttpRequest, task: CountTask) -> HttpResponse:
    """Submit, then show the outcome (after a redirect, so a reload never submits twice)."""
    services.count_submit(task=task, actor=request.user)
    url = reverse("inventory_ops:count_result", args=[task.pk])
    if request.headers.get("HX-Request"):
        response = HttpResponse("")
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@operator_required
@require_POST
def count_scan(request: HttpRequest, count_task_id: int) -> HttpResponse:
    code = request.POST.get("code", "").strip()
    try:
        task = _count_task_or_404(request, count_task_id)
    except NotFound as exc:
        return HttpResponse(exc.message, status=404)
    try:
        if code and code.casefold() == task.location.code.casefold():
            return _count_finish(request, task)
        quantity = _quantity(request)
        line = services.count_scan(task=task, code=code, quantity=quantity, actor=request.user)
        lot = f" · {_('lot')} {line.lot}" if line.lot else ""
        context: dict[str, Any] = {
            "result": "ok",
            "message": _("+%(quantity)d %(sku)s%(lot)s") % {"quantity": quantity, "sku": line.sku.code, "lot": lot},
            "detail": _("Counted so far: %(total)d") % {"total": line.counted_quantity},
            "line_id": line.pk,
        }
    except QuaiError as exc:
        if exc.code == "lot_required" and not _sku_known_at(task, exc.details.get("sku_id")):
            # The service asks for the lot because it cannot guess it; with none of the item here in the books,
            # "several lots are here" would be untrue: say the item is not at this location.
            exc = ValidationFailed(exc.message, code="lot_not_here", details=exc.details)
        context = {"result": "error", "message": _error_text(exc, code), "code": code}
    task = _count_task_or_404(request, count_task_id)
    return _count_panel(request, task, **context)


@operator_required
@require_POST
def count_finish(request: HttpRequest, count_task_id: int) -> HttpResponse:
    try:
        task = _count_task_or_404(request, count_task_id)
        return _count_finish(request, task)
    except QuaiError as exc:
        return _count_home(request, _site(request), result="error", message=exc.message)


@operator_required
@require_http_methods(["GET"])
def count_result(request: HttpRequest, count_task_id: int) -> HttpResponse:
    try:
        task = _count_task_or_404(request, count_task_id)
    except NotFound:
        return _count_home(request, _site(request), result="error", message=_("This count no longer exists."))
    if task.status == CountTaskStatus.APPLIED:
        changed = sum(1 for line in task.lines.all() if line.variance)
        context = {
            "result": "ok",
            "message": _("Count of %(location)s applied.") % {"location": task.location.code},
            "detail": _("%(changed)d line(s) corrected in the stock.") % {"changed": changed}
            if changed
            else _("The stock matched the count."),
        }
    elif task.status in (CountTaskStatus.SUBMITTED, CountTaskStatus.APPROVED):
        context = {
            "result": "warn",
            "message": _("Count of %(location)s sent to a supervisor.") % {"location": task.location.code},
            "detail": _("The difference is above the tolerance: a supervisor approves it or asks for a recount."),
        }
    elif task.status in COUNT_TASK_COUNTABLE:
        return redirect("inventory_ops:count_task", count_task_id=task.pk)
    else:
        context = {"result": "warn", "message": _("This count was cancelled.")}
    return render(
        request,
        "inventory/count_result.html",
        {"task": task, "lines": _count_lines(task), "screen": "count", **context},
    )
