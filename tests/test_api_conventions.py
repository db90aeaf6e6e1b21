"""Conventions every list of the API keeps, checked over every route so new lists are covered by themselves."""

from __future__ import annotations

import pytest

from quai.api import api as ninja_api

pytestmark = pytest.mark.django_db


def _list_routes() -> list[str]:
    paths = ninja_api.get_openapi_schema()["paths"]
    return sorted(
        path
        for path, methods in paths.items()
        if "get" in methods
        and "{" not in path
        and any(p["name"] == "offset" for p in methods["get"].get("parameters", []))
    )


def test_the_api_has_paginated_lists_of_every_app():
    prefixes = {path.split("/")[3] for path in _list_routes()}
    assert {"catalog", "warehouse", "inventory", "inbound", "merchants"} <= prefixes


@pytest.mark.parametrize("path", _list_routes())
def test_every_list_answers_items_and_count_and_refuses_an_offset_out_of_range(staff_api, path):
    page = staff_api.get(path, limit=1)
    assert page.status_code == 200, page.content
    assert set(page.json()) == {"items", "count"}

    refused = staff_api.get(path, offset=2**70)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_input"
