"""Reads of core's own records that apps and the back office share.

``core`` imports no app, so these take plain values (an aggregate's name and id), never an app's model.
"""

from __future__ import annotations

from django.db.models import QuerySet

from quai.core.models import StateTransition


def state_history(*, aggregate: str, aggregate_id: int | str) -> QuerySet[StateTransition]:
    """The status history of one record (``aggregate`` "asn", "count_task"…), oldest step first.

    Its rows are written by ``quai.core.states.transition`` only, in the transaction that changed the status, so
    this is the record's whole history and nothing but it. The caller has already scoped the record to its tenant
    (it reached it through its own app's selectors): the history belongs to that record, whoever owns it.
    """
    return StateTransition.objects.filter(aggregate=aggregate, aggregate_id=str(aggregate_id)).order_by("id")
