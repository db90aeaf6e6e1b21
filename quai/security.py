"""Middleware of our own: the Content-Security-Policy header, and the browser-only middleware (sessions, users,
messages, static files; never CSRF) a cookieless API request skips.

The Content-Security-Policy header is on every answer (Django 5.2 has no CSP of its own; 6.0 will). The policy is
the setting ``QUAI_CONTENT_SECURITY_POLICY``; with ``QUAI_CSP_REPORT_ONLY`` (the default when DEBUG is on) it is
sent as ``Content-Security-Policy-Report-Only``, so a violation is reported in the browser's console instead of
blocked (see ``quai/settings.py``). A view that needs another policy sets the header itself and keeps it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware import locale
from django.utils import translation
from django.utils.cache import patch_vary_headers
from whitenoise.middleware import WhiteNoiseMiddleware


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


# --- Browser-only middleware, passed through by the API's keyed clients -------------------------------------------
# A shop or a connector calls the API with a Bearer key and no cookie: the session, authentication and messages
# middleware have nothing to read in such a request (no session cookie, hence no user), and an API route gives them
# nothing to send back (no session or message is written by one); WhiteNoise serves /static/ only. Run for every
# order of a flash sale, they (with CSRF's, then skipped too) were ~15 % of a request's CPU in the web process, for
# nothing. So each is Django's (or WhiteNoise's) class with one change: a request under /api/ that carries no Cookie
# header passes through it untouched. A request with any cookie (a browser, a staff session calling the API) goes
# through all of them as before, and so does every other path. CSRF is not skipped for anyone: Django's own
# CsrfViewMiddleware is in MIDDLEWARE and runs for every request, keyed API requests included (since a061c26); the
# API's routes are csrf_exempt and a session's CSRF token is checked by SessionAuth (quai/tenants/auth.py).

API_PREFIX = "/api/"


def cookieless_api(request: HttpRequest) -> bool:
    """An API request without any cookie: what the browser-only middleware leave alone (decided once a request)."""
    found = request.__dict__.get("_quai_cookieless_api")
    if found is None:
        found = request.path_info.startswith(API_PREFIX) and not request.META.get("HTTP_COOKIE")
        request.__dict__["_quai_cookieless_api"] = found
    return bool(found)


class _BrowserOnly:
    """Mixed in before a middleware class: ``cookieless_api`` requests skip its ``__call__`` (its request and
    response steps). CSRF's middleware is not one of them: Django's own runs for every request (``check --deploy``
    asks for it by name, and it checks every non-exempt view whatever the request)."""

    get_response: Any  # the middleware's own (set by its __init__)

    def __call__(self, request: HttpRequest) -> Any:
        if not getattr(self, "async_mode", False) and cookieless_api(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_BrowserOnly, sessions_middleware.SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, auth_middleware.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages_middleware.MessageMiddleware):
    pass


class StaticFilesMiddleware(_BrowserOnly, WhiteNoiseMiddleware):
    pass


# --- The request's language, for a cookieless API request -----------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _language_of(accept_language: str) -> str:
    """The language Django's ``get_language_from_request`` picks for a request with this Accept-Language header and
    no cookie (no language cookie to prefer), outside any language-prefixed URL: its own answer, kept per header."""
    request = HttpRequest()
    request.META["HTTP_ACCEPT_LANGUAGE"] = accept_language
    return translation.get_language_from_request(request, check_path=False)


@receiver(setting_changed)
def _language_settings_changed(*, setting: str, **kwargs: Any) -> None:
    """The cache above answers for the languages in force when it was filled: a change of ``LANGUAGE_CODE`` (the
    answer without Accept-Language) or ``LANGUAGES`` empties it, as Django empties its own language caches
    (``django.test.signals``). Without it, a test that set ``LANGUAGE_CODE = "en"`` left every later keyed request
    without the header answered in English."""
    if setting in ("LANGUAGE_CODE", "LANGUAGES"):
        _language_of.cache_clear()


class LocaleMiddleware(locale.LocaleMiddleware):
    """Django's, with the language of a ``cookieless_api`` request taken from its Accept-Language header through a
    per-process cache (``_language_of``) and its answer given the two headers Django's gives it (``Vary:
    Accept-Language``, ``Content-Language``): the same language and headers for ~a quarter of the CPU. While the
    URLs use no language prefix (``i18n_patterns``), which is all Django's other steps look at; otherwise, and for
    every other request, Django's own steps run."""

    def _lean(self, request: HttpRequest) -> bool:
        if not cookieless_api(request):
            return False
        urlconf = getattr(request, "urlconf", settings.ROOT_URLCONF)
        return not is_language_prefix_patterns_used(urlconf)[0]

    def process_request(self, request: HttpRequest) -> None:
        if not self._lean(request):
            super().process_request(request)
            return
        translation.activate(_language_of(request.META.get("HTTP_ACCEPT_LANGUAGE", "")))
        request.LANGUAGE_CODE = translation.get_language()

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not self._lean(request):
            return super().process_response(request, response)
        if "Vary" in response.headers:
            patch_vary_headers(response, ("Accept-Language",))
        else:  # what patch_vary_headers sets when there is no Vary yet, without parsing one
            response.headers["Vary"] = "Accept-Language"
        if "Content-Language" not in response.headers:
            response.headers["Content-Language"] = translation.get_language()
        return response
