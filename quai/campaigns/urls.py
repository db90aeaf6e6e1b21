"""Operator screens of campaigns (mounted under /ops/campaigns/)."""

from typing import Any

from django.urls import path  # noqa: F401  (the screens' routes are added here)

app_name = "campaigns_ops"

urlpatterns: list[Any] = []
