"""The pack station (a desk with a scanner that types the code and Enter) and the truck-loading screen.

Pack station: scan a tote or an order; its items are listed; scan every unit (a wrong or extra one is refused in
red with the error beep); the suggested box is shown (take it with the button or scan another box's code); type
the weight (a mismatch blocks); print the label (PDF opened, or ZPL for a thermal printer) and the parcel closes.
A held or cancelled order is stopped with a red STOP panel at whichever step. Every step is one service call; the
screen keeps only the parcel's id in the form, so a reload or another station resumes the same parcel.

Truck: choose the carrier, scan each parcel (SSCC or tracking number) onto the truck; the parcels not scanned are
listed as missing; closing hands the loaded ones over and gives the manifest PDF.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods, require_POST

from quai.core.errors import NotFound, QuaiError, ValidationFailed
from quai.fulfillment.selectors import ToteContents
from quai.orders import domain as orders_domain
from quai.orders import selectors as orders_selectors
from quai.packing import selectors, services
from quai.packing.models import PACK_STATION_ROLES, Parcel, ParcelStatus
from quai.shipping import domain as shipping_domain
from quai.shipping import labels
from quai.shipping import selectors as shipping_selectors
from quai.shipping import services as shipping
from quai.shipping.http import label_response, manifest_response
from quai.tenants.access import staff_role_required, staff_scope

packers_only = staff_role_required(PACK_STATION_ROLES, _lazy("This screen is for packers."))
STOPS = ("order_on_hold", "order_cancelled")
STOPS_STATUSES = (orders_domain.ON_HOLD, orders_domain.CANCELLED)
LABEL_FORMATS = ("pdf", "zpl")


# --- Pack station ------------------------------------------------------------------------------------------------


# The pack station, a manifest, a shipment: other apps' records read through their selectors, named ``Any`` here
# (these screens import no other app's models).
def _station(request: HttpRequest) -> Any:
    stations = selectors.pack_stations(site=None)
    chosen = request.session.get("pack_station_id")
    return (stations.filter(pk=chosen).first() if chosen else None) or stations.first()


def _label_format(request: HttpRequest) -> str:
    value = request.session.get("label_format", "pdf")
    return value if value in LABEL_FORMATS else "pdf"


def _step(parcel: Parcel | None) -> str:
    if parcel is None:
        return "start"
    if parcel.status == ParcelStatus.CLOSED:
        return "done"
    items = list(parcel.items.all())
    if not all(i.done for i in items):
        return "items"
    if not parcel.packaging_code:
        return "box"
    if not parcel.weight_ok:
        return "weigh"
    return "label"


def _parcel_from_form(request: HttpRequest) -> Parcel | None:
    raw = request.POST.get("parcel_id", "")
    if not raw.isdecimal():
        return None
    parcel = selectors.parcel_get(scope=staff_scope(request.user), parcel_id=int(raw))
    return parcel if parcel.status in (ParcelStatus.OPEN, ParcelStatus.AWAITING_LABEL) else None


def _suggestion(parcel: Parcel) -> Any:
    try:
        return services.parcel_box_suggest(parcel=parcel)
    except QuaiError as exc:
        return exc


def _panel(request: HttpRequest, parcel: Parcel | None, context: dict[str, Any], *, full: bool = False) -> HttpResponse:
    if parcel is not None:
        parcel.refresh_from_db()
    step = _step(parcel)
    if step == "done":
        context.setdefault("closed", parcel)
        parcel, step = None, "start"
    closed = context.get("closed")
    if closed is not None:
        context["shipment"] = shipping_selectors.shipment_of_parcel(
            scope=staff_scope(request.user), parcel_id=closed.pk
        )
    items = list(parcel.items.all()) if parcel is not None else []
    context.update(
        parcel=parcel,
        step=step,
        items=items,
        scanned=sum(i.scanned for i in items),
        expected=sum(i.expected for i in items),
        suggestion=_suggestion(parcel) if step == "box" and parcel is not None else None,
        station=_station(request),
        label_format=_label_format(request),
        screen="pack",
    )
    if context.get("tote") is not None:
        tote: ToteContents = context["tote"]
        context["tote_orders"] = list(
            orders_selectors.order_list(scope=staff_scope(request.user))
            .filter(pk__in=tote.order_ids)
            .order_by("external_id")
        )
    template = "packing/pack.html" if full or not request.headers.get("HX-Request") else "packing/_pack_panel.html"
    return render(request, template, context)


@packers_only
@require_http_methods(["GET", "POST"])
def pack_home(request: HttpRequest) -> HttpResponse:
    """The station: which pack table and which label format (kept for the session), then scan."""
    if request.method == "POST":
        station_id = request.POST.get("station_id", "")
        if station_id.isdecimal() and selectors.pack_stations(site=None).filter(pk=int(station_id)).exists():
            request.session["pack_station_id"] = int(station_id)
        if request.POST.get("label_format") in LABEL_FORMATS:
            request.session["label_format"] = request.POST["label_format"]
        return redirect("packing_ops:pack_home")
    parcel: Parcel | None = None
    raw = request.GET.get("parcel", "")
    if raw.isdecimal():
        parcel = selectors.parcel_get(scope=staff_scope(request.user), parcel_id=int(raw))
    return _panel(request, parcel, {"stations": selectors.pack_stations(site=None)}, full=True)


def _open(request: HttpRequest, code: str, station: Any, tote_code: str = "") -> tuple[Parcel, dict[str, Any]]:
    parcel = services.parcel_open(code=code, station=station, actor=request.user, tote_code=tote_code)
    message = _("Order %(ref)s: scan every item.") % {"ref": parcel.order_reference}
    return parcel, {"result": "ok", "message": message}


def _start(request: HttpRequest, code: str, station: Any) -> tuple[Parcel | None, dict[str, Any]]:
    """A code scanned with no parcel open: an order opens its parcel; a tote of one order too; a tote of several
    lists them (then the order's reference, or its button, opens it)."""
    found = services.station_lookup(code)
    if not isinstance(found, ToteContents):  # an order
        tote_code = request.POST.get("tote_code", "").strip()
        if tote_code:
            try:
                in_tote = found.pk in services.tote_orders(scope=services.FLOOR, tote_code=tote_code).order_ids
            except NotFound:
                in_tote = False
            tote_code = tote_code if in_tote else ""
        return _open(request, found.external_id, station, tote_code)
    waiting = list(
        orders_selectors.order_list(scope=staff_scope(request.user))
        .filter(pk__in=found.order_ids, status__in=[*services.PACKABLE, *STOPS_STATUSES])
        .order_by("external_id")
    )
    if len(waiting) == 1:
        parcel, context = _open(request, waiting[0].external_id, station, found.tote_code)
        return parcel, context
    if not waiting:
        raise ValidationFailed(
            _("Tote %(code)s holds no order left to pack.") % {"code": found.tote_code},
            code="tote_nothing_to_pack",
            details={"tote_code": found.tote_code},
        )
    return None, {
        "result": "warn",
        "message": _("Tote %(code)s holds %(count)d orders: scan or choose the one you pack.")
        % {"code": found.tote_code, "count": len(waiting)},
        "tote": found,
    }


@packers_only
@require_POST
def pack_scan(request: HttpRequest) -> HttpResponse:
    """One scan (or button) at the station: what it does depends on the parcel's step."""
    code = request.POST.get("code", "").strip()
    action = request.POST.get("action", "scan")
    station = _station(request)
    context: dict[str, Any] = {"code": code}
    parcel: Parcel | None = None
    try:
        if station is None:
            raise NotFound(_("No pack station is set up: ask a supervisor."), code="location_not_found")
        parcel = _parcel_from_form(request)
        step = _step(parcel)
        if action == "reset":
            parcel = None
            context.update(result="warn", message=_("Parcel set aside: scan the next tote or order."))
        elif parcel is None:
            parcel, opened = _start(request, code, station)
            context.update(opened)
        elif step == "items":
            item = services.parcel_scan(parcel=parcel, code=code, actor=request.user)
            context.update(
                result="ok",
                message=_("%(sku)s: %(scanned)d of %(expected)d.")
                % {"sku": item.sku_code, "scanned": item.scanned, "expected": item.expected},
            )
        elif step in ("box", "weigh") and (action == "box" or not code.isdecimal()):
            parcel = services.parcel_box_set(parcel=parcel, packaging_code=code, actor=request.user)
            context.update(
                result="ok",
                message=_("Box %(box)s: weigh the parcel and type its weight in grams.") % {"box": code.upper()},
            )
        elif step == "weigh":
            parcel = services.parcel_weigh(parcel=parcel, weight_g=int(code), actor=request.user)
            context.update(result="ok", message=_("Weight OK: print the label."))
        elif step == "label":
            closed = services.parcel_close(parcel=parcel, actor=request.user, label_format=_label_format(request))
            context.update(
                result="ok",
                message=_("Parcel closed: label printed. Scan the next tote or order."),
                closed=closed,
            )
            parcel = None
        else:
            raise ValidationFailed(_("Type the weight in grams."), code="weight_invalid")
    except QuaiError as exc:
        context.update(result="error", message=exc.message, error_code=exc.code)
        if exc.code in STOPS:
            context.update(stop=True)
            parcel = None
        elif exc.code == "weight_mismatch":
            context.update(detail=_("Parcel blocked: open it, check every item, then weigh again."))
    return _panel(request, parcel, context)


@packers_only
@require_POST
def parcel_photo(request: HttpRequest, parcel_id: int) -> HttpResponse:
    """The station camera's photo of the open parcel (sent by packing.js as the request body)."""
    parcel = selectors.parcel_get(scope=staff_scope(request.user), parcel_id=parcel_id)
    try:
        services.parcel_photo_set(
            parcel=parcel, content=request.body, content_type=request.content_type or "application/octet-stream"
        )
    except QuaiError as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    return HttpResponse(_("Photo kept with the parcel."), content_type="text/plain; charset=utf-8")


@packers_only
def parcel_photo_view(request: HttpRequest, parcel_id: int) -> HttpResponse:
    parcel = selectors.parcel_get(scope=staff_scope(request.user), parcel_id=parcel_id)
    if not parcel.photo:
        return HttpResponse(status=404)
    return HttpResponse(bytes(parcel.photo), content_type=parcel.photo_type or "image/jpeg")


def _shipment_of(request: HttpRequest, parcel_id: int) -> Any:
    scope = staff_scope(request.user)
    parcel = selectors.parcel_get(scope=scope, parcel_id=parcel_id)
    shipment = shipping_selectors.shipment_of_parcel(scope=scope, parcel_id=parcel.pk)
    if shipment is None:
        raise NotFound(_("Shipment not found."), code="shipment_not_found")
    return shipment


@packers_only
def parcel_label(request: HttpRequest, parcel_id: int) -> HttpResponse:
    """The carrier's label: a PDF the browser opens to print, or ZPL for a thermal printer."""
    return label_response(_shipment_of(request, parcel_id))


@packers_only
def parcel_slip(request: HttpRequest, parcel_id: int) -> HttpResponse:
    """The packing slip that goes in the box."""
    scope = staff_scope(request.user)
    parcel = selectors.parcel_get(scope=scope, parcel_id=parcel_id)
    order = orders_selectors.order_get(scope=scope, order_id=parcel.order_id)
    shipment = shipping_selectors.shipment_of_parcel(scope=scope, parcel_id=parcel.pk)
    sender = shipping.carrier_sender(shipment.carrier if shipment else shipping.sandbox_carrier_ensure())
    pdf = labels.packing_slip_pdf(
        reference=order.external_id,
        recipient=services.order_recipient(order),
        sender=sender,
        lines=[labels.SlipLine(i.sku_code, i.name, i.expected, i.lot) for i in parcel.items.all()],
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="slip-{parcel.pk}.pdf"'
    return response


# --- Truck loading -----------------------------------------------------------------------------------------------


@packers_only
@require_http_methods(["GET", "POST"])
def truck_home(request: HttpRequest) -> HttpResponse:
    """The carriers with parcels waiting, and the manifests closed lately. Choosing a carrier opens its manifest."""
    if request.method == "POST":
        carrier = shipping.carrier_get(code=request.POST.get("carrier", ""))
        manifest = shipping.manifest_open(carrier=carrier, actor=request.user)
        return redirect("packing_ops:truck_manifest", manifest_id=manifest.pk)
    waiting = shipping_selectors.carrier_waiting_counts(scope=staff_scope(request.user))
    carriers = [(carrier, waiting.get(carrier.pk, 0)) for carrier in shipping_selectors.carrier_list()]
    closed = shipping_selectors.manifest_list(status=shipping_domain.MANIFEST_CLOSED)[:10]
    return render(request, "packing/truck_home.html", {"carriers": carriers, "closed": closed, "screen": "truck"})


def _truck(request: HttpRequest, manifest: Any, context: dict[str, Any]) -> HttpResponse:
    shipments = list(shipping_selectors.manifest_shipments(scope=staff_scope(request.user), manifest=manifest))
    loaded = [s for s in shipments if s.loaded_at is not None]
    context.update(
        manifest=manifest,
        shipments=shipments,
        loaded_count=len(loaded),
        missing=[s for s in shipments if s.loaded_at is None]
        if manifest.status == shipping_domain.MANIFEST_OPEN
        else [],
        screen="truck",
    )
    template = "packing/_truck_panel.html" if request.headers.get("HX-Request") else "packing/truck.html"
    return render(request, template, context)


@packers_only
def truck_manifest(request: HttpRequest, manifest_id: int) -> HttpResponse:
    manifest = shipping_selectors.manifest_get(manifest_id=manifest_id)
    if manifest.status == shipping_domain.MANIFEST_OPEN:
        manifest = shipping.manifest_open(carrier=manifest.carrier, actor=request.user)  # parcels labelled since
    return _truck(request, manifest, {})


@packers_only
@require_POST
def truck_action(request: HttpRequest, manifest_id: int) -> HttpResponse:
    """A parcel scanned onto the truck, or the manifest closed."""
    manifest = shipping_selectors.manifest_get(manifest_id=manifest_id)
    code = request.POST.get("code", "").strip()
    context: dict[str, Any] = {"code": code}
    try:
        if request.POST.get("action") == "close":
            manifest = shipping.manifest_close(manifest=manifest, actor=request.user)
            context.update(
                result="warn" if manifest.missing else "ok",
                message=_("Manifest closed: %(count)d parcel(s) handed over.")
                % {
                    "count": shipping_selectors.manifest_shipments(
                        scope=staff_scope(request.user), manifest=manifest
                    ).count()
                },
                detail=(
                    _("%(count)d parcel(s) missing: they wait for the next truck.") % {"count": len(manifest.missing)}
                    if manifest.missing
                    else ""
                ),
            )
        else:
            loaded_before = set(
                shipping_selectors.manifest_shipments(scope=staff_scope(request.user), manifest=manifest)
                .filter(loaded_at__isnull=False)
                .values_list("pk", flat=True)
            )
            shipment = shipping.manifest_scan(manifest=manifest, code=code, actor=request.user)
            if shipment.pk in loaded_before:
                # Scanned twice: nothing new on the truck; said so, or a forgotten parcel would look loaded.
                context.update(
                    result="warn",
                    message=_("Already loaded: %(ref)s (%(tracking)s) is already on this truck.")
                    % {"ref": shipment.order_reference, "tracking": shipment.tracking_number},
                )
            else:
                context.update(
                    result="ok",
                    message=_("Loaded: %(ref)s (%(tracking)s).")
                    % {"ref": shipment.order_reference, "tracking": shipment.tracking_number},
                )
    except QuaiError as exc:
        context.update(result="error", message=exc.message)
    manifest.refresh_from_db()
    return _truck(request, manifest, context)


@packers_only
def manifest_document(request: HttpRequest, manifest_id: int) -> HttpResponse:
    manifest = shipping_selectors.manifest_get(manifest_id=manifest_id)
    if not manifest.document:
        return HttpResponse(status=404)
    return manifest_response(manifest)
