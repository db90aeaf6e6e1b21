"""Carrier credentials encrypted at rest: the passwords and API keys that carrier accounts kept in clear in their
``settings`` JSON move into ``credentials``, a JSON object stored as one Fernet token (``quai.core.crypto``).

The field encrypts on the way in and decrypts on the way out, so the data step only moves keys from one column to
the other. Reversing moves them back into ``settings`` in clear and empties ``credentials`` before the column goes.
The secret keys are written out here, not imported: this migration moves what they were when it was written.
"""

import json

from django.db import migrations, models

import quai.core.crypto

SECRET_KEYS = ("password", "okapi_key", "private_key")


def credentials_encrypt(apps, schema_editor):  # type: ignore[no-untyped-def]
    CarrierAccount = apps.get_model("shipping", "CarrierAccount")
    for carrier in CarrierAccount.objects.order_by("pk"):
        settings = dict(carrier.settings or {})
        if not any(key in settings for key in SECRET_KEYS):
            continue
        secrets = json.loads(carrier.credentials) if carrier.credentials else {}
        for key in SECRET_KEYS:
            value = settings.pop(key, None)
            if value not in (None, ""):
                secrets[key] = str(value)
        CarrierAccount.objects.filter(pk=carrier.pk).update(
            settings=settings, credentials=json.dumps(secrets, sort_keys=True) if secrets else ""
        )


def credentials_decrypt(apps, schema_editor):  # type: ignore[no-untyped-def]
    CarrierAccount = apps.get_model("shipping", "CarrierAccount")
    for carrier in CarrierAccount.objects.exclude(credentials="").order_by("pk"):
        secrets = json.loads(carrier.credentials)
        CarrierAccount.objects.filter(pk=carrier.pk).update(
            settings={**(carrier.settings or {}), **secrets}, credentials=""
        )


class Migration(migrations.Migration):
    dependencies = [
        ("shipping", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="carrieraccount",
            name="credentials",
            field=quai.core.crypto.EncryptedTextField(blank=True, default="", verbose_name="credentials"),
        ),
        migrations.AlterField(
            model_name="carrieraccount",
            name="settings",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Endpoints and options the adapter takes (e.g. sls_url, contract_number, timeout).",
                verbose_name="settings",
            ),
        ),
        migrations.RunPython(credentials_encrypt, credentials_decrypt),
    ]
