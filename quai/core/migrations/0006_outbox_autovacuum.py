from django.db import migrations

# PostgreSQL: autovacuum's thresholds on the relay's two tables (storage parameters; SQLite has none: a no-op there).
#
# The outbox is a queue: each event is inserted, claimed (an update, HOT: migration 0004's fillfactor) and relayed
# (an update that is never HOT: ``relayed_at`` is in the pending index's predicate), so the relay leaves two dead
# row versions an event and one dead entry an event in the pending index, all of them below the first pending id.
# The claim reads that index from its start (``outbox._claim_sql``'s first pending id), past every entry no VACUUM
# has removed yet: about one index page a claim per 300 of them (docs/OUTBOX.md). At autovacuum's default, 50 +
# 20 % of the table's rows, a table that keeps weeks of events waits for days of relays (20 % of its rows dead,
# a tenth of them as events) before it is vacuumed; at 1,000 + 1 % about a twentieth of that, whatever the size.
# The handled rows are only inserted, and deleted with their events when old events are purged: the same 1 %, so
# the space a purge frees is vacuumed for reuse before the table grows by another 20 %.
STORAGE = {
    "core_outboxevent": {"autovacuum_vacuum_scale_factor": 0.01, "autovacuum_vacuum_threshold": 1000},
    "core_handledevent": {"autovacuum_vacuum_scale_factor": 0.01, "autovacuum_vacuum_threshold": 1000},
}


class PostgreSQLOnly(migrations.RunSQL):
    """``RunSQL`` run on PostgreSQL only: storage parameters mean nothing to SQLite, which refuses them."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def _set(table, options):
    return f"ALTER TABLE {table} SET ({', '.join(f'{name} = {value}' for name, value in options.items())})"


def _reset(table, options):
    return f"ALTER TABLE {table} RESET ({', '.join(options)})"


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0005_outbox_event_id_not_indexed"),
    ]

    operations = [
        PostgreSQLOnly(sql=_set(table, options), reverse_sql=_reset(table, options))
        for table, options in STORAGE.items()
    ]
