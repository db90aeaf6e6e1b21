"""The API's request bodies take integers and booleans strictly and bound every string and list.

Checked over the body schemas of every operation, so a schema added later is covered by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from quai.api import api as ninja_api


def _body_models() -> Iterator[tuple[str, Any]]:
    for bound_router in ninja_api._get_bound_routers():
        for path, path_view in bound_router.path_operations.items():
            for operation in path_view.operations:
                for model in operation.models:
                    if model.__ninja_param_source__ == "body":
                        yield f"{'/'.join(operation.methods)} {bound_router.prefix}{path}", model


def _lax_scalars(schema: Any, where: tuple[str, ...] = ()) -> Iterator[str]:
    """Integer and boolean fields that pydantic would fill from "1" or true (its default, lax mode)."""
    if isinstance(schema, dict):
        if schema.get("type") in {"int", "bool"} and not schema.get("strict"):
            yield f"{'.'.join(where)} ({schema['type']})"
        for key, value in schema.items():
            if key in {"fields"} and isinstance(value, dict):
                for name, field in value.items():
                    yield from _lax_scalars(field, (*where, name))
            elif key not in {"metadata", "serialization"}:
                yield from _lax_scalars(value, where)
    elif isinstance(schema, list):
        for item in schema:
            yield from _lax_scalars(item, where)


def test_every_integer_and_boolean_of_a_request_body_is_strict():
    lax = sorted(
        {
            f"{route}: {field}"
            for route, model in _body_models()
            for field in _lax_scalars(model.__pydantic_core_schema__)
        }
    )
    assert not lax, "use StrictInt / StrictBool:\n" + "\n".join(lax)


def _unbounded(schema: dict[str, Any], components: dict[str, Any], where: str, seen: set[str]) -> Iterator[str]:
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        if name in seen:
            return
        yield from _unbounded(components[name], components, where, seen | {name})
        return
    kinds = {part.get("type") for part in schema.get("anyOf", [])}
    if {"number", "string"} <= kinds:
        return  # a decimal, which pydantic takes as a number or a numeric string: bounded by its value (ge/le)
    for key in ("anyOf", "allOf", "oneOf"):
        for part in schema.get(key, []):
            yield from _unbounded(part, components, where, seen)
    kind = schema.get("type")
    if kind == "string" and "maxLength" not in schema and "enum" not in schema and "format" not in schema:
        yield f"{where} (string without maxLength)"
    if kind == "array":
        if "maxItems" not in schema:
            yield f"{where} (array without maxItems)"
        yield from _unbounded(schema.get("items", {}), components, f"{where}[]", seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _unbounded(sub, components, f"{where}.{name}" if where else name, seen)


def test_every_string_and_list_of_a_request_body_has_a_bound():
    schema = ninja_api.get_openapi_schema()
    components = schema["components"]["schemas"]
    unbounded = sorted(
        {
            f"{method.upper()} {path}: {field}"
            for path, methods in schema["paths"].items()
            for method, operation in methods.items()
            for content in operation.get("requestBody", {}).get("content", {}).values()
            for field in _unbounded(content["schema"], components, "", set())
        }
    )
    assert not unbounded, "\n".join(unbounded)


@pytest.mark.parametrize("value", [True, "1", 1.5])
def test_a_quantity_that_is_not_a_json_integer_is_refused(api, value):
    response = api.post("inventory/reservations", {"sku_id": 1, "quantity": value})
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert [field["field"] for field in error["details"]["fields"]] == ["quantity"]
