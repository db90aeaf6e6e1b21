"""A small fake shop: a real HTTP server on loopback, threaded, that a test drives and inspects.

A platform's fake (``woocommerce.py``, and the other engineers' ``shopify.py``, ``prestashop.py``, ``saleor.py``)
subclasses ``FakeShop`` and declares routes; the adapters under test talk to it over real HTTP with the same code
that talks to the real platform (only the base URL differs). Failures are injected per request: ``fail_next(429,
headers={"Retry-After": "2"})`` makes the next matching request answer that, then the shop behaves again.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


Handler = Callable[..., Response]


@dataclass
class _Failure:
    status: int
    headers: dict[str, str]
    body: Any
    path_pattern: re.Pattern[str] | None
    times: int


class FakeShop:
    """Routes are ``(METHOD, regex)`` → handler(request, **groups). Every request is kept in ``requests``."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Request] = []
        self.failures: list[_Failure] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- set-up -----------------------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def fail_next(
        self, status: int, *, headers: dict[str, str] | None = None, body: Any = None, path: str = "", times: int = 1
    ) -> None:
        """The next ``times`` requests (whose path matches ``path``, a regex, when given) answer ``status``."""
        with self.lock:
            self.failures.append(_Failure(status, headers or {}, body, re.compile(path) if path else None, times))

    def authorised(self, request: Request) -> bool:
        """Override: whether the request's credentials are good (401 otherwise)."""
        return True

    # --- serving ----------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start the shop first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeShop:
        shop = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers=dict(self.headers.items()),
                    body=body,
                )
                response = shop.dispatch(request)
                payload = (
                    response.raw
                    if response.raw is not None
                    else (b"" if response.body is None else json.dumps(response.body).encode())
                )
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @contextmanager
    def running(self) -> Iterator[FakeShop]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def dispatch(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(request)
            for failure in self.failures:
                if failure.times > 0 and (failure.path_pattern is None or failure.path_pattern.search(request.path)):
                    failure.times -= 1
                    return Response(
                        failure.status, failure.body or {"code": "injected", "message": "injected"}, failure.headers
                    )
            if not self.authorised(request):
                return Response(
                    401,
                    {"code": "unauthorized", "message": "Sorry, you cannot list resources.", "data": {"status": 401}},
                )
            for method, pattern, handler in self.routes:
                match = pattern.match(request.path)
                if method == request.method and match:
                    return handler(request, **match.groupdict())
            return Response(404, {"code": "rest_no_route", "message": "No route was found.", "data": {"status": 404}})

    def calls(self, method: str, path_regex: str) -> list[Request]:
        pattern = re.compile(path_regex)
        with self.lock:
            return [r for r in self.requests if r.method == method and pattern.search(r.path)]
