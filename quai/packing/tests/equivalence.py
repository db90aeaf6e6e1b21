"""What the batch forms' equivalence tests compare: the outbox rows and audit rows written since a mark, each
aggregate's in its order (the relay's order; a batch writes each kind of row in one insert, so rows of different
aggregates interleave otherwise than one by one), the ids of rows the writes create left out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from quai.core.models import OutboxEvent, StateTransition


def per_aggregate(rows: Iterable[Any]) -> dict[tuple[str, str], list[Any]]:
    """Rows ``(aggregate, aggregate id, ...)`` grouped by their aggregate, each group in the order given."""
    grouped: dict[tuple[str, str], list[Any]] = {}
    for aggregate, aggregate_id, *rest in rows:
        grouped.setdefault((aggregate, str(aggregate_id)), []).append(tuple(rest))
    return grouped


def events_per_aggregate(since: int, *, new_row_ids: set[str]) -> dict[tuple[str, str], list[Any]]:
    """The outbox rows after ``since``; payload keys in ``new_row_ids`` (ids of rows created: on PostgreSQL they
    differ between two runs, sequences are not rolled back) left out."""
    return per_aggregate(
        (
            e.aggregate,
            e.aggregate_id,
            e.name,
            e.merchant_id,
            e.occurred_at,
            {k: v for k, v in e.payload.items() if k not in new_row_ids},
        )
        for e in OutboxEvent.objects.filter(pk__gt=since).order_by("pk")
    )


def transitions_per_aggregate(since: int) -> dict[tuple[str, str], list[Any]]:
    """The audit rows after ``since``: who moved what from where to where, and why."""
    return per_aggregate(
        StateTransition.objects.filter(pk__gt=since)
        .order_by("pk")
        .values_list("aggregate", "aggregate_id", "from_status", "to_status", "actor_label", "details")
    )


def last_pk(model: Any) -> int:
    last = model.objects.order_by("-pk").first()
    return last.pk if last else 0
