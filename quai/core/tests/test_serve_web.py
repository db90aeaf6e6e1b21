"""``manage.py serve --web granian`` starts the server of the README's production line, and it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from quai.core.management.commands.serve import process_commands

ROOT = Path(settings.BASE_DIR)


def test_granian_is_started_as_the_readme_s_production_line() -> None:
    command = process_commands(web="granian", addr="0.0.0.0:9123", concurrency=1)["web"]

    assert command[:3] == [sys.executable, "-m", "granian"]
    assert command[command.index("--interface") + 1] == "wsgi"
    assert (command[command.index("--host") + 1], command[command.index("--port") + 1]) == ("0.0.0.0", "9123")
    # One process of 32 threads: the threads share the intake's group committer (README, docs/INTAKE.md).
    assert (command[command.index("--workers") + 1], command[command.index("--blocking-threads") + 1]) == ("1", "32")
    assert command[-1] == "quai.wsgi:application"
    # A bare port means the loopback, as runserver and gunicorn take it.
    bare = process_commands(web="granian", addr=":9124", concurrency=1)["web"]
    assert bare[bare.index("--host") + 1] == "127.0.0.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_granian_web_process_serves_the_api_and_the_operator_login(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "quai.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'quai.sqlite3'}",
        "QUAI_EMBEDDED_DIR": str(tmp_path / "embedded"),
    }
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = _free_port()
    log_path = tmp_path / "web.log"
    with log_path.open("wb") as log:
        web = subprocess.Popen(
            process_commands(web="granian", addr=f"127.0.0.1:{port}", concurrency=1)["web"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            answer = None
            while time.monotonic() < deadline and web.poll() is None:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/ops/login/", timeout=5)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert answer is not None, log_path.read_text()
            assert answer.status_code == 200
            unauthenticated = httpx.get(f"http://127.0.0.1:{port}/api/v1/orders", timeout=5)
            assert unauthenticated.status_code == 401
        finally:
            web.terminate()
            web.wait(timeout=15)
