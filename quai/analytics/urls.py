"""Operator screens of analytics (mounted under /ops/supervisor/)."""

from typing import Any

from django.urls import path  # noqa: F401  (the screens' routes are added here)

app_name = "analytics_ops"

urlpatterns: list[Any] = []
