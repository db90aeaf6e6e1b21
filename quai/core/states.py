"""One state machine mechanism for every stateful record (ASN, count task, order, wave, parcel, ticket, return).

A ``StateMachine`` is the record's transition table: for each status, the statuses it may move to, each step
optionally named ("cancel") and optionally requiring a reason. ``StateMachine.check`` is the pure rule (no
database), so a table can be tested in milliseconds.

``transition(obj, machine=…, to_status=…, event=…)`` is the only way a status changes. In one transaction it:

1. locks the record's row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's transactions are opened ``IMMEDIATE``,
   so writers queue up front) and reads the status there, never the caller's possibly stale copy;
2. checks the step against the table: ``Conflict`` ``invalid_transition`` (details: from, to, allowed) or
   ``ValidationFailed`` ``reason_required``;
3. writes the new status with a guarded ``UPDATE … WHERE status = <from>`` (with any other columns the step sets,
   ``updated_at`` and the record's ``version`` bumped when it has them, so a stale hand edit then gets its 409);
4. writes the audit row (``core.StateTransition``: who, when, from, to, why, details);
5. records the event in the outbox.

All of it or none of it: the event exists if and only if the status changed, and the history of a status is
exactly its audit rows. Each app wraps this in its ``<entity>_transition`` service, which builds the event.

``transitions_of_inserted(steps, machine=…)`` is the same for the first step of rows the CURRENT transaction has
just inserted (a batch of orders at intake): no other transaction can see such a row, let alone change it, so its
status is the one in memory and locking it would only cost a round trip per row. It checks every step against the
table, moves each group of rows with one guarded ``UPDATE … WHERE pk IN (…) AND status = <from>`` (a count that
differs refuses everything), and writes the audit rows and the events in one insert each.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.db import connection, models, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import Conflict, ValidationFailed
from quai.core.events import Event
from quai.core.models import StateTransition
from quai.core.outbox import event_record, events_record_many
from quai.core.rows import ids_param, model_rows_insert

REASON_MAX_LENGTH = 1000


@dataclass(frozen=True)
class Transition:
    """One allowed step: ``source`` → ``target``, named (e.g. "cancel") and maybe requiring a reason."""

    source: str
    target: str
    name: str = ""
    reason_required: bool = False


class StateMachine:
    """The transition table of one kind of record; ``aggregate`` names it in audit rows ("asn", "count_task")."""

    def __init__(self, aggregate: str, transitions: Iterable[Transition], *, field: str = "status") -> None:
        self.aggregate = aggregate
        self.field = field
        self._table: dict[tuple[str, str], Transition] = {}
        for step in transitions:
            if step.source == step.target:
                raise ValueError(f"{aggregate}: a transition must change the status ({step.source})")
            if (step.source, step.target) in self._table:
                raise ValueError(f"{aggregate}: {step.source} → {step.target} is listed twice")
            self._table[(step.source, step.target)] = step

    @classmethod
    def from_table(
        cls,
        aggregate: str,
        table: Mapping[str, Iterable[str]],
        *,
        field: str = "status",
        names: Mapping[tuple[str, str], str] | None = None,
        reason_required: Iterable[tuple[str, str]] = (),
    ) -> StateMachine:
        """Build a machine from ``{from: [to, …]}``, with optional names and reason-requiring steps by pair."""
        names = names or {}
        needs_reason = set(reason_required)
        steps = [
            Transition(
                source, target, name=names.get((source, target), ""), reason_required=(source, target) in needs_reason
            )
            for source, targets in table.items()
            for target in targets
        ]
        unknown = (set(names) | needs_reason) - {(s.source, s.target) for s in steps}
        if unknown:
            raise ValueError(f"{aggregate}: names or reasons given for steps not in the table: {sorted(unknown)}")
        return cls(aggregate, steps, field=field)

    @property
    def transitions(self) -> list[Transition]:
        return list(self._table.values())

    @property
    def states(self) -> set[str]:
        return {status for pair in self._table for status in pair}

    def allowed_from(self, status: str) -> list[str]:
        """The statuses ``status`` may move to, in the table's order (empty for a final status)."""
        return [target for (source, target) in self._table if source == status]

    def can(self, source: str, target: str) -> bool:
        return (source, target) in self._table

    def check(
        self, source: str, target: str, *, reason: str = "", labels: Mapping[str, str] | None = None
    ) -> Transition:
        """The step ``source`` → ``target`` if the table allows it with this reason; raises otherwise.

        ``labels`` turn status codes into words for the message (a model field's choices).
        """
        words = labels or {}
        step = self._table.get((source, target))
        if step is None:
            allowed = self.allowed_from(source)
            raise Conflict(
                _("The status cannot go from “%(from)s” to “%(to)s”.")
                % {"from": words.get(source, source), "to": words.get(target, target)},
                code="invalid_transition",
                details={"aggregate": self.aggregate, "from": source, "to": target, "allowed": allowed},
            )
        if step.reason_required and not reason.strip():
            raise ValidationFailed(
                _("Say why the status goes from “%(from)s” to “%(to)s”.")
                % {"from": words.get(source, source), "to": words.get(target, target)},
                code="reason_required",
                details={"aggregate": self.aggregate, "from": source, "to": target, "field": "reason"},
            )
        if len(reason) > REASON_MAX_LENGTH:
            raise ValidationFailed(
                _("The reason is too long (%(max)d characters at most).") % {"max": REASON_MAX_LENGTH},
                details={"field": "reason", "max_length": REASON_MAX_LENGTH},
            )
        return step


@dataclass(frozen=True)
class Actor:
    """Who asked for a change, as the audit row stores it."""

    user_id: int | None
    label: str


SYSTEM = Actor(user_id=None, label="system")


def actor_of(actor: Any) -> Actor:
    """Who ``actor`` is, for the audit row, without importing the app that defines users or API keys.

    Accepts None (the system: a task, a sweep), a label (``"import asns"``), an ``Actor``, a user (anything with
    ``pk`` and ``get_username()``) or a request principal (anything with ``user`` and ``api_key``; an API key is
    labelled by its prefix, the part of the key that is safe to show).
    """
    if actor is None:
        return SYSTEM
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, str):
        return Actor(user_id=None, label=actor[:150])
    api_key = getattr(actor, "api_key", None)
    if api_key is not None:
        return Actor(user_id=None, label=f"api key {getattr(api_key, 'prefix', api_key.pk)}")
    user = getattr(actor, "user", actor) if hasattr(actor, "api_key") else actor
    if user is not None and getattr(user, "pk", None) is not None:
        name = user.get_username() if hasattr(user, "get_username") else str(user)
        return Actor(user_id=int(user.pk), label=str(name)[:150])
    return SYSTEM


EventFactory = Callable[[StateTransition], Event]


def transition(
    obj: models.Model,
    *,
    machine: StateMachine,
    to_status: str,
    event: Event | EventFactory,
    actor: Any = None,
    reason: str = "",
    details: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
    merchant_id: int | None = None,
) -> StateTransition:
    """Move ``obj`` to ``to_status`` along ``machine``: status, audit row and event in one transaction.

    ``event`` is the event to record, or a function building it from the audit row (which carries the status the
    row really had once locked, and the transition's name). ``values`` are other columns written by the same
    guarded update (``closed_at``…). ``merchant_id`` defaults to ``obj.merchant_id``. ``obj`` is updated in
    place; the audit row is returned. Raises ``Conflict`` ``invalid_transition`` or ``ValidationFailed``
    (``reason_required``), with nothing written.
    """
    model = type(obj)
    field = machine.field
    labels = {str(k): str(v) for k, v in (model._meta.get_field(field).choices or [])}  # type: ignore[union-attr]
    extra = dict(values or {})
    with transaction.atomic():
        locked = model._default_manager.select_for_update().get(pk=obj.pk)
        source = str(getattr(locked, field))
        step = machine.check(source, to_status, reason=reason, labels=labels)
        now = clock.now()
        changes: dict[str, Any] = {field: to_status, **extra}
        field_names = {f.name for f in model._meta.concrete_fields}
        if "updated_at" in field_names:
            changes.setdefault("updated_at", now)
        if "version" in field_names:
            changes["version"] = F("version") + 1
        updated = model._default_manager.filter(pk=obj.pk, **{field: source}).update(**changes)
        if updated != 1:  # cannot happen under the lock; if it ever does, refuse rather than write a false history
            raise Conflict(
                _("The status changed meanwhile; try again."),
                code="invalid_transition",
                details={"aggregate": machine.aggregate, "from": source, "to": to_status, "allowed": []},
            )
        audit = StateTransition(
            aggregate=machine.aggregate,
            aggregate_id=str(obj.pk),
            merchant_id=merchant_id if merchant_id is not None else getattr(obj, "merchant_id", None),
            transition=step.name,
            from_status=source,
            to_status=to_status,
            reason=reason,
            details=dict(details or {}),
            at=now,
        )
        who = actor_of(actor)
        audit.actor_id, audit.actor_label = who.user_id, who.label
        recorded = event_record(event(audit) if callable(event) else event, merchant_id=audit.merchant_id)
        audit.event_id = recorded.event_id
        audit.save(force_insert=True)
    # Only once everything is written does the caller's copy change: a refused step leaves it as it was.
    setattr(obj, field, to_status)
    for name, value in changes.items():
        if name not in (field, "version"):
            setattr(obj, name, value)
    if "version" in field_names:
        obj.version = locked.version + 1  # type: ignore[attr-defined]
    return audit


def _audit_row(
    machine: StateMachine,
    pk: Any,
    merchant_id: int | None,
    rule: Transition,
    source: str,
    step: InsertedStep | Step,
    *,
    now: Any,
) -> StateTransition:
    """The audit row of an accepted step of the many forms (unsaved, its event id still to set)."""
    who = actor_of(step.actor)
    return StateTransition(
        aggregate=machine.aggregate,
        aggregate_id=str(pk),
        merchant_id=merchant_id,
        transition=rule.name,
        from_status=source,
        to_status=step.to_status,
        reason=step.reason,
        details=dict(step.details or {}),
        at=now,
        actor_id=who.user_id,
        actor_label=who.label,
    )


@dataclass(frozen=True)
class InsertedStep:
    """One row's first step in ``transitions_of_inserted``: the row, where it goes, its event (or a function of its
    audit row), and optionally why, details and who asked (``actor_of``)."""

    obj: models.Model
    to_status: str
    event: Event | EventFactory
    reason: str = ""
    details: Mapping[str, Any] | None = None
    actor: Any = None


def transitions_of_inserted(steps: Sequence[InsertedStep], *, machine: StateMachine) -> list[StateTransition]:
    """Move rows that THIS transaction inserted a moment ago along ``machine``: one guarded update per (from, to)
    group, the audit rows in one insert, the events in one insert (in ``steps`` order); the audit rows returned in
    that order. Every step is checked before anything is written; a refused one raises ``Conflict`` or
    ``ValidationFailed`` with nothing written, like ``transition``.

    Only for rows inserted by the current transaction (the caller's promise): their status in memory is then the
    stored one, so there is nothing to lock or read. The guarded update still checks it: a row not at its
    expected status makes the count differ, and everything is refused (``invalid_transition``) rather than a false
    history written. It takes no savepoint of its own (it runs on a batch's hot path, inside the caller's): a
    refusal raised after the first update leaves the caller's atomic block to roll back, as any error there does.
    """
    if not steps:
        return []
    model = type(steps[0].obj)
    if any(type(step.obj) is not model for step in steps):
        raise TypeError("transitions_of_inserted moves rows of one model at a time")
    field = machine.field
    labels = {str(k): str(v) for k, v in (model._meta.get_field(field).choices or [])}  # type: ignore[union-attr]
    checked = [
        (
            step,
            str(getattr(step.obj, field)),
            machine.check(str(getattr(step.obj, field)), step.to_status, reason=step.reason, labels=labels),
        )
        for step in steps
    ]
    now = clock.now()
    field_names = {f.name for f in model._meta.concrete_fields}
    changes: dict[str, Any] = {}
    if "updated_at" in field_names:
        changes["updated_at"] = now
    if "version" in field_names:
        changes["version"] = F("version") + 1
    with transaction.atomic(savepoint=False):
        groups: dict[tuple[str, str], list[Any]] = {}
        for step, source, _rule in checked:
            groups.setdefault((source, step.to_status), []).append(step.obj.pk)
        for (source, target), pks in groups.items():
            updated = _inserted_update(model, field, source, {field: target, **changes}, pks)
            if updated != len(pks):
                raise Conflict(
                    _("The status changed meanwhile; try again."),
                    code="invalid_transition",
                    details={"aggregate": machine.aggregate, "from": source, "to": target, "allowed": []},
                )
        audits = [
            _audit_row(machine, step.obj.pk, getattr(step.obj, "merchant_id", None), rule, source, step, now=now)
            for step, source, rule in checked
        ]
        recorded = events_record_many(
            [
                (step.event(audit) if callable(step.event) else step.event, audit.merchant_id)
                for (step, _source, _rule), audit in zip(checked, audits, strict=True)
            ]
        )
        for audit, event_id in zip(audits, recorded, strict=True):
            audit.event_id = event_id
        model_rows_insert(audits)  # one raw insert (quai.core.rows): bulk_create compiled its statement per call
    for step in steps:
        setattr(step.obj, field, step.to_status)
        if "updated_at" in changes:
            step.obj.updated_at = now  # type: ignore[attr-defined]
        if "version" in field_names:
            step.obj.version += 1  # type: ignore[attr-defined]
    return audits


_INTEGER_KEYS = frozenset({"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField"})


def _inserted_update(
    model: type[models.Model], field: str, source: str, changes: dict[str, Any], pks: list[Any]
) -> int:
    """``filter(pk__in=pks, <field>=source).update(**changes)`` as a statement written once per model, vendor and
    columns, the values prepared as the ORM prepares them: compiling the ORM's form was ~1 ms of the group
    committer's CPU per batch (intake's serial path). A key that is not an integer (``ids_param`` takes ids) or a
    value that is an expression other than the version's ``F + 1`` goes through the ORM."""
    versioned = "version" in changes
    plain = {name: value for name, value in changes.items() if name != "version"}
    if (
        _field(model, "pk").get_internal_type() not in _INTEGER_KEYS
        or (versioned and changes["version"] != F("version") + 1)
        or any(hasattr(value, "resolve_expression") for value in plain.values())
    ):
        return int(model._default_manager.filter(pk__in=pks, **{field: source}).update(**changes))
    params = [_field(model, name).get_db_prep_save(value, connection) for name, value in plain.items()]
    params += [ids_param(pks), _field(model, field).get_db_prep_save(source, connection)]
    with connection.cursor() as cursor:
        cursor.execute(_inserted_update_sql(model, connection.vendor, field, tuple(plain), versioned), params)
        return int(cursor.rowcount)


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    return cast("models.Field[Any, Any]", model._meta.pk if name == "pk" else model._meta.get_field(name))


@functools.lru_cache(maxsize=64)
def _inserted_update_sql(
    model: type[models.Model], vendor: str, field: str, names: tuple[str, ...], versioned: bool
) -> str:
    def column(name: str) -> str:
        return str(connection.ops.quote_name(str(_field(model, name).column)))

    sets = [f"{column(name)} = %s" for name in names]
    if versioned:
        sets.append(f"{column('version')} = {column('version')} + 1")
    key = column("pk")
    among = f"{key} = ANY(%s)" if vendor == "postgresql" else f"{key} IN (SELECT value FROM json_each(%s))"
    table = connection.ops.quote_name(model._meta.db_table)
    return f"UPDATE {table} SET {', '.join(sets)} WHERE {among} AND {column(field)} = %s"


@dataclass(frozen=True)
class Step:
    """One step of ``transitions_many``: what ``transition`` takes for one record, plus ``followed_by``: events the
    caller records right after the step's own (``order.released`` after ``order.status_changed``), in the same
    insert, so the outbox holds them in the order the one-by-one calls would have written them."""

    obj: models.Model
    to_status: str
    event: Event | EventFactory
    actor: Any = None
    reason: str = ""
    details: Mapping[str, Any] | None = None
    values: Mapping[str, Any] | None = None
    merchant_id: int | None = None
    followed_by: Sequence[tuple[Event, int | None]] = ()


@dataclass(frozen=True)
class StepOutcome:
    """A step's answer: its audit row, or the refusal ``transition`` would have raised (nothing written for it)."""

    step: Step
    audit: StateTransition | None = None
    error: Conflict | ValidationFailed | None = None


def transitions_many(
    steps: Sequence[Step], *, machine: StateMachine, locked: bool = False, savepoint: bool = True
) -> list[StepOutcome]:
    """``transition`` for each step in order, as one call after another would leave the rows, the audit and the
    outbox, in a number of statements that does not grow with the steps: one locked read of every row, one guarded
    update per (status read, status left, columns written) group, one insert of the events and one of the audit rows.

    Each step is checked against the status its row has at that point: the one read under the lock, moved by the
    earlier accepted steps of the list (a record may come several times). A refused step is answered with the
    error ``transition`` raises (``invalid_transition``, ``reason_required``…) and writes nothing; the others go on,
    as they would one call after another. With ``locked``, the caller promises that it locked these rows in this
    transaction and that ``obj`` carries the status read there: the read is skipped (the guarded update still
    checks it). An event factory that raises, or a row that does not exist, aborts everything (one by one, it is
    raised too), with nothing written. ``savepoint=False``: inside the caller's transaction without a savepoint of
    its own (two statements less), for a caller that undoes its whole transaction when this raises.
    """
    if not steps:
        return []
    model = type(steps[0].obj)
    if any(type(step.obj) is not model for step in steps):
        raise TypeError("transitions_many moves rows of one model at a time")
    field = machine.field
    labels = {str(k): str(v) for k, v in (model._meta.get_field(field).choices or [])}  # type: ignore[union-attr]
    field_names = {f.name for f in model._meta.concrete_fields}
    versioned = "version" in field_names
    pks = sorted({step.obj.pk for step in steps})
    with transaction.atomic(savepoint=savepoint):
        read: dict[Any, tuple[str, int]] = {}
        if locked:
            for step in steps:
                read.setdefault(
                    step.obj.pk, (str(getattr(step.obj, field)), getattr(step.obj, "version", 0) if versioned else 0)
                )
        else:
            columns = ("pk", field, "version") if versioned else ("pk", field)
            for row in (
                model._default_manager.select_for_update().filter(pk__in=pks).order_by("pk").values_list(*columns)
            ):
                read[row[0]] = (str(row[1]), int(row[2]) if versioned else 0)
            missing = [pk for pk in pks if pk not in read]
            if missing:
                raise model.DoesNotExist(f"{model.__name__} {missing[0]} does not exist")  # type: ignore[attr-defined]
        now = clock.now()
        current = {pk: status for pk, (status, _version) in read.items()}
        written: dict[Any, dict[str, Any]] = {}  # pk → the columns its accepted steps set, the last one winning
        moves: dict[Any, int] = {}
        outcomes: list[StepOutcome] = []
        accepted: list[tuple[Step, StateTransition]] = []
        for step in steps:
            pk = step.obj.pk
            source = current[pk]
            try:
                rule = machine.check(source, step.to_status, reason=step.reason, labels=labels)
            except (Conflict, ValidationFailed) as refusal:
                outcomes.append(StepOutcome(step=step, error=refusal))
                continue
            changes = written.setdefault(pk, {})
            changes.update({field: step.to_status, **dict(step.values or {})})
            if "updated_at" in field_names and "updated_at" not in (step.values or {}):
                changes["updated_at"] = now
            current[pk] = step.to_status
            moves[pk] = moves.get(pk, 0) + 1
            merchant_id = step.merchant_id if step.merchant_id is not None else getattr(step.obj, "merchant_id", None)
            audit = _audit_row(machine, pk, merchant_id, rule, source, step, now=now)
            outcomes.append(StepOutcome(step=step, audit=audit))
            accepted.append((step, audit))
        groups: dict[Any, tuple[str, int, dict[str, Any], list[Any]]] = {}
        for pk, changes in written.items():
            key: Any = (read[pk][0], moves[pk], tuple(sorted(changes.items(), key=lambda item: item[0])))
            try:
                hash(key)
            except TypeError:  # a column given an unhashable value (a JSON list…): that row is updated alone
                key = ("row", pk)
            groups.setdefault(key, (read[pk][0], moves[pk], changes, []))[3].append(pk)
        for source, count, changes, group in groups.values():
            values: dict[str, Any] = dict(changes)
            if versioned:
                values["version"] = F("version") + count
            # Written once (``_inserted_update``): the ORM compiled this update again for every call (a release
            # sweep's every tick). A row given as a foreign key's value (a batch's picker) goes through the ORM.
            if any(isinstance(value, models.Model) for value in values.values()):
                updated = model._default_manager.filter(pk__in=group, **{field: source}).update(**values)
            else:
                updated = _inserted_update(model, field, source, values, group)
            if updated != len(group):  # cannot happen under the lock; refuse rather than write a false history
                raise Conflict(
                    _("The status changed meanwhile; try again."),
                    code="invalid_transition",
                    details={"aggregate": machine.aggregate, "from": source, "to": values[field], "allowed": []},
                )
        events: list[tuple[Event, int | None]] = []
        for step, audit in accepted:
            events.append((step.event(audit) if callable(step.event) else step.event, audit.merchant_id))
            events.extend(step.followed_by)
        recorded = iter(events_record_many(events))
        for step, audit in accepted:
            audit.event_id = next(recorded)
            for _followed in step.followed_by:
                next(recorded)
        model_rows_insert([audit for _step, audit in accepted])
    # Only once everything is written do the callers' copies change: a refused step leaves its copy as it was.
    version_now = {pk: version for pk, (_status, version) in read.items()}
    for step, _audit in accepted:
        pk = step.obj.pk
        version_now[pk] += 1
        setattr(step.obj, field, step.to_status)
        for name, value in (step.values or {}).items():
            if name not in (field, "version"):
                setattr(step.obj, name, value)
        if "updated_at" in field_names and "updated_at" not in (step.values or {}):
            step.obj.updated_at = now  # type: ignore[attr-defined]
        if versioned:
            step.obj.version = version_now[pk]  # type: ignore[attr-defined]
    return outcomes
