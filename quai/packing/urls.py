"""Operator screens of packing (mounted under /ops/packing/): the pack station and the truck loading."""

from django.urls import path

from quai.packing import views

app_name = "packing_ops"

urlpatterns = [
    path("", views.pack_home, name="pack_home"),
    path("scan/", views.pack_scan, name="pack_scan"),
    path("parcel/<int:parcel_id>/photo/", views.parcel_photo, name="parcel_photo"),
    path("parcel/<int:parcel_id>/photo.jpg", views.parcel_photo_view, name="parcel_photo_view"),
    path("parcel/<int:parcel_id>/label/", views.parcel_label, name="parcel_label"),
    path("parcel/<int:parcel_id>/slip.pdf", views.parcel_slip, name="parcel_slip"),
    path("truck/", views.truck_home, name="truck_home"),
    path("truck/<int:manifest_id>/", views.truck_manifest, name="truck_manifest"),
    path("truck/<int:manifest_id>/action/", views.truck_action, name="truck_action"),
    path("truck/<int:manifest_id>/manifest.pdf", views.manifest_document, name="manifest_document"),
]
