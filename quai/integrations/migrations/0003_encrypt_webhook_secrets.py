"""Encrypt the webhook subscriptions' secrets written in clear before 0002 (their column is now encrypted).

Reading goes through the encrypted field, which returns a value that is not yet a token as it is; writing it back
encrypts it. Reversing decrypts them into the column again (the field still reads both forms)."""

from django.db import migrations


def encrypt_secrets(apps, schema_editor):  # type: ignore[no-untyped-def]
    from quai.integrations.crypto import is_token

    Subscription = apps.get_model("integrations", "WebhookSubscription")
    connection = schema_editor.connection
    table = Subscription._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, secret, previous_secret FROM {connection.ops.quote_name(table)}")  # noqa: S608
        rows = cursor.fetchall()
    for pk, secret, previous in rows:
        changes = {}
        if secret and not is_token(secret):
            changes["secret"] = secret
        if previous and not is_token(previous):
            changes["previous_secret"] = previous
        if changes:
            Subscription.objects.filter(pk=pk).update(**changes)  # the field encrypts on the way in


def decrypt_secrets(apps, schema_editor):  # type: ignore[no-untyped-def]
    Subscription = apps.get_model("integrations", "WebhookSubscription")
    connection = schema_editor.connection
    table = connection.ops.quote_name(Subscription._meta.db_table)
    for pk, secret, previous in Subscription.objects.values_list("pk", "secret", "previous_secret"):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET secret = %s, previous_secret = %s WHERE id = %s",  # noqa: S608
                [secret, previous or "", pk],
            )


class Migration(migrations.Migration):
    dependencies = [("integrations", "0002_connections")]

    operations = [migrations.RunPython(encrypt_secrets, decrypt_secrets)]
