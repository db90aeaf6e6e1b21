"""Operator screens of fulfillment (mounted under /ops/fulfillment/)."""

from typing import Any

from django.urls import path  # noqa: F401  (the screens' routes are added here)

app_name = "fulfillment_ops"

urlpatterns: list[Any] = []
