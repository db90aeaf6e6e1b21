from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PromiseConfig(AppConfig):
    name = "quai.promise"
    label = "promise"
    verbose_name = _("Delivery promise")
