"""Operator screens of fulfillment (mounted under /ops/fulfilment/)."""

from django.urls import path

from quai.fulfillment import views

app_name = "fulfillment_ops"

urlpatterns = [
    path("", views.pick_home, name="pick_home"),
    path("batch/<int:batch_id>/", views.pick_batch, name="pick_batch"),
    path("batch/<int:batch_id>/action/", views.pick_action, name="pick_action"),
]
