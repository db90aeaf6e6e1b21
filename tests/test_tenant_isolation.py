"""A merchant's API key can neither read nor write another merchant's rows, through any route of the API.

The test walks the OpenAPI description of /api/v1/, so a route added later is covered without touching this file:
every path parameter must have a factory in some app's ``tests/factories.py`` ``ISOLATION_FACTORIES`` that creates
a row owned by a given merchant, or this test fails and says which one is missing.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core import serializers

import quai
from conftest import ApiClient, merchant_api
from quai.api import api as ninja_api
from quai.tenants.tests.factories import MerchantFactory

pytestmark = pytest.mark.django_db

Factory = Callable[[Any], int]


def _isolation_factories() -> dict[str, Factory]:
    factories: dict[str, Factory] = {"merchant_id": lambda merchant: merchant.pk}
    for module in pkgutil.iter_modules(quai.__path__):
        try:
            factories_module = importlib.import_module(f"quai.{module.name}.tests.factories")
        except ModuleNotFoundError:
            continue
        factories.update(getattr(factories_module, "ISOLATION_FACTORIES", {}))
    return factories


def _routes() -> Iterator[tuple[str, str, dict[str, Any]]]:
    schema = ninja_api.get_openapi_schema()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def _schema_for(ref_or_schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in ref_or_schema:
        return _schema_for(components[ref_or_schema["$ref"].split("/")[-1]], components)
    if "allOf" in ref_or_schema:
        merged: dict[str, Any] = {"properties": {}, "required": []}
        for part in ref_or_schema["allOf"]:
            sub = _schema_for(part, components)
            merged["properties"].update(sub.get("properties", {}))
            merged["required"] += sub.get("required", [])
        return merged
    if "anyOf" in ref_or_schema:
        return _schema_for(next(s for s in ref_or_schema["anyOf"] if s.get("type") != "null"), components)
    return ref_or_schema


def _example(name: str, schema: dict[str, Any], components: dict[str, Any], foreign: dict[str, int]) -> Any:
    """A plausible value for a field, pointing at the foreign merchant's rows wherever an id is asked for."""
    schema = _schema_for(schema, components)
    if name in foreign:
        return foreign[name]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = schema.get("required", [])
        return {
            key: _example(key, sub, components, foreign)
            for key, sub in schema.get("properties", {}).items()
            if key in required or key in foreign
        }
    if kind == "array":
        return [_example(name.rstrip("s"), schema.get("items", {}), components, foreign)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if schema.get("format") == "date":
        return "2030-01-01"
    if schema.get("format") == "date-time":
        return "2030-01-01T00:00:00Z"
    return f"probe-{name}"


def _merchant_rows(merchant: Any) -> str:
    """Every row that belongs to ``merchant``, serialized: it must be the same after the walk."""
    rows = []
    for model in apps.get_models():
        if any(f.name == "merchant" for f in model._meta.fields):
            rows.append(serializers.serialize("json", model._default_manager.filter(merchant=merchant).order_by("pk")))
    return "\n".join(rows)


def _mentions_merchant(payload: Any, merchant_id: int) -> bool:
    if isinstance(payload, dict):
        if payload.get("merchant_id") == merchant_id or payload.get("merchant") == merchant_id:
            return True
        return any(_mentions_merchant(value, merchant_id) for value in payload.values())
    if isinstance(payload, list):
        return any(_mentions_merchant(value, merchant_id) for value in payload)
    return False


def test_every_path_parameter_of_the_api_has_an_isolation_factory():
    factories = _isolation_factories()
    missing = sorted(
        {
            f"{param['name']} (in {path})"
            for path, _method, operation in _routes()
            for param in operation.get("parameters", [])
            if param["in"] == "path" and param["name"] not in factories
        }
    )
    assert not missing, f"add these to an app's tests/factories.py ISOLATION_FACTORIES: {missing}"


def test_a_merchant_key_can_neither_read_nor_write_another_merchants_rows_on_any_route():
    own = MerchantFactory(code="own-merchant")
    foreign = MerchantFactory(code="foreign-merchant")
    factories = _isolation_factories()
    foreign_ids = {name: factory(foreign) for name, factory in factories.items()}
    # The probing merchant owns rows of every kind too, so a route that ignored the scope would have rows to show.
    for factory in factories.values():
        factory(own)
    client: ApiClient = merchant_api(own)
    components = ninja_api.get_openapi_schema().get("components", {}).get("schemas", {})
    before = _merchant_rows(foreign)

    leaks: list[str] = []
    walked = 0
    for path, method, operation in _routes():
        url = path
        params = {p["name"]: p for p in operation.get("parameters", [])}
        for name, param in params.items():
            if param["in"] == "path":
                url = url.replace("{" + name + "}", str(foreign_ids[name]))
        query = {name: foreign_ids[name] for name, p in params.items() if p["in"] == "query" and name in foreign_ids}
        body = None
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            body = _example("body", content["application/json"]["schema"], components, foreign_ids)
        if method == "get":
            response = client.get(url, **query)
        else:
            if query:
                url = f"{url}?{'&'.join(f'{k}={v}' for k, v in query.items())}"
            response = getattr(client, method)(url, body)
        walked += 1
        names_foreign = any(p["in"] == "path" for p in params.values()) or "merchant_id" in query
        content_type = response.get("Content-Type", "")
        payload = json.loads(response.content) if content_type.startswith("application/json") else None
        if names_foreign and 200 <= response.status_code < 300:
            leaks.append(f"{method.upper()} {path} answered {response.status_code} for the other merchant's row")
        elif payload is not None and response.status_code < 300 and _mentions_merchant(payload, foreign.pk):
            leaks.append(f"{method.upper()} {path} showed the other merchant's rows")

    assert walked > 5
    assert not leaks, "\n".join(leaks)
    assert _merchant_rows(foreign) == before, "a route changed the other merchant's rows"
