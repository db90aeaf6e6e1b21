"""An ASN's status history moves to core's one audit table (``core.StateTransition``, aggregate "asn").

Every ``AsnStatusChange`` row is copied (same ASN, merchant, from, to, actor, reason and time, in the same order),
then the table is dropped: from now on ``quai.core.states.transition`` writes the history. Going back copies the
"asn" rows of core's table into a re-created ``AsnStatusChange`` and removes them from core, so nothing is lost in
either direction.
"""

from django.conf import settings
from django.db import migrations

BATCH = 1000

# The steps' names as ``quai.inbound.domain.ASN_TRANSITION_NAMES`` has them when this migration was written (a
# migration does not import live code, which may change after it).
STEP_NAMES = {
    ("announced", "receiving"): "start_receiving",
    ("announced", "cancelled"): "cancel",
    ("receiving", "closed"): "close",
}


def _user_labels(apps, ids):
    """Who each user is, in words (their username), for the audit rows' ``actor_label``."""
    if not ids:
        return {}
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    field = "username" if any(f.name == "username" for f in user_model._meta.fields) else "pk"
    return {pk: str(name) for pk, name in user_model.objects.filter(pk__in=ids).values_list("pk", field)}


def history_to_core(apps, schema_editor):
    AsnStatusChange = apps.get_model("inbound", "AsnStatusChange")
    StateTransition = apps.get_model("core", "StateTransition")
    rows = list(
        AsnStatusChange.objects.order_by("id").values(
            "asn_id", "asn__merchant_id", "from_status", "to_status", "actor_id", "reason", "changed_at"
        )
    )
    labels = _user_labels(apps, {row["actor_id"] for row in rows if row["actor_id"] is not None})
    copies = [
        StateTransition(
            aggregate="asn",
            aggregate_id=str(row["asn_id"]),
            merchant_id=row["asn__merchant_id"],
            transition=STEP_NAMES.get((row["from_status"], row["to_status"]), ""),
            from_status=row["from_status"],
            to_status=row["to_status"],
            actor_id=row["actor_id"],
            actor_label=labels.get(row["actor_id"], "") if row["actor_id"] is not None else "system",
            reason=row["reason"],
            details={"migrated_from": "inbound.AsnStatusChange"},
            at=row["changed_at"],
        )
        for row in rows
    ]
    StateTransition.objects.bulk_create(copies, batch_size=BATCH)


def history_from_core(apps, schema_editor):
    AsnStatusChange = apps.get_model("inbound", "AsnStatusChange")
    Asn = apps.get_model("inbound", "Asn")
    StateTransition = apps.get_model("core", "StateTransition")
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    steps = StateTransition.objects.filter(aggregate="asn").order_by("id")
    wanted = {int(pk) for pk in steps.values_list("aggregate_id", flat=True)}
    asn_ids = set(Asn.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    actors = set(steps.exclude(actor_id=None).values_list("actor_id", flat=True))
    users = set(user_model.objects.filter(pk__in=actors).values_list("pk", flat=True))
    AsnStatusChange.objects.bulk_create(
        (
            AsnStatusChange(
                asn_id=int(step.aggregate_id),
                from_status=step.from_status,
                to_status=step.to_status,
                actor_id=step.actor_id if step.actor_id in users else None,
                reason=step.reason[:255],
                changed_at=step.at,
            )
            for step in steps
            if int(step.aggregate_id) in asn_ids
        ),
        batch_size=BATCH,
    )
    steps.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("inbound", "0002_discrepancy_lot"),
        ("core", "0003_event_schema_version_and_state_transition"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(history_to_core, history_from_core),
        migrations.DeleteModel(name="AsnStatusChange"),
    ]
