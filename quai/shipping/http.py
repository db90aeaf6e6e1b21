"""The documents of shipping as HTTP answers, shared by the API and the operator screens."""

from __future__ import annotations

from django.http import HttpResponse

from quai.shipping.models import Manifest, Shipment


def label_response(shipment: Shipment) -> HttpResponse:
    """The carrier's label: a PDF the browser opens to print, or ZPL downloaded for a thermal printer."""
    if shipment.label_format == "zpl":
        response = HttpResponse(bytes(shipment.label), content_type="application/zpl; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{shipment.sscc}.zpl"'
        return response
    response = HttpResponse(bytes(shipment.label), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{shipment.sscc}.pdf"'
    return response


def manifest_response(manifest: Manifest) -> HttpResponse:
    response = HttpResponse(bytes(manifest.document or b""), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{manifest.number}.pdf"'
    return response
