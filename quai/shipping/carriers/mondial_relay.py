"""Mondial Relay through its documented WSI web service (SOAP 1.1 over HTTP POST), base URL configurable.

Each call and the document it follows (../shared/reference/INTEGRATIONS.md §5.2; method and element names checked
with the ``search`` tool against public clients: the ``WSI2_TracingColisDetaille`` answer's
``ret_WSI2_TracingColisDetaille`` schema (STAT, Libelle01, Relais_Libelle, Relais_Num, Libelle02,
Tracing/ret_WSI2_sub_TracingColisDetaille{Libelle, Date dd/mm/yy, Heure, Emplacement}), the WSI4 signed field
order, and the SOAPAction ``http://www.mondialrelay.fr/webservice/<method>``):

- every call carries ``Enseigne`` and ``Security`` = upper-case hex MD5 of the parameter values in the documented
  order followed by the private key (``domain.mondial_relay_security``); the orders are the constants below.
- pickup points: ``WSI4_PointRelais_Recherche`` → ``PointsRelais/PointRelais_Details{Num, LgAdr1..4, CP, Ville,
  Pays, Latitude, Longitude, Distance}``.
- shipment + label: ``WSI2_CreationEtiquette`` → ``STAT`` ("0" is OK), ``ExpeditionNum`` (8 digits),
  ``URL_Etiquette`` (a path on the carrier's site, fetched for the PDF, asked in 10x15).
- tracking: ``WSI2_TracingColisDetaille`` (STAT 80–83 are answers, others errors); labels folded by
  ``domain.mondial_relay_status``.
- the shopper's link: ``https://www.mondialrelay.fr/suivi-de-colis/?numeroExpedition=<n>``.

The WSI has neither a cancellation nor a day's close: an unused label is never handed over (and not billed), and
the handover document is our own manifest.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar
from xml.etree import ElementTree
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import httpx

from quai.shipping import domain
from quai.shipping.carriers.base import (
    Address,
    CarrierRefused,
    CarrierUnavailable,
    PickupPoint,
    ShipmentRequest,
    ShipmentResult,
    TrackingEvent,
)

WSI_URL = "https://api.mondialrelay.com/Web_Services.asmx"
SITE_URL = "https://www.mondialrelay.com"
NAMESPACE = "http://www.mondialrelay.fr/webservice/"

SEARCH_FIELDS = (
    "Enseigne",
    "Pays",
    "NumPointRelais",
    "Ville",
    "CP",
    "Latitude",
    "Longitude",
    "Taille",
    "Poids",
    "Action",
    "DelaiEnvoi",
    "RayonRecherche",
    "TypeActivite",
    "NombreResultats",
)
LABEL_FIELDS = (
    "Enseigne",
    "ModeCol",
    "ModeLiv",
    "NDossier",
    "NClient",
    "Expe_Langage",
    "Expe_Ad1",
    "Expe_Ad2",
    "Expe_Ad3",
    "Expe_Ad4",
    "Expe_Ville",
    "Expe_CP",
    "Expe_Pays",
    "Expe_Tel1",
    "Expe_Tel2",
    "Expe_Mail",
    "Dest_Langage",
    "Dest_Ad1",
    "Dest_Ad2",
    "Dest_Ad3",
    "Dest_Ad4",
    "Dest_Ville",
    "Dest_CP",
    "Dest_Pays",
    "Dest_Tel1",
    "Dest_Tel2",
    "Dest_Mail",
    "Poids",
    "Longueur",
    "Taille",
    "NbColis",
    "CRT_Valeur",
    "CRT_Devise",
    "Exp_Valeur",
    "Exp_Devise",
    "COL_Rel_Pays",
    "COL_Rel",
    "LIV_Rel_Pays",
    "LIV_Rel",
    "TAvisage",
    "TReprise",
    "Montage",
    "TRDV",
    "Assurance",
    "Instructions",
)
TRACE_FIELDS = ("Enseigne", "Expedition", "Langue")
TRACE_ANSWERS = frozenset({"80", "81", "82", "83"})
PARIS = ZoneInfo("Europe/Paris")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for child in element.iter():
        if _local(child.tag) == name:
            return child
    return None


def _text(element: ElementTree.Element | None, name: str) -> str:
    if element is None:
        return ""
    found = _find(element, name)
    return (found.text or "").strip() if found is not None else ""


class MondialRelayAdapter:
    code: ClassVar[str] = "mondial_relay"

    def __init__(
        self,
        *,
        enseigne: str = "BDTEST13",
        private_key: str = "PrivateK",
        wsi_url: str = WSI_URL,
        site_url: str = SITE_URL,
        timeout: float = 10.0,
        sender: Address | None = None,
    ) -> None:
        self.enseigne = enseigne
        self.private_key = private_key
        self.wsi_url = wsi_url
        self.site_url = site_url.rstrip("/")
        self.timeout = timeout
        self.sender = sender

    def signed(self, fields: Sequence[str], values: dict[str, str]) -> list[tuple[str, str]]:
        """The parameters in the documented order with their ``Security`` (public so tests can check the hash)."""
        ordered = [(name, values.get(name, "")) for name in fields]
        ordered.append(("Security", domain.mondial_relay_security([v for _n, v in ordered], self.private_key)))
        return ordered

    def _call(self, method: str, params: list[tuple[str, str]]) -> ElementTree.Element:
        body = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in params)
        envelope = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
            f'<soap:Body><{method} xmlns="{NAMESPACE}">{body}</{method}></soap:Body></soap:Envelope>'
        )
        try:
            response = httpx.post(
                self.wsi_url,
                content=envelope.encode("utf-8"),
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{NAMESPACE}{method}"'},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise CarrierUnavailable(
                f"Mondial Relay did not answer ({type(exc).__name__}).", details={"carrier": self.code}
            ) from exc
        if response.status_code >= 500:
            raise CarrierUnavailable(
                f"Mondial Relay answered {response.status_code}.",
                details={"carrier": self.code, "status": response.status_code},
            )
        try:
            root = ElementTree.fromstring(response.content)
        except ElementTree.ParseError as exc:
            raise CarrierRefused(
                "Mondial Relay answered something unreadable.", details={"carrier": self.code}
            ) from exc
        result = _find(root, f"{method}Result")
        if result is None:
            raise CarrierRefused(
                f"Mondial Relay answered without {method}Result (HTTP {response.status_code}).",
                details={"carrier": self.code},
            )
        return result

    def _refused(self, method: str, stat: str) -> CarrierRefused:
        return CarrierRefused(
            f"Mondial Relay refused {method} (STAT {stat}).", details={"carrier": self.code, "stat": stat}
        )

    def search_pickup_points(
        self, *, country: str, postcode: str, city: str = "", weight_g: int | None = None, limit: int = 10
    ) -> list[PickupPoint]:
        values = {
            "Enseigne": self.enseigne,
            "Pays": country,
            "Ville": city,
            "CP": postcode,
            "Poids": str(weight_g or ""),
            "Action": "24R",
            "DelaiEnvoi": "0",
            "NombreResultats": str(limit),
        }
        result = self._call("WSI4_PointRelais_Recherche", self.signed(SEARCH_FIELDS, values))
        stat = _text(result, "STAT")
        if stat != "0":
            raise self._refused("WSI4_PointRelais_Recherche", stat)
        points = []
        for detail in result.iter():
            if _local(detail.tag) != "PointRelais_Details":
                continue
            distance = _text(detail, "Distance")
            points.append(
                PickupPoint(
                    id=_text(detail, "Num"),
                    name=_text(detail, "LgAdr1"),
                    address=" ".join(filter(None, (_text(detail, "LgAdr3"), _text(detail, "LgAdr4")))),
                    postcode=_text(detail, "CP"),
                    city=_text(detail, "Ville"),
                    country=_text(detail, "Pays") or country,
                    latitude=_text(detail, "Latitude"),
                    longitude=_text(detail, "Longitude"),
                    distance_m=int(distance) if distance.isdecimal() else None,
                )
            )
        return points[:limit]

    def label_values(self, request: ShipmentRequest) -> dict[str, str]:
        """The ``WSI2_CreationEtiquette`` parameters for ``request`` (public so tests can read what is sent)."""
        sender = request.sender or self.sender
        if sender is None:
            raise CarrierRefused("Mondial Relay needs a sender address.", details={"carrier": self.code})

        def lines(address: Address) -> list[str]:
            street = domain.address_lines([address.line1, address.line2], width=32, count=2)
            return [
                domain.unaccent(address.name).upper()[:32],
                domain.unaccent(address.company).upper()[:32],
                *[*street, "", ""][:2],
            ]

        expe, dest = lines(sender), lines(request.recipient)
        relay = request.pickup_point_id
        return {
            "Enseigne": self.enseigne,
            "ModeCol": "CCC",
            "ModeLiv": request.service_code or ("24R" if relay else "HOM"),
            "NDossier": request.reference[:15],
            "NClient": "",
            "Expe_Langage": "FR",
            **{f"Expe_Ad{i + 1}": v for i, v in enumerate(expe)},
            "Expe_Ville": domain.unaccent(sender.city).upper()[:26],
            "Expe_CP": sender.postcode,
            "Expe_Pays": sender.country,
            "Expe_Tel1": re.sub(r"[^0-9+]", "", sender.phone),
            "Expe_Mail": sender.email,
            "Dest_Langage": "FR",
            **{f"Dest_Ad{i + 1}": v for i, v in enumerate(dest)},
            "Dest_Ville": domain.unaccent(request.recipient.city).upper()[:26],
            "Dest_CP": request.recipient.postcode,
            "Dest_Pays": request.recipient.country,
            "Dest_Tel1": re.sub(r"[^0-9+]", "", request.recipient.phone),
            "Dest_Mail": request.recipient.email,
            "Poids": str(max(request.weight_g, 15)),  # grams; the carrier's minimum is 15 g
            "Longueur": str(round(request.length_mm / 10)) if request.length_mm else "",
            "NbColis": "1",
            "CRT_Valeur": "0",
            "LIV_Rel_Pays": request.recipient.country if relay else "",
            "LIV_Rel": relay,
        }

    def create_shipment(self, request: ShipmentRequest) -> ShipmentResult:
        params = self.signed(LABEL_FIELDS, self.label_values(request))
        params.append(("Texte", ""))  # label text: outside the signature
        result = self._call("WSI2_CreationEtiquette", params)
        stat = _text(result, "STAT")
        if stat != "0":
            raise self._refused("WSI2_CreationEtiquette", stat)
        number = _text(result, "ExpeditionNum")
        path = _text(result, "URL_Etiquette").replace("format=A4", "format=10x15")
        try:
            label = httpx.get(f"{self.site_url}{path}", timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise CarrierUnavailable(
                "Mondial Relay's label could not be fetched.", details={"carrier": self.code}
            ) from exc
        if label.status_code >= 400 or not label.content:
            raise CarrierUnavailable(
                f"Mondial Relay's label answered {label.status_code}.", details={"carrier": self.code}
            )
        return ShipmentResult(tracking_number=number, label=label.content, label_format="pdf", carrier_ref=number)

    def cancel(self, tracking_number: str) -> bool:
        return True

    def close_day(self, tracking_numbers: Sequence[str]) -> bytes | None:
        return None

    def track(self, tracking_number: str) -> list[TrackingEvent]:
        values = {"Enseigne": self.enseigne, "Expedition": tracking_number, "Langue": "FR"}
        result = self._call("WSI2_TracingColisDetaille", self.signed(TRACE_FIELDS, values))
        stat = _text(result, "STAT")
        if stat not in TRACE_ANSWERS:
            raise self._refused("WSI2_TracingColisDetaille", stat)
        events = []
        for step in result.iter():
            if _local(step.tag) != "ret_WSI2_sub_TracingColisDetaille":
                continue
            label, day, hour = _text(step, "Libelle"), _text(step, "Date"), _text(step, "Heure")
            if not label or not day:
                continue  # the service pads its table with empty steps
            moment = datetime.strptime(f"{day} {hour or '00:00'}", "%d/%m/%y %H:%M").replace(tzinfo=PARIS)
            events.append(
                TrackingEvent(
                    occurred_at=moment,
                    carrier_code=label,
                    description=label,
                    status=domain.mondial_relay_status(label),
                    location=_text(step, "Emplacement"),
                )
            )
        return sorted(events, key=lambda e: e.occurred_at)

    def tracking_url(self, tracking_number: str) -> str:
        return f"https://www.mondialrelay.fr/suivi-de-colis/?numeroExpedition={tracking_number}"
