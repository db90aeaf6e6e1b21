"""Migration operations for a database that takes orders while it migrates (README, "Migrations on a running
warehouse").

On PostgreSQL, Django's schema operations lock the table for as long as they work on it: ``AddIndex`` is a plain
``CREATE INDEX`` (a SHARE lock: no insert, update or delete of the table until the whole index is built),
``AddConstraint(UniqueConstraint)`` an ``ADD CONSTRAINT ... UNIQUE`` (the same build, under ACCESS EXCLUSIVE: not
even reads), and an ``AlterField`` of a foreign key drops the key's constraint and adds it back, validated by a scan
of the whole table under SHARE ROW EXCLUSIVE on both tables (writes blocked on both). On a table of millions of rows
each is seconds to minutes of stopped intake. The same end state is reached without them: an index whose definition
is kept is renamed (``ALTER INDEX ... RENAME``, a catalogue update under SHARE UPDATE EXCLUSIVE, which blocks no read
or write; an index that backs a constraint renames its constraint with it), a new index is built ``CONCURRENTLY``,
an index is dropped ``CONCURRENTLY``, and a foreign key whose index goes is left alone.

Those statements are PostgreSQL's; SQLite has none of them (and no concurrent writer to spare), so a migration keeps
Django's operations for it. ``ByVendor`` holds both: wrapped in ``SeparateDatabaseAndState`` whose state operations
are the operations ``makemigrations`` wrote, unchanged, it runs the list written for the connection's vendor and the
plain operations elsewhere::

    migrations.SeparateDatabaseAndState(
        state_operations=STATE,
        database_operations=[ByVendor(default=STATE, postgresql=ONLINE)],
    )

A migration with a ``CONCURRENTLY`` statement sets ``atomic = False`` (PostgreSQL refuses them in a transaction):
each statement then commits alone, so each is written to be run again after a failure part-way (``IF EXISTS``,
``rename_index``'s check). ``ByVendor`` runs the default operations in one transaction where the database can roll
DDL back (SQLite), as an atomic migration would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import migrations, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState


class ByVendor(Operation):
    """Database operations picked by the connection's vendor (``connection.vendor``: ``postgresql``, ``sqlite``...);
    ``default`` for a vendor without its own list.

    A database operation only: it changes no state (put it in ``SeparateDatabaseAndState.database_operations``). The
    operations it runs are replayed from the state it is given, the state before the migration's change both ways,
    as ``SeparateDatabaseAndState`` does, so a plain ``AlterField`` or ``AddIndex`` in a list sees its own before and
    after. Each vendor's list must reach the schema the default list reaches (quai/core/tests/test_migrations_online.py
    compares them).
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, default: Sequence[Operation], **vendors: Sequence[Operation]) -> None:
        self.default = list(default)
        self.vendors = {vendor: list(operations) for vendor, operations in vendors.items()}

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return self.__class__.__qualname__, [], {"default": self.default, **self.vendors}

    def describe(self) -> str:
        return f"Database operations by vendor ({', '.join(['default', *sorted(self.vendors)])})"

    @property
    def migration_name_fragment(self) -> str:
        return "by_vendor"

    def operations_for(self, vendor: str) -> list[Operation]:
        return self.vendors.get(vendor, self.default)

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        pass

    def _steps(
        self, app_label: str, vendor: str, state: ProjectState
    ) -> list[tuple[Operation, ProjectState, ProjectState]]:
        steps = []
        for operation in self.operations_for(vendor):
            after = state.clone()
            operation.state_forwards(app_label, after)
            steps.append((operation, state, after))
            state = after
        return steps

    @contextlib.contextmanager
    def _transaction(self, schema_editor: BaseDatabaseSchemaEditor) -> Iterator[None]:
        connection = schema_editor.connection
        if (
            connection.vendor not in self.vendors
            and connection.features.can_rollback_ddl
            and not schema_editor.atomic_migration
            and not schema_editor.collect_sql
        ):
            with transaction.atomic(using=connection.alias):
                yield
        else:
            yield

    def _run(self, schema_editor: BaseDatabaseSchemaEditor, operation: Operation, run: Any) -> None:
        if schema_editor.collect_sql and not operation.reduces_to_sql:
            schema_editor.collected_sql.append("-- THIS OPERATION CANNOT BE WRITTEN AS SQL")
        else:
            run()

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        with self._transaction(schema_editor):
            for operation, before, after in self._steps(app_label, schema_editor.connection.vendor, from_state):
                self._run(
                    schema_editor,
                    operation,
                    lambda o=operation, b=before, a=after: o.database_forwards(app_label, schema_editor, b, a),
                )

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: ProjectState, to_state: ProjectState
    ) -> None:
        # ``to_state`` is the state before the migration's change: the operations' states are replayed from it.
        with self._transaction(schema_editor):
            for operation, before, after in reversed(self._steps(app_label, schema_editor.connection.vendor, to_state)):
                self._run(
                    schema_editor,
                    operation,
                    lambda o=operation, b=before, a=after: o.database_backwards(app_label, schema_editor, a, b),
                )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rename_index(old: str | Sequence[str], new: str) -> migrations.RunSQL:
    """PostgreSQL: ``ALTER INDEX old RENAME TO new``, and back to the first of ``old``'s names. ``old`` may be several
    names, the first that exists is renamed: a column's UNIQUE is ``<table>_<column>_key`` when ``CREATE TABLE``
    made it and ``<table>_<column>_<hash>_uniq`` when an ``AlterField`` did. Skipped when ``new`` is already there (a
    non-atomic migration run again after a failure part-way); an error when none is. An index that backs a UNIQUE
    constraint renames its constraint with it, under SHARE UPDATE EXCLUSIVE on the index only (``ALTER TABLE ...
    RENAME CONSTRAINT`` takes ACCESS EXCLUSIVE on the table)."""
    names = [old] if isinstance(old, str) else list(old)

    def sql(sources: list[str], target: str) -> str:
        tests = " ELSIF ".join(
            f"to_regclass('{_quoted(source)}') IS NOT NULL THEN ALTER INDEX {_quoted(source)} RENAME TO "
            f"{_quoted(target)};"
            for source in sources
        )
        return (
            f"DO $$ BEGIN IF {tests} ELSIF to_regclass('{_quoted(target)}') IS NULL THEN "
            f"RAISE EXCEPTION 'no index {' nor '.join([*sources, target])}'; END IF; END $$"
        )

    return migrations.RunSQL(sql(names, new), reverse_sql=sql([new], names[0]))


def drop_index_concurrently(name: str, *, table: str, definition: str) -> migrations.RunSQL:
    """PostgreSQL: ``DROP INDEX CONCURRENTLY IF EXISTS`` (no ACCESS EXCLUSIVE lock for the other sessions to queue
    behind), built back ``CONCURRENTLY`` by the migration's reverse; ``definition`` is what follows the table's name
    (``("status" varchar_pattern_ops)``). Needs ``atomic = False``."""
    return migrations.RunSQL(
        f"DROP INDEX CONCURRENTLY IF EXISTS {_quoted(name)}",
        reverse_sql=f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_quoted(name)} ON {_quoted(table)} {definition}",
    )
