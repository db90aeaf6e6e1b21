"""Test-only outbox handler for test_embedded_worker.py, loaded by the real embedded worker through
``QUAI_WORKER_IMPORTS``: it fails its first ``QUAI_TEST_FAILURES`` calls, then succeeds, and appends the time of
each call to ``QUAI_TEST_CALLS_FILE`` (a failing handler's own database writes roll back, a file stays)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from django.db import transaction

from quai.core.events import Envelope, Event, subscribe
from quai.core.outbox import event_record


@dataclass(frozen=True)
class ProbeSent(Event):
    name: ClassVar[str] = "test.probe_sent"
    aggregate: ClassVar[str] = "probe"

    probe_id: str

    @property
    def aggregate_id(self) -> str:
        return self.probe_id


def flaky_handler(event: ProbeSent, envelope: Envelope) -> None:
    calls_file = Path(os.environ["QUAI_TEST_CALLS_FILE"])
    with calls_file.open("a") as calls:
        calls.write(f"{time.time()}\n")
    if len(calls_file.read_text().splitlines()) <= int(os.environ.get("QUAI_TEST_FAILURES", "2")):
        raise ConnectionError("the merchant's shop did not answer")


subscribe(ProbeSent.name, "test.flaky_probe", flaky_handler)


def record_probe() -> None:
    """What a web request does: record the event in its transaction; the commit nudges the worker."""
    with transaction.atomic():
        event_record(ProbeSent(probe_id="P-1"))
