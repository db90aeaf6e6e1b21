from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from quai import views
from quai.api import api

admin.site.site_header = _("Quai back office")
admin.site.site_title = _("Quai")
admin.site.index_title = _("Warehouses, merchants and stock")

urlpatterns = [
    path("api/v1/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("ops/", views.ops_home, name="ops_home"),
    path("ops/login/", views.OperatorLoginView.as_view(), name="ops_login"),
    path("ops/logout/", LogoutView.as_view(next_page="ops_login"), name="ops_logout"),
    path("ops/inbound/", include("quai.inbound.urls")),
    path("ops/inventory/", include("quai.inventory.urls")),
    path("ops/fulfilment/", include("quai.fulfillment.urls")),
    path("ops/packing/", include("quai.packing.urls")),
    path("ops/promise/", include("quai.promise.urls")),
    path("ops/service/", include("quai.service.urls")),
    path("ops/labor/", include("quai.labor.urls")),
    path("ops/campaigns/", include("quai.campaigns.urls")),
    path("ops/supervisor/", include("quai.analytics.urls")),
    path("track/", include("quai.service.tracking_urls")),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(url="/ops/", permanent=False)),
]
