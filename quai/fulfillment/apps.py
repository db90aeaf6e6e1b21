from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FulfillmentConfig(AppConfig):
    name = "quai.fulfillment"
    label = "fulfillment"
    verbose_name = _("Fulfilment")
