"""Operator screens for a handheld with a barcode scanner that types the code and Enter: receiving and putaway.

Each scan is an htmx POST that answers with a feedback fragment (``data-result="ok"`` or ``"error"``, which the page
turns into a colour and a beep) and out-of-band updates of the lists around it. Errors from services are shown in
the operator's language, keyed by their stable code.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from quai.core.errors import QuaiError
from quai.inbound import domain, selectors, services
from quai.inbound.models import Asn, AsnStatus, HandlingUnit, PutawayStatus, PutawayTask
from quai.tenants.access import staff_role_required, staff_scope

RECEIVER_GROUPS = ("admin", "supervisor", "receiver")


receiver_required = staff_role_required(RECEIVER_GROUPS, gettext_lazy("This screen is for warehouse receivers."))


def _error_text(exc: QuaiError, code: str) -> str:
    """The error in the operator's language (falls back to the service's own message)."""
    texts = {
        "unknown_code": _("Unknown code: %(code)s"),
        "asn_not_found": _("No open ASN or carton matches %(code)s."),
        "ambiguous_asn": _("Several merchants have an ASN %(code)s: scan one of its cartons (SSCC)."),
        "sku_not_on_asn": _("%(code)s is not on this ASN. Turn on “Not on ASN” and scan again to receive it."),
        "lot_not_tracked": _("This SKU takes no lot, but the label carries one: refused."),
        "lot_required": _("This SKU needs its lot: scan the GS1 label with the lot."),
        "expiry_required": _("This SKU needs its expiry date: scan the GS1 label with the date."),
        "expiry_in_past": _("Expiry date already past: refused."),
        "invalid_quantity": _("The quantity must be a whole number above zero."),
        "empty_scan": _("Scan a code."),
        "unknown_handling_unit": _("Carton or pallet %(code)s is not on this ASN."),
        "asn_not_receiving": _("This ASN is not being received."),
        "no_receiving_location": _("This site has no open receiving location."),
        "location_not_found": _("Location %(code)s does not exist."),
        "location_blocked": _("Location %(code)s is blocked: scan another one."),
        "location_full": _("Location %(code)s is full: scan another one."),
        "location_other_sku": _("Location %(code)s holds another SKU: scan another one."),
        "location_wrong_zone": _("Location %(code)s is not a putaway location for these goods."),
        "location_other_site": _("Location %(code)s is in another site."),
        "putaway_done": _("This putaway is already done."),
        "no_putaway_task": _("Nothing to put away for %(code)s."),
        "ambiguous_item": _("%(code)s is waiting for several merchants: scan the task label (PT…)."),
        "invalid_transition": _("This ASN cannot change to that state."),
    }
    text = texts.get(exc.code)
    if text is None:
        return exc.message
    return text % {"code": code}


def _hx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


# --- Receiving -----------------------------------------------------------------------------------------------------
def _session_unit_key(asn_id: int) -> str:
    return f"inbound.receiving.{asn_id}.handling_unit"


@receiver_required
@require_http_methods(["GET", "POST"])
def receiving_home(request: HttpRequest) -> HttpResponse:
    """Scan an ASN reference or an SSCC to open its receiving."""
    error = ""
    code = ""
    if request.method == "POST":
        code = request.POST.get("code", "").strip()
        try:
            started = services.receiving_start(code=code, actor=request.user)
        except QuaiError as exc:
            error = _error_text(exc, code)
        else:
            if started.handling_unit is not None:
                request.session[_session_unit_key(started.asn.pk)] = started.handling_unit.pk
            url = reverse("inbound:receiving_session", args=[started.asn.pk])
            if _hx(request):
                response = HttpResponse(status=204)
                response["HX-Redirect"] = url
                return response
            return redirect(url)
        if _hx(request):
            return render(request, "operator/_feedback.html", {"result": "error", "message": error, "code": code})
    open_asns = (
        Asn.objects.filter(status__in=(AsnStatus.ANNOUNCED, AsnStatus.RECEIVING))
        .select_related("merchant")
        .order_by("expected_at", "id")[:12]
    )
    return render(
        request,
        "inbound/receiving_home.html",
        {"open_asns": open_asns, "error": error, "code": code, "screen": "receiving"},
    )


def _receiving_context(request: HttpRequest, asn: Asn) -> dict[str, Any]:
    unit_id = request.session.get(_session_unit_key(asn.pk))
    unit = HandlingUnit.objects.filter(pk=unit_id, asn=asn).first() if unit_id else None
    lines = list(selectors.asn_lines(asn=asn))
    units = asn.handling_units.aggregate(total=Count("id"), received=Count("id", filter=Q(received_at__isnull=False)))
    return {
        "asn": asn,
        "lines": lines,
        "receipts": selectors.asn_recent_receipts(asn=asn),
        "handling_unit": unit,
        "units_total": units["total"],
        "units_received": units["received"],
        "screen": "receiving",
    }


@receiver_required
def receiving_session(request: HttpRequest, asn_id: int) -> HttpResponse:
    asn = get_object_or_404(Asn.objects.select_related("merchant", "receiving_location"), pk=asn_id)
    if asn.status == AsnStatus.CLOSED:
        return redirect("inbound:receiving_report", asn_id=asn.pk)
    return render(request, "inbound/receiving_session.html", _receiving_context(request, asn))


@receiver_required
@require_POST
def receiving_scan(request: HttpRequest, asn_id: int) -> HttpResponse:
    asn = get_object_or_404(Asn.objects.select_related("merchant", "receiving_location"), pk=asn_id)
    code = request.POST.get("code", "").strip()
    damaged = request.POST.get("damaged") == "on"
    unexpected = request.POST.get("unexpected") == "on"
    try:
        quantity = int(request.POST.get("quantity", "1") or "1")
    except ValueError:
        quantity = 0
    result, message, detail = "ok", "", ""
    unit_id = request.session.get(_session_unit_key(asn.pk))
    unit = HandlingUnit.objects.filter(pk=unit_id, asn=asn).first() if unit_id else None
    try:
        outcome = services.receiving_scan(
            asn=asn,
            code=code,
            quantity=quantity,
            damaged=damaged,
            unexpected=unexpected,
            handling_unit=unit,
            actor=request.user,
        )
    except QuaiError as exc:
        result, message = "error", _error_text(exc, code)
    else:
        if outcome.kind == "handling_unit" and outcome.handling_unit is not None:
            request.session[_session_unit_key(asn.pk)] = outcome.handling_unit.pk
            message = _("Now unpacking %(kind)s %(sscc)s") % {
                "kind": outcome.handling_unit.get_kind_display(),
                "sscc": outcome.handling_unit.sscc,
            }
        elif outcome.receipt is not None:
            receipt = outcome.receipt
            message = _("+%(quantity)s %(sku)s") % {"quantity": receipt.quantity, "sku": receipt.sku.code}
            detail = receipt.sku.name
            if receipt.lot:
                detail += " · " + _("lot %(lot)s") % {"lot": receipt.lot}
            if receipt.expiry:
                detail += " · " + _("exp. %(date)s") % {"date": receipt.expiry.isoformat()}
            if receipt.damaged:
                result = "warn"
                detail += " · " + _("DAMAGED → quarantine")
            line = outcome.line
            if line is not None and not line.unexpected and line.received_quantity > line.expected_quantity:
                # Received, and reported at the close; amber now, so a quantity typed wrong is seen at once.
                result = "warn"
                detail += " · " + _("More than the ASN: %(received)d received, %(expected)d expected.") % {
                    "received": line.received_quantity,
                    "expected": line.expected_quantity,
                }
            if outcome.lot_mismatch:
                result = "warn"
                message = _(
                    "Lot %(lot)s is not the announced lot (%(announced)s): received, reported as a difference."
                ) % {
                    "lot": receipt.lot,
                    "announced": ", ".join(outcome.announced_lots),
                }
                detail = (
                    _("+%(quantity)s %(sku)s") % {"quantity": receipt.quantity, "sku": receipt.sku.code}
                    + " · "
                    + detail
                )
    context = _receiving_context(request, asn)
    context.update({"result": result, "message": message, "detail": detail, "code": code, "oob": True})
    return render(request, "inbound/_receiving_scan.html", context)


def _preview(asn: Asn) -> list[dict[str, Any]]:
    lines = list(selectors.asn_lines(asn=asn))
    skus = {line.sku_id: line.sku for line in lines}
    found = domain.discrepancies(selectors.asn_counted_lines(lines=lines))
    return [
        {
            "sku": skus[d.sku_id],
            "kind": d.kind,
            "lot": d.lot,
            "expected_quantity": d.expected,
            "received_quantity": d.received,
            "damaged_quantity": d.damaged,
            "difference": d.difference,
        }
        for d in found
    ]


def _confirmed_by_tap(request: HttpRequest) -> bool:
    """The confirm form was sent by a tap on its button (``inbound/confirm.js``), not by a scan's Enter."""
    return request.POST.get("confirm") == "close" and request.POST.get("gesture") == "tap"


@receiver_required
@require_http_methods(["GET", "POST"])
def receiving_close(request: HttpRequest, asn_id: int) -> HttpResponse:
    """GET: what the report will say; POST by a tap on the confirm button: close receiving and send the report."""
    asn = get_object_or_404(Asn.objects.select_related("merchant"), pk=asn_id)
    if request.method == "POST" and not _confirmed_by_tap(request):
        # A scanner's keystrokes and Enter landed here (the scan field has the focus): closing an ASN takes a tap.
        code = request.POST.get("code", "").strip()
        message = _("Not closed: a scan never closes receiving. Tap the button to close, or Esc to keep scanning.")
        if _hx(request):
            return render(request, "operator/_feedback.html", {"result": "error", "message": message, "code": code})
        return render(
            request,
            "inbound/receiving_close.html",
            {"asn": asn, "discrepancies": _preview(asn), "error": message, "screen": "receiving"},
            status=409,
        )
    if request.method == "POST":
        try:
            services.receiving_close(asn=asn, actor=request.user)
        except QuaiError as exc:
            return render(
                request,
                "inbound/receiving_close.html",
                {"asn": asn, "discrepancies": _preview(asn), "error": _error_text(exc, asn.reference)},
                status=409,
            )
        request.session.pop(_session_unit_key(asn.pk), None)
        return redirect("inbound:receiving_report", asn_id=asn.pk)
    if asn.status == AsnStatus.CLOSED:
        return redirect("inbound:receiving_report", asn_id=asn.pk)
    return render(
        request,
        "inbound/receiving_close.html",
        {"asn": asn, "discrepancies": _preview(asn), "lines": selectors.asn_lines(asn=asn), "screen": "receiving"},
    )


@receiver_required
def receiving_report(request: HttpRequest, asn_id: int) -> HttpResponse:
    asn = get_object_or_404(Asn.objects.select_related("merchant"), pk=asn_id)
    report = getattr(asn, "discrepancy_report", None)
    if report is None:
        return redirect("inbound:receiving_session", asn_id=asn.pk)
    return render(
        request,
        "inbound/receiving_report.html",
        {
            "asn": asn,
            "report": report,
            "report_lines": report.lines.select_related("sku"),
            "putaway_count": asn.putaway_tasks.filter(status=PutawayStatus.OPEN).count(),
            "screen": "receiving",
        },
    )


# --- Putaway -------------------------------------------------------------------------------------------------------
def _putaway_context(request: HttpRequest, task: PutawayTask | None) -> dict[str, Any]:
    open_tasks = selectors.putaway_open_tasks(scope=staff_scope(request.user))
    return {
        "task": task,
        "open_tasks": list(open_tasks[:10]),
        "open_count": open_tasks.count(),
        "screen": "putaway",
    }


@receiver_required
def putaway_home(request: HttpRequest) -> HttpResponse:
    task = None
    task_id = request.GET.get("task")
    if task_id and task_id.isdecimal():
        task = PutawayTask.objects.filter(pk=int(task_id), status=PutawayStatus.OPEN).first()
        if task is not None:
            services.putaway_suggest(task=task)
            task.refresh_from_db()
    return render(request, "inbound/putaway.html", _putaway_context(request, task))


@receiver_required
@require_POST
def putaway_scan(request: HttpRequest) -> HttpResponse:
    """With no task chosen, a scan picks the task (item or task label); with one, a scan is the location."""
    code = request.POST.get("code", "").strip()
    task_id = request.POST.get("task", "")
    task = (
        PutawayTask.objects.select_related("from_location").filter(pk=int(task_id), status=PutawayStatus.OPEN).first()
        if task_id.isdecimal()
        else None
    )
    result, message, detail, done = "ok", "", "", None
    try:
        target = selectors.putaway_scan_target(scope=staff_scope(request.user), code=code, task=task)
        if target.location is not None and task is not None:
            done = services.putaway_confirm(task=task, location_code=target.location.code, actor=request.user)
            message = _("Put away: %(quantity)s × %(sku)s in %(location)s") % {
                "quantity": done.quantity,
                "sku": done.sku.code,
                "location": done.confirmed_location.code if done.confirmed_location else code,
            }
            if done.suggested_location_id and done.suggested_location_id != done.confirmed_location_id:
                detail = _("Another location than the suggested one: accepted, it fits.")
            task = None
        elif target.task is not None:
            task = target.task
            services.putaway_suggest(task=task)
            task.refresh_from_db()
            message = _("Task %(task)s: %(quantity)s × %(sku)s") % {
                "task": task.code,
                "quantity": task.quantity,
                "sku": task.sku.code,
            }
    except QuaiError as exc:
        result, message = "error", _error_text(exc, code.upper() if task is not None else code)
    context = _putaway_context(request, task)
    context.update({"result": result, "message": message, "detail": detail, "code": code, "done": done, "oob": True})
    return render(request, "inbound/_putaway_scan.html", context)
