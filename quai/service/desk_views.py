"""The returns desk (/ops/service/returns/): a handheld or bench screen, scanner as keyboard, htmx.

Scan a parcel (RMA number, order number or tracking number), then each unit (into the site's returns zone); grade
the unit with one big button (A resell, B repair, C destroy), with a note or a photo; scan the storage place of a
unit graded A. "Parcel done" finishes a parcel that came back short. Every write is one service call of
``quai.service.services.returns_desk``; a refusal is shown in red with its reason and nothing is written.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from quai.core.errors import NotFound, QuaiError
from quai.service import domain, selectors, services
from quai.service.models import ReturnGrade, ReturnUnit, ReturnUnitState, Rma
from quai.tenants.access import staff_role_required, staff_scope

DESK_GROUPS = ("admin", "supervisor", "receiver", "agent")
SITE_KEY = "service.returns_desk.site"
RMA_KEY = "service.returns_desk.rma"

desk_required = staff_role_required(DESK_GROUPS, gettext_lazy("This screen is for the returns desk."))


def _site(request: HttpRequest) -> Any:
    sites = selectors.desk_sites()
    wanted = request.GET.get("site") or request.session.get(SITE_KEY)
    site = sites.filter(code=wanted).first() if wanted else None
    site = site or sites.first()
    if site is not None:
        request.session[SITE_KEY] = site.code
    return site


def _rma(request: HttpRequest) -> Rma | None:
    rma_id = request.session.get(RMA_KEY)
    if not rma_id:
        return None
    return Rma.objects.within(staff_scope(request.user)).filter(pk=rma_id).select_related("order").first()


def _context(request: HttpRequest, *, feedback: dict[str, str] | None = None) -> dict[str, Any]:
    site = _site(request)
    rma = _rma(request)
    scope = staff_scope(request.user)
    lines, units, to_grade = [], [], None
    if rma is not None:
        lines = list(rma.lines.annotate(received=Count("units")).order_by("id"))
        units = list(rma.units.select_related("sku", "put_at", "restock_to").order_by("-id"))
        to_grade = next((unit for unit in units if unit.state == ReturnUnitState.RECEIVED), None)
    to_restock = (
        list(
            ReturnUnit.objects.within(scope)
            .filter(state=ReturnUnitState.TO_RESTOCK, location__site=site)
            .select_related("sku", "restock_to", "rma")
            .order_by("id")[:50]
        )
        if site
        else []
    )
    return {
        "site": site,
        "rma": rma,
        "lines": lines,
        "units": units,
        "to_grade": to_grade,
        "to_restock": to_restock,
        "grades": ReturnGrade.choices,
        "feedback": feedback or {},
        "screen": "returns",
    }


def _answer(request: HttpRequest, feedback: dict[str, str]) -> HttpResponse:
    if request.headers.get("HX-Request") == "true":
        return render(request, "service/_desk_panel.html", _context(request, feedback=feedback))
    return redirect(reverse("service_ops:returns_desk"))


@desk_required
@require_http_methods(["GET"])
def desk(request: HttpRequest) -> HttpResponse:
    return render(request, "service/returns_desk.html", _context(request))


def _scan(request: HttpRequest, code: str) -> dict[str, str]:
    """A parcel's code opens that parcel; anything else, with a parcel open, is a unit of it."""
    scope = staff_scope(request.user)
    rma = _rma(request)
    site = _site(request)
    if rma is None or domain.rma_reference_id(code) is not None:
        found = services.desk_rma_find(scope=scope, code=code)
        request.session[RMA_KEY] = found.pk
        return {"result": "ok", "message": _("Return %(rma)s: scan each unit.") % {"rma": found.reference}}
    location = services.desk_location(site_id=site.pk, merchant_id=rma.merchant_id)
    if location is None:
        raise NotFound(_("This site has no open returns zone."), code="returns_zone_missing")
    try:
        unit = services.return_unit_receive(
            scope=scope, rma_id=rma.pk, code=code, location=location, actor=request.user
        )
    except NotFound as unknown:
        # Not an item: maybe the next parcel on the bench (its order or tracking number).
        try:
            found = services.desk_rma_find(scope=scope, code=code)
        except NotFound:
            raise unknown from None
        request.session[RMA_KEY] = found.pk
        return {"result": "ok", "message": _("Return %(rma)s: scan each unit.") % {"rma": found.reference}}
    return {
        "result": "ok",
        "message": _("%(sku)s received into %(place)s: grade it.") % {"sku": unit.sku.code, "place": location.code},
    }


@desk_required
@require_POST
def desk_post(request: HttpRequest, what: str) -> HttpResponse:
    scope = staff_scope(request.user)
    data = request.POST
    code = data.get("code", "").strip()[:200]
    try:
        if _site(request) is None:
            raise NotFound(_("No site has a returns zone."), code="returns_zone_missing")
        if what == "scan":
            feedback = _scan(request, code)
        elif what == "grade":
            photo = request.FILES.get("photo")
            unit = services.return_unit_grade(
                scope=scope,
                unit_id=int(data.get("unit_id") or 0),
                grade=data.get("grade", ""),
                note=data.get("note", ""),
                photo=photo.read() if photo else None,
                photo_type=(photo.content_type or "") if photo else "",
                actor=request.user,
            )
            if unit.state == ReturnUnitState.TO_RESTOCK:
                where = unit.restock_to.code if unit.restock_to else _("a storage place")
                message = _("Graded A: put it back in %(place)s and scan the place.") % {"place": where}
            else:
                message = _("Graded %(grade)s: it went to %(place)s.") % {"grade": unit.grade, "place": unit.put_at}
            feedback = {"result": "ok", "message": message}
        elif what == "restock":
            unit = services.return_unit_restock(
                scope=scope, unit_id=int(data.get("unit_id") or 0), location_code=code, actor=request.user
            )
            feedback = {
                "result": "ok",
                "message": _("%(sku)s is back in %(place)s, sellable.") % {"sku": unit.sku.code, "place": unit.put_at},
            }
        elif what == "done":
            rma = _rma(request)
            if rma is None:
                raise NotFound(_("Scan a parcel first."), code="rma_not_found")
            services.return_complete(scope=scope, rma_id=rma.pk, actor=request.user)
            request.session.pop(RMA_KEY, None)
            feedback = {"result": "ok", "message": _("Return %(rma)s done.") % {"rma": rma.reference}}
        elif what == "next":
            request.session.pop(RMA_KEY, None)
            feedback = {}
        else:
            raise NotFound(_("Unknown desk action."), code="not_found")
    except QuaiError as refused:
        feedback = {"result": "error", "message": refused.message, "code": code}
    except ValueError:
        feedback = {"result": "error", "message": _("That is not a unit of this desk."), "code": code}
    rma = _rma(request)
    if rma is not None and rma.status not in domain.RMA_OPEN and what != "restock":
        # A return completed by its last grade: the desk is ready for the next parcel.
        request.session.pop(RMA_KEY, None)
        if feedback.get("result") == "ok":
            feedback["message"] = f"{feedback['message']} " + _("Return %(rma)s done.") % {"rma": rma.reference}
    return _answer(request, feedback)
