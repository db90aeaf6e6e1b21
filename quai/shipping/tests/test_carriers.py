"""Each carrier adapter against a local HTTP server speaking that carrier's documented protocol."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.etree import ElementTree

import pytest

from quai.shipping.carriers.base import Address, CarrierRefused, CarrierUnavailable, ShipmentRequest
from quai.shipping.carriers.colissimo import ColissimoAdapter
from quai.shipping.carriers.mondial_relay import LABEL_FIELDS, MondialRelayAdapter

SENDER = Address(name="Quai 3PL", line1="1 quai du Port", postcode="69002", city="Lyon", country="FR")
RECIPIENT = Address(
    name="Camille Martin",
    line1="12 rue de la Roquette",
    postcode="75011",
    city="Paris",
    country="FR",
    phone="0612345678",
)
REQUEST = ShipmentRequest(
    reference="SHOP-1",
    service_code="DOM",
    sender=SENDER,
    recipient=RECIPIENT,
    weight_g=1250,
    sscc="106141411234567897",
    length_mm=300,
    width_mm=200,
    height_mm=100,
    ship_date="2026-06-02",
)


class Server:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answer: Any = None  # (status, headers, body) or a callable(path, body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append((self.command, self.path, dict(self.headers), body))
            status, headers, payload = state.answer(self.path, body) if callable(state.answer) else state.answer
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    state.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # type: ignore[attr-defined]
    thread = threading.Thread(target=state.httpd.serve_forever, daemon=True)  # type: ignore[attr-defined]
    thread.start()
    yield state
    state.httpd.shutdown()  # type: ignore[attr-defined]


def _mtom(infos: dict[str, Any], label: bytes) -> tuple[int, dict[str, str], bytes]:
    boundary = "uuid:5f1b"
    body = (
        (
            f"--{boundary}\r\nContent-Type: application/json;charset=UTF-8\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <jsonInfos>\r\n\r\n{json.dumps(infos)}\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <label>\r\n\r\n"
        ).encode()
        + label
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = f'multipart/mixed; boundary="{boundary}"; type="application/json"; start="<jsonInfos>"'
    return 200, {"Content-Type": content_type}, body


def test_colissimo_generate_label_sends_the_documented_body_and_reads_the_mtom_answer(server):  # type: ignore[no-untyped-def]
    label = b"^XA^FDtest^FS^XZ"
    server.answer = _mtom(
        {
            "messages": [{"id": "0", "type": "INFOS", "messageContent": "OK"}],
            "labelV2Response": {"parcelNumber": "6A12345678901"},
        },
        label,
    )
    adapter = ColissimoAdapter(contract_number="123456", password="pw", sls_url=server.url + "/sls")
    result = adapter.create_shipment(REQUEST)
    assert (result.tracking_number, result.label) == ("6A12345678901", label)
    method, path, _headers, raw = server.requests[0]
    body = json.loads(raw)
    assert (method, path) == ("POST", "/sls/generateLabel")
    assert body["contractNumber"] == "123456"
    assert body["outputFormat"]["outputPrintingType"] == "PDF_10x15_300dpi"
    service = body["letter"]["service"]
    assert (service["productCode"], service["depositDate"], service["orderNumber"]) == ("DOM", "2026-06-02", "SHOP-1")
    assert body["letter"]["parcel"]["weight"] == 1.25
    assert body["letter"]["addressee"]["address"]["line2"] == "12 RUE DE LA ROQUETTE"
    assert body["letter"]["addressee"]["address"]["lastName"] == "Martin"
    assert body["letter"]["customsDeclarations"] is None


def test_colissimo_refusal_and_server_error_are_told_apart(server):  # type: ignore[no-untyped-def]
    adapter = ColissimoAdapter(sls_url=server.url, timeout=2)
    server.answer = (
        400,
        {"Content-Type": "application/json"},
        json.dumps({"messages": [{"id": "30220", "type": "ERROR", "messageContent": "bad zip"}]}).encode(),
    )
    with pytest.raises(CarrierRefused) as refused:
        adapter.create_shipment(REQUEST)
    assert "bad zip" in refused.value.message
    server.answer = (500, {}, b"boom")
    with pytest.raises(CarrierUnavailable):
        adapter.create_shipment(REQUEST)


def test_colissimo_pickup_points_and_tracking(server):  # type: ignore[no-untyped-def]
    def answer(path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if "findRDVPointRetraitAcheminement" in path:
            sent = json.loads(body)
            assert sent["zipCode"] == "75011" and sent["countryCode"] == "FR"
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps(
                    {
                        "errorCode": 0,
                        "listePointRetraitAcheminement": [
                            {
                                "identifiant": "004321",
                                "nom": "TABAC DU COIN ",
                                "adresse1": "3 rue X",
                                "codePostal": "75011",
                                "localite": "PARIS",
                                "codePays": "FR",
                                "distanceEnMetre": 120,
                            }
                        ],
                    }
                ).encode(),
            )
        assert path.startswith("/suivi/v2/idships/6A123")
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(
                {
                    "returnCode": 200,
                    "shipment": {
                        "idShip": "6A123",
                        "event": [
                            {"code": "DI1", "label": "Votre colis est livré", "date": "2026-06-04T10:00:00+02:00"},
                            {"code": "PC1", "label": "Pris en charge", "date": "2026-06-02T18:00:00+02:00"},
                        ],
                    },
                }
            ).encode(),
        )

    server.answer = answer
    adapter = ColissimoAdapter(pickup_url=server.url, okapi_url=server.url, okapi_key="k")
    points = adapter.search_pickup_points(country="FR", postcode="75011")
    assert [(p.id, p.name, p.distance_m) for p in points] == [("004321", "TABAC DU COIN", 120)]
    events = adapter.track("6A123")
    assert [e.status for e in events] == ["in_transit", "delivered"]
    assert server.requests[-1][2]["X-Okapi-Key"] == "k"


def _soap(method: str, inner: str) -> tuple[int, dict[str, str], bytes]:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Body><{method}Response xmlns="http://www.mondialrelay.fr/webservice/"><{method}Result>{inner}'
        f"</{method}Result></{method}Response></soap:Body></soap:Envelope>"
    )
    return 200, {"Content-Type": "text/xml; charset=utf-8"}, body.encode()


def _params(body: bytes) -> dict[str, str]:
    root = ElementTree.fromstring(body)
    call = next(iter(next(iter(root))))
    return {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in call}


def test_mondial_relay_creation_is_signed_in_the_documented_order_and_fetches_the_label(server):  # type: ignore[no-untyped-def]
    def answer(path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/ww2/PDF"):
            assert "format=10x15" in path
            return 200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 label"
        params = _params(body)
        values = "".join(params.get(name, "") for name in LABEL_FIELDS)
        assert params["Security"] == hashlib.md5((values + "PrivateK").encode()).hexdigest().upper()
        assert params["Poids"] == "1250" and params["Dest_CP"] == "75011" and params["ModeLiv"] == "HOM"
        return _soap(
            "WSI2_CreationEtiquette",
            "<STAT>0</STAT><ExpeditionNum>31231652</ExpeditionNum>"
            "<URL_Etiquette>/ww2/PDF/StickerMaker2.aspx?ens=BDTEST13&amp;format=A4</URL_Etiquette>",
        )

    server.answer = answer
    adapter = MondialRelayAdapter(wsi_url=server.url + "/Web_Services.asmx", site_url=server.url, sender=SENDER)
    result = adapter.create_shipment(ShipmentRequest(**{**REQUEST.__dict__, "service_code": "HOM"}))
    assert (result.tracking_number, result.label) == ("31231652", b"%PDF-1.4 label")
    assert server.requests[0][2]["SOAPAction"] == '"http://www.mondialrelay.fr/webservice/WSI2_CreationEtiquette"'


def test_mondial_relay_errors_search_and_tracking(server):  # type: ignore[no-untyped-def]
    adapter = MondialRelayAdapter(wsi_url=server.url, site_url=server.url, sender=SENDER, timeout=2)
    server.answer = _soap("WSI2_CreationEtiquette", "<STAT>97</STAT>")
    with pytest.raises(CarrierRefused) as refused:
        adapter.create_shipment(REQUEST)
    assert refused.value.details["stat"] == "97"
    server.answer = (503, {}, b"")
    with pytest.raises(CarrierUnavailable):
        adapter.track("31231652")
    server.answer = _soap(
        "WSI4_PointRelais_Recherche",
        "<STAT>0</STAT><PointsRelais><PointRelais_Details><STAT>0</STAT><Num>062049</Num>"
        "<LgAdr1>L UNIVERS DU MOBILE</LgAdr1><LgAdr3>1 RUE DES PROUVAIRES</LgAdr3><CP>75001</CP>"
        "<Ville>PARIS</Ville><Pays>FR</Pays><Distance>350</Distance></PointRelais_Details>"
        "</PointsRelais>",
    )
    points = adapter.search_pickup_points(country="FR", postcode="75001")
    assert [(p.id, p.address, p.distance_m) for p in points] == [("062049", "1 RUE DES PROUVAIRES", 350)]
    server.answer = _soap(
        "WSI2_TracingColisDetaille",
        "<STAT>82</STAT><Tracing>"
        "<ret_WSI2_sub_TracingColisDetaille><Libelle>PRISE EN CHARGE EN AGENCE</Libelle>"
        "<Date>01/10/26</Date><Heure>18:40</Heure><Emplacement>LILLE</Emplacement>"
        "</ret_WSI2_sub_TracingColisDetaille>"
        "<ret_WSI2_sub_TracingColisDetaille><Libelle>COLIS LIVRÉ</Libelle>"
        "<Date>03/10/26</Date><Heure>09:12</Heure></ret_WSI2_sub_TracingColisDetaille>"
        "<ret_WSI2_sub_TracingColisDetaille><Libelle /><Date /><Heure /></ret_WSI2_sub_TracingColisDetaille>"
        "</Tracing>",
    )
    events = adapter.track("31231652")
    assert [(e.status, e.location) for e in events] == [("in_transit", "LILLE"), ("delivered", "")]
