"""Operator screens of service (mounted under /ops/service/)."""

from typing import Any

from django.urls import path  # noqa: F401  (the screens' routes are added here)

app_name = "service_ops"

urlpatterns: list[Any] = []
