"""Operator screens of promise (mounted under /ops/promise/)."""

from typing import Any

from django.urls import path  # noqa: F401  (the screens' routes are added here)

app_name = "promise_ops"

urlpatterns: list[Any] = []
