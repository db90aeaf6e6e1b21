"""The transactional outbox: events recorded with the change, relayed to handlers at least once, handled once.

- ``event_record`` writes a past-tense event in the caller's transaction, so the event exists if and only if the
  change committed. It also asks for one relay run after the commit (the "nudge"; eager in embedded mode, a Celery
  task otherwise). The periodic ``outbox_sweep`` task catches whatever a nudge missed (a dead worker, a failure).
- ``outbox_relay`` claims a batch of pending events (``SELECT … FOR UPDATE SKIP LOCKED`` where the database has it,
  so several relays share the work without waiting on each other; SQLite serialises writers instead), runs every
  handler registered for each event and marks the event relayed.
- Handlers are idempotent by event id: each (event, handler) success is recorded in ``HandledEvent`` in the same
  savepoint as the handler's own writes, so a retried event skips the handlers that already succeeded.
- A failing handler leaves the event pending with ``attempts``, ``last_error`` and ``next_attempt_at``
  (exponential backoff, capped); the other handlers of the event still run.
"""

from __future__ import annotations

import dataclasses
import logging
import traceback
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from quai.core import clock
from quai.core.db import insert_returning_id
from quai.core.models import HandledEvent, OutboxEvent

logger = logging.getLogger(__name__)

Handler = Callable[[OutboxEvent], None]

_handlers: dict[str, dict[str, Handler]] = {}

BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 3600
_NUDGE_MARK = "_quai_outbox_nudge"


def register_handler(event_name: str, handler_key: str, fn: Handler) -> None:
    """Run ``fn(event)`` once per event named ``event_name``; ``handler_key`` names the handler for idempotency.

    Registering the same key again replaces the function (apps register in ``AppConfig.ready()``, which may run
    more than once in tests).
    """
    _handlers.setdefault(event_name, {})[handler_key] = fn


def unregister_handler(event_name: str, handler_key: str) -> None:
    _handlers.get(event_name, {}).pop(handler_key, None)


def handlers_for(event_name: str) -> dict[str, Handler]:
    return dict(_handlers.get(event_name, {}))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def event_payload(event: Any) -> dict[str, Any]:
    """The event's fields as JSON-ready values (dates as ISO strings, decimals and uuids as strings)."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        raise TypeError("an outbox event must be a dataclass instance")
    return {f.name: _jsonable(getattr(event, f.name)) for f in dataclasses.fields(event)}


def event_record(event: Any, *, merchant_id: int | None = None) -> OutboxEvent:
    """Write ``event`` (a dataclass with a class attribute ``name``) to the outbox in the current transaction.

    ``aggregate`` (class attribute) and ``aggregate_id`` (field or property) are taken from the event when it
    has them, so the back office can find every event about one thing.
    """
    name = getattr(type(event), "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{type(event).__name__} needs a class attribute 'name', e.g. 'inventory.stock_changed'")
    values: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "name": name,
        "merchant_id": merchant_id,
        "aggregate": str(getattr(type(event), "aggregate", "") or ""),
        "aggregate_id": str(getattr(event, "aggregate_id", "") or ""),
        "payload": event_payload(event),
        "occurred_at": clock.now(),
    }
    row = OutboxEvent(id=insert_returning_id(OutboxEvent, values), **values)
    row._state.adding = False
    _nudge_after_commit()
    return row


def outbox_nudge() -> None:
    """For writers that insert outbox rows in their own SQL (one-statement hot paths): ask for the relay run."""
    _nudge_after_commit()


def _nudge_after_commit() -> None:
    """Ask for one relay run after the commit — one per transaction, however many events it recorded."""
    if not getattr(settings, "QUAI_OUTBOX_NUDGE", True):
        return
    if connection.in_atomic_block and any(getattr(entry[1], _NUDGE_MARK, False) for entry in connection.run_on_commit):
        return

    def nudge() -> None:
        from quai.core.tasks import outbox_relay_task

        try:
            outbox_relay_task.delay()
        except Exception:  # a nudge is a hint: the periodic sweep relays anything it missed
            logger.exception("outbox nudge failed; the sweep will relay the events")

    setattr(nudge, _NUDGE_MARK, True)
    transaction.on_commit(nudge, robust=True)


def backoff_delay(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s, … capped at one hour (the first delay is the setting QUAI_OUTBOX_BACKOFF_SECONDS)."""
    base = float(getattr(settings, "QUAI_OUTBOX_BACKOFF_SECONDS", BACKOFF_BASE_SECONDS))
    seconds = min(BACKOFF_MAX_SECONDS, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds)


def _pending(now: datetime) -> Any:
    return (
        OutboxEvent.objects.filter(relayed_at=None)
        .filter(Q(next_attempt_at=None) | Q(next_attempt_at__lte=now))
        .order_by("id")
    )


def _handle(event: OutboxEvent, key: str, fn: Handler) -> None:
    """Run one handler with its success record in one savepoint: both happen, or neither."""
    with transaction.atomic():
        HandledEvent.objects.create(event=event, handler=key, handled_at=clock.now())
        fn(event)


def outbox_relay(batch: int = 100) -> int:
    """Relay up to ``batch`` pending events to their handlers; returns how many were claimed."""
    now = clock.now()
    with transaction.atomic():
        pending = _pending(now)
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True, of=("self",))
        events = list(pending[:batch])
        if not events:
            return 0
        done = {
            (event_id, handler)
            for event_id, handler in HandledEvent.objects.filter(event__in=events).values_list("event_id", "handler")
        }
        for event in events:
            errors: list[str] = []
            for key, fn in handlers_for(event.name).items():
                if (event.pk, key) in done:
                    continue
                try:
                    _handle(event, key, fn)
                except IntegrityError:
                    # another relay recorded this handler first: it ran once, which is what we want
                    continue
                except Exception as exc:
                    logger.warning("outbox handler %s failed on %s %s", key, event.name, event.event_id)
                    errors.append(f"{key}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
            event.attempts += 1
            if errors:
                event.last_error = "\n".join(errors)[:10_000]
                event.next_attempt_at = now + backoff_delay(event.attempts)
            else:
                event.relayed_at = now
                event.next_attempt_at = None
            event.save(update_fields=["attempts", "last_error", "next_attempt_at", "relayed_at"])
        return len(events)


def outbox_sweep(batch: int = 100, max_batches: int = 50) -> int:
    """Relay batches until nothing is pending (or ``max_batches`` ran); returns how many events were claimed."""
    total = 0
    for _ in range(max_batches):
        claimed = outbox_relay(batch)
        total += claimed
        if claimed < batch:
            break
    return total
