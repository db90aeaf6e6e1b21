"""The state machine mechanism, on a toy record: a door (core imports no app, so the tests bring their own model).

The door's table is created for this module only, in an isolated app registry: it never reaches migrations.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from django.db import connection, models, transaction
from django.db.models import F
from django.test.utils import isolate_apps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quai.core import clock
from quai.core.errors import Conflict, ValidationFailed
from quai.core.events import Event
from quai.core.models import OutboxEvent, StateTransition
from quai.core.states import (
    Actor,
    InsertedStep,
    StateMachine,
    Step,
    Transition,
    _inserted_update,
    actor_of,
    transition,
    transitions_many,
    transitions_of_inserted,
)

with isolate_apps("quai.core"):

    class Door(models.Model):
        status = models.CharField(
            max_length=20,
            default="closed",
            choices=[("closed", "Closed"), ("open", "Open"), ("locked", "Locked"), ("broken", "Broken")],
        )
        merchant_id = models.BigIntegerField(null=True)
        version = models.PositiveIntegerField(default=1)
        updated_at = models.DateTimeField(null=True)
        opened_by = models.CharField(max_length=20, blank=True)

        class Meta:
            app_label = "core"
            db_table = "core_test_door"

        def __str__(self) -> str:
            return f"door {self.pk} ({self.status})"


@dataclass(frozen=True)
class DoorMoved(Event):
    """A door moved along its state machine (a test event)."""

    name: ClassVar[str] = "test.door_moved"
    aggregate: ClassVar[str] = "door"

    door_id: int
    from_status: str
    to_status: str

    @property
    def aggregate_id(self) -> int:
        return self.door_id


DOOR = StateMachine.from_table(
    "door",
    {"closed": ["open", "locked"], "open": ["closed", "broken"], "locked": ["closed"], "broken": []},
    names={("locked", "closed"): "unlock"},
    reason_required=[("closed", "locked"), ("open", "broken")],
)
STATES = ["closed", "open", "locked", "broken"]
NOW = datetime(2030, 3, 4, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def door_table(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        with connection.schema_editor() as editor:
            editor.create_model(Door)
        yield
        with connection.schema_editor() as editor:
            editor.delete_model(Door)


def _move(door: Door, to: str, **kwargs: Any) -> StateTransition:
    return transition(
        door,
        machine=DOOR,
        to_status=to,
        event=lambda step: DoorMoved(door_id=door.pk, from_status=step.from_status, to_status=step.to_status),
        **kwargs,
    )


# --- the table alone, no database -------------------------------------------------------------------------------


def test_the_table_lists_what_each_status_may_become():
    assert DOOR.allowed_from("closed") == ["open", "locked"]
    assert DOOR.allowed_from("broken") == []
    assert DOOR.states == set(STATES)
    assert DOOR.check("locked", "closed").name == "unlock"


def test_a_step_outside_the_table_is_a_conflict_naming_what_is_allowed():
    with pytest.raises(Conflict) as refused:
        DOOR.check("locked", "open", labels={"locked": "Locked", "open": "Open"})
    assert refused.value.code == "invalid_transition"
    assert refused.value.details == {"aggregate": "door", "from": "locked", "to": "open", "allowed": ["closed"]}
    assert "Locked" in refused.value.message and "Open" in refused.value.message


def test_a_step_that_needs_a_reason_is_refused_without_one():
    with pytest.raises(ValidationFailed) as refused:
        DOOR.check("closed", "locked", reason="   ")
    assert refused.value.code == "reason_required"
    assert DOOR.check("closed", "locked", reason="night").target == "locked"


def test_a_table_that_repeats_a_step_or_stays_put_is_refused_at_definition():
    with pytest.raises(ValueError):
        StateMachine("door", [Transition("a", "b"), Transition("a", "b")])
    with pytest.raises(ValueError):
        StateMachine("door", [Transition("a", "a")])
    with pytest.raises(ValueError):
        StateMachine.from_table("door", {"a": ["b"]}, reason_required=[("b", "a")])


@given(source=st.sampled_from([*STATES, "nowhere"]), target=st.sampled_from([*STATES, "nowhere"]))
def test_check_accepts_exactly_the_steps_of_the_table(source, target):
    allowed = DOOR.can(source, target)
    try:
        DOOR.check(source, target, reason="because")
        accepted = True
    except Conflict:
        accepted = False
    assert accepted == allowed


def test_the_actor_is_told_apart_without_knowing_the_apps():
    class User:
        pk = 7

        def get_username(self) -> str:
            return "alice"

    class Key:
        pk = 3
        prefix = "quai_ab12"

    class Principal:
        def __init__(self, user: Any = None, api_key: Any = None) -> None:
            self.user, self.api_key = user, api_key

    assert actor_of(None) == Actor(None, "system")
    assert actor_of("import asns") == Actor(None, "import asns")
    assert actor_of(User()) == Actor(7, "alice")
    assert actor_of(Principal(user=User())) == Actor(7, "alice")
    assert actor_of(Principal(api_key=Key())) == Actor(None, "api key quai_ab12")


# --- the one function, on the database --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_transition_writes_the_status_the_audit_row_and_the_event_together(door_table):
    clock.set_now(NOW)
    door = Door.objects.create(merchant_id=5)
    audit = _move(door, "open", actor="front desk", details={"badge": "B-1"}, values={"opened_by": "desk"})

    stored = Door.objects.get(pk=door.pk)
    assert (stored.status, stored.opened_by, stored.version, stored.updated_at) == ("open", "desk", 2, NOW)
    assert (door.status, door.version) == ("open", 2)  # the caller's copy follows
    audit = StateTransition.objects.get(pk=audit.pk)
    assert (audit.aggregate, audit.aggregate_id, audit.merchant_id) == ("door", str(door.pk), 5)
    assert (audit.from_status, audit.to_status, audit.actor_id, audit.actor_label) == (
        "closed",
        "open",
        None,
        "front desk",
    )
    assert (audit.details, audit.at) == ({"badge": "B-1"}, NOW)
    event = OutboxEvent.objects.get(name="test.door_moved")
    assert event.event_id == audit.event_id
    assert event.payload == {"door_id": door.pk, "from_status": "closed", "to_status": "open"}
    assert (event.aggregate, event.aggregate_id, event.merchant_id) == ("door", str(door.pk), 5)


@pytest.mark.django_db
def test_a_refused_transition_writes_nothing_and_leaves_the_callers_copy_alone(door_table):
    door = Door.objects.create(status="locked")
    with pytest.raises(Conflict) as refused:
        _move(door, "open")
    assert refused.value.details["allowed"] == ["closed"]
    with pytest.raises(ValidationFailed):
        _move(Door.objects.create(), "locked", reason="")
    assert door.status == "locked" and door.version == 1
    assert Door.objects.get(pk=door.pk).status == "locked"
    assert not StateTransition.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_the_status_is_read_from_the_locked_row_not_from_a_stale_copy(door_table):
    door = Door.objects.create()
    stale = Door.objects.get(pk=door.pk)
    _move(door, "open")
    with pytest.raises(Conflict):
        _move(stale, "open")  # the stale copy still says closed; the row says open
    audit = _move(stale, "closed")
    assert (audit.from_status, audit.to_status) == ("open", "closed")


@pytest.mark.django_db
def test_when_the_event_cannot_be_built_the_status_does_not_change(door_table):
    door = Door.objects.create()

    def broken_event(step: StateTransition) -> Event:
        raise RuntimeError("no event, no change")

    with pytest.raises(RuntimeError):
        transition(door, machine=DOOR, to_status="open", event=broken_event)
    assert Door.objects.get(pk=door.pk).status == "closed"
    assert not StateTransition.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_the_back_office_lists_transitions_read_only(door_table, admin_client):
    _move(Door.objects.create(), "open", actor="front desk")
    response = admin_client.get("/admin/core/statetransition/?aggregate=door")
    assert response.status_code == 200
    assert b"front desk" in response.content
    assert admin_client.get("/admin/core/statetransition/add/").status_code == 403


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([*STATES, "nowhere"]), st.sampled_from(["", "a reason"])),
        max_size=12,
    )
)
def test_random_requests_never_reach_a_forbidden_state_and_each_accepted_step_leaves_one_audit_row_and_one_event(
    door_table, steps
):
    door = Door.objects.create()
    expected = "closed"
    accepted = 0
    for target, reason in steps:
        step = DOOR._table.get((expected, target))
        allowed = step is not None and (not step.reason_required or bool(reason))
        try:
            _move(door, target, reason=reason)
        except (Conflict, ValidationFailed):
            assert not allowed
        else:
            assert allowed
            expected = target
            accepted += 1
        assert Door.objects.get(pk=door.pk).status == expected
    history = list(StateTransition.objects.filter(aggregate="door", aggregate_id=str(door.pk)).order_by("id"))
    events = OutboxEvent.objects.filter(name="test.door_moved", aggregate_id=str(door.pk))
    assert len(history) == accepted == events.count()
    assert {row.event_id for row in history} == set(events.values_list("event_id", flat=True))
    # the audit rows chain: each step starts where the previous one ended, and each is a step of the table
    current = "closed"
    for row in history:
        assert row.from_status == current and DOOR.can(row.from_status, row.to_status)
        current = row.to_status
    assert current == expected


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clerks_opening_the_same_door_at_once_make_one_transition(door_table):
    if connection.vendor != "postgresql":
        pytest.skip("real parallel writers need PostgreSQL")
    door = Door.objects.create()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    lock = threading.Lock()

    def clerk() -> None:
        try:
            copy = Door.objects.get(pk=door.pk)
            barrier.wait(5)
            try:
                _move(copy, "open")
                result = "moved"
            except Conflict:
                result = "refused"
            with lock:
                outcomes.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=clerk) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    try:
        assert sorted(outcomes) == ["moved", "refused"]
        assert StateTransition.objects.filter(aggregate_id=str(door.pk)).count() == 1
        assert OutboxEvent.objects.filter(name="test.door_moved").count() == 1
    finally:
        Door.objects.all().delete()


# --- the first steps of rows just inserted, in bulk --------------------------------------------------------------


def _first_steps(doors: list[Door], to: list[str], **kwargs: Any) -> list[StateTransition]:
    return transitions_of_inserted(
        [
            InsertedStep(
                obj=door,
                to_status=target,
                event=lambda step, door=door: DoorMoved(
                    door_id=door.pk, from_status=step.from_status, to_status=step.to_status
                ),
                **kwargs,
            )
            for door, target in zip(doors, to, strict=True)
        ],
        machine=DOOR,
    )


@pytest.mark.django_db
def test_first_steps_of_inserted_rows_write_what_one_transition_each_writes_without_locking_them(
    door_table, django_assert_num_queries
):
    clock.set_now(NOW)
    doors = [Door.objects.create(merchant_id=5) for _ in range(4)]
    targets = ["open", "locked", "open", "locked"]
    # Two guarded updates (one per step kind), one insert of events, one of audit rows: no lock, no read.
    with django_assert_num_queries(4) as context:
        audits = _first_steps(doors, targets, actor="intake", reason="because")
    assert not any("FOR UPDATE" in query["sql"] for query in context.captured_queries)
    for door, target, audit in zip(doors, targets, audits, strict=True):
        stored = Door.objects.get(pk=door.pk)
        assert (stored.status, stored.version, stored.updated_at) == (target, 2, NOW)
        assert (door.status, door.version) == (target, 2)
        row = StateTransition.objects.get(aggregate_id=str(door.pk))
        assert (row.from_status, row.to_status, row.actor_label, row.reason, row.at) == (
            "closed",
            target,
            "intake",
            "because",
            NOW,
        )
        event = OutboxEvent.objects.get(event_id=row.event_id)
        assert event.payload == {"door_id": door.pk, "from_status": "closed", "to_status": target}
        assert (event.aggregate, event.aggregate_id, event.merchant_id) == ("door", str(door.pk), 5)
        assert audit.event_id == row.event_id
    # The events are stored in the order of the steps (the relay's order per aggregate).
    assert list(OutboxEvent.objects.order_by("id").values_list("aggregate_id", flat=True)) == [
        str(door.pk) for door in doors
    ]


@pytest.mark.django_db
def test_first_steps_refuse_everything_when_one_step_is_outside_the_table_or_the_row_moved(door_table):
    doors = [Door.objects.create(), Door.objects.create(status="broken")]
    with pytest.raises(Conflict):
        _first_steps(doors, ["open", "open"])
    fresh = [Door.objects.create(), Door.objects.create()]
    Door.objects.filter(pk=fresh[1].pk).update(status="open")  # the caller's copy is not what is stored
    # No savepoint of its own (it runs inside the caller's, on a hot path): the caller's block is rolled back.
    with pytest.raises(Conflict), transaction.atomic():
        _first_steps(fresh, ["open", "open"])
    assert [door.status for door in fresh] == ["closed", "closed"]  # the copies follow only a step that happened
    assert not StateTransition.objects.exists()
    assert not OutboxEvent.objects.exists()


# --- many steps at once: what one call after another writes ------------------------------------------------------


@dataclass(frozen=True)
class DoorNoted(Event):
    """Something said about a door after its step (a test event, for ``followed_by``)."""

    name: ClassVar[str] = "test.door_noted"
    aggregate: ClassVar[str] = "door"

    door_id: int
    note: str

    @property
    def aggregate_id(self) -> int:
        return self.door_id


def _door_event(door: Door) -> Any:
    return lambda step: DoorMoved(door_id=door.pk, from_status=step.from_status, to_status=step.to_status)


def _written(doors: list[Door], since: int) -> tuple[list[Any], list[Any], list[Any]]:
    """The doors' rows, their audit rows and their events (later than outbox id ``since``), each door named by its
    place in ``doors``: two sets of doors moved the same way compare equal."""
    index = {str(door.pk): k for k, door in enumerate(doors)}
    rows = [
        (row.status, row.version, row.updated_at, row.opened_by)
        for row in sorted(Door.objects.filter(pk__in=[d.pk for d in doors]), key=lambda r: index[str(r.pk)])
    ]
    audits = [
        (
            index[a.aggregate_id],
            a.merchant_id,
            a.transition,
            a.from_status,
            a.to_status,
            a.reason,
            a.details,
            a.actor_label,
            a.at,
            OutboxEvent.objects.get(event_id=a.event_id).name,
        )
        for a in StateTransition.objects.filter(aggregate_id__in=list(index)).order_by("id")
    ]
    events = []
    for event in OutboxEvent.objects.filter(aggregate_id__in=list(index), id__gt=since).order_by("id"):
        payload = dict(event.payload)
        payload["door_id"] = index[str(payload["door_id"])]
        events.append((event.name, index[event.aggregate_id], event.merchant_id, payload))
    return rows, audits, events


def _last_event_id() -> int:
    return OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    starts=st.lists(st.sampled_from(STATES), min_size=1, max_size=4),
    requests=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=3),
            st.sampled_from([*STATES, "nowhere"]),
            st.sampled_from(["", "a reason"]),
            st.booleans(),
        ),
        max_size=10,
    ),
)
def test_many_steps_end_in_the_states_rows_audit_and_events_of_one_transition_after_another(
    door_table, starts, requests
):
    clock.set_now(NOW)
    one_by_one = [Door.objects.create(status=status, merchant_id=k) for k, status in enumerate(starts)]
    together = [Door.objects.create(status=status, merchant_id=k) for k, status in enumerate(starts)]
    requests = [(k % len(starts), *rest) for k, *rest in requests]

    since = _last_event_id()
    refusals_one = []
    for k, target, reason, note in requests:
        door = one_by_one[k]
        try:
            with transaction.atomic():
                transition(
                    door,
                    machine=DOOR,
                    to_status=target,
                    event=_door_event(door),
                    reason=reason,
                    actor="clerk",
                    values={"opened_by": f"c{k}"} if note else None,
                    details={"k": k},
                )
                if note:
                    from quai.core.outbox import event_record

                    event_record(DoorNoted(door_id=door.pk, note=reason), merchant_id=door.merchant_id)
        except (Conflict, ValidationFailed) as refusal:
            refusals_one.append((refusal.code, refusal.details))
        else:
            refusals_one.append(None)
    expected = _written(one_by_one, since)

    since = _last_event_id()
    outcomes = transitions_many(
        [
            Step(
                obj=together[k],
                to_status=target,
                event=_door_event(together[k]),
                reason=reason,
                actor="clerk",
                values={"opened_by": f"c{k}"} if note else None,
                details={"k": k},
                followed_by=[(DoorNoted(door_id=together[k].pk, note=reason), together[k].merchant_id)] if note else (),
            )
            for k, target, reason, note in requests
        ],
        machine=DOOR,
    )
    refusals_many = [None if o.error is None else (o.error.code, o.error.details) for o in outcomes]
    assert refusals_many == refusals_one
    assert _written(together, since) == expected
    # the callers' copies follow their accepted steps, as one by one
    assert [(d.status, d.version, d.opened_by) for d in together] == [
        (d.status, d.version, d.opened_by) for d in one_by_one
    ]


@pytest.mark.django_db
def test_many_steps_cost_one_read_one_update_and_two_inserts_whatever_their_number(
    door_table, django_assert_max_num_queries
):
    doors = [Door.objects.create() for _ in range(6)]
    steps = [Step(obj=door, to_status="open", event=_door_event(door)) for door in doors]
    with django_assert_max_num_queries(6) as context:
        outcomes = transitions_many(steps, machine=DOOR)
    work = [q["sql"] for q in context.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert len(work) == 4  # the locked read, the update, the events, the audit rows (and its own savepoint)
    assert all(o.audit is not None for o in outcomes)
    assert set(Door.objects.values_list("status", flat=True)) == {"open"}


@pytest.mark.django_db
def test_many_steps_with_the_rows_locked_by_the_caller_refuse_everything_if_a_copy_was_stale(door_table):
    doors = [Door.objects.create(), Door.objects.create()]
    Door.objects.filter(pk=doors[1].pk).update(status="open")  # the caller's copy is not what is stored
    with pytest.raises(Conflict):
        transitions_many(
            [Step(obj=door, to_status="open", event=_door_event(door)) for door in doors], machine=DOOR, locked=True
        )
    assert [door.status for door in doors] == ["closed", "closed"]
    assert not StateTransition.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db
def test_first_steps_update_written_once_equals_the_orms(door_table):
    """The guarded update of ``transitions_of_inserted``, a statement written once, leaves the rows and the count
    the ORM's ``filter(pk__in=…, status=…).update(…)`` leaves: rows at another status, a key repeated, a key of no
    row, a null and an aware time, with and without the version's bump."""
    later = datetime(2026, 3, 2, 9, 15, 30, 123456, tzinfo=UTC)

    def world() -> list[Door]:
        return [
            Door.objects.create(status="closed", version=3, updated_at=None),
            Door.objects.create(status="closed", version=1, updated_at=NOW),
            Door.objects.create(status="open", version=7, updated_at=NOW),
            Door.objects.create(status="closed", version=2, opened_by="kept"),
        ]

    def rows(doors: list[Door]) -> list[Any]:
        return [
            Door.objects.filter(pk=door.pk).values_list("status", "version", "updated_at", "opened_by").get()
            for door in doors
        ]

    cases: list[dict[str, Any]] = [
        {"status": "open", "updated_at": later, "version": F("version") + 1},
        {"status": "locked", "updated_at": None},
        {"status": "open", "opened_by": "intake", "version": F("version") + 1},
    ]
    for changes in cases:
        written, orm = world(), world()
        keys_written = [written[0].pk, written[2].pk, written[3].pk, written[3].pk, 10**9]
        keys_orm = [orm[0].pk, orm[2].pk, orm[3].pk, orm[3].pk, 10**9]
        with transaction.atomic():
            count = _inserted_update(Door, "status", "closed", dict(changes), keys_written)
        with transaction.atomic():
            expected = Door.objects.filter(pk__in=keys_orm, status="closed").update(**changes)
        assert count == expected == 2
        assert rows(written) == rows(orm)
