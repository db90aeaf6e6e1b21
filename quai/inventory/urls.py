"""Operator screens of inventory, included by quai/urls.py under "ops/inventory/"."""

from django.urls import path

from quai.inventory import views

app_name = "inventory_ops"

urlpatterns = [
    path("move/", views.move_home, name="move_home"),
    path("move/scan/", views.move_scan, name="move_scan"),
    path("count/", views.count_home, name="count_home"),
    path("count/start/", views.count_start, name="count_start"),
    path("count/<int:count_task_id>/", views.count_task, name="count_task"),
    path("count/<int:count_task_id>/scan/", views.count_scan, name="count_scan"),
    path("count/<int:count_task_id>/finish/", views.count_finish, name="count_finish"),
    path("count/<int:count_task_id>/result/", views.count_result, name="count_result"),
]
