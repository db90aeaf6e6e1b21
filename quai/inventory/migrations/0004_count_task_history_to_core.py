"""A count task's status history moves to core's one audit table (``core.StateTransition``, aggregate "count_task").

Every ``CountTaskTransition`` row is copied (same task, merchant, from, to, actor, note as the reason, details and
time, in the same order), then the table is dropped: from now on ``quai.core.states.transition`` writes the
history. Going back copies the "count_task" rows of core's table into a re-created ``CountTaskTransition`` and
removes them from core, so nothing is lost in either direction.
"""

from django.conf import settings
from django.db import migrations

BATCH = 1000


def _user_labels(apps, ids):
    """Who each user is, in words (their username), for the audit rows' ``actor_label``."""
    if not ids:
        return {}
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    field = "username" if any(f.name == "username" for f in user_model._meta.fields) else "pk"
    return {pk: str(name) for pk, name in user_model.objects.filter(pk__in=ids).values_list("pk", field)}


def history_to_core(apps, schema_editor):
    CountTaskTransition = apps.get_model("inventory", "CountTaskTransition")
    StateTransition = apps.get_model("core", "StateTransition")
    rows = list(
        CountTaskTransition.objects.order_by("id").values(
            "task_id", "task__merchant_id", "from_status", "to_status", "actor_id", "note", "details", "occurred_at"
        )
    )
    labels = _user_labels(apps, {row["actor_id"] for row in rows if row["actor_id"] is not None})
    StateTransition.objects.bulk_create(
        (
            StateTransition(
                aggregate="count_task",
                aggregate_id=str(row["task_id"]),
                merchant_id=row["task__merchant_id"],
                from_status=row["from_status"],
                to_status=row["to_status"],
                actor_id=row["actor_id"],
                actor_label=labels.get(row["actor_id"], "") if row["actor_id"] is not None else "system",
                reason=row["note"],
                details=row["details"] or {},
                at=row["occurred_at"],
            )
            for row in rows
        ),
        batch_size=BATCH,
    )


def history_from_core(apps, schema_editor):
    CountTaskTransition = apps.get_model("inventory", "CountTaskTransition")
    CountTask = apps.get_model("inventory", "CountTask")
    StateTransition = apps.get_model("core", "StateTransition")
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    steps = StateTransition.objects.filter(aggregate="count_task").order_by("id")
    wanted = {int(pk) for pk in steps.values_list("aggregate_id", flat=True)}
    tasks = set(CountTask.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    actors = set(steps.exclude(actor_id=None).values_list("actor_id", flat=True))
    users = set(user_model.objects.filter(pk__in=actors).values_list("pk", flat=True))
    CountTaskTransition.objects.bulk_create(
        (
            CountTaskTransition(
                task_id=int(step.aggregate_id),
                from_status=step.from_status,
                to_status=step.to_status,
                actor_id=step.actor_id if step.actor_id in users else None,
                note=step.reason[:255],
                details=step.details or {},
                occurred_at=step.at,
            )
            for step in steps
            if int(step.aggregate_id) in tasks
        ),
        batch_size=BATCH,
    )
    steps.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0003_reservation_open_document_unique"),
        ("core", "0003_event_schema_version_and_state_transition"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(history_to_core, history_from_core),
        migrations.DeleteModel(name="CountTaskTransition"),
    ]
