"""Documents of a parcel: the 10×15 cm shipping label (PDF with reportlab, and ZPL for thermal printers), the
packing slip (A4 PDF), the CN23 customs data, and the manifest handed to the driver.

The label carries the addresses, the carrier's tracking number as a Code 128 barcode and the SSCC as a GS1-128
barcode (FNC1 in first position, AI 00; ``domain.gs1_128_data``), per the GS1 logistic label layout
(../shared/reference/INTEGRATIONS.md §5.4–5.5). reportlab's ``Code128`` takes FNC1 as ``\\xf1`` in its input
(reportlab.graphics.barcode.code128 docstring); ZPL's ``^BC`` takes it as ``>;>8`` (subset C, then FNC1).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import A4
from reportlab.lib.rl_accel import fp_str
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from reportlab.pdfgen.canvas import PATH_OPS

from quai.shipping import domain
from quai.shipping.carriers.base import Address, CustomsArticle

LABEL_SIZE = (100 * mm, 150 * mm)


@dataclass(frozen=True)
class LabelData:
    sscc: str
    tracking_number: str
    carrier_name: str
    service: str
    sender: Address
    recipient: Address
    weight_g: int
    reference: str
    pickup_point_id: str = ""


@dataclass(frozen=True)
class SlipLine:
    sku_code: str
    name: str
    quantity: int
    lot: str = ""


@dataclass(frozen=True)
class ManifestLine:
    sscc: str
    tracking_number: str
    reference: str
    weight_g: int
    loaded: bool


@dataclass(frozen=True)
class ManifestData:
    number: str
    carrier_name: str
    closed_at: str
    site: str
    lines: Sequence[ManifestLine] = field(default_factory=tuple)


@functools.lru_cache(maxsize=4096)
def _number(value: float) -> str:
    """reportlab's ``fp_str`` of one number, kept: it is pure, and a label's bars stand at the same few hundred
    positions and widths from one label to the next (its pure-Python form cost a third of a label)."""
    return str(fp_str(value))


class _Code128(Code128):
    """reportlab's ``Code128``, each bar written as ``Canvas.rect(x, y, w, h, stroke=0, fill=1)`` writes it (the
    same operators, so the same bytes), its numbers formatted once per process by ``_number``."""

    def rect(self, x: float, y: float, w: float, h: float) -> None:
        canv = self.canv
        canv._code.append(f"n {_number(x)} {_number(y)} {_number(w)} {_number(h)} re " + PATH_OPS[0, 1, canv._fillMode])


def _address_block(address: Address) -> list[str]:
    lines = [address.name, address.company, address.line1, address.line2, f"{address.postcode} {address.city}"]
    lines.append(address.country)
    return [domain.unaccent(line).upper() for line in lines if line.strip()]


def label_pdf(data: LabelData) -> bytes:
    """One 10×15 cm page: sender, recipient, carrier barcode, SSCC GS1-128."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LABEL_SIZE, pageCompression=0)
    draw_label(pdf, data)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def labels_pdf(items: Sequence[LabelData]) -> bytes:
    """Several labels in one document, one page each (a wave's labels sent to the printer at once)."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=LABEL_SIZE, pageCompression=0)
    for data in items:
        draw_label(pdf, data)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def draw_label(pdf: canvas.Canvas, data: LabelData) -> None:
    width, height = LABEL_SIZE
    margin = 4 * mm
    pdf.setLineWidth(0.8)
    # Sender (small, top left) and carrier/service (top right).
    pdf.setFont("Helvetica", 6.5)
    y = height - margin - 6
    pdf.drawString(margin, y, "FROM / EXPEDITEUR")
    for line in _address_block(data.sender)[:5]:
        y -= 7.5
        pdf.drawString(margin, y, line[:45])
    pdf.setFont("Helvetica-Bold", 12)
    pdf.drawRightString(width - margin, height - margin - 12, domain.unaccent(data.carrier_name).upper())
    pdf.setFont("Helvetica", 8)
    pdf.drawRightString(width - margin, height - margin - 22, data.service)
    pdf.drawRightString(width - margin, height - margin - 32, f"{domain.weight_kg_text(data.weight_g)} kg")
    top = height - 33 * mm
    pdf.line(margin, top, width - margin, top)
    # Recipient (large).
    pdf.setFont("Helvetica", 7)
    pdf.drawString(margin, top - 9, "TO / DESTINATAIRE")
    pdf.setFont("Helvetica-Bold", 11)
    y = top - 22
    for line in _address_block(data.recipient)[:6]:
        pdf.drawString(margin, y, line[:38])
        y -= 13
    if data.pickup_point_id:
        pdf.setFont("Helvetica-Bold", 9)
        pdf.drawString(margin, y, f"POINT RELAIS {data.pickup_point_id}")
    pdf.setFont("Helvetica", 7)
    pdf.drawRightString(width - margin, top - 9, f"REF {data.reference}")
    middle = 62 * mm
    pdf.line(margin, middle, width - margin, middle)
    # The carrier's tracking number.
    tracking = _Code128(data.tracking_number, barHeight=16 * mm, barWidth=0.3 * mm, humanReadable=True)
    tracking.drawOn(pdf, max(margin, (width - tracking.width) / 2), middle - 24 * mm)
    pdf.line(margin, 33 * mm, width - margin, 33 * mm)
    # The SSCC, GS1-128 (FNC1 + AI 00).
    pdf.setFont("Helvetica", 7)
    pdf.drawString(margin, 30 * mm, "SSCC")
    sscc = _Code128(domain.gs1_128_data(data.sscc), barHeight=17 * mm, barWidth=0.27 * mm, humanReadable=False)
    sscc.drawOn(pdf, max(margin, (width - sscc.width) / 2), 9 * mm)
    pdf.setFont("Helvetica-Bold", 9)
    pdf.drawCentredString(width / 2, 4 * mm, domain.sscc_human(data.sscc))


def _zpl_text(text: str) -> str:
    """Field data for ^FD: ASCII, and the characters ZPL reads as commands (^ and ~) removed."""
    return domain.unaccent(text).replace("^", "").replace("~", "")


def label_zpl(data: LabelData) -> str:
    """The same label in ZPL II for a 203 dpi printer, 4×6 in (812×1218 dots; INTEGRATIONS.md §5.5)."""
    out = ["^XA", "^CI28", "^PW812", "^LL1218", "^LH0,0"]
    out.append("^FO30,30^A0N,22,22^FDFROM / EXPEDITEUR^FS")
    y = 58
    for line in _address_block(data.sender)[:5]:
        out.append(f"^FO30,{y}^A0N,22,22^FD{_zpl_text(line)[:45]}^FS")
        y += 26
    out.append(f"^FO500,30^A0N,40,40^FD{_zpl_text(data.carrier_name).upper()[:14]}^FS")
    out.append(f"^FO500,80^A0N,26,26^FD{_zpl_text(data.service)[:20]}^FS")
    out.append(f"^FO500,112^A0N,26,26^FD{domain.weight_kg_text(data.weight_g)} kg^FS")
    out.append("^FO20,200^GB772,3,3^FS")
    out.append("^FO30,215^A0N,22,22^FDTO / DESTINATAIRE^FS")
    out.append(f"^FO500,215^A0N,22,22^FDREF {_zpl_text(data.reference)[:20]}^FS")
    y = 250
    for line in _address_block(data.recipient)[:6]:
        out.append(f"^FO30,{y}^A0N,40,36^FD{_zpl_text(line)[:36]}^FS")
        y += 46
    if data.pickup_point_id:
        out.append(f"^FO30,{y}^A0N,32,32^FDPOINT RELAIS {_zpl_text(data.pickup_point_id)}^FS")
    out.append("^FO20,690^GB772,3,3^FS")
    out.append(f"^FO60,720^BY3,3,130^BCN,130,Y,N,N^FD{_zpl_text(data.tracking_number)}^FS")
    out.append("^FO20,920^GB772,3,3^FS")
    out.append("^FO30,935^A0N,22,22^FDSSCC^FS")
    # GS1-128: start in subset C (>;), FNC1 (>8), then AI 00 and the 18 digits.
    out.append(f"^FO60,965^BY3,3,150^BCN,150,N,N,N^FD>;>800{data.sscc}^FS")
    out.append(f"^FO180,1130^A0N,34,34^FD{domain.sscc_human(data.sscc)}^FS")
    out.append("^PQ1")
    out.append("^XZ")
    return "\n".join(out) + "\n"


def packing_slip_pdf(*, reference: str, recipient: Address, sender: Address, lines: Sequence[SlipLine]) -> bytes:
    """An A4 packing slip: who it is from and for, and each SKU and quantity in the parcel."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    _width, height = A4
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(20 * mm, height - 25 * mm, f"Bon de livraison / Packing slip — {reference}")
    pdf.setFont("Helvetica", 10)
    y = height - 40 * mm
    for text in _address_block(sender):
        pdf.drawString(20 * mm, y, text)
        y -= 12
    y2 = height - 40 * mm
    for text in _address_block(recipient):
        pdf.drawString(110 * mm, y2, text)
        y2 -= 12
    y = min(y, y2) - 20
    pdf.setFont("Helvetica-Bold", 10)
    pdf.drawString(20 * mm, y, "SKU")
    pdf.drawString(60 * mm, y, "Article")
    pdf.drawString(150 * mm, y, "Lot")
    pdf.drawRightString(190 * mm, y, "Qté / Qty")
    pdf.setFont("Helvetica", 10)
    for line in lines:
        y -= 14
        if y < 20 * mm:
            pdf.showPage()
            pdf.setFont("Helvetica", 10)
            y = height - 20 * mm
        pdf.drawString(20 * mm, y, line.sku_code[:24])
        pdf.drawString(60 * mm, y, line.name[:48])
        pdf.drawString(150 * mm, y, line.lot[:16])
        pdf.drawRightString(190 * mm, y, str(line.quantity))
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def customs_required(*, origin_country: str, destination_country: str, destination_postcode: str) -> bool:
    """A CN23 goes with parcels leaving the EU's customs territory: export, and overseas France (DOM: postcodes
    97x/98x, outside the EU VAT area) even though they stay in France."""
    if destination_country != origin_country:
        return destination_country not in EU_COUNTRIES
    return origin_country == "FR" and destination_postcode[:2] in ("97", "98")


EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)


def cn23_data(
    *, articles: Sequence[CustomsArticle], reference: str, sender: Address, recipient: Address, shipping_cost: Decimal
) -> dict[str, object]:
    """The CN23 declaration as data (what the carrier's customs fields and the printed form take)."""
    missing = [a.description for a in articles if not a.hs_code or not a.origin_country]
    if missing:
        raise ValueError("HS code and country of origin are required for: " + ", ".join(missing))
    total = sum((Decimal(a.value) * a.quantity for a in articles), Decimal("0"))
    return {
        "reference": reference,
        "category": "sale_of_goods",
        "sender": {"name": sender.name, "country": sender.country},
        "recipient": {"name": recipient.name, "country": recipient.country, "postcode": recipient.postcode},
        "articles": [
            {
                "description": a.description,
                "quantity": a.quantity,
                "net_weight_g": a.weight_g,
                "value": a.value,
                "currency": a.currency,
                "hs_code": a.hs_code,
                "origin_country": a.origin_country,
            }
            for a in articles
        ],
        "total_value": str(total),
        "total_weight_g": sum(a.weight_g for a in articles),
        "shipping_cost": str(shipping_cost),
    }


def manifest_pdf(data: ManifestData) -> bytes:
    """The end-of-day handover: every parcel of the manifest, loaded or flagged missing, with a signature box."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    _width, height = A4
    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(20 * mm, height - 25 * mm, f"Manifeste / Manifest {data.number} — {data.carrier_name}")
    pdf.setFont("Helvetica", 10)
    pdf.drawString(20 * mm, height - 33 * mm, f"{data.site} · {data.closed_at}")
    loaded = [line for line in data.lines if line.loaded]
    missing = [line for line in data.lines if not line.loaded]
    pdf.drawString(
        20 * mm,
        height - 40 * mm,
        f"Colis remis / Parcels handed over: {len(loaded)} · "
        f"Poids / Weight: {domain.weight_kg_text(sum(line.weight_g for line in loaded))} kg · "
        f"Manquants / Missing: {len(missing)}",
    )
    y = height - 52 * mm
    pdf.setFont("Helvetica-Bold", 9)
    for x, title in ((20, "SSCC"), (70, "Suivi / Tracking"), (120, "Réf."), (160, "kg"), (175, "")):
        pdf.drawString(x * mm, y, title)
    pdf.setFont("Helvetica", 9)
    for line in [*loaded, *missing]:
        y -= 13
        if y < 40 * mm:
            pdf.showPage()
            pdf.setFont("Helvetica", 9)
            y = height - 20 * mm
        pdf.drawString(20 * mm, y, line.sscc)
        pdf.drawString(70 * mm, y, line.tracking_number)
        pdf.drawString(120 * mm, y, line.reference[:20])
        pdf.drawString(160 * mm, y, domain.weight_kg_text(line.weight_g))
        pdf.drawString(175 * mm, y, "OK" if line.loaded else "MANQUANT / MISSING")
    pdf.rect(20 * mm, 15 * mm, 80 * mm, 20 * mm)
    pdf.drawString(22 * mm, 31 * mm, "Signature chauffeur / Driver")
    pdf.rect(110 * mm, 15 * mm, 80 * mm, 20 * mm)
    pdf.drawString(112 * mm, 31 * mm, "Signature entrepôt / Warehouse")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
