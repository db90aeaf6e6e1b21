"""The order's state machine: the one writer of ``Order.status``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from quai.core.events import Event
from quai.core.models import StateTransition
from quai.core.states import StateMachine, Step, StepOutcome, transition, transitions_many
from quai.orders import domain
from quai.orders.events import OrderStatusChanged
from quai.orders.models import Order

ORDER_MACHINE = StateMachine.from_table("order", domain.ORDER_TRANSITIONS, names=domain.ORDER_TRANSITION_NAMES)


def order_transition(
    *,
    order: Order,
    to_status: str,
    actor: Any = None,
    reason: str = "",
    values: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> Order:
    """Move an order along ``ORDER_MACHINE``: status, audit row (aggregate "order") and ``order.status_changed``.

    Goes through ``quai.core.states.transition``, which locks the row and reads the status there: a step the table
    forbids is 409 ``invalid_transition`` (details: from, to, allowed), with nothing written. ``values`` are other
    columns the same guarded update writes (the hold's reason…). The step's own event (``order.allocated``,
    ``order.cancelled``…) is recorded by the service that makes the step, in the same transaction. ``order`` is
    updated in place and returned.
    """
    order_step(order=order, to_status=to_status, actor=actor, reason=reason, values=values, details=details)
    return order


def order_step(
    *,
    order: Order,
    to_status: str,
    actor: Any = None,
    reason: str = "",
    values: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> StateTransition:
    """``order_transition`` returning the step's audit row (intake answers the order's timeline from it)."""
    return transition(
        order,
        machine=ORDER_MACHINE,
        to_status=to_status,
        actor=actor,
        reason=reason,
        values=values,
        details=details,
        event=_status_changed(order),
    )


def _status_changed(order: Order) -> Any:
    return lambda step: OrderStatusChanged(
        order_id=order.pk,
        channel=order.channel,
        external_id=order.external_id,
        from_status=step.from_status,
        to_status=step.to_status,
        reason=step.reason,
    )


def order_step_of(
    *,
    order: Order,
    to_status: str,
    actor: Any = None,
    reason: str = "",
    values: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    followed_by: Sequence[tuple[Event, int | None]] = (),
) -> Step:
    """One order's step for ``order_transitions_many``: what ``order_step`` writes for it, then ``followed_by``."""
    return Step(
        obj=order,
        to_status=to_status,
        event=_status_changed(order),
        actor=actor,
        reason=reason,
        values=values,
        details=details,
        followed_by=followed_by,
    )


def order_transitions_many(steps: Sequence[Step], *, locked: bool = False) -> list[StepOutcome]:
    """``order_step`` for each step in turn (``order_step_of``), through ``quai.core.states.transitions_many``: the
    same statuses, audit rows and events, refusals answered per step, in a few statements for all."""
    return transitions_many(steps, machine=ORDER_MACHINE, locked=locked)
