"""``collector_tune``: a long-running process, once loaded, freezes what it holds out of the cyclic collector's walks
and raises its thresholds; ``QUAI_GC_TUNE=false`` leaves the collector as it is. The web application and the Celery
workers' start-up signals call it."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest
from celery import signals
from django.conf import settings
from django.test import override_settings

import quai.celery
from quai.core.runtime import PROCESS_GC_THRESHOLDS, collector_tune


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector put back as it was after each test."""
    saved = gc.get_threshold()
    frozen = gc.get_freeze_count()
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        if not frozen:
            gc.unfreeze()


def test_collector_tune_freezes_what_is_alive_and_raises_the_thresholds(collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    kept: list[object] = []  # a tracked container, alive when the process tunes

    assert collector_tune() is True

    assert gc.get_threshold() == PROCESS_GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(kept)
    assert all(item is not kept for item in gc.get_objects())  # frozen: in no generation the collector walks


def test_the_switch_leaves_python_s_collector_as_it_is(collector: None) -> None:
    gc.set_threshold(700, 10, 10)
    kept: list[object] = []

    with override_settings(QUAI_GC_TUNE=False):
        assert collector_tune() is False

    assert gc.get_threshold() == (700, 10, 10)
    assert any(item is kept for item in gc.get_objects())  # not frozen


def test_a_celery_worker_s_processes_tune_at_start(collector: None) -> None:
    """Connected to both start-up signals (not sent here: Celery's Django fixup also listens and would close the
    test's connections), and tuning when called."""
    for signal in (signals.worker_init, signals.worker_process_init):
        receivers = [receiver() if isinstance(receiver, weakref.ref) else receiver for _, receiver in signal.receivers]
        assert quai.celery._collector_tune in receivers
    gc.set_threshold(700, 10, 10)

    quai.celery._collector_tune(sender=None)

    assert gc.get_threshold() == PROCESS_GC_THRESHOLDS


def test_the_web_application_tunes_when_loaded_unless_switched_off() -> None:
    """In a fresh interpreter, as a server loads it (the test process's own collector untouched)."""
    probe = "import gc, quai.wsgi; print(gc.get_threshold(), gc.get_freeze_count() > 0)"
    env = {"DJANGO_SETTINGS_MODULE": "quai.settings", "SECRET_KEY": "x", "PATH": "/usr/bin:/bin"}
    env_db = {key: value for key, value in os.environ.items() if key == "DATABASE_URL"}

    def run(switch: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=settings.BASE_DIR,
            env={**env, **env_db, "QUAI_GC_TUNE": switch},
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert run("true") == f"{PROCESS_GC_THRESHOLDS} True"
    assert run("false") == "(700, 10, 10) False"
