"""One open reservation per (merchant, document type, document id, SKU): a retried reservation holds stock once.

Reservations made before this migration by retried clients may already hold a line twice. The index cannot be
built over them, and choosing which hold to give back is a business decision (it moves stock), so the migration
stops and names them: release the extra ones (``reservation_release``) and migrate again.
"""

from django.db import migrations, models
from django.db.models import Count


def refuse_duplicate_open_reservations(apps, schema_editor):
    Reservation = apps.get_model("inventory", "Reservation")
    duplicates = list(
        Reservation.objects.filter(status="open")
        .exclude(document_id="")
        .values("merchant_id", "document_type", "document_id", "sku_id")
        .annotate(open_reservations=Count("id"))
        .filter(open_reservations__gt=1)
        .order_by("merchant_id", "document_type", "document_id", "sku_id")[:20]
    )
    if duplicates:
        raise RuntimeError(
            "Some document lines hold several open reservations; release the extra ones before migrating: "
            + "; ".join(
                f"merchant {d['merchant_id']} {d['document_type']} {d['document_id']!r} SKU {d['sku_id']}"
                f" ({d['open_reservations']} open)"
                for d in duplicates
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0002_cycle_counts"),
    ]

    operations = [
        migrations.RunPython(refuse_duplicate_open_reservations, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="reservation",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "open"), models.Q(("document_id", ""), _negated=True)),
                fields=("merchant", "document_type", "document_id", "sku"),
                name="reservation_open_document_unique",
            ),
        ),
    ]
