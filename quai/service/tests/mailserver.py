"""Local mail servers on loopback for the tests: a small POP3 server (RFC 1939) and aiosmtpd for SMTP."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any


@dataclass
class Mailbox:
    """What the POP3 server serves: raw mails; deletions apply on QUIT, as RFC 1939's UPDATE state says."""

    user: str = "support"
    password: str = "secret"
    mails: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Pop3Handler(socketserver.StreamRequestHandler):
    server: Any

    def _send(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def _multiline(self, lines: list[bytes]) -> None:
        for line in lines:
            self.wfile.write((b"." + line if line.startswith(b".") else line) + b"\r\n")
        self.wfile.write(b".\r\n")

    def handle(self) -> None:
        box: Mailbox = self.server.mailbox
        user_ok = authed = False
        deleted: set[int] = set()
        self._send("+OK quai test POP3 ready")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            command, _space, argument = raw.decode("ascii", "replace").strip().partition(" ")
            command = command.upper()
            with box.lock:
                mails = list(box.mails)
            if command == "USER":
                user_ok = argument == box.user
                self._send("+OK" if user_ok else "-ERR no such user")
            elif command == "PASS":
                authed = user_ok and argument == box.password
                self._send("+OK logged in" if authed else "-ERR invalid password")
            elif command == "QUIT":
                with box.lock:
                    box.mails = [m for i, m in enumerate(box.mails, 1) if i not in deleted]
                self._send("+OK bye")
                return
            elif not authed:
                self._send("-ERR log in first")
            elif command == "STAT":
                live = [m for i, m in enumerate(mails, 1) if i not in deleted]
                self._send(f"+OK {len(live)} {sum(len(m) for m in live)}")
            elif command == "LIST":
                self._send("+OK")
                self._multiline([f"{i} {len(m)}".encode() for i, m in enumerate(mails, 1) if i not in deleted])
            elif command in ("RETR", "TOP"):
                parts = argument.split()
                number = int(parts[0])
                if not 0 < number <= len(mails) or number in deleted:
                    self._send("-ERR no such message")
                    continue
                lines = mails[number - 1].replace(b"\r\n", b"\n").split(b"\n")
                if lines and lines[-1] == b"":
                    lines.pop()
                if command == "TOP":
                    blank = lines.index(b"") if b"" in lines else len(lines)
                    lines = lines[: blank + 1 + int(parts[1])]
                self._send("+OK")
                self._multiline(lines)
            elif command == "DELE":
                deleted.add(int(argument))
                self._send("+OK deleted")
            elif command == "NOOP":
                self._send("+OK")
            else:
                self._send("-ERR unknown command")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


@contextmanager
def pop3_server(mailbox: Mailbox) -> Iterator[tuple[str, int]]:
    server = _Server(("127.0.0.1", 0), _Pop3Handler)
    server.mailbox = mailbox  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[0], server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _Collector:
    def __init__(self) -> None:
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server() -> Iterator[tuple[str, int, list[EmailMessage]]]:
    from aiosmtpd.controller import Controller

    collector = _Collector()
    port = _free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port, collector.received
    finally:
        controller.stop()
