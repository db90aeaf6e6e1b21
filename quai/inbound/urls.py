"""Operator screens of inbound, meant to be included by quai/urls.py under "ops/inbound/"."""

from django.urls import path
from django.views.generic import RedirectView

from quai.inbound import views

app_name = "inbound"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="inbound:receiving_home", permanent=False), name="home"),
    path("receiving/", views.receiving_home, name="receiving_home"),
    path("receiving/<int:asn_id>/", views.receiving_session, name="receiving_session"),
    path("receiving/<int:asn_id>/scan/", views.receiving_scan, name="receiving_scan"),
    path("receiving/<int:asn_id>/close/", views.receiving_close, name="receiving_close"),
    path("receiving/<int:asn_id>/report/", views.receiving_report, name="receiving_report"),
    path("putaway/", views.putaway_home, name="putaway_home"),
    path("putaway/scan/", views.putaway_scan, name="putaway_scan"),
]
