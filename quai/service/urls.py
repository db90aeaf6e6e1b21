"""Operator screens of service (mounted under /ops/service/): the agent console and the returns desk."""

from django.urls import path

from quai.service import desk_views, views

app_name = "service_ops"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("tickets/<int:ticket_id>/", views.ticket_page, name="ticket"),
    path("tickets/<int:ticket_id>/<str:what>/", views.ticket_post, name="ticket_post"),
    path("tickets/<int:ticket_id>/actions/<str:action>/", views.order_action, name="order_action"),
    path("returns/", desk_views.desk, name="returns_desk"),
    path("returns/<str:what>/", desk_views.desk_post, name="returns_desk_post"),
]
