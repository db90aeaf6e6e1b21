"""The shopper's tracking page (public, mounted under /track/)."""

from typing import Any

from django.urls import path  # noqa: F401  (the page's routes are added here)

app_name = "tracking"

urlpatterns: list[Any] = []
