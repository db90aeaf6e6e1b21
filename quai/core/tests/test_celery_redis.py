"""Production mode: with Redis as Celery's broker, a commit that records an event nudges a real worker, which
relays the event to its handler. (The embedded default runs the same task in-process; other tests cover that.)"""

from __future__ import annotations

import socket
import threading
import uuid
from dataclasses import dataclass
from typing import ClassVar

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import transaction

from quai.celery import app
from quai.core import outbox
from quai.core.events import Envelope, Event, subscribe, unsubscribe
from quai.core.models import HandledEvent, OutboxEvent

REDIS = ("127.0.0.1", 6379)


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379 (CI starts one)"),
]


@dataclass(frozen=True)
class ParcelWeighed(Event):
    """A parcel went over a scale (a test event)."""

    name: ClassVar[str] = "test.parcel_weighed"
    aggregate_id: str
    grams: int


def _forget_routing() -> None:
    # Celery caches its queues and router (and broker pool) on first use, possibly by an earlier eager test:
    # drop them so the configuration just set is the one used.
    app.__dict__.pop("amqp", None)
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None


def test_a_committed_event_reaches_its_handler_through_a_redis_broker_and_a_real_worker():
    handled = threading.Event()
    seen: list[str] = []

    def handler(event: ParcelWeighed, envelope: Envelope) -> None:
        seen.append(envelope.aggregate_id)
        handled.set()

    subscribe(ParcelWeighed.name, "test.redis", handler)
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url", "task_default_queue")}
    # A queue of its own, so that test runs sharing one Redis never take each other's messages.
    queue = f"quai-test-{uuid.uuid4().hex}"
    app.conf.update(task_always_eager=False, broker_url="redis://127.0.0.1:6379/15", task_default_queue=queue)
    _forget_routing()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=[queue]):
            with transaction.atomic():
                event = outbox.event_record(ParcelWeighed(aggregate_id="P-1", grams=1250))
            assert handled.wait(timeout=20), "the worker never relayed the event"
    finally:
        app.conf.update(**saved)
        _forget_routing()
        unsubscribe("test.redis")

    assert seen == ["P-1"]
    assert HandledEvent.objects.filter(event_id=event.pk, handler="test.redis").exists()
    assert OutboxEvent.objects.get(pk=event.pk).relayed_at is not None
