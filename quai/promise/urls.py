"""Operator screens of promise (mounted under /ops/promise/)."""

from typing import Any

from django.urls import path

from quai.promise import views

app_name = "promise_ops"

urlpatterns: list[Any] = [
    path("", views.promise_board, name="board"),
    path("at-risk/", views.promise_at_risk, name="at_risk"),
]
