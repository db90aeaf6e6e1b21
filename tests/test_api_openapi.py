"""What the OpenAPI description promises for every operation, checked over every route so new ones are covered."""

from __future__ import annotations

from typing import Any

import pytest

from quai.api import api as ninja_api

pytestmark = pytest.mark.django_db

WRITES = {"post", "put", "patch", "delete"}


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = ninja_api.get_openapi_schema()
    return [
        (path, method, operation) for path, methods in schema["paths"].items() for method, operation in methods.items()
    ]


def test_every_write_of_the_api_documents_the_idempotency_key_header():
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation in _operations()
        if method in WRITES
        and not any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    ]
    assert not missing


def test_every_operation_documents_its_error_answers_with_the_shared_error_schema():
    schema = ninja_api.get_openapi_schema()
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]
    undocumented = []
    for path, method, operation in _operations():
        expected = {401, 429}
        if method in WRITES:
            expected |= {403, 409, 422}
        if "{" in path:
            expected.add(404)
        if operation.get("parameters"):
            expected.add(422)
        if "requestBody" in operation:
            expected |= {400, 415}
        documented = {int(status) for status in operation["responses"]}
        for status in sorted(expected - documented):
            undocumented.append(f"{method.upper()} {path}: {status}")
        for status in expected:
            content = operation["responses"][status]["content"]["application/json"]["schema"]
            assert content == {"$ref": "#/components/schemas/Error"}, (path, method, status)
    assert not undocumented, "\n".join(undocumented)


def test_the_api_has_about_seventy_operations_all_walked():
    assert len(_operations()) >= 60
