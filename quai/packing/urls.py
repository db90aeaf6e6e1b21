"""Operator screens of packing (mounted under /ops/packing/)."""

from typing import Any

from django.urls import path  # noqa: F401  (the screens' routes are added here)

app_name = "packing_ops"

urlpatterns: list[Any] = []
