"""Carrier credentials are encrypted at rest (``quai.core.crypto``, like the shops' secrets), never shown back, follow
a key rotation, and still reach the carriers: Colissimo and Mondial Relay against local servers speaking their
protocols, the sandbox with none."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client, override_settings

from quai.core import crypto
from quai.core.errors import ValidationFailed
from quai.shipping import selectors, services
from quai.shipping.carriers.mondial_relay import LABEL_FIELDS
from quai.shipping.models import CarrierAccount, CarrierKind
from quai.shipping.tests.test_carriers import REQUEST, _mtom, _params, _soap, server  # noqa: F401  (local servers)
from quai.tenants.tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "colissimo-pw-7731"
PRIVATE_KEY = "MrSecret42"


def _carrier(kind: str, code: str, settings: dict[str, object]) -> CarrierAccount:
    return CarrierAccount.objects.create(
        code=code,
        name=code,
        kind=kind,
        settings=settings,
        sender_name="Quai 3PL",
        sender_line1="1 quai du Port",
        sender_postcode="69002",
        sender_city="Lyon",
    )


def _raw(column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM shipping_carrieraccount WHERE id = %s", [pk])
        return str(cursor.fetchone()[0])


def _colissimo(server) -> CarrierAccount:  # type: ignore[no-untyped-def]  # noqa: F811
    carrier = _carrier(
        CarrierKind.COLISSIMO, "colissimo", {"contract_number": "123456", "sls_url": server.url + "/sls", "timeout": 2}
    )
    return services.carrier_credentials_set(carrier=carrier, changes={"password": PASSWORD})


def _form_errors(response):  # type: ignore[no-untyped-def]
    """The errors of the admin form a refused post shows again (status 200, nothing saved)."""
    assert response.status_code == 200
    return response.context_data["adminform"].form.errors


def _label_answer() -> tuple[int, dict[str, str], bytes]:
    return _mtom({"labelV2Response": {"parcelNumber": "6A12345678901"}}, b"%PDF-1.4 label")


def test_colissimo_gets_its_password_from_the_encrypted_credentials(server):  # type: ignore[no-untyped-def]  # noqa: F811
    carrier = _colissimo(server)
    server.answer = _label_answer()

    result = services.carrier_adapter(CarrierAccount.objects.get(pk=carrier.pk)).create_shipment(REQUEST)

    body = json.loads(server.requests[0][3])
    assert result.tracking_number == "6A12345678901"
    assert (body["contractNumber"], body["password"]) == ("123456", PASSWORD)
    raw = _raw("credentials", carrier.pk)
    assert crypto.is_token(raw) and PASSWORD not in raw
    assert PASSWORD not in _raw("settings", carrier.pk)


def test_mondial_relay_signs_with_the_private_key_from_the_encrypted_credentials(server):  # type: ignore[no-untyped-def]  # noqa: F811
    carrier = _carrier(
        CarrierKind.MONDIAL_RELAY,
        "mondial_relay",
        {"enseigne": "BDTEST13", "wsi_url": server.url + "/Web_Services.asmx", "site_url": server.url, "timeout": 2},
    )
    services.carrier_credentials_set(carrier=carrier, changes={"private_key": PRIVATE_KEY})
    signed_with: list[str] = []

    def answer(path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/ww2/PDF"):
            return 200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 label"
        params = _params(body)
        values = "".join(params.get(name, "") for name in LABEL_FIELDS)
        signed_with.append(params["Security"])
        assert params["Security"] == hashlib.md5((values + PRIVATE_KEY).encode()).hexdigest().upper()
        return _soap(
            "WSI2_CreationEtiquette",
            "<STAT>0</STAT><ExpeditionNum>31231652</ExpeditionNum>"
            "<URL_Etiquette>/ww2/PDF/StickerMaker2.aspx?ens=BDTEST13&amp;format=A4</URL_Etiquette>",
        )

    server.answer = answer
    result = services.carrier_adapter(CarrierAccount.objects.get(pk=carrier.pk)).create_shipment(
        type(REQUEST)(**{**REQUEST.__dict__, "service_code": "HOM"})
    )

    assert result.tracking_number == "31231652" and len(signed_with) == 1
    assert PRIVATE_KEY not in _raw("credentials", carrier.pk)


def test_the_sandbox_needs_no_credentials():
    carrier = services.sandbox_carrier_ensure()
    result = services.carrier_adapter(carrier).create_shipment(REQUEST)
    assert result.tracking_number and carrier.credentials == ""


def test_credentials_merge_key_by_key_and_an_unknown_name_is_refused_with_nothing_written(server):  # type: ignore[no-untyped-def]  # noqa: F811
    carrier = _colissimo(server)
    services.carrier_credentials_set(carrier=carrier, changes={"okapi_key": "ok-1"})
    assert selectors.carrier_credential_names(CarrierAccount.objects.get(pk=carrier.pk)) == ["okapi_key", "password"]
    before = _raw("credentials", carrier.pk)

    with pytest.raises(ValidationFailed) as refused:
        services.carrier_credentials_set(carrier=carrier, changes={"pasword": "typo", "okapi_key": ""})

    assert refused.value.code == "carrier_credential_unknown" and refused.value.details["names"] == ["pasword"]
    assert _raw("credentials", carrier.pk) == before
    services.carrier_credentials_set(carrier=carrier, changes={"okapi_key": ""})
    assert selectors.carrier_credential_names(CarrierAccount.objects.get(pk=carrier.pk)) == ["password"]


def test_carrier_credentials_follow_a_key_rotation(server):  # type: ignore[no-untyped-def]  # noqa: F811
    carrier = _colissimo(server)
    old = [key.decode() for key in crypto.configured_keys()]
    new = Fernet.generate_key().decode()

    with override_settings(QUAI_ENCRYPTION_KEYS=[new, *old]):
        call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    rotated = _raw("credentials", carrier.pk)

    assert json.loads(Fernet(new.encode()).decrypt(rotated.encode())) == {"password": PASSWORD}
    server.answer = _label_answer()
    with override_settings(QUAI_ENCRYPTION_KEYS=[new]):
        services.carrier_adapter(CarrierAccount.objects.get(pk=carrier.pk)).create_shipment(REQUEST)
    assert json.loads(server.requests[0][3])["password"] == PASSWORD


def test_the_back_office_sets_credentials_write_only_and_shows_only_their_names(server):  # type: ignore[no-untyped-def]  # noqa: F811
    carrier = _colissimo(server)
    client = Client()
    client.force_login(StaffUserFactory(username="boss", is_superuser=True))
    url = f"/admin/shipping/carrieraccount/{carrier.pk}/change/"
    form = {
        "code": carrier.code,
        "name": "Colissimo",
        "kind": carrier.kind,
        "active": "on",
        "settings": json.dumps(carrier.settings),
        "sender_name": "Quai 3PL",
        "sender_line1": "1 quai du Port",
        "sender_postcode": "69002",
        "sender_city": "Lyon",
        "sender_country": "FR",
        "new_credentials": "okapi_key=okapi-secret-9",
    }

    page = client.get(url).content.decode()
    saved = client.post(url, form)
    refused_settings = client.post(
        url, {**form, "settings": json.dumps({"password": "in-clear"}), "new_credentials": ""}
    )
    refused_name = client.post(url, {**form, "new_credentials": "passwd=x"})

    assert PASSWORD not in page and "password ••••••" in page
    assert saved.status_code == 302, saved.content.decode()[:2000]
    assert selectors.carrier_credential_names(CarrierAccount.objects.get(pk=carrier.pk)) == ["okapi_key", "password"]
    after = client.get(url).content.decode()
    assert "okapi-secret-9" not in after and PASSWORD not in after and "okapi_key ••••••" in after
    assert list(_form_errors(refused_settings)) == ["settings"]
    assert list(_form_errors(refused_name)) == ["new_credentials"]
    assert "passwd=x" not in refused_name.content.decode()  # what was typed as a credential is not echoed back
    stored = CarrierAccount.objects.get(pk=carrier.pk)
    assert "password" not in stored.settings and services._carrier_credentials(stored)["password"] == PASSWORD


BEFORE = [("shipping", "0001_initial")]
AFTER = [("shipping", "0002_carrier_credentials")]


def _migrate(targets):  # type: ignore[no-untyped-def]
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)._create_project_state(with_applied_migrations=True).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_the_credentials_kept_in_clear_and_reverses():
    old = _migrate(BEFORE)
    try:
        carrier = old.get_model("shipping", "CarrierAccount").objects.create(
            code="colissimo",
            name="Colissimo",
            kind="colissimo",
            settings={"contract_number": "123456", "password": PASSWORD, "okapi_key": "", "timeout": 2},
            sender_name="Quai",
            sender_line1="1 quai",
            sender_postcode="69002",
            sender_city="Lyon",
        )
        plain = old.get_model("shipping", "CarrierAccount").objects.create(
            code="sandbox", name="Sandbox", kind="sandbox", settings={}, sender_name="Quai", sender_line1="1 quai",
            sender_postcode="69002", sender_city="Lyon",
        )  # fmt: skip

        _migrate(AFTER)
        raw = _raw("credentials", carrier.pk)
        assert crypto.is_token(raw) and json.loads(crypto.decrypt(raw)) == {"password": PASSWORD}
        assert json.loads(_raw("settings", carrier.pk)) == {"contract_number": "123456", "timeout": 2}
        assert _raw("credentials", plain.pk) == ""

        _migrate(BEFORE)
        settings = json.loads(_raw("settings", carrier.pk))
        assert settings == {"contract_number": "123456", "password": PASSWORD, "timeout": 2}
    finally:  # back to the latest migration of every app, for the tests after this one
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
