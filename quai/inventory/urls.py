"""Operator screens of inventory, included by quai/urls.py under "ops/inventory/"."""

from django.urls import path

from quai.inventory import views

app_name = "inventory_ops"

urlpatterns = [
    path("move/", views.move_home, name="move_home"),
    path("move/scan/", views.move_scan, name="move_scan"),
]
