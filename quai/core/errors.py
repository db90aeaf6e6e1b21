"""One error hierarchy for every app.

Each error carries a stable machine-readable ``code``, a ``message`` a person understands and ``details``; the API
renders it as ``{"error": {"code", "message", "details"}}`` with the error's HTTP status. Services raise these;
they never raise HTTP responses.
"""

from __future__ import annotations

from typing import Any


class QuaiError(Exception):
    """Base of every business error. Subclasses set ``status`` and a default ``code``."""

    status: int = 400
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def as_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ValidationFailed(QuaiError):
    """The input is malformed or breaks a business rule that the caller can fix."""

    status = 422
    code = "invalid"


class NotFound(QuaiError):
    """The thing does not exist, or belongs to another merchant (we never say which)."""

    status = 404
    code = "not_found"


class Conflict(QuaiError):
    """The input clashes with the current state: a duplicate, a stale version, a wrong state transition."""

    status = 409
    code = "conflict"


class InsufficientStock(Conflict):
    code = "insufficient_stock"


class Unauthenticated(QuaiError):
    status = 401
    code = "unauthenticated"


class Forbidden(QuaiError):
    status = 403
    code = "forbidden"
