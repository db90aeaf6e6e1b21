"""``manage.py serve``: the web server, the Celery workers and Celery beat in one command, supervised together.

This is what ``make run`` starts. In the embedded default (no ``REDIS_URL``) the workers and beat talk through
kombu's filesystem transport (see ``quai/celery.py``), so nothing else has to be installed; with ``REDIS_URL`` set
the same command runs a one-machine production-like stack. Two workers, as production runs them (README): one for
the default queue (the outbox relay and everything else) and one for ``shop_push`` (every call to a shop, its
processes taking one message at a time), so a stock push never waits behind a backlog of relay runs, nor a relay
run behind a slow shop. Each process runs in its own process group: Ctrl-C (or SIGTERM) stops them all cleanly, and if
one of them dies the others are stopped too, so a half-running Quai (a web server whose events are never relayed)
is never left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from quai.celery import DEFAULT_QUEUE, SHOP_PUSH_QUEUE

STOP_TIMEOUT_SECONDS = 15.0


def process_commands(*, web: str, addr: str, concurrency: int, shop_concurrency: int = 3) -> dict[str, list[str]]:
    """The command line of each process, by name (``web`` may be ``none`` to run only the workers and beat)."""
    python = sys.executable
    commands: dict[str, list[str]] = {}
    if web == "runserver":
        commands["web"] = [python, "-m", "django", "runserver", addr]
    elif web == "granian":
        # As the README's production line: one process whose 32 threads share the order intake's group committer.
        host, _, port = addr.rpartition(":")
        commands["web"] = [
            python, "-m", "granian", "--interface", "wsgi", "--host", host or "127.0.0.1", "--port", port,
            "--workers", "1", "--blocking-threads", "32", "--no-access-log", "quai.wsgi:application",
        ]  # fmt: skip
    elif web == "gunicorn":
        commands["web"] = [python, "-m", "gunicorn", "quai.wsgi", "--bind", addr]
    commands["worker"] = [
        python, "-m", "celery", "-A", "quai", "worker", "-Q", DEFAULT_QUEUE,
        "--loglevel", "INFO", "--concurrency", str(concurrency), "--hostname", "quai@%h",
    ]  # fmt: skip
    # Three processes by default: the outbox's priority pass (the shops' stock marks) runs on shop_push too, so two
    # are left for the pushes themselves; with two, a shop's push waited behind the pass and the other shop's push
    # (the connectors bench's "task queue" part).
    commands["shop-worker"] = [
        python, "-m", "celery", "-A", "quai", "worker", "-Q", SHOP_PUSH_QUEUE, "--prefetch-multiplier", "1",
        "--loglevel", "INFO", "--concurrency", str(shop_concurrency), "--hostname", "quai-shops@%h",
    ]  # fmt: skip
    commands["beat"] = [python, "-m", "celery", "-A", "quai", "beat", "--loglevel", "INFO"]
    return commands


class Command(BaseCommand):
    help = "Run the web server, the Celery workers (relay, shops) and Celery beat together; Ctrl-C stops them all."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("addr", nargs="?", default="127.0.0.1:8000", help="host:port of the web server")
        parser.add_argument(
            "--web",
            choices=["runserver", "granian", "gunicorn", "none"],
            default="runserver",
            help="the web server: Django's (development, the default), granian (as in production), gunicorn, or none "
            "(worker and beat only)",
        )
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes (default 2)")
        parser.add_argument(
            "--shop-concurrency", type=int, default=3, help="processes of the shop_push worker (default 3)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        commands = process_commands(
            web=options["web"],
            addr=options["addr"],
            concurrency=options["concurrency"],
            shop_concurrency=options["shop_concurrency"],
        )
        stopping: list[int] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stopping.append(signum)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        broker = "Redis" if not settings.EMBEDDED else f"files under {settings.QUAI_EMBEDDED_DIR}"
        self.stdout.write(f"Quai: starting {', '.join(commands)} (tasks through {broker}); Ctrl-C stops them all.")
        processes: dict[str, subprocess.Popen[bytes]] = {}
        exit_code = 0
        try:
            for name, command in commands.items():
                # A session of its own: the terminal's Ctrl-C reaches this supervisor only, which then stops
                # every process group in order (runserver's autoreloader child included).
                processes[name] = subprocess.Popen(command, cwd=settings.BASE_DIR, start_new_session=True)
                self.stdout.write(f"  {name}: pid {processes[name].pid}")
            while not stopping:
                dead = [(name, process) for name, process in processes.items() if process.poll() is not None]
                if dead:
                    name, process = dead[0]
                    # killed by a signal (negative code): the shell's convention, 128 + the signal's number
                    code = process.returncode
                    exit_code = 128 - code if code < 0 else code or 1
                    self.stderr.write(f"Quai: {name} exited with code {process.returncode}; stopping the others.")
                    break
                time.sleep(0.2)
        finally:
            _stop_all(processes)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if exit_code:
            raise CommandError(f"a process of Quai died (exit code {exit_code})", returncode=exit_code)


def _stop_all(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop each process, then whatever it left in its process group.

    SIGTERM goes to the main process only: Celery's worker then stops its own pool after the running tasks (a
    signal to its whole group would kill the pool under it). What is left in a group afterwards (runserver's
    autoreloaded child outlives its parent) gets SIGTERM, and anything still there at the deadline SIGKILL.
    """
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()
        else:
            _signal_group(process, signal.SIGTERM)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
        os.killpg(process.pid, signum)
