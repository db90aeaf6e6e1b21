"""Calls to shops run on a queue of their own (``shop_push``), so a slow shop never holds the outbox relay; ``manage.py
serve`` starts a worker for each queue, so a stock push never waits behind the relay's runs either."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from quai.celery import SHOP_PUSH_QUEUE, app

ROOT = Path(settings.BASE_DIR)
SHOP_TASKS = [
    "quai.integrations.tasks.webhook_deliveries_send",
    "quai.integrations.tasks.webhook_deliveries_sweep",
    "quai.integrations.tasks.connection_stock_push",
    "quai.integrations.tasks.connector_call_run",
    "quai.integrations.tasks.inbound_delivery_process",
    "quai.integrations.tasks.connections_poll",
    "quai.integrations.tasks.connections_reconcile",
    "quai.integrations.tasks.connection_health_check",
    "quai.integrations.tasks.connection_reconcile",
]


def _queue_of(task: str) -> str:
    return str(app.amqp.router.route({}, task)["queue"].name)


def test_every_task_that_may_call_a_shop_goes_to_the_shop_push_queue_and_the_relay_does_not():
    app.loader.import_default_modules()
    integrations = {name for name in app.tasks if name.startswith("quai.integrations.tasks.")}
    assert set(SHOP_TASKS) <= integrations
    assert {task: _queue_of(task) for task in SHOP_TASKS} == dict.fromkeys(SHOP_TASKS, SHOP_PUSH_QUEUE)
    default = app.conf.task_default_queue
    for task in (
        "quai.core.tasks.outbox_relay",
        "quai.core.tasks.outbox_sweep",
        "quai.integrations.tasks.connections_sweep",  # reads the database and enqueues: no call to a shop
    ):
        assert _queue_of(task) == default


def test_a_worker_started_without_a_queue_option_consumes_both_queues():
    assert {default := app.conf.task_default_queue, SHOP_PUSH_QUEUE} <= set(app.amqp.queues)
    assert default != SHOP_PUSH_QUEUE


def test_serve_starts_one_worker_for_the_relay_and_one_of_its_own_for_shop_push():
    from quai.core.management.commands.serve import process_commands

    commands = process_commands(web="none", addr="", concurrency=3, shop_concurrency=2)

    def option(name: str, flag: str) -> str:
        command = commands[name]
        return command[command.index(flag) + 1]

    assert set(commands) == {"worker", "shop-worker", "beat"}
    assert option("worker", "-Q") == app.conf.task_default_queue and option("worker", "--concurrency") == "3"
    assert option("shop-worker", "-Q") == SHOP_PUSH_QUEUE and option("shop-worker", "--concurrency") == "2"
    assert option("shop-worker", "--prefetch-multiplier") == "1"  # a push waits for no message taken ahead of it
    assert option("worker", "--hostname") != option("shop-worker", "--hostname")
    # By default three: the outbox's priority pass runs on shop_push too, and two are left for the shops' pushes.
    default = process_commands(web="none", addr="", concurrency=2)["shop-worker"]
    assert default[default.index("--concurrency") + 1] == "3"


@pytest.mark.slow
def test_the_embedded_shop_worker_started_as_serve_starts_it_runs_a_stock_push_sent_to_the_shop_push_queue(tmp_path):
    from quai.core.management.commands.serve import process_commands

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "quai.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'quai.sqlite3'}",
        "QUAI_EMBEDDED_DIR": str(tmp_path / "embedded"),
    }
    env.pop("REDIS_URL", None)
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            process_commands(web="none", addr="", concurrency=1, shop_concurrency=1)["shop-worker"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            sent = (
                "import django; django.setup();"
                "from quai.integrations.tasks import connection_stock_push as task;"
                "print(task.delay(424242).id)"
            )
            result = subprocess.run([python, "-c", sent], cwd=ROOT, env=env, check=True, capture_output=True)
            task_id = result.stdout.decode().split()[-1]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and f"{task_id}] succeeded" not in log_path.read_text():
                assert worker.poll() is None, log_path.read_text()
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    text = log_path.read_text()
    assert f"connection_stock_push[{task_id}] succeeded" in text, text[-3000:]
    assert SHOP_PUSH_QUEUE in text  # the worker lists the queues it consumes at start
