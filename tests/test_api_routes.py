"""The API's fast paths give the answers of the slow ones: routes looked up by their first segment (the match the
list of routes gives), plain UTF-8 bodies not walked for strings no database can store."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.http import HttpResponse
from django.urls import Resolver404, URLResolver, get_resolver, path, re_path, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

import quai.api
from quai.api import RoutesByFirstSegment
from quai.orders.tests.conftest import order_data


def _mounted() -> URLResolver:
    """The API's resolver as the project's URLconf mounts it (its patterns are those requests go through)."""
    mounted = get_resolver().url_patterns[0]
    assert isinstance(mounted, URLResolver) and str(mounted.pattern) == "api/v1/"
    return mounted


def _routes() -> tuple[RoutesByFirstSegment, list[Any]]:
    (resolver,) = _mounted().url_patterns
    assert isinstance(resolver, RoutesByFirstSegment)
    return resolver, list(resolver.url_patterns)


def _paths() -> list[str]:
    _resolver, patterns = _routes()
    paths = []
    for pattern in patterns:
        route = str(pattern.pattern)
        if route.startswith("^"):
            continue  # the catch-all
        paths.append(re.sub(r"<(?:\w+:)?\w+>", "12", route))
    return [*paths, "orders/", "orders/batch/", "nowhere", "orders/12/nowhere", ""]


def _seen(match: Any) -> tuple[Any, ...]:
    return (
        match.func,
        match.args,
        match.kwargs,
        match.url_name,
        match.route,
        match.app_names,
        match.namespaces,
        match.view_name,
        match.captured_kwargs,
        match.extra_kwargs,
    )


@pytest.mark.parametrize("path", _paths())
def test_every_api_path_resolves_to_what_the_list_of_routes_resolves_it_to(path: str) -> None:
    _resolver, patterns = _routes()
    mounted = _mounted()
    # The plain list under the root, as quai/urls.py mounts the API (first), without the look-up.
    in_order = URLResolver(
        RegexPattern(r"^/"),
        [URLResolver(RoutePattern("api/v1/"), patterns, app_name=mounted.app_name, namespace=mounted.namespace)],
    )
    try:
        expected = _seen(in_order.resolve(f"/api/v1/{path}"))
    except Resolver404:
        expected = None
    assert _seen(resolve(f"/api/v1/{path}")) == expected


def test_a_route_of_another_first_segment_is_skipped_and_one_that_may_match_is_not() -> None:
    def view(request: Any) -> HttpResponse:
        return HttpResponse()

    regex, parameter = re_path(r"^ord.*$", view, name="regex"), path("<str:anything>", view, name="parameter")
    literal, other = path("orders", view, name="literal"), path("skus", view, name="other")
    assert RoutesByFirstSegment([regex, literal]).resolve("orders").url_name == "regex"
    assert RoutesByFirstSegment([parameter, literal]).resolve("orders").url_name == "parameter"
    assert RoutesByFirstSegment([other, literal, parameter]).resolve("orders").url_name == "literal"
    assert RoutesByFirstSegment([other, literal, parameter]).resolve("skus").url_name == "other"
    assert RoutesByFirstSegment([other, literal, parameter]).resolve("mugs").url_name == "parameter"
    with pytest.raises(Resolver404):
        RoutesByFirstSegment([other, literal]).resolve("orders/12")
    resolver, _patterns = _routes()
    assert [str(p.pattern) for p in resolver._by_segment["orders"]][:3] == ["orders", "orders", "orders/batch"]


def _post_raw(api: Any, raw: bytes) -> Any:
    return api.client.post("/api/v1/orders", data=raw, content_type="application/json", headers=api.headers)


@pytest.mark.django_db
def test_a_plain_utf8_body_is_not_walked_for_unstorable_strings(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[Any] = []
    monkeypatch.setattr(quai.api, "_refuse_unstorable", walked.append)
    _post_raw(api, json.dumps(order_data("RAW-3", notes="Zoé 🎂"), ensure_ascii=False).encode())
    assert walked == []
    _post_raw(api, json.dumps(order_data("RAW-4", notes="Zoé 🎂")).encode())  # escaped: \u00e9 and \ud83c\udf82
    assert len(walked) == 1
