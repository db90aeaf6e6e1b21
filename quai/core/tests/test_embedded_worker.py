"""The embedded default (no REDIS_URL), as ``make run`` starts it: ``manage.py serve`` runs a real Celery worker
and beat on kombu's filesystem transport against a SQLite file, in processes of their own. A handler that fails is
retried with backoff by beat's sweep, with no one doing anything."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
HANDLERS = "quai.core.tests.embedded_worker_handlers"
BACKOFF_SECONDS = 1.0


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "quai.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'quai.sqlite3'}",
        "QUAI_EMBEDDED_DIR": str(tmp_path / "embedded"),
        "QUAI_WORKER_IMPORTS": HANDLERS,
        # Shorter than the defaults (5 s, 10 s) so the test waits a few seconds, not a minute.
        "QUAI_OUTBOX_BACKOFF_SECONDS": str(BACKOFF_SECONDS),
        "QUAI_OUTBOX_SWEEP_SECONDS": "0.5",
        "QUAI_TEST_CALLS_FILE": str(tmp_path / "calls.txt"),
        "QUAI_TEST_FAILURES": "2",
    }
    env.pop("REDIS_URL", None)
    return env


def _outbox_row(database: Path) -> tuple[int, str | None] | None:
    with sqlite3.connect(database, timeout=5) as db:
        return db.execute("SELECT attempts, relayed_at FROM core_outboxevent WHERE name = 'test.probe_sent'").fetchone()


@pytest.mark.slow
def test_a_failing_handler_is_retried_with_backoff_by_the_embedded_worker_and_beat_until_it_succeeds(tmp_path):
    env = _embedded_env(tmp_path)
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [python, "manage.py", "serve", "--web", "none", "--concurrency", "1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # given an event recorded by another process (as a web request would), whose handler fails twice
        subprocess.run(
            [python, "-c", f"import django; django.setup(); from {HANDLERS} import record_probe; record_probe()"],
            cwd=ROOT, env=env, check=True,
        )  # fmt: skip
        # when nobody does anything but wait
        deadline = time.monotonic() + 60
        row = None
        while time.monotonic() < deadline:
            row = _outbox_row(tmp_path / "quai.sqlite3")
            if row and row[1] is not None:
                break
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
    finally:
        serve.send_signal(signal.SIGINT)  # what Ctrl-C does: serve stops the worker and beat
        serve.wait(timeout=30)
        log.close()

    # then the event was relayed on the third attempt, each retry waiting longer than the one before
    assert row is not None and row[1] is not None, (tmp_path / "serve.log").read_text()[-3000:]
    assert row[0] == 3
    calls = [float(line) for line in (tmp_path / "calls.txt").read_text().split()]
    assert len(calls) == 3
    first_gap, second_gap = calls[1] - calls[0], calls[2] - calls[1]
    assert first_gap >= BACKOFF_SECONDS * 0.9
    assert second_gap >= 2 * BACKOFF_SECONDS * 0.9
    assert serve.returncode == 0


def test_beat_schedules_the_outbox_sweep_the_temporary_zone_sweep_and_the_idempotency_purge():
    from quai.celery import app

    app.loader.import_default_modules()  # what a worker does at start: discover every app's tasks
    schedule = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert "quai.core.tasks.outbox_sweep" in schedule
    assert "quai.inventory.tasks.stock_counting_sweep" in schedule
    assert "quai.tenants.tasks.idempotency_records_purge" in schedule
    assert set(schedule) <= set(app.tasks), "every scheduled task is a registered task"
