"""Every error code Quai can answer is listed in docs/ERRORS.md.

The codes are found in the source, not in a hand-kept list: the ``code="…"`` keyword of every call to a QuaiError
subclass, the class-level ``code`` of those subclasses, and the codes the API layer (quai/api.py) answers by itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import quai

ROOT = Path(quai.__file__).resolve().parent
DOC = ROOT.parent / "docs" / "ERRORS.md"


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        if "tests" in path.parts or "migrations" in path.parts:
            continue
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def _error_classes(trees: list[tuple[Path, ast.Module]]) -> dict[str, ast.ClassDef]:
    """QuaiError and every class that derives from it, by name, wherever it is defined."""
    classes = {node.name: node for _path, tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    errors = {"QuaiError": classes["QuaiError"]}
    grown = True
    while grown:
        grown = False
        for name, node in classes.items():
            if name not in errors and _base_names(node) & set(errors):
                errors[name] = node
                grown = True
    return errors


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def raised_codes() -> dict[str, str]:
    """Each code found, with the first place it was found."""
    trees = list(_sources())
    errors = _error_classes(trees)
    codes: dict[str, str] = {}
    for name, node in errors.items():
        for statement in node.body:
            if (
                isinstance(statement, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "code" for t in statement.targets)
                and isinstance(statement.value, ast.Constant)
            ):
                codes.setdefault(statement.value.value, f"class {name}")
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and statement.target.id == "code"
                and isinstance(statement.value, ast.Constant)
            ):
                codes.setdefault(statement.value.value, f"class {name}")
    for path, tree in trees:
        relative = path.relative_to(ROOT.parent)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = _called_name(node)
            if called in errors:
                for keyword in node.keywords:
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                        codes.setdefault(keyword.value.value, f"{relative}:{node.lineno}")
            if (
                path.name == "api.py"
                and path.parent == ROOT
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "_HTTP_ERROR_CODES"
                and len(node.args) == 2
                and isinstance(node.args[1], ast.Constant)
            ):
                codes.setdefault(node.args[1].value, f"{relative}:{node.lineno}")  # the fallback code
            is_api_error = path.name == "api.py" and path.parent == ROOT and called == "_error"
            if is_api_error and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
                # _error(request, status, code, message, ...)
                codes.setdefault(node.args[2].value, f"{relative}:{node.lineno}")
        if path.name == "api.py" and path.parent == ROOT:
            for node in ast.walk(tree):
                # The codes the API gives Ninja's own HTTP errors, and the ones it picks by hand.
                if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "_HTTP_ERROR_CODES" for t in node.targets
                ):
                    assert isinstance(node.value, ast.Dict)
                    for value in node.value.values:
                        assert isinstance(value, ast.Constant)
                        codes.setdefault(value.value, f"{relative}:{node.lineno}")
                if (
                    isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets)
                    and isinstance(node.value, ast.Constant)
                ):
                    codes.setdefault(node.value.value, f"{relative}:{node.lineno}")
    return codes


def documented_codes() -> dict[str, int]:
    """``code`` → HTTP status, from the table rows of docs/ERRORS.md: ``| `code` | status | meaning |``."""
    rows = re.findall(r"^\|\s*`([a-z0-9_]+)`\s*\|\s*(\d{3})\s*\|\s*([^|]+?)\s*\|\s*$", DOC.read_text(), re.MULTILINE)
    assert rows, "docs/ERRORS.md has no table rows"
    return {code: int(status) for code, status, _meaning in rows}


def test_the_collector_finds_codes_of_every_kind():
    codes = raised_codes()
    assert {"insufficient_stock", "staff_only", "unknown_route", "csrf_failed", "throttled"} <= set(codes)
    assert {"unsupported_media_type", "idempotency_key_reused", "http_error"} <= set(codes)


def test_every_error_code_raised_in_quai_is_documented_in_docs_errors_md():
    documented = documented_codes()
    missing = sorted(f"{code} (raised at {where})" for code, where in raised_codes().items() if code not in documented)
    assert not missing, "add to docs/ERRORS.md:\n" + "\n".join(missing)


def test_docs_errors_md_lists_each_code_once_with_a_4xx_status():
    rows = re.findall(r"^\|\s*`([a-z0-9_]+)`\s*\|\s*(\d{3})", DOC.read_text(), re.MULTILINE)
    codes = [code for code, _status in rows]
    assert len(codes) == len(set(codes)), sorted({code for code in codes if codes.count(code) > 1})
    # The two of intake's group committer (quai/core/batching.py) are the server's state, not the request's fault:
    # 503, nothing written, retry. Every other refusal is the client's to fix: 4xx.
    server_side = {"overloaded", "commit_failed"}
    assert all(400 <= int(status) < 500 or (code in server_side and int(status) == 503) for code, status in rows)
