"""Colissimo (La Poste) through its documented web services, over HTTP with a configurable base URL.

Each call and the document it follows (../shared/reference/INTEGRATIONS.md §5.1; field names checked against
akretion/roulier ``roulier/carriers/colissimo_fr/carrier.py`` and ``schema.py`` through the ``search`` tool):

- labels: ``POST {sls}/generateLabel`` (SLS "Shipping Web Service" REST 2.0,
  https://www.colissimo.fr/doc-colissimo/redoc-sls/en): JSON body with ``contractNumber``/``password``,
  ``outputFormat.outputPrintingType`` (``PDF_10x15_300dpi`` / ``ZPL_10x15_203dpi``), ``letter.service`` (productCode,
  depositDate ISO, orderNumber), ``letter.parcel.weight`` in kg, ``letter.sender``/``letter.addressee``.address
  (``line2`` the street, unaccented, four lines of 35), ``letter.customsDeclarations`` for CN23. The answer is a
  multipart (MTOM) body whose parts are named by Content-ID: ``<jsonInfos>`` (``labelV2Response.parcelNumber``,
  ``messages``) and ``<label>`` (the raw PDF/ZPL). A refusal is HTTP 400 with ``messages[type=ERROR]``.
- the day's close: ``POST {sls}/generateBordereauByParcelsNumbers`` (same auth; ``parcelsNumbers``), the deposit
  slip comes back in the same multipart shape.
- pickup points: ``POST {pickup}/findRDVPointRetraitAcheminement`` (``pointretrait-ws-cxf/rest/v2/pointretrait``;
  address/zipCode/city/countryCode/weight/shippingDate ``dd/mm/YYYY``/filterRelay/optionInter/lang), answering
  ``errorCode`` and ``listePointRetraitAcheminement[{identifiant, nom, adresse1, codePostal, localite, codePays,
  coordGeolocalisationLatitude/Longitude, distanceEnMetre}]``.
- tracking: La Poste "Suivi" v2, ``GET {okapi}/suivi/v2/idships/{id}?lang=fr_FR`` with header ``X-Okapi-Key``,
  answering ``shipment.event[{code, label, date}]`` (codes folded by ``domain.colissimo_status``).
- the shopper's link: ``https://www.laposte.fr/outils/suivre-vos-envois?code=<n>`` (roulier ``get_tracking_url``).

Colissimo's web services have no cancellation of a label: an unused label is simply never deposited (it is not
billed), so ``cancel`` answers True without a call.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, ClassVar

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

SLS_URL = "https://ws.colissimo.fr/sls-ws/SlsServiceWSRest/2.0"
PICKUP_URL = "https://ws.colissimo.fr/pointretrait-ws-cxf/rest/v2/pointretrait"
OKAPI_URL = "https://api.laposte.fr"

#: Overseas France (DOM) and export need a CN23 (customs) even inside the French postal network.
CUSTOMS_FREE = frozenset({"FR", "MC"})


def multipart_parts(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of an MTOM answer by Content-ID without its angle brackets (``jsonInfos``, ``label``…)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    parts: dict[str, bytes] = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        content_id = str(part.get("Content-ID", "")).strip().strip("<>")
        payload = part.get_payload(decode=True)
        parts[content_id] = payload if isinstance(payload, bytes) else b""
    return parts


class ColissimoAdapter:
    code: ClassVar[str] = "colissimo"

    def __init__(
        self,
        *,
        contract_number: str = "",
        password: str = "",
        okapi_key: str = "",
        sls_url: str = SLS_URL,
        pickup_url: str = PICKUP_URL,
        okapi_url: str = OKAPI_URL,
        timeout: float = 10.0,
        sender: Address | None = None,
    ) -> None:
        self.contract_number = contract_number
        self.password = password
        self.okapi_key = okapi_key
        self.sls_url = sls_url.rstrip("/")
        self.pickup_url = pickup_url.rstrip("/")
        self.okapi_url = okapi_url.rstrip("/")
        self.timeout = timeout
        self.sender = sender

    # --- transport ----------------------------------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = httpx.request(method, url, timeout=self.timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise CarrierUnavailable(
                f"Colissimo did not answer ({type(exc).__name__}).", details={"carrier": self.code, "url": url}
            ) from exc
        if response.status_code >= 500:
            raise CarrierUnavailable(
                f"Colissimo answered {response.status_code}.",
                details={"carrier": self.code, "status": response.status_code},
            )
        return response

    def _refusal(self, response: httpx.Response, infos: dict[str, Any] | None = None) -> CarrierRefused:
        messages: list[str] = []
        try:
            data = infos if infos is not None else response.json()
            messages = [
                f"{m.get('id')}: {m.get('messageContent')}"
                for m in data.get("messages", [])
                if m.get("type") == "ERROR"
            ]
        except (ValueError, AttributeError):
            messages = [response.text[:300]]
        return CarrierRefused(
            "Colissimo refused the parcel: " + ("; ".join(messages) or f"HTTP {response.status_code}"),
            details={"carrier": self.code, "messages": messages, "status": response.status_code},
        )

    def _multipart(self, response: httpx.Response) -> tuple[dict[str, Any], dict[str, bytes]]:
        content_type = response.headers.get("content-type", "")
        if "multipart" not in content_type:
            raise self._refusal(response)
        parts = multipart_parts(content_type, response.content)
        infos = json.loads(parts.get("jsonInfos", b"{}") or b"{}")
        if any(m.get("type") == "ERROR" for m in infos.get("messages", [])):
            raise self._refusal(response, infos)
        return infos, parts

    # --- the interface ------------------------------------------------------------------------------------------

    def _address(self, address: Address, *, ref: str, addressee: bool) -> dict[str, Any]:
        street = domain.address_lines([address.line1, address.line2])
        body: dict[str, Any] = {
            "companyName": domain.unaccent(address.company)[:35] or None,
            "line0": None,
            "line1": None,
            "line2": street[0] if street else "",
            "line3": street[1] if len(street) > 1 else None,
            "zipCode": address.postcode,
            "city": domain.unaccent(address.city).upper()[:35],
            "countryCode": address.country,
            "email": address.email or None,
        }
        if addressee:
            first, _space, last = address.name.partition(" ")
            body.update(
                lastName=domain.unaccent(last or first)[:35],
                firstName=domain.unaccent(first if last else "")[:29],
                mobileNumber=address.phone or None,
            )
            return {"addresseeParcelRef": ref, "address": body}
        body["language"] = "FR"
        return {"senderParcelRef": ref, "address": body}

    def label_body(self, request: ShipmentRequest) -> dict[str, Any]:
        """The ``generateLabel`` JSON for ``request`` (public so tests can read what is sent)."""
        printing = "ZPL_10x15_203dpi" if request.label_format == "zpl" else "PDF_10x15_300dpi"
        sender = request.sender or self.sender
        customs = None
        if request.recipient.country not in CUSTOMS_FREE or request.recipient.postcode[:2] in ("97", "98"):
            customs = {
                "includeCustomsDeclarations": True,
                "contents": {
                    "article": [
                        {
                            "description": domain.unaccent(a.description)[:64],
                            "quantity": a.quantity,
                            "weight": float(domain.weight_kg_text(a.weight_g)),
                            "value": float(a.value),
                            "hsCode": a.hs_code,
                            "originCountry": a.origin_country,
                            "currency": a.currency,
                        }
                        for a in request.customs
                    ],
                    "category": {"value": 3},  # commercial sample / sale of goods
                },
            }
        return {
            "contractNumber": self.contract_number,
            "password": self.password,
            "outputFormat": {
                "x": 0,
                "y": 0,
                "outputPrintingType": printing,
                "dematerialized": False,
                "returnType": None,
                "printCoDDocument": False,
            },
            "letter": {
                "service": {
                    "productCode": request.service_code,
                    "depositDate": request.ship_date or date.today().isoformat(),
                    "orderNumber": request.reference,
                    "commercialName": domain.unaccent(sender.company or sender.name)[:35] if sender else None,
                },
                "parcel": {
                    "weight": float(domain.weight_kg_text(request.weight_g)),
                    "pickupLocationId": request.pickup_point_id or None,
                    "nonMachinable": False,
                },
                "customsDeclarations": customs,
                "sender": self._address(sender, ref=request.reference, addressee=False) if sender else None,
                "addressee": self._address(request.recipient, ref=request.reference, addressee=True),
            },
            "fields": {
                "field": [
                    {"key": "LENGTH", "value": round(request.length_mm / 10)},
                    {"key": "WIDTH", "value": round(request.width_mm / 10)},
                    {"key": "HEIGHT", "value": round(request.height_mm / 10)},
                ]
            },
        }

    def create_shipment(self, request: ShipmentRequest) -> ShipmentResult:
        response = self._send("POST", f"{self.sls_url}/generateLabel", json=self.label_body(request))
        if response.status_code >= 400:
            raise self._refusal(response)
        infos, parts = self._multipart(response)
        number = (infos.get("labelV2Response") or {}).get("parcelNumber") or ""
        label = parts.get("label", b"")
        if not number or not label:
            raise CarrierRefused("Colissimo answered without a parcel number or label.", details={"carrier": self.code})
        annexes = {cid: data for cid, data in parts.items() if cid not in ("jsonInfos", "label")}
        return ShipmentResult(
            tracking_number=number,
            label=label,
            label_format=request.label_format,
            carrier_ref=number,
            annexes=annexes,
        )

    def cancel(self, tracking_number: str) -> bool:
        return True

    def close_day(self, tracking_numbers: Sequence[str]) -> bytes | None:
        if not tracking_numbers:
            return None
        body = {
            "contractNumber": self.contract_number,
            "password": self.password,
            "generateBordereauParcelNumberList": {"parcelsNumbers": list(tracking_numbers)},
        }
        response = self._send("POST", f"{self.sls_url}/generateBordereauByParcelsNumbers", json=body)
        if response.status_code >= 400:
            raise self._refusal(response)
        _infos, parts = self._multipart(response)
        return next((data for cid, data in parts.items() if cid != "jsonInfos"), None)

    def search_pickup_points(
        self, *, country: str, postcode: str, city: str = "", weight_g: int | None = None, limit: int = 10
    ) -> list[PickupPoint]:
        body = {
            "accountNumber": self.contract_number,
            "password": self.password,
            "address": "",
            "zipCode": postcode,
            "city": city,
            "countryCode": country,
            "weight": weight_g or 1000,
            "shippingDate": date.today().strftime("%d/%m/%Y"),
            "filterRelay": "1",
            "lang": "FR",
            "optionInter": "0" if country == "FR" else "1",
        }
        response = self._send("POST", f"{self.pickup_url}/findRDVPointRetraitAcheminement", json=body)
        data = response.json() if response.status_code < 400 else {}
        if response.status_code >= 400 or int(data.get("errorCode", 0) or 0) != 0:
            raise CarrierRefused(
                f"Colissimo refused the search: {data.get('errorMessage') or response.status_code}",
                details={"carrier": self.code, "error_code": data.get("errorCode")},
            )
        return [
            PickupPoint(
                id=str(p.get("identifiant", "")),
                name=str(p.get("nom", "")).strip(),
                address=" ".join(str(p.get(k) or "").strip() for k in ("adresse1", "adresse2")).strip(),
                postcode=str(p.get("codePostal", "")),
                city=str(p.get("localite", "")).strip(),
                country=str(p.get("codePays", country)),
                latitude=str(p.get("coordGeolocalisationLatitude", "")),
                longitude=str(p.get("coordGeolocalisationLongitude", "")),
                distance_m=int(p["distanceEnMetre"]) if p.get("distanceEnMetre") is not None else None,
            )
            for p in data.get("listePointRetraitAcheminement", [])[:limit]
        ]

    def track(self, tracking_number: str) -> list[TrackingEvent]:
        response = self._send(
            "GET",
            f"{self.okapi_url}/suivi/v2/idships/{tracking_number}",
            params={"lang": "fr_FR"},
            headers={"X-Okapi-Key": self.okapi_key, "Accept": "application/json"},
        )
        if response.status_code == 404:
            return []
        if response.status_code >= 400:
            raise CarrierRefused(
                f"La Poste refused the tracking request ({response.status_code}).", details={"carrier": self.code}
            )
        shipment = response.json().get("shipment") or {}
        estimated = str(shipment.get("estimDate") or shipment.get("deliveryDate") or "")[:10]
        events = []
        for event in shipment.get("event", []):
            code = str(event.get("code", ""))
            events.append(
                TrackingEvent(
                    occurred_at=datetime.fromisoformat(str(event["date"]).replace("Z", "+00:00")),
                    carrier_code=code,
                    description=str(event.get("label", "")),
                    status=domain.colissimo_status(code),
                    estimated_delivery=estimated,
                )
            )
        return sorted(events, key=lambda e: e.occurred_at)

    def tracking_url(self, tracking_number: str) -> str:
        return f"https://www.laposte.fr/outils/suivre-vos-envois?code={tracking_number}"
