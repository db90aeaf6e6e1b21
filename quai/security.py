"""The Content-Security-Policy header, on every answer (Django 5.2 has no CSP of its own; 6.0 will).

The policy is the setting ``QUAI_CONTENT_SECURITY_POLICY``; with ``QUAI_CSP_REPORT_ONLY`` (the default when DEBUG
is on) it is sent as ``Content-Security-Policy-Report-Only``, so a violation is reported in the browser's console
instead of blocked (see ``quai/settings.py``). A view that needs another policy sets the header itself and keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy: str = settings.QUAI_CONTENT_SECURITY_POLICY
        report_only: bool = settings.QUAI_CSP_REPORT_ONLY
        self.header = "Content-Security-Policy-Report-Only" if report_only else "Content-Security-Policy"

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if self.policy and self.header not in response:
            response[self.header] = self.policy
        return response
