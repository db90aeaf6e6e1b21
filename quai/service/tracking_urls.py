"""The shopper's tracking page (public, mounted under /track/)."""

from django.urls import path

from quai.service import tracking_views

app_name = "tracking"

urlpatterns = [
    path("s/<str:token>/", tracking_views.signed, name="signed"),
    path("s/<str:token>/contact/", tracking_views.contact, name="contact"),
    path("s/<str:token>/return/", tracking_views.return_open, name="return"),
    path("<slug:merchant_code>/", tracking_views.lookup, name="lookup"),
]
