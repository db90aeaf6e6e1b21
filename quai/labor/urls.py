"""Operator screens of labor (mounted under /ops/labor/)."""

from typing import Any

from django.urls import path  # noqa: F401  (the screens' routes are added here)

app_name = "labor_ops"

urlpatterns: list[Any] = []
