"""Operator screens of analytics (mounted under /ops/supervisor/)."""

from django.urls import path

from quai.analytics import views

app_name = "analytics_ops"

urlpatterns = [
    path("", views.board, name="board"),
    path("panel/", views.board_panel, name="panel"),
]
